"""The vectorised build_model equals the straightforward per-node one it replaced.

``reference_build_model`` below is the per-node implementation as it was before the
vectorised one (a loop over every node with zoneinfo and Decimal per node), kept verbatim
as the definition the fast one must reproduce exactly: same candidates in the same order
with the same values and Python types, same exclusions with the same details, same stock.
Since calendars and capacity per ship date, its dates come from the one-date definitions
(:func:`ship_date` with the node's calendar, :meth:`Calendar.open_days_after` with the
service's) and its capacity check reads the slots of the node's own ship date.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from models.calendar import Calendar, CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.money import to_units
from models.network import Network, Node, NodeType, RateBand, RateCard, Stock, StockPosition
from models.order import Order
from models.plan import CandidateTerms, Exclusion, ExclusionReason, ExplainedModel, LineTerms
from models.rules import Policy, SlaMode
from router.engine import arrays
from router.engine.candidates import build_model
from router.engine.dates import ship_date
from router.engine.geo import great_circle_km
from router.engine.terms import BuiltModel
from router.sample import sample_scenario
from tests.engine.conftest import SKUS, order, stock
from tests.engine.conftest import node as equator_node

# --- the reference: build_model as it was, node by node ---------------------------------


def _band(bands: tuple[RateBand, ...], distance_km: float) -> RateBand | None:
    for band in bands:
        if distance_km <= band.max_distance_km:
            return band
    return None


def _max_shipments(order: Order, rules: Policy) -> int | None:
    caps = [c for c in (order.max_shipments, rules.max_shipments) if c is not None]
    return min(caps) if caps else None


def reference_build_model(
    order: Order,
    network: Network,
    stock: Stock,
    rules: Policy,
    capacity_used: CapacityUsed | None = None,
) -> tuple[BuiltModel, tuple[Exclusion, ...], tuple[int, ...]]:
    """build_model before vectorisation, node by node.

    Verbatim but for what it returns, the band terms, calendars and capacity per ship date.
    Its exclusions carry the node's distance to the destination, as build_model's do.
    """
    used = capacity_used or CapacityUsed()
    carrier = network.calendars.for_owner(CalendarKind.SERVICE, order.service)
    bands = network.rates.bands[order.service]
    pickup = order.pickup_node_id
    if pickup is not None:
        pickup_node = network.node(pickup)
        assert pickup_node is not None, "order must be validated against the network first"
        dest_lat, dest_lon = pickup_node.latitude, pickup_node.longitude
    else:
        dest_lat, dest_lon = order.ship_to.latitude, order.ship_to.longitude
    distances = great_circle_km(
        dest_lat,
        dest_lon,
        [n.latitude for n in network.nodes],
        [n.longitude for n in network.nodes],
    )
    weights = [Decimal(repr(network.skus[line.sku].weight_kg)) for line in order.lines]
    late_per_day = to_units(rules.lateness_penalty_per_day)

    candidates: list[CandidateTerms] = []
    excluded: list[Exclusion] = []

    def exclude(node: Node, distance: float, reason: ExclusionReason, detail: str) -> None:
        excluded.append(Exclusion(node.node_id, reason, detail, distance))

    for i in sorted(range(len(network.nodes)), key=lambda k: network.nodes[k].node_id):
        node = network.nodes[i]
        at_counter = node.node_id == pickup
        distance = 0.0 if at_counter else float(distances[i])
        if not node.ships and not at_counter:
            exclude(node, distance, ExclusionReason.DOES_NOT_SHIP, "node does not ship parcels")
            continue
        if rules.node_types is not None and node.type not in rules.node_types:
            exclude(
                node,
                distance,
                ExclusionReason.FILTERED_BY_RULE,
                f"filters.node_types: node type {node.type} is not allowed",
            )
            continue
        if rules.max_distance_km is not None and distance > rules.max_distance_km:
            radius = rules.max_distance_km
            detail = f"filters.max_distance_km: {distance:.1f} km is beyond {radius:g} km"
            exclude(node, distance, ExclusionReason.FILTERED_BY_RULE, detail)
            continue
        available = tuple(stock.available(node.node_id, line.sku) for line in order.lines)
        if not any(available):
            exclude(
                node, distance, ExclusionReason.NO_AVAILABLE_STOCK, "no available unit of any line"
            )
            continue
        band = _band(bands, distance)
        if band is None:
            last = bands[-1].max_distance_km
            detail = f"{distance:.1f} km is beyond the last {order.service} band ({last:g} km)"
            exclude(node, distance, ExclusionReason.BEYOND_LAST_BAND, detail)
            continue
        shipped = ship_date(
            order.created_at,
            node.processing_hours,
            node.cutoff_local_time,
            node.timezone,
            network.calendars.nodes.get(node.node_id),
        )
        delivered = shipped if at_counter else carrier.open_days_after(shipped, band.transit_days)
        late = 0 if order.deliver_by is None else max(0, (delivered - order.deliver_by).days)
        if late and rules.sla is SlaMode.HARD:
            detail = f"delivers {delivered.isoformat()}, {late} day(s) after {order.deliver_by}"
            exclude(node, distance, ExclusionReason.CANNOT_MEET_SLA, detail)
            continue
        capacity = node.daily_order_capacity
        taken = used.used(node.node_id, shipped)
        if capacity is not None and taken >= capacity:
            detail = f"{taken} of {capacity} orders taken on {shipped.isoformat()}, its ship date"
            exclude(node, distance, ExclusionReason.OUT_OF_CAPACITY, detail)
            continue
        per_unit = to_units(node.handling_cost_per_unit) + to_units(
            rules.unit_penalty_by_node_type.get(node.type, 0.0)
        )
        per_kg = Decimal(0) if at_counter else Decimal(repr(band.cost_per_kg))
        candidates.append(
            CandidateTerms(
                node_id=node.node_id,
                distance_km=distance,
                service="pickup" if at_counter else order.service,
                ship_date=shipped,
                delivery_date=delivered,
                days_late=late,
                handling_cost=to_units(node.handling_cost_per_shipment),
                shipping_cost=0 if at_counter else to_units(band.base_cost),
                lateness_cost=late_per_day * late,
                node_penalty=0,
                unit_costs=tuple(per_unit + to_units(per_kg * w) for w in weights),
                available=available,
                priority=node.priority,
                band_max_distance_km=0.0 if at_counter else band.max_distance_km,
                transit_days=0 if at_counter else band.transit_days,
            )
        )

    backorder = to_units(rules.backorder_cost_per_unit)
    lines = tuple(
        LineTerms(line.line_id, line.sku, line.quantity, backorder, order.allow_partial)
        for line in order.lines
    )
    model = ExplainedModel(
        offset=0,
        split_penalty=to_units(rules.split_penalty),
        candidates=tuple(candidates),
        lines=lines,
        max_shipments=_max_shipments(order, rules),
        ship_complete=order.ship_complete,
    )
    anywhere = tuple(
        sum(p.available for p in stock.by_sku.get(line.sku, ())) for line in order.lines
    )
    built = BuiltModel.of(model)
    return built, tuple(excluded), anywhere


# --- comparison -------------------------------------------------------------------------


def assert_same_model(
    order: Order,
    network: Network,
    stock: Stock,
    rules: Policy,
    capacity_used: CapacityUsed | None = None,
) -> BuiltModel:
    """build_model equals the reference, value for value and type for type."""
    got = build_model(order, network, stock, rules, capacity_used)
    want, want_excluded, want_anywhere = reference_build_model(
        order, network, stock, rules, capacity_used
    )
    assert got.model == want.model, order.order_id
    assert got.excluded == want_excluded, order.order_id
    assert got.stock_anywhere == want_anywhere, order.order_id
    # The arrays and the explained model say the same, candidate by candidate.
    assert [got.matrices.terms(j) for j in range(len(got.matrices.node_ids))] == list(
        got.model.candidates
    )
    for cand in got.model.candidates:
        for f in dataclasses.fields(cand):
            value = getattr(cand, f.name)
            expected = type(getattr(want.model.candidates[0], f.name))
            assert type(value) is expected, (f.name, type(value))
        assert all(type(x) is int for x in cand.unit_costs + cand.available)
    assert all(type(x) is int for x in got.stock_anywhere)
    return got


def scenario_rules() -> list[Policy]:
    """Rule sets that exercise every check: filters, hard SLA, penalties, caps."""
    return [
        Policy(),
        Policy(
            sla=SlaMode.HARD,
            node_types=frozenset({NodeType.DC, NodeType.STORE, NodeType.DARK_STORE}),
            max_distance_km=900.0,
            max_shipments=3,
            lateness_penalty_per_day=2.35,
            unit_penalty_by_node_type={NodeType.STORE: 0.7, NodeType.DARK_STORE: 0.05},
        ),
        Policy(sla=SlaMode.HARD, split_penalty=0.0001, backorder_cost_per_unit=12.345),
    ]


def on_days(used: Mapping[str, int], days: Sequence[date]) -> CapacityUsed:
    """``used[node]`` slots taken on one day each: the k-th node's on ``days[k % len(days)]``."""
    return CapacityUsed({(n, days[k % len(days)]): u for k, (n, u) in enumerate(used.items())})


