"""The hindsight LP bound over a whole order stream (router/whatif/bound.py).

Hand-made cases use the engine tests' network (tests/engine/conftest.py): nodes on the
equator, 111.195 km per degree of longitude; ground costs 5 + 1/kg up to 500 km and
8 + 2/kg up to 1,500 km, nothing beyond; SKU A weighs 1 kg; every node costs 1 per
shipment and 0 per unit. The default policy charges 60 per backordered unit and 4 per
extra shipment; no order has a deliver-by date, so nothing is late. So one unit of A
costs 1 + 5 + 1 = 7 from a node within 500 km and 1 + 8 + 2 = 11 from 500–1,500 km.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from models.capacity import CapacityUsed
from models.errors import InvalidArgumentError
from models.money import MONEY_SCALE
from models.network import Stock
from models.order import Order, ShipTo
from models.plan import Plan
from models.replenishment import Replenishment
from models.rules import Policy, RuleSet, Strategy
from models.scenario import Scenario
from router.engine.candidates import build_model
from router.engine.solve import plan_order
from router.sample import sample_scenario
from router.whatif.bound import hindsight_bound
from router.whatif.policies import EnginePolicy
from router.whatif.replay import replay
from tests.engine.conftest import CREATED, network, node, order, stock
from tests.engine.test_independent import highs_optimum

POLICY = Policy()


def scenario_of(net_stock: tuple, *orders: Order) -> Scenario:
    net, held = net_stock
    return Scenario(net, held, RuleSet.single(POLICY), tuple(orders))


def named(o: Order, order_id: str, *, lon: float = 0.0, created_at: datetime = CREATED) -> Order:
    """``o`` renamed, shipped to (0, lon) and created at ``created_at``."""
    return replace(o, order_id=order_id, ship_to=ShipTo(0.0, lon, "US"), created_at=created_at)


def cost(plan: Plan) -> float:
    """A plan's objective in currency units."""
    assert plan.objective is not None
    return plan.objective / MONEY_SCALE


def test_one_order_at_one_node_equals_its_canonical_optimum():
    """With one order and one node the bound is the order's canonical optimum.

    N at lon 1 (111 km) holds 1 A; the order wants 2 A. Shipping the unit costs
    1 + 5 + 1 = 7 and backordering the other 60: 67 (all backordered: 120). The LP is
    integral here (x ≤ 1·y makes y = x), so the bound is 67 too, and the canonical model
    solved by the engine and independently by HiGHS (scipy.milp) agrees.
    """
    net, held = network(node("N", 1.0)), stock(("N", "A", 1))
    o = order(("A", 2))
    bound = hindsight_bound(Scenario(net, held, RuleSet.single(POLICY), (o,)))
    assert bound.status == "OPTIMAL"
    assert bound.value == pytest.approx(67.0, abs=1e-6)
    assert cost(plan_order(o, net, held, POLICY)) == pytest.approx(67.0)
    reference = highs_optimum(build_model(o, net, held, POLICY).model)
    assert reference is not None
    assert reference / MONEY_SCALE == pytest.approx(bound.value, abs=1e-6)
    assert bound.variables > 0 and bound.constraints > 0 and bound.seconds >= 0


