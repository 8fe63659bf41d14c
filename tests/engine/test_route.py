"""Each element of the rule language changes plans as docs/rules.md says.

The network: a customer at (0, 0) and three nodes east of it on the equator, all in the
first ground band (up to 500 km: 5 + 1/kg, 1 day), so a shipment of one unit of A (1 kg)
costs the node's handling per shipment + 6:

    STORE  lon 0.5 (55.6 km)  store, tags urban, priority 10, handling 3  → 9
    NEAR   lon 1   (111.2 km) dc, tags hazmat,                handling 2  → 8
    FAR    lon 3   (333.6 km) dc, tags west,                  handling 1  → 7

With no rules FAR ships (cheapest); each rule below moves the order somewhere else.
Rule sets are written as YAML documents, so the tests read the language as planners do.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from models.network import Network, NodeType, RateCard, Sku, Stock
from models.order import Order, OrderLine
from models.plan import SolveStatus, StrategyOutcome, UnfulfilledReason
from models.rules import RuleSet
from router.engine import route_order
from router.engine.stop import Stop
from router.rules.document import load_rules
from tests.engine.conftest import CREATED, RATES, SKUS, node, order, stock

HAZ = Sku("H", 1.0, hazmat=True)


def net() -> Network:
    store = dataclasses.replace(
        node("STORE", 0.5, type=NodeType.STORE, per_shipment=3.0, priority=10),
        tags=frozenset({"urban"}),
    )
    near = dataclasses.replace(node("NEAR", 1.0, per_shipment=2.0), tags=frozenset({"hazmat"}))
    far = dataclasses.replace(node("FAR", 3.0, per_shipment=1.0), tags=frozenset({"west"}))
    return Network((store, near, far), {**SKUS, "H": HAZ}, RATES)


def everywhere(*skus: str, units: int = 10) -> Stock:
    return stock(*((n, s, units) for n in ("STORE", "NEAR", "FAR") for s in skus))


def rules(text: str) -> RuleSet:
    return load_rules(text, "rules.yaml", net())


def one(strategy_body: str) -> str:
    """A rule set of one strategy with the given YAML body (indented under it)."""
    body = "\n".join("    " + line for line in strategy_body.strip().splitlines())
    return f"name: t\nstrategies:\n  - name: only\n{body}\n"


def ships_from(text: str, o: Order | None = None, s: Stock | None = None) -> list[str]:
    plan = route_order(o or order(("A", 1)), net(), s or everywhere("A", "H"), rules(text))
    assert plan.status is SolveStatus.OPTIMAL, plan.detail
    return sorted(x.node_id for x in plan.shipments)


def test_no_rules_ship_from_the_cheapest_node() -> None:
    """The baseline every other test moves away from: FAR is cheapest."""
    assert ships_from(one("weights: {}")) == ["FAR"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("node_types: [store]", "STORE"),
        ("node_tags: [urban]", "STORE"),
        ("exclude_node_tags: [west]", "NEAR"),
        ("nodes: [NEAR, STORE]", "NEAR"),
        ("exclude_nodes: [FAR]", "NEAR"),
        ("max_distance_km: 200", "NEAR"),
        ("blocked: [{node_id: FAR, sku: A}]", "NEAR"),
        ("min_buffer_by_node_type: {dc: 10}", "STORE"),
    ],
)
def test_each_filter_moves_the_order(filters: str, expected: str) -> None:
    """Each hard filter removes FAR (and maybe others), so the next cheapest node ships."""
    assert ships_from(one(f"filters: {{{filters}}}")) == [expected]


def test_group_names_expand_in_node_filters() -> None:
    """A group named in ``nodes`` stands for its node ids."""
    text = (
        "name: t\ngroups: {inner: [NEAR, STORE]}\n"
        "strategies:\n  - name: s\n    filters: {nodes: [inner]}\n"
    )
    assert ships_from(text) == ["NEAR"]


def test_same_country_keeps_nodes_in_the_destination_country() -> None:
    """With same_country, a node in another country does not ship, however cheap."""
    canadian = net()
    nodes = tuple(
        dataclasses.replace(n, country="CA") if n.node_id == "FAR" else n for n in canadian.nodes
    )
    network = Network(nodes, canadian.skus, canadian.rates)
    text = one("filters: {same_country: true}")
    plan = route_order(order(("A", 1)), network, everywhere("A"), load_rules(text))
    assert [x.node_id for x in plan.shipments] == ["NEAR"]
    far = next(e for e in plan.excluded if e.node_id == "FAR")
    assert far.detail == "filters.same_country: in CA, not US"
    free = route_order(order(("A", 1)), network, everywhere("A"), load_rules(one("weights: {}")))
    assert [x.node_id for x in free.shipments] == ["FAR"]


def test_capabilities_restrict_only_the_lines_that_need_them() -> None:
    """A hazmat line ships only from a node tagged hazmat; the other line is not affected."""
    text = one("filters: {capabilities: [hazmat]}")
    assert ships_from(text, order(("H", 1))) == ["NEAR"]
    assert ships_from(text, order(("A", 1))) == ["FAR"]
    assert ships_from(one("weights: {}"), order(("H", 1))) == ["FAR"]


def test_held_back_stock_is_explained_per_node() -> None:
    """A node whose stock rules hold back is excluded by rule.

    The detail names only the rules that took stock from that node.
    """
    text = one("filters: {min_buffer_by_node_type: {dc: 10}, blocked: [{node_id: STORE, sku: A}]}")
    plan = route_order(order(("A", 1)), net(), everywhere("A"), rules(text))
    assert plan.shipments == ()
    held = "its stock of the order's SKUs is held back by "
    assert {e.node_id: (e.reason.value, e.detail) for e in plan.excluded} == {
        "FAR": ("FILTERED_BY_RULE", held + "filters.min_buffer_by_node_type"),
        "NEAR": ("FILTERED_BY_RULE", held + "filters.min_buffer_by_node_type"),
        "STORE": ("FILTERED_BY_RULE", held + "filters.blocked (STORE/A)"),
    }
    assert plan.unfulfilled[0].reason is UnfulfilledReason.NO_ELIGIBLE_STOCK


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        # dc units cost 10 more: STORE 9 < NEAR 18 < FAR 17
        ("unit_penalty_by_node_type: {dc: 10}", "STORE"),
        # 1 per priority point below the top (10): FAR 7 + 10, NEAR 8 + 10, STORE 9
        ("priority_bonus: 1", "STORE"),
        # 0.01 per km: FAR 7 + 3.34, NEAR 8 + 1.11, STORE 9 + 0.56
        ("distance_cost_per_km: 0.01", "NEAR"),
    ],
)
def test_each_node_weight_moves_the_order(weights: str, expected: str) -> None:
    """Per-unit, priority and distance weights change which node is cheapest."""
    assert ships_from(one(f"weights: {{{weights}}}")) == [expected]


def test_priority_bonus_charges_points_below_the_top_even_when_all_are_negative() -> None:
    """The top node pays no priority penalty whatever the priorities' sign.

    All at priority −5 but NEAR at −3: NEAR pays 0, the others 2 points each; with a bonus
    of 5 a point FAR (7 + 10) and STORE (9 + 10) lose to NEAR (8).
    """
    low = net()
    nodes = tuple(
        dataclasses.replace(n, priority=-3 if n.node_id == "NEAR" else -5) for n in low.nodes
    )
    network = Network(nodes, low.skus, low.rates)
    plan = route_order(
        order(("A", 1)), network, everywhere("A"), load_rules(one("weights: {priority_bonus: 5}"))
    )
    assert [x.node_id for x in plan.shipments] == ["NEAR"]
    assert {c.node_id: c.node_penalty for c in plan.model.candidates} == {
        "STORE": 10 * 10_000,
        "NEAR": 0,
        "FAR": 10 * 10_000,
    }
    assert plan.objective == 8 * 10_000


def test_priority_bonus_and_distance_appear_in_the_model() -> None:
    """The node penalty of a candidate is bonus × points below the top + weight × km."""
    text = one("weights: {priority_bonus: 0.5, distance_cost_per_km: 0.01}")
    plan = route_order(order(("A", 1)), net(), everywhere("A"), rules(text))
    terms = {c.node_id: c for c in plan.model.candidates}
    assert terms["STORE"].node_penalty == round(0.01 * terms["STORE"].distance_km * 10_000)
    assert terms["FAR"].node_penalty == 5 * 10_000 + round(0.01 * terms["FAR"].distance_km * 10_000)


def split_stock() -> Stock:
    """A only at FAR (7 a shipment), B only at NEAR (2 + 5 + 2 kg × 1 = 9)."""
    return stock(("FAR", "A", 5), ("NEAR", "B", 5))


def shipped_lines(text: str, o: Order) -> list[str]:
    plan = route_order(o, net(), split_stock(), rules(text))
    return sorted(x.line_id for s in plan.shipments for x in s.lines)


def test_split_penalty_decides_whether_a_second_shipment_pays() -> None:
    """Split 4: 9 + 4 < 60 backorder, both lines ship; split 100: B is backordered."""
    two = order(("A", 1), ("B", 1))
    assert shipped_lines(one("weights: {split_penalty: 4}"), two) == ["l1", "l2"]
    assert shipped_lines(one("weights: {split_penalty: 100}"), two) == ["l1"]


def test_backorder_cost_decides_whether_a_unit_ships() -> None:
    """A unit that costs 7 to ship ships at backorder 60 and is backordered at 5."""
    plan = route_order(
        order(("A", 1)), net(), split_stock(), rules(one("weights: {backorder_cost_per_unit: 5}"))
    )
    assert plan.shipments == ()
    assert plan.unfulfilled[0].reason is UnfulfilledReason.BACKORDER_CHEAPER
    assert shipped_lines(one("weights: {backorder_cost_per_unit: 60}"), order(("A", 1))) == ["l1"]


@pytest.mark.parametrize(
    "constraint", ["max_shipments: 1", "ship_complete: true", "no_split_below_value: 100"]
)
def test_each_shipment_limit_stops_the_split(constraint: str) -> None:
    """At most one shipment: the cheaper line (A) ships, B is backordered."""
    cheap = dataclasses.replace(
        order(("A", 1), ("B", 1)),
        lines=(OrderLine("l1", "A", 1, 10.0), OrderLine("l2", "B", 1, 10.0)),
    )
    assert shipped_lines(one(f"constraints: {{{constraint}}}"), cheap) == ["l1"]


def test_no_split_below_value_lets_valuable_orders_split() -> None:
    """An order worth 200 is above the 100 threshold and may split."""
    dear = dataclasses.replace(
        order(("A", 1), ("B", 1)),
        lines=(OrderLine("l1", "A", 1, 100.0), OrderLine("l2", "B", 1, 100.0)),
    )
    assert shipped_lines(one("constraints: {no_split_below_value: 100}"), dear) == ["l1", "l2"]


# The SLA network: QUICK 111 km (1 day, 2 + 5 + 1 = 8), SLOW 667 km (band 2: 3 days,
# 0 + 8 + 2 = 10 → cheaper handling makes it 10 vs QUICK's 8 + 3 = 11 with handling 5).
def sla_net() -> Network:
    return Network(
        (node("QUICK", 1.0, per_shipment=5.0), node("SLOW", 6.0, per_shipment=0.0)), SKUS, RATES
    )


def sla_order() -> Order:
    """Due the day after creation: QUICK is on time, SLOW 2 days late."""
    return order(("A", 1), deliver_by=CREATED.date() + timedelta(days=1))


def sla_plan(text: str, s: Stock | None = None) -> list[str]:
    both = stock(("QUICK", "A", 5), ("SLOW", "A", 5))
    plan = route_order(sla_order(), sla_net(), s or both, load_rules(text))
    return [x.node_id for x in plan.shipments]


def test_lateness_penalty_and_sla_mode() -> None:
    """Soft SLA at 0/day ships late and cheap (SLOW 10 < QUICK 11), at 6/day on time.

    A hard SLA excludes the late node whatever the penalty.
    """
    assert sla_plan(one("weights: {lateness_penalty_per_day: 0}")) == ["SLOW"]
    assert sla_plan(one("weights: {lateness_penalty_per_day: 6}")) == ["QUICK"]
    assert sla_plan(one("weights: {lateness_penalty_per_day: 0}\nconstraints: {sla: hard}")) == [
        "QUICK"
    ]


def test_relax_sla_fallback_steps_until_the_order_ships() -> None:
    """Hard SLA, stock only at SLOW (2 days late): relaxing by 1 day is not enough, 2 is."""
    text = one(
        "constraints: {sla: hard}\n"
        "fallback: {relax_sla: {step_days: 1, max_days: 3}, then: backorder}"
    )
    plan = route_order(sla_order(), sla_net(), stock(("SLOW", "A", 5)), load_rules(text))
    assert [x.node_id for x in plan.shipments] == ["SLOW"]
    assert (plan.strategy, plan.step) == ("only", "relax_sla+2d")
    assert plan.shipments[0].days_late == 0  # measured against the relaxed date


def test_backorder_fallback_keeps_the_last_plan() -> None:
    """When relaxing is not enough, backorder takes the plan of the last step."""
    text = one("constraints: {sla: hard}\nfallback: {relax_sla: {step_days: 1, max_days: 1}}")
    plan = route_order(sla_order(), sla_net(), stock(("SLOW", "A", 5)), load_rules(text))
    assert plan.shipments == ()
    assert (plan.step, plan.status) == ("backorder", SolveStatus.OPTIMAL)
    assert plan.trials[0].detail == "1 unit(s) backordered after relax_sla+1d"


def test_reject_fallback_ships_nothing_and_says_why() -> None:
    """A reject fallback answers REJECTED with the planner's reason on every line."""
    text = one("filters: {node_types: [store]}\nfallback: {then: reject, reason: stores only}")
    plan = route_order(order(("A", 2)), net(), stock(("FAR", "A", 5)), rules(text))
    assert plan.status is SolveStatus.REJECTED
    assert plan.detail == "stores only"
    assert plan.objective is None and plan.shipments == ()
    assert [(u.line_id, u.quantity, u.reason) for u in plan.unfulfilled] == [
        ("l1", 2, UnfulfilledReason.REJECTED_BY_RULE)
    ]