def closed_some_days(net: Network, holiday: date) -> Network:
    """``net`` with calendars of many shapes.

    Every 3rd node shuts on Sundays, every 4th at weekends, every 5th on ``holiday`` and
    the next day; every service runs Monday to Saturday, and not on ``holiday``.
    """
    nodes = []
    for k, n in enumerate(sorted(n.node_id for n in net.nodes)):
        weekdays = {6} if k % 3 == 0 else set()
        weekdays |= {5, 6} if k % 4 == 0 else set()
        dates = {holiday, holiday + timedelta(days=1)} if k % 5 == 0 else set()
        nodes.append((CalendarKind.NODE, n, Calendar(frozenset(weekdays), frozenset(dates))))
    services = [
        (CalendarKind.SERVICE, s, Calendar(frozenset({6}), frozenset({holiday})))
        for s in net.rates.bands
    ]
    return dataclasses.replace(net, calendars=Calendars.of([*nodes, *services]))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("calendars", [False, True])
def test_sample_scenarios_match_the_reference(seed, calendars):
    """Every order of small seeded sample scenarios matches the reference.

    Under several rule sets and capacities per day, with and without calendars.
    """
    scenario = sample_scenario(seed, n_dcs=3, n_stores=40, n_skus=120, n_orders=150)
    net, positions = scenario.network, scenario.stock
    created = sorted({o.created_at.astimezone(UTC).date() for o in scenario.orders})
    if calendars:
        net = closed_some_days(net, created[len(created) // 2])
    with_capacity = [n.node_id for n in net.nodes if n.daily_order_capacity is not None]
    # Some nodes at or over capacity on one day, some under, one not in the network.
    full = {node_id: 10**6 * (k % 2) for k, node_id in enumerate(with_capacity)} | {"X": 1}
    days = [d + timedelta(days=k) for d in created for k in range(3)]
    used = on_days(full, days)
    candidates = 0
    for rules in scenario_rules():
        for o in scenario.orders:
            built = assert_same_model(o, net, positions, rules, used)
            candidates += len(built.model.candidates)
    assert candidates > 0


def test_standard_sample_orders_match_the_reference():
    """The first orders of the standard sample scenario (the measured workload)."""
    scenario = sample_scenario()
    for o in scenario.orders[:40]:
        assert_same_model(o, scenario.network, scenario.stock, scenario.rules.strategies[0].policy)


CREATED_DAY = date(2026, 11, 20)
"""The UTC day (and ship date, at the equator in UTC) of :func:`tests.engine.conftest.order`."""

# --- a hand-made network across time zones and daylight-saving changes -------------------

ZONES = (
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30 / -02:30
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",  # +05:30, no DST
    "Asia/Kathmandu",  # +05:45
    "Australia/Sydney",  # southern hemisphere DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Gaza",
)
HOURS = (0.0, 0.1, 1 / 60, 2.5, 9.0, 23.75, 26.5, 49.0, 120.0, 200.0)
CUTOFFS = (time(0), time(12), time(16, 59, 59, 999_999), time(17), time(23, 59))


def world_network() -> Network:
    """Nodes near (0, 0) in many zones with many processing times and cutoffs."""
    nodes = []
    k = 0
    for z, zone in enumerate(ZONES):
        for h, hours in enumerate(HOURS):
            k += 1
            nodes.append(
                Node(
                    node_id=f"W{(k * 37) % 1000:03d}",  # ids not in network order
                    type=(NodeType.DC, NodeType.STORE, NodeType.THREE_PL)[k % 3],
                    latitude=0.0,
                    longitude=(k % 14) * 0.9,
                    country="XX",
                    timezone=zone,
                    handling_cost_per_shipment=round(0.01 * k, 2),
                    handling_cost_per_unit=round(0.003 * k, 3),
                    processing_hours=hours,
                    cutoff_local_time=CUTOFFS[(z + h) % len(CUTOFFS)],
                    daily_order_capacity=None if k % 4 else 5,
                    priority=k % 3,
                    ships=k % 11 != 0,
                    pickup=k % 5 == 0,
                )
            )
    # Bands out of order on purpose: the first band in card order that reaches a distance wins.
    rates = RateCard(
        {
            "ground": (
                RateBand("ground", 500.0, 5.0, 1.0, 1),
                RateBand("ground", 300.0, 4.0, 0.5, 1),
                RateBand("ground", 1000.0, 8.123, 2.01, 3),
            )
        }
    )
    return Network(tuple(nodes), SKUS, rates)


def world_stock(net: Network) -> Stock:
    """A, B and C at most nodes, some with nothing available; one position off-network."""
    rows = [
        StockPosition(n.node_id, sku, (k * 7 + j) % 4, safety_stock=(k % 3 == 0))
        for k, n in enumerate(net.nodes)
        for j, sku in enumerate("ABC")
        if (k + j) % 3
    ]
    return Stock.of([*rows, StockPosition("ELSEWHERE", "A", 9)])


TRANSITIONS = (
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # US spring forward
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # US fall back
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # EU spring forward
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # EU fall back
    datetime(2026, 4, 4, 16, tzinfo=UTC),  # Sydney fall back
    datetime(2026, 9, 26, 14, tzinfo=UTC),  # Chatham spring forward
    datetime(2040, 10, 20, tzinfo=UTC),  # Gaza: a change and back within a week
)


def created_times() -> list[datetime]:
    """Order times around each transition, in UTC, other fixed offsets and a zone."""
    times = []
    for when in TRANSITIONS:
        for hours in range(-30, 31, 7):
            moment = when + timedelta(hours=hours, minutes=13)
            times.append(moment)
            times.append(moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))))
        times.append(when.astimezone(ZoneInfo("America/New_York")))  # not a fixed offset
    return times