def test_two_orders_competing_for_a_near_unit_give_it_to_the_one_that_saves_more():
    """Hindsight gives the one near unit to the order that saves more with it.

    N at lon 0 and W at lon −10 hold 1 A each; o1 (first) ships to (0, 0), o2 to (0, 5).
    o1: N is 0 km away (7), W 1,112 km (11): N saves it 4.
    o2: N is 556 km away (11), W 1,668 km is beyond the last band: without N it
    backorders (60), so N saves it 49.
    Bound: o2 takes N (11), o1 takes W (11) = 22 (LP: 71 − 49·t₂ − 4·t₁ with t₁ + t₂ ≤ 1).
    First come, first served: o1 takes N (7), o2 backorders (60) = 67 > 22.
    Each order's own optimum on the full stock (7 + 11 = 18) is *below* the bound: the
    per-order sum ignores the competition that the bound prices.
    """
    net, held = network(node("N", 0.0), node("W", -10.0)), stock(("N", "A", 1), ("W", "A", 1))
    o1, o2 = named(order(("A", 1)), "o1"), named(order(("A", 1)), "o2", lon=5.0)
    bound = hindsight_bound(scenario_of((net, held), o1, o2))
    assert bound.status == "OPTIMAL"
    assert bound.value == pytest.approx(22.0, abs=1e-6)

    first = plan_order(o1, net, held, POLICY)
    assert [s.node_id for s in first.shipments] == ["N"]
    second = plan_order(o2, net, stock(("W", "A", 1)), POLICY)  # N's unit is gone
    greedy = cost(first) + cost(second)
    assert greedy == pytest.approx(7.0 + 60.0)
    assert bound.value < greedy

    own = cost(plan_order(o1, net, held, POLICY)) + cost(plan_order(o2, net, held, POLICY))
    assert own == pytest.approx(18.0)
    assert bound.value > own


def test_replenishment_adds_units_to_the_shared_stock():
    """Replenished units count as stock of the bound, at nodes with or without a position.

    N at lon 0 holds 1 A, M at lon 0.5 (56 km) holds none; the order wants 2 A.
    Without replenishment: 7 + 60 = 67. With 1 more A at N: both from N, 1 + 5 + 2 = 8.
    With 1 A at M only (no position there before): N and M ship one each,
    7 + 7 + 4 (split) = 18. Replenishment of an unknown node is refused.
    """
    net, held = network(node("N", 0.0), node("M", 0.5)), stock(("N", "A", 1))
    scenario = scenario_of((net, held), order(("A", 2)))
    at = CREATED - timedelta(hours=1)
    assert hindsight_bound(scenario).value == pytest.approx(67.0, abs=1e-6)
    at_n = [Replenishment(at, "N", "A", 1)]
    assert hindsight_bound(scenario, replenishment=at_n).value == pytest.approx(8.0, abs=1e-6)
    at_m = [Replenishment(at, "M", "A", 1)]
    assert hindsight_bound(scenario, replenishment=at_m).value == pytest.approx(18.0, abs=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"replenishment\[0\].node_id: unknown node 'X'"):
        hindsight_bound(scenario, replenishment=[Replenishment(at, "X", "A", 1)])


def test_an_arrival_after_the_stream_does_not_lower_the_bound():
    """Units arriving after the last order are there for no order: they are dropped.

    The case above (N holds 1 A, the order wants 2 A: 67). 1 A more at N an hour after
    the order leaves the bound at 67 (not 8); at the order's very time it arrives in
    time (replay applies an arrival once created_at >= at): 8.
    """
    net, held = network(node("N", 0.0), node("M", 0.5)), stock(("N", "A", 1))
    scenario = scenario_of((net, held), order(("A", 2)))
    late = [Replenishment(CREATED + timedelta(hours=1), "N", "A", 1)]
    assert hindsight_bound(scenario, replenishment=late).value == pytest.approx(67.0, abs=1e-6)
    on_time = [Replenishment(CREATED, "N", "A", 1)]
    assert hindsight_bound(scenario, replenishment=on_time).value == pytest.approx(8.0, abs=1e-6)