CHAIN = """
name: chain
strategies:
  - name: stores-first
    when: {channel: [web]}
    filters: {node_types: [store]}
    fallback: next
  - name: vip
    when: {segment: [vip]}
    filters: {node_types: [store]}
  - name: anywhere
"""


def test_next_fallback_goes_to_the_next_matching_strategy() -> None:
    """A web order the stores cannot fill falls back past the unmet 'vip' to 'anywhere'."""
    web = dataclasses.replace(order(("A", 1)), channel="web")
    plan = route_order(web, net(), stock(("FAR", "A", 5)), rules(CHAIN))
    assert [x.node_id for x in plan.shipments] == ["FAR"]
    assert (plan.strategy, plan.step) == ("anywhere", "primary")
    assert [(t.strategy, t.outcome) for t in plan.trials] == [
        ("stores-first", StrategyOutcome.FELL_BACK),
        ("vip", StrategyOutcome.CONDITION_NOT_MET),
        ("anywhere", StrategyOutcome.APPLIED),
    ]
    assert plan.trials[1].detail == "when.segment: '' is not one of [vip]"


def test_later_strategies_are_not_reached_once_one_applies() -> None:
    """A web vip order the stores can fill stops at the first strategy."""
    web = dataclasses.replace(order(("A", 1)), channel="web", segment="vip")
    plan = route_order(web, net(), everywhere("A"), rules(CHAIN))
    assert plan.strategy == "stores-first"
    assert [t.outcome for t in plan.trials] == [
        StrategyOutcome.APPLIED,
        StrategyOutcome.NOT_REACHED,
        StrategyOutcome.NOT_REACHED,
    ]


