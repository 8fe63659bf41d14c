"""Per-network and per-stock arrays for building models fast, computed once and cached.

:func:`network_arrays` turns a :class:`Network` into numpy arrays over its nodes sorted by
node id (positions, handling costs in solver units, clocks and calendars, types, flags,
capacity, priority, country) plus each service's rate bands and calendar.
:func:`stock_arrays` gives, per SKU, the nodes holding it and their available units, built
on first use of the SKU and shared by every stock object holding the same positions of it.
:func:`node_filter` gives the nodes a rule policy's node filters keep.

The domain objects are frozen but neither hashable nor weak-referenceable, so the caches
are small dicts keyed by ``id()`` that also hold the object itself: while an entry lives,
its id cannot be reused by another object. Each cache keeps its most recent few entries.
Networks are never mutated; stock objects are replaced, not mutated, when stock changes,
so a cached entry is never stale.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import repeat
from operator import attrgetter
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from models.calendar import Calendar
from models.lookahead import StockPrices
from models.money import to_units
from models.network import Network, Node, NodeType, RateBand, Stock, StockPosition
from models.rules import Policy
from router.engine.dates import NodeClocks

MAX_CACHED_NETWORKS = 4
"""Networks whose arrays are kept (the most recently built)."""

MAX_CACHED_STOCKS = 8
"""Stock objects whose per-SKU arrays are kept (the most recently built)."""

MAX_CACHED_SKUS = 4096
"""SKU position tuples whose arrays are kept across stock objects (the most recently built)."""

MAX_CACHED_FILTERS = 64
"""(policy, network) pairs whose node filters are kept: every strategy of a few rule sets."""


@lru_cache(maxsize=4096)
def money_units(amount: float) -> int:
    """``to_units(amount)``, cached: rule and rate amounts recur on every order."""
    return to_units(amount)


@lru_cache(maxsize=65536)
def weight_units(cost_per_kg: float, weight_kg: float) -> int:
    """Carrier cost of one unit of ``weight_kg`` at ``cost_per_kg``, in solver units.

    Exact: the decimal product of the two amounts as written (their ``repr``), rounded once
    by :func:`to_units`. Cached per (rate, weight) pair, so each pair is multiplied once.
    """
    return to_units(Decimal(repr(cost_per_kg)) * Decimal(repr(weight_kg)))


@dataclass(frozen=True, slots=True)
class ServiceBands:
    """One service's rate bands as arrays, in the rate card's order, and its calendar.

    ``reach[b]`` is the largest ``max_distance_km`` of bands ``0..b``: the first band that
    reaches a distance ``d`` is ``np.searchsorted(reach, d)`` (``len(bands)`` when none does),
    the same first match as scanning the bands in order, sorted or not. ``calendar`` holds
    the service's non-delivery days (None: it runs every day).
    """

    bands: tuple[RateBand, ...]
    reach: NDArray[np.float64]
    limits: NDArray[np.float64]
    transit_days: NDArray[np.int64]
    base_units: NDArray[np.int64]
    calendar: Calendar | None

    @staticmethod
    def of(bands: tuple[RateBand, ...], calendar: Calendar | None = None) -> ServiceBands:
        """The arrays of ``bands``, and ``calendar`` (None: the service runs every day)."""
        limits = np.array([b.max_distance_km for b in bands], dtype=np.float64)
        return ServiceBands(
            bands=bands,
            reach=np.maximum.accumulate(limits) if len(bands) else limits,
            limits=limits,
            transit_days=np.array([b.transit_days for b in bands], dtype=np.int64),
            base_units=np.array([to_units(b.base_cost) for b in bands], dtype=np.int64),
            calendar=calendar or None,
        )

    def band_of(self, distance_km: NDArray[np.float64]) -> NDArray[np.intp]:
        """Index of the first band reaching each distance; ``len(bands)`` beyond the last."""
        return np.searchsorted(self.reach, distance_km, side="left")

    def delivery_ordinals(
        self, shipped: NDArray[np.int64], transit: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """Delivery dates of parcels handed to this service on ``shipped`` (ordinals).

        Each is delivered ``transit`` days later, counting only the days the service runs
        (:meth:`~models.calendar.Calendar.open_days_after`); without a calendar,
        ``shipped + transit``. With one, the service's running days from the earliest
        ship date on are listed (as far as the latest ship date needs): a parcel is
        collected on the first of them on or after its ship date, and delivered
        ``transit`` places further down the list.
        """
        if self.calendar is None or not len(shipped):
            return shipped + transit
        running = _running_days(
            self.calendar, int(shipped.min()), int(shipped.max()), int(transit.max())
        )
        return np.asarray(running[np.searchsorted(running, shipped) + transit], np.int64)


def _running_days(calendar: Calendar, first: int, last: int, most: int) -> NDArray[np.int64]:
    """The open days of ``calendar`` from ``first`` on (ordinals, ascending).

    Through the ``most``-th open day after the first open day on or after ``last``.
    """
    days: list[int] = []
    needed = -1  # index in ``days`` of the last open day wanted, once known
    day = date.fromordinal(first)
    while needed < 0 or len(days) <= needed:
        if calendar.is_open(day):
            days.append(day.toordinal())
            if needed < 0 and days[-1] >= last:
                needed = len(days) - 1 + most
        day += timedelta(days=1)
    return np.array(days, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class NetworkArrays:
    """A network's nodes as arrays, row ``k`` being the ``k``-th node in node id order.

    Money is in solver units. ``capacity`` is -1 where a node has no daily capacity.
    ``type_index[k]`` indexes ``types``.
    """

    nodes: tuple[Node, ...]
    node_ids: tuple[str, ...]
    row: Mapping[str, int]
    latitude: NDArray[np.float64]
    longitude: NDArray[np.float64]
    handling_per_shipment: NDArray[np.int64]
    handling_per_unit: NDArray[np.int64]
    clocks: NodeClocks
    types: tuple[NodeType, ...]
    type_index: NDArray[np.intp]
    ships: NDArray[np.bool_]
    pickup: NDArray[np.bool_]
    capacity: NDArray[np.int64]
    priority: NDArray[np.int64]
    country: NDArray[np.str_]
    services: Mapping[str, ServiceBands]

    @staticmethod
    def of(network: Network) -> NetworkArrays:
        """The arrays of ``network``."""
        nodes = tuple(sorted(network.nodes, key=lambda n: n.node_id))
        types = tuple(dict.fromkeys(n.type for n in nodes))
        type_position = {t: i for i, t in enumerate(types)}

        return NetworkArrays(
            nodes=nodes,
            node_ids=tuple(n.node_id for n in nodes),
            row={n.node_id: k for k, n in enumerate(nodes)},
            latitude=np.array([n.latitude for n in nodes], dtype=np.float64),
            longitude=np.array([n.longitude for n in nodes], dtype=np.float64),
            handling_per_shipment=np.array(
                [to_units(n.handling_cost_per_shipment) for n in nodes], dtype=np.int64
            ),
            handling_per_unit=np.array(
                [to_units(n.handling_cost_per_unit) for n in nodes], dtype=np.int64
            ),
            clocks=NodeClocks.of(
                [n.processing_hours for n in nodes],
                [n.cutoff_local_time for n in nodes],
                [n.timezone for n in nodes],
                [network.calendars.nodes.get(n.node_id) for n in nodes],
            ),
            types=types,
            type_index=np.array([type_position[n.type] for n in nodes], dtype=np.intp),
            ships=np.array([n.ships for n in nodes], dtype=np.bool_),
            pickup=np.array([n.pickup for n in nodes], dtype=np.bool_),
            capacity=np.array(
                [-1 if n.daily_order_capacity is None else n.daily_order_capacity for n in nodes],
                dtype=np.int64,
            ),
            priority=np.array([n.priority for n in nodes], dtype=np.int64),
            country=np.array([n.country for n in nodes], dtype=np.str_),
            services={
                s: ServiceBands.of(b, network.calendars.services.get(s))
                for s, b in network.rates.bands.items()
            },
        )


_NODE_ID = attrgetter("node_id")
_ON_HAND = attrgetter("on_hand")
_RESERVED = attrgetter("reserved")
_SAFETY = attrgetter("safety_stock")


@dataclass(frozen=True, slots=True)
class SkuStock:
    """Where one SKU is held: network rows (node id order) and available units there.

    ``total`` is the available stock over all positions of the SKU, including positions at
    nodes the network does not have.
    """

    rows: NDArray[np.intp]
    available: NDArray[np.int64]
    total: int

    @staticmethod
    def of(positions: Sequence[StockPosition], rows: Mapping[str, int]) -> SkuStock:
        """The arrays of one SKU's positions; ``rows`` maps node ids to network rows."""
        n = len(positions)
        at = np.fromiter(map(rows.get, map(_NODE_ID, positions), repeat(-1)), np.intp, n)
        units = np.fromiter(map(_ON_HAND, positions), np.int64, n)
        units -= np.fromiter(map(_RESERVED, positions), np.int64, n)
        units -= np.fromiter(map(_SAFETY, positions), np.int64, n)
        np.maximum(units, 0, out=units)  # StockPosition.available, for every position at once
        known = at >= 0
        return SkuStock(rows=at[known], available=units[known], total=int(units.sum()))