def test_an_arrival_between_two_orders_helps_only_the_later_one():
    """One unit arriving at N between o1 and o2 is there for o2 only.

    N at lon 0 holds nothing, W at lon −10 holds 2 A; 1 A arrives at N at 12:30.
    o1 (12:00, to (0, 5)): N 556 km (11); W 1,668 km is beyond the last band, so without N
    it backorders (60): N would save it 49.
    o2 (13:00, to (0, 0)): N 0 km (7), W 1,112 km (11): N saves it 4.
    Were the unit there from the start, o1 would take it: 11 + 11 = 22. Arriving after
    o1, only o2 can use it: o1 backorders (60), o2 takes N (7) = 67; without the arrival
    o2 ships from W: 60 + 11 = 71. Replay with the engine costs exactly the bound.
    """
    net, held = network(node("N", 0.0), node("W", -10.0)), stock(("W", "A", 2))
    o1 = named(order(("A", 1)), "o1", lon=5.0)
    o2 = named(order(("A", 1)), "o2", created_at=CREATED + timedelta(hours=1))
    scenario = scenario_of((net, held), o1, o2)
    between = [Replenishment(CREATED + timedelta(minutes=30), "N", "A", 1)]
    before = [Replenishment(CREATED - timedelta(minutes=30), "N", "A", 1)]
    assert hindsight_bound(scenario).value == pytest.approx(71.0, abs=1e-6)
    bound = hindsight_bound(scenario, replenishment=between)
    assert bound.value == pytest.approx(67.0, abs=1e-6)
    assert hindsight_bound(scenario, replenishment=before).value == pytest.approx(22.0, abs=1e-6)
    engine = EnginePolicy(scenario.rules)
    records = replay(scenario, engine, scenario_name="t", seed=0, replenishment=between)
    assert [r.node_units for r in records] == ["", "N:1"]
    assert sum(r.cost for r in records) == pytest.approx(bound.value, abs=1e-6)


def test_cumulative_rows_per_arrival_time_of_one_node():
    """Arrivals at several times: the orders before each arrival share only what came before.

    N at lon 0 holds 1 A; W at lon −10 holds plenty. Four orders of 1 A to (0, 0), o0 to
    o3 at 12:00, 13:00, 14:00, 15:00 (N 7, W 11 each); 1 A arrives at N at 12:30 and 2
    more at 14:30. o0 alone shares the 1 unit there before 12:30; o0–o2 share the 2 there
    before 14:30; all four the 4 there by 15:00: at most three orders ship from N,
    3 × 7 + 11 = 32 (replay with the engine: o0, o1, o3 from N, o2 from W). All up front
    the four would ship from N: 28.
    """
    net = network(node("N", 0.0), node("W", -10.0))
    held = stock(("N", "A", 1), ("W", "A", 9))
    orders = [
        named(order(("A", 1)), f"o{i}", created_at=CREATED + timedelta(hours=i)) for i in range(4)
    ]
    scenario = scenario_of((net, held), *orders)
    arrivals = [
        Replenishment(CREATED + timedelta(minutes=30), "N", "A", 1),
        Replenishment(CREATED + timedelta(minutes=150), "N", "A", 1),
        Replenishment(CREATED + timedelta(minutes=150), "N", "A", 1),
    ]
    bound = hindsight_bound(scenario, replenishment=arrivals)
    assert bound.value == pytest.approx(32.0, abs=1e-6)
    early = [replace(r, at=CREATED - timedelta(hours=1)) for r in arrivals]
    assert hindsight_bound(scenario, replenishment=early).value == pytest.approx(28.0, abs=1e-6)
    engine = EnginePolicy(scenario.rules)
    records = replay(scenario, engine, scenario_name="t", seed=0, replenishment=arrivals)
    assert sum(r.cost for r in records) == pytest.approx(bound.value, abs=1e-6)