def test_an_order_that_falls_off_the_end_is_rejected_and_keeps_its_explanation() -> None:
    """When every matching strategy falls back to next, the order is rejected.

    The plan still explains the last strategy tried (its candidates and exclusions).
    """
    text = (
        "name: t\nstrategies:\n"
        "  - name: stores\n    filters: {node_types: [store]}\n    fallback: next\n"
    )
    plan = route_order(order(("A", 1)), net(), stock(("FAR", "A", 5)), rules(text))
    assert plan.status is SolveStatus.REJECTED
    assert plan.detail == "every strategy whose condition holds fell back; none is left"
    assert plan.trials[0].outcome is StrategyOutcome.FELL_BACK
    assert {e.node_id: e.reason.value for e in plan.excluded} == {
        "STORE": "NO_AVAILABLE_STOCK",
        "NEAR": "FILTERED_BY_RULE",
        "FAR": "FILTERED_BY_RULE",
    }
    assert [u.reason for u in plan.unfulfilled] == [UnfulfilledReason.REJECTED_BY_RULE]


def test_alternatives_and_counterfactuals_come_from_the_step_that_made_the_plan() -> None:
    """Under a rule set, top-k and counterfactuals price the applying strategy's model.

    Stores only (first strategy) has no stock, so 'rest' plans: FAR (7) best, NEAR (8)
    the runner-up; shipping from STORE costs 9, 2 over the optimum.
    """
    text = (
        "name: t\nstrategies:\n"
        "  - name: none\n    filters: {node_types: [dark_store]}\n    fallback: next\n"
        "  - name: rest\n"
    )
    plan = route_order(
        order(("A", 1)),
        net(),
        everywhere("A"),
        load_rules(text),
        alternatives=1,
        counterfactual_nodes=("STORE",),
    )
    assert plan.strategy == "rest"
    assert [s.node_id for a in plan.alternatives for s in a.shipments] == ["NEAR"]
    assert [(c.node_id, c.delta) for c in plan.counterfactuals] == [("STORE", 2 * 10_000)]