class StockArrays:
    """Per-SKU arrays of one stock object on one network, built on first use of each SKU.

    A SKU's arrays depend only on its tuple of positions (``stock.by_sku[sku]``, frozen), so
    they are also kept per (tuple, network) in a cache shared by every stock: a stock made
    by :meth:`~models.network.Stock.replaced` shares the tuples of the SKUs it did not
    touch, and finds their arrays built (a replay makes one such stock per order).
    """

    __slots__ = ("_arrays", "_by_sku", "_stock")

    def __init__(self, stock: Stock, arrays: NetworkArrays) -> None:
        self._stock = stock
        self._arrays = arrays
        self._by_sku: dict[str, SkuStock] = {}

    def sku(self, sku: str) -> SkuStock:
        """The nodes holding ``sku`` and their available units."""
        found = self._by_sku.get(sku)
        if found is None:
            positions = self._stock.by_sku.get(sku, ())
            found = _SKUS.get(positions, self._arrays)
            if found is None:
                found = SkuStock.of(positions, self._arrays.row)
                _SKUS.put(found, positions, self._arrays)
            self._by_sku[sku] = found
        return found


V = TypeVar("V")


class Recent(Generic[V]):
    """Values for the last ``size`` keys put; a key is a tuple of objects, by identity.

    Each entry holds its key objects, so their ids stay theirs while the entry lives.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[tuple[int, ...], tuple[tuple[object, ...], V]] = {}
        self._lock = threading.Lock()

    def get(self, *key: object) -> V | None:
        """The value put for these very objects, if it is still kept."""
        entry = self._entries.get(tuple(id(o) for o in key))
        return None if entry is None else entry[1]

    def put(self, value: V, *key: object) -> None:
        """Keep ``value`` for these objects, dropping the oldest entries beyond the size."""
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[tuple(id(o) for o in key)] = (key, value)


@dataclass(frozen=True, slots=True)
class NodeFilter:
    """The nodes a policy's node filters keep (``allowed``), and why each other one goes."""

    allowed: NDArray[np.bool_]
    nodes: tuple[Node, ...]
    policy: Policy

    @staticmethod
    def of(policy: Policy, arrays: NetworkArrays) -> NodeFilter:
        """Apply the policy's node filters (types, tags, named nodes) to every node."""
        allowed = np.array([not _filtered_by(policy, n) for n in arrays.nodes], dtype=np.bool_)
        return NodeFilter(allowed, arrays.nodes, policy)

    def detail(self, row: int) -> str:
        """Which filter removes the node of ``row``, in the words of the rule."""
        return _filtered_by(self.policy, self.nodes[row]) or "allowed"