def test_a_capacity_one_node_serves_one_order_a_day():
    """A node's daily order capacity is shared by the orders it ships on one day.

    Here the ship date is the UTC day of creation (cutoff 23:59 UTC, no processing).

    N at lon 0 (capacity 1) and W at lon −10 hold 2 A each; two orders of 1 A ship to
    (0, 0): from N 7, from W (1,112 km) 11.
    Same day: one order at N, the other at W = 18 (LP: y_oN = x_oN, Σ_o y_oN ≤ 1).
    o2 created 12 hours later, the next UTC day: both at N = 14.
    """
    net = network(node("N", 0.0, capacity=1), node("W", -10.0))
    held = stock(("N", "A", 2), ("W", "A", 2))
    o1 = named(order(("A", 1)), "o1")
    same_day = named(order(("A", 1)), "o2", created_at=CREATED + timedelta(hours=11))
    next_day = named(order(("A", 1)), "o2", created_at=CREATED + timedelta(hours=12))
    assert same_day.created_at.astimezone(UTC).date() == o1.created_at.date()
    assert next_day.created_at.astimezone(UTC).date() > o1.created_at.date()
    bound = hindsight_bound(scenario_of((net, held), o1, same_day))
    assert bound.value == pytest.approx(18.0, abs=1e-6)
    bound = hindsight_bound(scenario_of((net, held), o1, next_day))
    assert bound.value == pytest.approx(14.0, abs=1e-6)


def test_the_evaluation_rules_must_have_a_single_strategy():
    """An evaluation rule set of several strategies is refused (which one would price?)."""
    net, held = network(node("N", 0.0)), stock(("N", "A", 1))
    scenario = scenario_of((net, held), order(("A", 1)))
    two = RuleSet(strategies=(Strategy("a"), Strategy("b")))
    with pytest.raises(ValueError, match="single strategy"):
        hindsight_bound(scenario, evaluation=two)


def first_come_cost(scenario: Scenario, policy: Policy) -> float:
    """Total cost of routing the stream with the engine in arrival order on depleting stock.

    Each order is planned on the stock left and the capacity left on each node's ship date,
    priced by its own canonical model (an order with no plan backorders everything).
    """
    positions = dict(scenario.stock.positions)
    used: dict[tuple[str, date], int] = {}
    total = 0
    for o in sorted(scenario.orders, key=lambda o: (o.created_at, o.order_id)):
        taken = CapacityUsed(dict(used))
        plan = plan_order(o, scenario.network, Stock(positions), policy, capacity_used=taken)
        if plan.objective is None:
            built = build_model(o, scenario.network, Stock(positions), policy, taken)
            total += built.model.objective({})
            continue
        total += plan.objective
        for shipment in plan.shipments:
            slot = (shipment.node_id, shipment.ship_date)
            used[slot] = used.get(slot, 0) + 1
            for line in shipment.lines:
                pos = positions[shipment.node_id, line.sku]
                positions[shipment.node_id, line.sku] = replace(
                    pos, on_hand=pos.on_hand - line.quantity
                )
    return total / MONEY_SCALE


def test_on_a_small_sample_the_bound_sits_between_the_relaxations_and_a_replay():
    """On a 40-order sample the bound is ordered with what it relaxes and what it bounds.

    - each order's own bound (the stream of that order alone, no competition) is at most
      its canonical optimum on the full stock (plan_order): an LP relaxation;
    - the stream's bound is at least the sum of those (competition for stock and capacity
      only adds constraints), so the bound is not simply the per-order sum;
    - it is at most the cost of routing the stream first come, first served with the
      engine on depleting stock, which is a feasible integer point of its model.
    """
    scenario = sample_scenario(n_stores=20, n_skus=100, n_orders=40)
    policy = scenario.rules.strategies[0].policy
    bound = hindsight_bound(scenario)
    assert bound.status == "OPTIMAL"

    alone_total = own_total = 0.0
    for o in scenario.orders:
        alone = hindsight_bound(scenario, orders=[o])
        plan = plan_order(o, scenario.network, scenario.stock, policy)
        if plan.objective is None:  # no plan meets the order's hard constraints
            model = build_model(o, scenario.network, scenario.stock, policy).model
            own = model.objective({}) / MONEY_SCALE
        else:
            own = cost(plan)
        assert alone.value <= own + 1e-6, o.order_id
        alone_total += alone.value
        own_total += own
    assert alone_total <= own_total + 1e-6
    assert bound.value >= alone_total - 1e-6
    assert bound.value <= first_come_cost(scenario, policy) + 1e-6