def test_a_stopped_solve_ends_the_chain_as_it_is() -> None:
    """When the budget is spent, the first step's answer is returned; no fallback runs.

    STORE holds A and B, FAR only A, NEAR only B; stores pay 3 more a unit and splits are
    free. STORE alone costs 8 + (1 + 3) + (2 + 3) = 17, FAR and NEAR 6 + 1 + 7 + 2 = 16.
    Stopped before it starts, the engine has only its greedy plan (STORE: adding a node
    to it costs more) and the two-shipment bound (6 + 7 + 1 + 2 = 16), so it answers
    FEASIBLE, which the reject fallback must not turn into a rejection.
    """
    stop = Stop(10.0)
    stop.set()
    text = one(
        "weights: {split_penalty: 0, unit_penalty_by_node_type: {store: 3}}\n"
        "fallback: {then: reject, reason: never}"
    )
    s = stock(("STORE", "A", 5), ("STORE", "B", 5), ("FAR", "A", 5), ("NEAR", "B", 5))
    plan = route_order(order(("A", 1), ("B", 1)), net(), s, rules(text), stop=stop)
    assert plan.status is SolveStatus.FEASIBLE
    assert (plan.objective, plan.bound) == (17 * 10_000, 16 * 10_000)
    assert (plan.step, plan.detail) == ("primary", "stopped by the time limit; see bound and gap")