@pytest.mark.parametrize("calendars", [False, True])
def test_world_network_across_daylight_saving_matches_the_reference(calendars):
    """Dates, lateness and capacity match in many zones around offset changes.

    With and without calendars.
    """
    net = world_network()
    if calendars:
        net = closed_some_days(net, date(2026, 11, 1))
    positions = world_stock(net)
    pickups = [n.node_id for n in net.nodes if n.pickup]
    days = [(when + timedelta(days=k)).date() for when in TRANSITIONS for k in range(-2, 4)]
    used = on_days({n.node_id: 5 for n in net.nodes[::3]}, days)
    rules = (Policy(), Policy(sla=SlaMode.HARD, max_distance_km=800.0))
    for k, created in enumerate(created_times()):
        deliver_by = (created.astimezone(UTC) + timedelta(days=k % 4)).date()
        lines = (("A", 2), ("B", 1), ("C", 3))[: 1 + k % 3]
        o = order(
            *lines,
            created_at=created,
            deliver_by=deliver_by if k % 5 else None,
            pickup_node_id=pickups[k % len(pickups)] if k % 6 == 0 else None,
        )
        assert_same_model(o, net, positions, rules[k % 2], used)


def test_edge_cases_match_the_reference():
    """Beyond the last band, no stock anywhere, an empty network and a counter pickup."""
    net = Network(
        (
            equator_node("FAR", 20),
            equator_node("P", 0.5, ships=False, pickup=True, capacity=0),
            equator_node("N", 1, capacity=1),
        ),
        SKUS,
        world_network().rates,
    )
    positions = stock(("FAR", "A", 1), ("P", "A", 1), ("N", "B", 2))
    for o in (
        order(("A", 1), ("C", 1)),
        order(("C", 1)),
        order(("A", 1), pickup_node_id="P"),
        order(("B", 1), pickup_node_id="P", deliver_by=date(2026, 11, 19)),
    ):
        assert_same_model(o, net, positions, Policy(), CapacityUsed({("N", CREATED_DAY): 0}))
        full = CapacityUsed({("P", CREATED_DAY): 1})
        assert_same_model(o, net, positions, Policy(sla=SlaMode.HARD), full)
    empty = Network((), SKUS, net.rates)
    assert_same_model(order(("A", 1)), empty, positions, Policy())


