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
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from models.errors import InvalidArgumentError
from models.network import Network, NodeType, Stock
from models.order import Order
from models.replenishment import Replenishment, check_replenishment
from models.rules import Policy, RuleSet, Strategy
from models.scenario import Scenario
from router.engine import candidates, route_order
from router.engine.arrays import Recent
from router.engine.candidates import build_model
from router.sample import sample_scenario
from router.whatif.bound import hindsight_bound
from router.whatif.decision import HEURISTIC, Decision, RoutingPolicy
from router.whatif.policies import EnginePolicy, GreedyNearest, RankedChain
from router.whatif.records import COLUMNS, DETERMINISTIC
from router.whatif.replay import (
    _moved,
    arrival_order,
    check_decision,
    objective,
    replay,
)
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
        # No stock left: 1 unit backordered at 60; no promise, so on_time is None, and
        # nothing shipped, so distance_km is NaN (not 0: a backorder is not "close").
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
            "distance_km": pytest.approx(math.nan, nan_ok=True),
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
        assert row.pop("price_version") == ""  # no look-ahead prices
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
    """NEAR (capacity 1 a day, plenty of stock) takes the first order of each ship date only.

    NEAR is in UTC with a 23:59 cutoff, so it ships on the UTC day of creation. o2 is
    created at 01:00 on 11-21 in UTC+5, which is 20:00 on 11-20 in UTC: NEAR would ship it
    on 11-20, like o1, so it goes to FAR. o3 on 11-21 (UTC) finds NEAR's capacity fresh.
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
    """Unknown node or SKU, negative units, a naive time: refused, one violation per field.

    check_replenishment raises InvalidArgumentError pathed ``replenishment[i].field``;
    replay and the bound both use it.
    """
    scenario = two_nodes(1, 1, at(0, "o1", ("A", 1)))
    good = Replenishment(CREATED, "NEAR", "A", 1)
    cases = {
        "replenishment[1].node_id: unknown node 'NOWHERE'": replace_r(good, node_id="NOWHERE"),
        "replenishment[1].sku: unknown sku 'ZZZ'": replace_r(good, sku="ZZZ"),
        "replenishment[1].units: must be >= 0, got -1": replace_r(good, units=-1),
        "replenishment[1].at: must be timezone-aware": replace_r(
            good, at=CREATED.replace(tzinfo=None)
        ),
    }
    for message, bad in cases.items():
        rows = [good, bad]
        with pytest.raises(InvalidArgumentError) as caught:
            check_replenishment(rows, scenario.network)
        assert len(caught.value.violations) == 1
        assert str(caught.value.violations[0]).startswith(message)
        with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[")):
            replay(scenario, GreedyNearest(), scenario_name="t", seed=0, replenishment=rows)
        with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[")):
            hindsight_bound(scenario, replenishment=rows)
    both = replace_r(good, node_id="X", sku="Y")
    with pytest.raises(InvalidArgumentError) as caught:
        check_replenishment([good, good, both], scenario.network)
    assert [str(v) for v in caught.value.violations] == [
        "replenishment[2].node_id: unknown node 'X'",
        "replenishment[2].sku: unknown sku 'Y'",
    ]
    check_replenishment([good], scenario.network)  # a good one passes


def replace_r(r: Replenishment, **changes: object) -> Replenishment:
    return dataclasses.replace(r, **changes)  # type: ignore[arg-type]


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


def test_the_engine_is_priced_on_the_model_it_solved_one_build_per_order(monkeypatch) -> None:
    """Routing by the evaluation rules, the engine gets the evaluation model: one build each.

    And the records, every deterministic column, equal those of a replay that builds every
    model anew (the kept models switched off), on a stream that runs stock out (values
    compared by repr: a record that ships nothing has a NaN distance).
    """
    sample = sample_scenario(n_stores=10, n_skus=20, n_orders=60)
    thin = Stock.of(
        dataclasses.replace(p, on_hand=p.on_hand // 60) for p in sample.stock.positions.values()
    )
    scenario = dataclasses.replace(sample, stock=thin)
    builds: list[str] = []
    build = candidates._build

    def counting(order: Order, *args: object) -> object:
        builds.append(order.order_id)
        return build(order, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(candidates, "_build", counting)
    kept = replay(scenario, EnginePolicy(scenario.rules), scenario_name="s", seed=1)
    assert len(builds) == len(set(builds)) == len(scenario.orders)

    class Forgetful(Recent[object]):
        def get(self, *key: object) -> None:
            return None

    monkeypatch.setattr(candidates, "_BUILT", Forgetful(1))
    builds.clear()
    anew = replay(scenario, EnginePolicy(scenario.rules), scenario_name="s", seed=1)
    assert len(builds) >= 2 * len(scenario.orders)
    assert any(r.units_backordered for r in kept)
    assert [[repr(getattr(r, c)) for c in DETERMINISTIC] for r in kept] == [
        [repr(getattr(r, c)) for c in DETERMINISTIC] for r in anew
    ]


def test_arrival_order_is_created_at_then_order_id_and_takes_the_first_n() -> None:
    """arrival_order sorts by created_at, then order id, and keeps the first n (all: None)."""
    b0, a0, c1 = at(0, "b", ("A", 1)), at(0, "a", ("A", 1)), at(1, "c", ("A", 1))
    assert [o.order_id for o in arrival_order([c1, b0, a0])] == ["a", "b", "c"]
    assert [o.order_id for o in arrival_order((c1, b0, a0), 2)] == ["a", "b"]
    assert arrival_order([c1], 0) == ()
    assert isinstance(arrival_order([c1]), tuple)
    with pytest.raises(ValueError, match="n must be"):
        arrival_order([c1], -1)


# --- check_decision: a decision must keep the evaluation model ----------------------------


def built_two(*lines: tuple[str, int], near: int = 3, far: int = 3, **kwargs: object):
    """The evaluation model of an order on NEAR and FAR (candidates :data:`N` and :data:`F`)."""
    o = at(0, "o9", *lines, **kwargs)
    s = stock(("NEAR", "A", near), ("FAR", "A", far))
    built = build_model(o, network(NEAR, FAR), s, Policy(), {})
    assert (built.matrices.node_ids[N], built.matrices.node_ids[F]) == ("NEAR", "FAR")
    return built


F, N = 0, 1  # candidates come in node id order


def test_check_decision_refuses_each_broken_constraint_naming_order_and_constraint() -> None:
    """Each constraint of the evaluation model is checked and named when broken.

    Indices, line quantities, availability (lines of a SKU share it), max_shipments,
    ship_complete and all-or-nothing lines are each refused with a clear ValueError.
    """
    two_lines = built_two(("A", 2), ("A", 2), near=3)

    def refused(decision: Mapping[tuple[int, int], int], built, pattern: str) -> None:
        with pytest.raises(ValueError, match=f"order o9: policy 'p' .*{pattern}"):
            check_decision(decision, built, order_id="o9", policy="p")

    refused({(2, 0): 1}, two_lines, "candidate 2")
    refused({(N, 0): -1}, two_lines, "units must be >= 0")
    refused({(N, 0): 2, (F, 0): 1}, two_lines, "ships 3 unit.* of line l1, which orders 2")
    # each line alone fits NEAR's 3 A, both together (4) do not: they share the stock
    assert check_decision({(N, 0): 2, (F, 1): 2}, two_lines, order_id="o9", policy="p")
    refused({(N, 0): 2, (N, 1): 2}, two_lines, "4 unit.* of A from NEAR, which has 3 available")
    capped = built_two(("A", 2), max_shipments=1)
    refused({(N, 0): 1, (F, 0): 1}, capped, r"at most 1 \(max_shipments\)")
    complete = built_two(("A", 2), ship_complete=True)
    refused({(N, 0): 1, (F, 0): 1}, complete, r"at most 1 \(ship_complete\)")
    whole = built_two(("A", 2), allow_partial=False)
    refused({(N, 0): 1}, whole, "does not allow partial fulfilment")
    # all or nothing: nothing at all, or every unit, is fine; zeros are dropped
    assert check_decision({}, whole, order_id="o9", policy="p") == {}
    assert check_decision({(N, 0): 2, (F, 0): 0}, whole, order_id="o9", policy="p") == {(N, 0): 2}


def test_replay_refuses_a_plan_the_evaluation_rules_forbid() -> None:
    """Evaluation rules that ship complete, routing rules that split: replay raises.

    3 A, NEAR holds 1 and FAR 2: the engine under the default rules splits (26.00). Priced
    under ship-complete rules that plan would cost 26, below the hindsight bound of those
    rules (one node at most: FAR's 2 units and 1 backordered, 15 + 60 = 75), so replay
    refuses it instead of recording a cost no feasible plan has.
    """
    complete = RuleSet.single(Policy(ship_complete=True))
    scenario = two_nodes(1, 2, at(0, "o1", ("A", 3)))
    bound = hindsight_bound(scenario, evaluation=complete)
    assert bound.value == pytest.approx(75.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"order o1: policy 'engine' .*\(ship_complete\)"):
        replay(scenario, EnginePolicy(RULES), scenario_name="t", seed=0, evaluation=complete)
    # routing under the same rules is fine, and costs the bound
    (record,) = replay(
        scenario, EnginePolicy(complete), scenario_name="t", seed=0, evaluation=complete
    )
    assert (record.node_units, record.cost) == ("FAR:2", 75.0)


# --- on time in full, distance of shipped units -------------------------------------------


def test_a_part_shipped_order_is_not_on_time_and_its_distance_counts_shipped_units() -> None:
    """3 A due 11-25, NEAR and FAR hold 1 each: both ship on time, 1 unit is backordered.

    on_time is on time in full, so False; distance_km is the mean over the 2 shipped units
    (1 and 5 degrees: 3 degrees), not over the 3 ordered.
    """
    scenario = two_nodes(1, 1, at(0, "o1", ("A", 3), deliver_by=date(2026, 11, 25)))
    for policy in (EnginePolicy(RULES), GreedyNearest(), RankedChain()):
        (record,) = replay(scenario, policy, scenario_name="t", seed=0)
        assert (record.units_shipped, record.units_backordered) == (2, 1), policy.name
        assert record.on_time is False, policy.name
        assert record.distance_km == pytest.approx(3 * KM_PER_DEGREE), policy.name


def test_nothing_shipped_has_no_distance_and_is_not_on_time_when_dated() -> None:
    """No stock anywhere: distance_km NaN; on_time False when dated, None when not."""
    dated = at(0, "o1", ("A", 1), deliver_by=date(2026, 11, 25))
    undated = at(1, "o2", ("A", 1))
    records = replay(two_nodes(0, 0, dated, undated), GreedyNearest(), scenario_name="t", seed=0)
    assert [r.units_shipped for r in records] == [0, 0]
    assert all(math.isnan(r.distance_km) for r in records)
    assert [r.on_time for r in records] == [False, None]


def test_on_time_in_full_is_true_only_when_everything_ships_in_time() -> None:
    """Shipped in full from NEAR (delivers 11-21) and due 11-21: on time in full."""
    o = at(0, "o1", ("A", 2), deliver_by=date(2026, 11, 21))
    (record,) = replay(two_nodes(5, 0, o), GreedyNearest(), scenario_name="t", seed=0)
    assert (record.units_backordered, record.on_time) == (0, True)


# --- progress, decisions, stock ------------------------------------------------------------


def test_progress_every_prints_a_line_to_stderr_every_that_many_orders(capsys) -> None:
    """progress_every=2 over 5 orders: lines after the 2nd and 4th; 0 (default): none."""
    orders = [at(i, f"o{i}", ("A", 1)) for i in range(5)]
    scenario = two_nodes(9, 9, *orders)
    replay(scenario, GreedyNearest(), scenario_name="tiny", seed=3, setting="s=1", progress_every=2)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "greedy-nearest s=1 tiny seed 3: 2/5 orders",
        "greedy-nearest s=1 tiny seed 3: 4/5 orders",
    ]
    replay(scenario, GreedyNearest(), scenario_name="tiny", seed=3)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress_every"):
        replay(scenario, GreedyNearest(), scenario_name="tiny", seed=3, progress_every=-1)


def test_every_policy_decides_with_a_decision() -> None:
    """Replay reads the status off the Decision every policy returns."""

    class Fixed:
        name = "fixed"

        def decide(
            self, order: Order, evaluation, network: Network, stock: Stock, used: object
        ) -> Decision:
            return Decision({(F, 0): 1}, status="MINE")

    scenario = two_nodes(1, 1, at(0, "o1", ("A", 1)))
    (record,) = replay(scenario, Fixed(), scenario_name="t", seed=0)
    assert (record.status, record.node_units) == ("MINE", "FAR:1")
    (record,) = replay(scenario, GreedyNearest(), scenario_name="t", seed=0)
    assert record.status == HEURISTIC


def test_replaced_stock_is_built_through_the_one_indexed_constructor(monkeypatch) -> None:
    """Stock.replaced makes its result through Stock._indexed, which sets every field.

    Every dataclass field of the result is set, and it equals Stock.of of its positions.
    """
    calls: list[int] = []
    original = Stock._indexed

    def counting(positions, by_sku):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(positions, by_sku)

    monkeypatch.setattr(Stock, "_indexed", staticmethod(counting))
    before = stock(("NEAR", "A", 3))
    after = before.replaced([dataclasses.replace(before.positions["NEAR", "A"], on_hand=1)])
    assert calls == [1]
    for field in dataclasses.fields(Stock):
        getattr(after, field.name)
    assert after == Stock.of(after.positions.values())
    assert dict(after.by_sku) == dict(Stock.of(after.positions.values()).by_sku)