@pytest.mark.parametrize("engine", ["fast", "cpsat-full"])
def test_max_shipments_zero_ships_nothing_in_either_engine(engine: str) -> None:
    """With max_shipments 0 nothing ships.

    The order is backordered when partial fulfilment is allowed, else infeasible.
    """
    text = one("constraints: {max_shipments: 0}")
    partial = route_order(order(("A", 1)), net(), everywhere("A"), rules(text), engine=engine)
    assert (partial.status, partial.shipments) == (SolveStatus.OPTIMAL, ())
    assert partial.objective == 60 * 10_000
    whole = route_order(
        order(("A", 1), allow_partial=False), net(), everywhere("A"), rules(text), engine=engine
    )
    assert whole.status is SolveStatus.INFEASIBLE


def test_an_order_no_strategy_applies_to_is_rejected_with_a_reason() -> None:
    """Without a matching strategy nothing ships, and the plan says so."""
    text = "name: t\nstrategies:\n  - name: web\n    when: {channel: [web]}\n"
    plan = route_order(order(("A", 1)), net(), everywhere("A"), rules(text))
    assert plan.status is SolveStatus.REJECTED
    assert plan.detail == "no strategy's condition holds for the order"
    assert plan.trials[0].outcome is StrategyOutcome.CONDITION_NOT_MET