def _filtered_by(policy: Policy, node: Node) -> str:
    """The first node filter of ``policy`` that ``node`` fails ("" when none)."""
    if policy.node_types is not None and node.type not in policy.node_types:
        return f"filters.node_types: node type {node.type} is not allowed"
    if policy.node_tags is not None and not node.tags & policy.node_tags:
        return f"filters.node_tags: carries none of {sorted(policy.node_tags)}"
    if node.tags & policy.exclude_node_tags:
        return f"filters.exclude_node_tags: tagged {sorted(node.tags & policy.exclude_node_tags)}"
    if policy.nodes is not None and node.node_id not in policy.nodes:
        return "filters.nodes: not one of the allowed nodes"
    if node.node_id in policy.exclude_nodes:
        return "filters.exclude_nodes: excluded by name"
    return ""


_NETWORKS: Recent[NetworkArrays] = Recent(MAX_CACHED_NETWORKS)
_PRICES: Recent[dict[str, NDArray[np.float64]]] = Recent(MAX_CACHED_NETWORKS)
_STOCKS: Recent[StockArrays] = Recent(MAX_CACHED_STOCKS)
_SKUS: Recent[SkuStock] = Recent(MAX_CACHED_SKUS)
_FILTERS: Recent[NodeFilter] = Recent(MAX_CACHED_FILTERS)


def node_filter(policy: Policy, network: Network) -> NodeFilter:
    """The node filters of ``policy`` on ``network``, cached per (policy, network) pair."""
    found = _FILTERS.get(policy, network)
    if found is None:
        found = NodeFilter.of(policy, network_arrays(network))
        _FILTERS.put(found, policy, network)
    return found


def network_arrays(network: Network) -> NetworkArrays:
    """The arrays of ``network``, built on its first use and cached."""
    found = _NETWORKS.get(network)
    if found is None:
        found = NetworkArrays.of(network)
        _NETWORKS.put(found, network)
    return found


def stock_arrays(stock: Stock, network: Network) -> StockArrays:
    """The per-SKU arrays of ``stock`` on ``network``, cached per (stock, network) pair."""
    found = _STOCKS.get(stock, network)
    if found is None:
        found = StockArrays(stock, network_arrays(network))
        _STOCKS.put(found, stock, network)
    return found


def price_rows(prices: StockPrices, arrays: NetworkArrays, sku: str) -> NDArray[np.float64] | None:
    """The look-ahead price of a unit of ``sku`` at every network row (``None``: 0 everywhere).

    Made once per (prices, network arrays) pair for every SKU priced, and cached.
    """
    by_sku = _PRICES.get(prices, arrays)
    if by_sku is None:
        by_sku = {}
        for (node_id, priced_sku), price in prices.prices.items():
            row = arrays.row.get(node_id)
            if row is not None and price:
                if priced_sku not in by_sku:
                    by_sku[priced_sku] = np.zeros(len(arrays.node_ids), dtype=np.float64)
                by_sku[priced_sku][row] = price
        _PRICES.put(by_sku, prices, arrays)
    return by_sku.get(sku)