# --- caches -----------------------------------------------------------------------------


def test_network_arrays_are_cached_per_network_object():
    """The same network object reuses its arrays; an equal new object gets its own."""
    net = world_network()
    first = arrays.network_arrays(net)
    assert arrays.network_arrays(net) is first
    assert arrays.network_arrays(world_network()) is not first


def test_network_cache_is_bounded():
    """Only the most recent networks keep their arrays; older ones are built again."""
    nets = [world_network() for _ in range(arrays.MAX_CACHED_NETWORKS + 1)]
    built = [arrays.network_arrays(net) for net in nets]
    assert arrays.network_arrays(nets[-1]) is built[-1]
    assert arrays.network_arrays(nets[0]) is not built[0]


def test_replaced_stock_is_seen():
    """A new stock object (stock changed) gives new availability on the same network."""
    net = Network((equator_node("N1", 1), equator_node("N2", 2)), SKUS, world_network().rates)
    before = stock(("N1", "A", 3))
    first = build_model(order(("A", 1)), net, before, Policy())
    after = stock(("N1", "A", 1), ("N2", "A", 4))
    second = build_model(order(("A", 1)), net, after, Policy())
    assert [c.available for c in first.model.candidates] == [(3,)]
    assert [c.available for c in second.model.candidates] == [(1,), (4,)]
    assert second.stock_anywhere == (5,)
