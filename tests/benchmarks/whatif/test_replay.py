"""Replay routes a stream in arrival order on depleting stock and records every KPI exactly.

The networks are the equator networks of tests/engine/conftest.py: customers at (0, 0),
nodes east of them on the equator (1 degree = 111.195 km). Ground rates: up to 500 km
5 + 1/kg and 1 day, up to 1,500 km 8 + 2/kg and 3 days; SKU A weighs 1 kg. Orders are
created on 2026-11-20 (UTC), nodes cut off at 23:59 UTC with no processing time, so every
parcel leaves on 2026-11-20. Default rules: split penalty 4, lateness 6 a day, backorder
60 a unit.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from benchmarks.whatif.policies import EnginePolicy, GreedyNearest, RankedChain, RoutingPolicy
from benchmarks.whatif.records import COLUMNS
from benchmarks.whatif.replay import Replenishment, _moved, objective, replay
from models.network import NodeType, Stock
from models.order import Order
from models.rules import Policy, RuleSet, Strategy
from models.scenario import Scenario
from router.engine import route_order
from router.engine.candidates import build_model
from router.sample import sample_scenario
from tests.engine.conftest import CREATED, KM_PER_DEGREE, network, node, order, stock

RULES = RuleSet()


def at(minutes: int, order_id: str, *lines: tuple[str, int], **kwargs: object) -> Order:
    """An order to (0, 0) created ``minutes`` after CREATED (2026-11-20 12:00 UTC)."""
    made = order(*lines, **kwargs)  # type: ignore[arg-type]
    created = CREATED + timedelta(minutes=minutes)
    return dataclasses.replace(made, order_id=order_id, created_at=created)


# NEAR: a DC 111.2 km away (first band, 1 day), handling 1 a shipment.
# FAR: a store 556.0 km away (second band, 3 days), handling 2 a shipment and 0.5 a unit.
NEAR = node("NEAR", 1.0, per_shipment=1.0)
FAR = node("FAR", 5.0, type=NodeType.STORE, per_shipment=2.0, per_unit=0.5)


def two_nodes(near_units: int, far_units: int, *orders: Order) -> Scenario:
    return Scenario(
        network(NEAR, FAR), stock(("NEAR", "A", near_units), ("FAR", "A", far_units)), RULES, orders
    )


POLICIES: list[tuple[RoutingPolicy, str]] = [
    (EnginePolicy(RULES), "OPTIMAL"),
    (GreedyNearest(), "HEURISTIC"),
    (RankedChain(), "HEURISTIC"),
]


@pytest.mark.parametrize(("policy", "status"), POLICIES, ids=lambda p: getattr(p, "name", p))
def test_records_of_a_stream_that_runs_out_of_stock(policy: RoutingPolicy, status: str) -> None:
    """Every field of every record, worked out by hand; every policy routes this alike.

    NEAR holds 2 units of A, FAR 1. The first order (2 A, due 11-21) empties NEAR, so the
    second (1 A, due 11-22) ships from FAR, a day late, and the third (1 A, no promise)
    finds no stock anywhere and is backordered.
    """
    o1 = at(0, "o1", ("A", 2), deliver_by=date(2026, 11, 21))
    o2 = at(1, "o2", ("A", 1), deliver_by=date(2026, 11, 22))
    o3 = at(2, "o3", ("A", 1))
    scenario = two_nodes(2, 1, o3, o1, o2)  # replay sorts them by arrival
    records = replay(scenario, policy, scenario_name="tiny", seed=3)
    assert [r.order_id for r in records] == ["o1", "o2", "o3"]
    common = {
        "run": policy.name,
        "policy": policy.name,
        "setting": "",
        "scenario": "tiny",
        "seed": 3,
    }
    expected = [
        # NEAR: handling 1 + base 5 + 2 units × 1 kg × 1/kg = 8.00; delivers 11-21, on time.
        {
            **common,
            "seq": 0,
            "order_id": "o1",
            "status": status,
            "cost": 8.0,
            "shipments": 1,
            "units_ordered": 2,
            "units_shipped": 2,
            "units_backordered": 0,
            "on_time": True,
            "distance_km": pytest.approx(KM_PER_DEGREE),
            "dc_units": 2,
            "store_units": 0,
            "other_units": 0,
            "node_units": "NEAR:2",
        },
        # FAR: handling 2 + base 8 + 1 kg × 2/kg + 0.5 a unit + 1 day late × 6 = 18.50
        # (below the backorder's 60); delivers 11-23 after 11-22: late.
        {
            **common,
            "seq": 1,
            "order_id": "o2",
            "status": status,
            "cost": 18.5,
            "shipments": 1,
            "units_ordered": 1,
            "units_shipped": 1,
            "units_backordered": 0,
            "on_time": False,
            "distance_km": pytest.approx(5 * KM_PER_DEGREE),
            "dc_units": 0,
            "store_units": 1,
            "other_units": 0,
            "node_units": "FAR:1",
        },
        # No stock left: 1 unit backordered at 60; nothing shipped, so on_time is None.
        {
            **common,
            "seq": 2,
            "order_id": "o3",
            "status": status,
            "cost": 60.0,
            "shipments": 0,
            "units_ordered": 1,
            "units_shipped": 0,
            "units_backordered": 1,
            "on_time": None,
            "distance_km": 0.0,
            "dc_units": 0,
            "store_units": 0,
            "other_units": 0,
            "node_units": "",
        },
    ]
    for record, want in zip(records, expected, strict=True):
        row = record.row()
        assert list(row) == list(COLUMNS)
        latency = row.pop("latency_s")
        assert isinstance(latency, float) and latency >= 0
        assert row == want


def test_units_are_weighted_over_several_shipments_and_node_types() -> None:
    """distance_km is the unit-weighted mean; units split by node type; node_units sorted.

    An order of 3 A, NEAR holding 1 and FAR 2: both ship (nothing else has stock), NEAR 1
    unit at 111.2 km and FAR 2 at 556.0 km: mean (1 × 1 + 2 × 5) / 3 degrees. Cost: NEAR
    1 + 5 + 1 = 7, FAR 2 + 8 + 2 × (2 + 0.5) = 15, split penalty 4: 26.00 (no promise).
    """
    scenario = two_nodes(1, 2, at(0, "o1", ("A", 3)))
    (record,) = replay(scenario, EnginePolicy(RULES), scenario_name="tiny", seed=0)
    assert record.node_units == "FAR:2;NEAR:1"
    assert record.distance_km == pytest.approx(11 / 3 * KM_PER_DEGREE)
    assert (record.dc_units, record.store_units, record.other_units) == (1, 2, 0)
    assert (record.shipments, record.cost, record.on_time) == (2, 26.0, None)


def test_replenishment_arrives_and_a_later_order_uses_it() -> None:
    """Units arriving at 12:30 are not there for the 12:15 order but are for the 12:45 one.

    NEAR holds 1 A and FAR 1 A. o1 (12:00) takes NEAR's unit; o2 (12:15) must go to FAR;
    1 A arrives at NEAR at 12:30, so o3 (12:45) ships from NEAR again. B arrives at FAR,
    which never held B (a new position), in time for o4 (12:50).
    """
    orders = (
        at(0, "o1", ("A", 1)),
        at(15, "o2", ("A", 1)),
        at(45, "o3", ("A", 1)),
        at(50, "o4", ("B", 1)),
    )
    arrivals = [
        Replenishment(CREATED + timedelta(minutes=30), "NEAR", "A", 1),
        Replenishment(CREATED + timedelta(minutes=40), "FAR", "B", 2),
        Replenishment(CREATED + timedelta(hours=5), "NEAR", "A", 50),  # after the stream
    ]
    records = replay(
        two_nodes(1, 1, *orders),
        GreedyNearest(),
        scenario_name="tiny",
        seed=0,
        replenishment=arrivals,
    )
    assert [r.node_units for r in records] == ["NEAR:1", "FAR:1", "NEAR:1", "FAR:1"]
    assert [r.units_backordered for r in records] == [0, 0, 0, 0]
    without = replay(two_nodes(1, 1, *orders), GreedyNearest(), scenario_name="tiny", seed=0)
    assert [r.node_units for r in without] == ["NEAR:1", "FAR:1", "", ""]


def test_a_node_with_daily_capacity_one_takes_one_order_a_day() -> None:
    """NEAR (capacity 1 a day, plenty of stock) takes the first order of each UTC day only.

    o2 is created at 01:00 on 11-21 in UTC+5, which is 20:00 on 11-20 in UTC: the same
    day as o1, so it goes to FAR. o3 on 11-21 (UTC) finds NEAR's capacity fresh.
    """
    near = dataclasses.replace(NEAR, daily_order_capacity=1)
    o1 = at(0, "o1", ("A", 1))
    plus5 = timezone(timedelta(hours=5))
    o2 = dataclasses.replace(
        o1, order_id="o2", created_at=datetime(2026, 11, 21, 1, 0, tzinfo=plus5)
    )
    o3 = dataclasses.replace(
        o1, order_id="o3", created_at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    )
    scenario = Scenario(
        network(near, FAR), stock(("NEAR", "A", 10), ("FAR", "A", 10)), RULES, (o1, o2, o3)
    )
    for policy in (EnginePolicy(RULES), GreedyNearest(), RankedChain()):
        records = replay(scenario, policy, scenario_name="tiny", seed=0)
        assert [r.order_id for r in records] == ["o1", "o2", "o3"]
        assert [r.node_units for r in records] == ["NEAR:1", "FAR:1", "NEAR:1"], policy.name


def test_run_names_seq_and_explicit_orders() -> None:
    """The run is the policy name (+ setting) unless given; ``orders`` replaces the stream.

    Orders created at the same moment go in order id order; seq counts from 0.
    """
    b = at(0, "b", ("A", 1))
    a = at(0, "a", ("A", 1))
    scenario = two_nodes(5, 5, at(9, "ignored", ("A", 1)))
    records = replay(scenario, GreedyNearest(), scenario_name="s", seed=1, orders=[b, a])
    assert [(r.seq, r.order_id, r.run) for r in records] == [
        (0, "a", "greedy-nearest"),
        (1, "b", "greedy-nearest"),
    ]
    named = replay(scenario, GreedyNearest(), scenario_name="s", seed=1, setting="split=8")
    assert {(r.run, r.setting) for r in named} == {("greedy-nearest split=8", "split=8")}
    explicit = replay(scenario, GreedyNearest(), scenario_name="s", seed=1, run="mine")
    assert {r.run for r in explicit} == {"mine"}


def test_evaluation_rules_price_every_policy_alike() -> None:
    """The cost is the evaluation model's, whatever rules the policy routes with.

    The engine routes with a split penalty of 100 (so ships 2 of 3 units from FAR alone and
    backorders 1 at 60 rather than split); priced under the default rules (penalty 4) the
    cost is FAR 2 + 8 + 2 × 2.5 = 15 plus a 60 backorder: 75.00.
    """
    heavy = RuleSet.single(Policy(split_penalty=100.0))
    scenario = two_nodes(1, 2, at(0, "o1", ("A", 3)))
    (record,) = replay(scenario, EnginePolicy(heavy), scenario_name="t", seed=0)
    assert (record.node_units, record.cost, record.units_backordered) == ("FAR:2", 75.0, 1)


def test_evaluation_must_be_one_strategy() -> None:
    """A rule set of several strategies cannot price orders: replay says so and stops."""
    two = RuleSet(strategies=(Strategy("a"), Strategy("b")))
    with pytest.raises(ValueError, match="exactly one strategy"):
        replay(two_nodes(1, 1, at(0, "o1", ("A", 1))), GreedyNearest(), scenario_name="t", seed=0,
               evaluation=two)  # fmt: skip


def test_bad_replenishment_is_refused() -> None:
    """A replenishment at an unknown node, of an unknown SKU or of negative units is refused."""
    scenario = two_nodes(1, 1, at(0, "o1", ("A", 1)))
    for bad in (
        Replenishment(CREATED, "NOWHERE", "A", 1),
        Replenishment(CREATED, "NEAR", "ZZZ", 1),
        Replenishment(CREATED, "NEAR", "A", -1),
    ):
        with pytest.raises(ValueError, match="replenishment"):
            replay(scenario, GreedyNearest(), scenario_name="t", seed=0, replenishment=[bad])


def test_moved_stock_equals_stock_rebuilt_from_scratch() -> None:
    """The incremental stock update gives the Stock that Stock.of of the new positions gives.

    Positions, their grouping by SKU and its order all match; the old stock is unchanged.
    """
    before = stock(("NEAR", "A", 3), ("FAR", "A", 2), ("NEAR", "B", 1))
    after = _moved(before, {("NEAR", "A"): -2, ("FAR", "B"): 4, ("NEAR", "C"): 1})
    rebuilt = Stock.of(after.positions.values())
    assert after == rebuilt
    assert dict(after.by_sku) == dict(rebuilt.by_sku)
    assert list(after.by_sku["A"]) == list(rebuilt.by_sku["A"])
    assert after.available("NEAR", "A") == 1 and after.available("FAR", "B") == 4
    assert before.available("NEAR", "A") == 3 and before.available("FAR", "B") == 0
    with pytest.raises(ValueError, match="on hand"):
        _moved(before, {("FAR", "A"): -3}, order_id="o9")


def test_array_objective_is_the_models_objective() -> None:
    """The cost replay computes from the arrays equals ExplainedModel.objective everywhere.

    Checked on the first 30 orders of a small sample, for each candidate shipping each
    line in full, for two candidates splitting, and for nothing shipped.
    """
    scenario = sample_scenario(n_stores=20, n_skus=100, n_orders=30)
    policy = scenario.rules.strategies[0].policy
    checked = 0
    for o in scenario.orders:
        built = build_model(o, scenario.network, scenario.stock, policy, {})
        n = len(built.matrices.node_ids)
        plans: list[dict[tuple[int, int], int]] = [{}]
        plans += [{(j, line): t.quantity for line, t in enumerate(built.lines)} for j in range(n)]
        if n >= 2:
            plans.append({(0, 0): 1, (n - 1, len(built.lines) - 1): 1})
        for plan in plans:
            assert objective(built, plan) == built.model.objective(plan)
            checked += 1
    assert checked > 100


def test_engine_cost_is_its_plan_objective_under_its_own_rules() -> None:
    """With rules == evaluation the recorded cost is the engine's optimal objective."""
    scenario = sample_scenario(n_stores=20, n_skus=100, n_orders=20)
    records = replay(scenario, EnginePolicy(scenario.rules), scenario_name="small", seed=7)
    assert {r.status for r in records} <= {"OPTIMAL", "INFEASIBLE"}
    first = scenario.orders[0]
    plan = route_order(first, scenario.network, scenario.stock, scenario.rules)
    assert plan.objective_amount == records[0].cost