def with_order(**changes: object) -> Order:
    base = order(("A", 1))
    ship_to = {k: changes.pop(k) for k in ("country", "region", "postal_code") if k in changes}
    if ship_to:
        changes["ship_to"] = dataclasses.replace(base.ship_to, **ship_to)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clause", "meets", "misses"),
    [
        ("channel: [web]", {"channel": "web"}, {"channel": "store"}),
        ("segment: [vip]", {"segment": "vip"}, {"segment": "mass"}),
        ("service: [ground]", {}, {"service": "express"}),
        ("country: [us]", {}, {"country": "CA"}),
        ("region: [ca]", {"region": "CA"}, {"region": "NY"}),
        ("postal_code_prefix: ['9']", {"postal_code": "94105"}, {"postal_code": "10001"}),
        ("sku_attribute: [hazmat]", {"lines": (OrderLine("l1", "H", 1),)}, {}),
        ("order_value: {min: 50}", {"lines": (OrderLine("l1", "A", 1, 50.0),)}, {}),
        ("order_value: {max: 50}", {}, {"lines": (OrderLine("l1", "A", 1, 50.0),)}),
    ],
)
def test_each_condition_clause_selects_orders(
    clause: str, meets: dict[str, object], misses: dict[str, object]
) -> None:
    """An order meeting the clause takes the stores-only strategy; one missing it does not."""
    text = (
        "name: t\nstrategies:\n"
        f"  - name: picky\n    when: {{{clause}}}\n    filters: {{node_types: [store]}}\n"
        "  - name: rest\n"
    )
    ground = RATES.bands["ground"]
    express = [dataclasses.replace(b, service="express") for b in ground]
    network = Network(net().nodes, net().skus, RateCard.of([*ground, *express]))
    ruled = load_rules(text, "rules.yaml", network)
    s = everywhere("A", "H")
    hit = route_order(with_order(**meets), network, s, ruled)
    miss = route_order(with_order(**misses), network, s, ruled)
    assert (hit.strategy, [x.node_id for x in hit.shipments]) == ("picky", ["STORE"])
    assert (miss.strategy, [x.node_id for x in miss.shipments]) == ("rest", ["FAR"])
    assert miss.trials[0].outcome is StrategyOutcome.CONDITION_NOT_MET
    assert miss.trials[0].detail.startswith("when.")


def test_plan_names_the_rule_set_version() -> None:
    """A draft is name@draft; a stored version is name@vN."""
    ruled = rules(one("weights: {}"))
    plan = route_order(order(("A", 1)), net(), everywhere("A"), ruled)
    assert plan.rule_version == "t@draft"
    stored = dataclasses.replace(ruled, version=3)
    assert route_order(order(("A", 1)), net(), everywhere("A"), stored).rule_version == "t@v3"


def test_defaults_are_inherited_and_overridden() -> None:
    """``defaults`` apply to every strategy; a strategy's own setting wins."""
    text = (
        "name: t\ndefaults: {filters: {node_types: [store]}}\nstrategies:\n"
        "  - name: web\n    when: {channel: [web]}\n    filters: {node_types: [dc]}\n"
        "  - name: rest\n"
    )
    web = dataclasses.replace(order(("A", 1)), channel="web")
    assert ships_from(text, web) == ["FAR"]
    assert ships_from(text) == ["STORE"]


def test_deliver_by_unset_ignores_relaxation() -> None:
    """Relaxing an SLA the order does not have changes nothing (no date to move)."""
    o = order(("A", 1))
    assert o.deliver_by is None
    text = one("constraints: {sla: hard}\nfallback: {relax_sla: {step_days: 1, max_days: 2}}")
    assert ships_from(text, o) == ["FAR"]
