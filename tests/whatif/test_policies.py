"""The policies pick what their definitions say, and the engine is never beaten on one order.

Crafted cases use the equator networks of tests/engine/conftest.py: a customer at (0, 0),
nodes on the equator at a longitude (1 degree = 111.195 km), so "nearest" reads off the
longitude. Each decision is made on the evaluation model the replay would build (default
rules) and read back as {node id: {line id: units}}.
"""

from __future__ import annotations

import pytest

from models.network import Network, Node, Stock
from models.order import Order
from models.rules import Policy, RuleSet
from router.engine.candidates import build_model
from router.engine.solve import FULL_MODEL
from router.engine.terms import BuiltModel
from router.sample import sample_scenario
from router.whatif.decision import HEURISTIC, Decision, NotACandidateError, RoutingPolicy
from router.whatif.policies import (
    POLICIES,
    EnginePolicy,
    GreedyNearest,
    RankedChain,
    full_model,
)
from router.whatif.replay import check_decision, objective, replay
from tests.engine.conftest import network, node, order, stock

RULES = RuleSet()


def decide(
    policy: RoutingPolicy, o: Order, net: Network, s: Stock, evaluation: Policy | None = None
) -> dict[str, dict[str, int]]:
    """The policy's decision on ``o``, by node id and line id."""
    built = build_model(o, net, s, evaluation or Policy(), {})
    out: dict[str, dict[str, int]] = {}
    for (j, line), units in policy.decide(o, built, net, s, {}).items():
        node_id, line_id = built.matrices.node_ids[j], built.lines[line].line_id
        out.setdefault(node_id, {})[line_id] = units
    return out


def line_of_nodes(*nodes: Node, **units: dict[str, int]) -> tuple[Network, Stock]:
    """A network of ``nodes`` and stock ``units[node_id] = {sku: on_hand}``."""
    rows = [(n, sku, q) for n, held in units.items() for sku, q in held.items()]
    return network(*nodes), stock(*rows)


# Z at 55.6 km, X at 111.2 km, Y at 222.4 km (all in the first ground band).
Z, X, Y = node("Z", 0.5), node("X", 1.0), node("Y", 2.0)


def test_greedy_takes_the_nearest_stock_and_splits_over_the_next_nearest() -> None:
    """3 A: Z (nearest) has 1, X 5, Y 5: greedy takes Z's 1 then 2 from X."""
    net, s = line_of_nodes(Z, X, Y, Z={"A": 1}, X={"A": 5}, Y={"A": 5})
    assert decide(GreedyNearest(), order(("A", 3)), net, s) == {"Z": {"l1": 1}, "X": {"l1": 2}}


def test_ranked_chain_prefers_one_node_that_has_everything_the_nearest_of_them() -> None:
    """3 A: Z has only 1; X and Y have all 3, X is nearer: X ships everything."""
    net, s = line_of_nodes(Z, X, Y, Z={"A": 1}, X={"A": 5}, Y={"A": 5})
    assert decide(RankedChain(), order(("A", 3)), net, s) == {"X": {"l1": 3}}


def test_ranked_chain_breaks_distance_ties_by_priority_then_node_id() -> None:
    """Two complete nodes 111.2 km away on either side: the higher priority wins, then id."""
    east, west = node("EAST", 1.0), node("WEST", -1.0, priority=5)
    net, s = line_of_nodes(east, west, EAST={"A": 2}, WEST={"A": 2})
    assert decide(RankedChain(), order(("A", 1)), net, s) == {"WEST": {"l1": 1}}
    plain = network(east, node("WEST", -1.0))
    assert decide(RankedChain(), order(("A", 1)), plain, s) == {"EAST": {"l1": 1}}
    assert decide(GreedyNearest(), order(("A", 1)), plain, s) == {"EAST": {"l1": 1}}


# For the splitting cases: X (111 km) has A 1 and B 2 (covers 3 of the order's 5 units),
# Y (222 km) has A 3 (covers 3), Z (56 km) has A 2 (covers 2). No node has everything.
SPLIT = {"X": {"A": 1, "B": 2}, "Y": {"A": 3}, "Z": {"A": 2}}
A3B2 = (("A", 3), ("B", 2))


def test_ranked_chain_splits_by_units_covered_then_distance() -> None:
    """Ranked-chain splits: most units covered first, ties by distance.

    X and Y both cover 3: X is nearer and ships A 1, B 2; then Z and Y both cover the 2 A
    left: Z is nearer.
    """
    net, s = line_of_nodes(Z, X, Y, **SPLIT)
    assert decide(RankedChain(), order(*A3B2), net, s) == {
        "X": {"l1": 1, "l2": 2},
        "Z": {"l1": 2},
    }


def test_max_shipments_stops_opening_nodes_and_backorders_the_rest() -> None:
    """With a cap no node is opened beyond it, whether the order or the rules set it.

    One shipment: ranked-chain ships X's 3 units (the most covered); greedy opens Z for
    line A (nearest) and cannot open X for B, so B is backordered.
    """
    net, s = line_of_nodes(Z, X, Y, **SPLIT)
    capped = order(*A3B2, max_shipments=1)
    assert decide(RankedChain(), capped, net, s) == {"X": {"l1": 1, "l2": 2}}
    assert decide(GreedyNearest(), capped, net, s) == {"Z": {"l1": 2}}
    by_rule = Policy(max_shipments=1)
    assert decide(GreedyNearest(), order(*A3B2), net, s, by_rule) == {"Z": {"l1": 2}}
    two = order(*A3B2, max_shipments=2)
    assert decide(GreedyNearest(), two, net, s) == {"Z": {"l1": 2}, "X": {"l1": 1, "l2": 2}}


def test_greedy_uses_open_nodes_beyond_the_cap() -> None:
    """Capped at one shipment, greedy may still take more from the node it already opened.

    2 A then 1 A, Z (nearest) has 3: both lines from Z.
    """
    net, s = line_of_nodes(Z, X, Z={"A": 3}, X={"A": 9})
    o = order(("A", 2), ("A", 1), max_shipments=1)
    assert decide(GreedyNearest(), o, net, s) == {"Z": {"l1": 2, "l2": 1}}


def test_ship_complete_sends_everything_from_the_node_covering_most() -> None:
    """Ship complete, 3 A: Z (nearest) has 2, Y has 3: both baselines pick Y, not Z."""
    net, s = line_of_nodes(Z, Y, Z={"A": 2}, Y={"A": 3})
    o = order(("A", 3), ship_complete=True)
    assert decide(GreedyNearest(), o, net, s) == {"Y": {"l1": 3}}
    assert decide(RankedChain(), o, net, s) == {"Y": {"l1": 3}}
    # On the split case, X and Y each cover 3 of 5: the nearer, X; the rest is backordered.
    net, s = line_of_nodes(Z, X, Y, **SPLIT)
    complete = order(*A3B2, ship_complete=True)
    for policy in (GreedyNearest(), RankedChain()):
        assert decide(policy, complete, net, s) == {"X": {"l1": 1, "l2": 2}}
    by_rule = Policy(ship_complete=True)
    assert decide(GreedyNearest(), order(*A3B2), net, s, by_rule) == {"X": {"l1": 1, "l2": 2}}


def test_lines_of_one_sku_share_a_nodes_stock() -> None:
    """Lines of one SKU share a node's stock.

    Two lines of 2 A; Z has 3: the first line takes 2, the second Z's last 1 and 1 more
    from X, the next nearest.
    """
    net, s = line_of_nodes(Z, X, Z={"A": 3}, X={"A": 5})
    o = order(("A", 2), ("A", 2))
    assert decide(GreedyNearest(), o, net, s) == {"Z": {"l1": 2, "l2": 1}, "X": {"l2": 1}}
    # Ranked-chain: X has all 4, Z only 3: X ships everything.
    assert decide(RankedChain(), o, net, s) == {"X": {"l1": 2, "l2": 2}}


def test_baselines_ship_nothing_when_a_partial_plan_is_not_allowed() -> None:
    """Without partial fulfilment a plan that leaves units ships nothing.

    3 A, 2 in stock: the baselines ship nothing (as the engine, whose model is then
    infeasible), rather than a plan the order forbids.
    """
    net, s = line_of_nodes(Z, X, Z={"A": 1}, X={"A": 1})
    o = order(("A", 3), allow_partial=False)
    for policy in (GreedyNearest(), RankedChain(), EnginePolicy(RULES)):
        assert decide(policy, o, net, s) == {}, policy.name


def test_decisions_say_how_they_were_reached() -> None:
    """Baselines answer HEURISTIC; the engine policies its plan's status (OPTIMAL here)."""
    net, s = line_of_nodes(Z, Z={"A": 1})
    o = order(("A", 1))
    built = build_model(o, net, s, Policy(), {})
    for policy, status in (
        (GreedyNearest(), HEURISTIC),
        (RankedChain(), HEURISTIC),
        (EnginePolicy(RULES), "OPTIMAL"),
        (full_model(RULES), "OPTIMAL"),
    ):
        decision = policy.decide(o, built, net, s, {})
        assert isinstance(decision, Decision)
        assert decision.status == status
        assert dict(decision) == {(0, 0): 1}


def test_engine_policy_maps_shipments_to_evaluation_candidates() -> None:
    """The engine's shipments come back as (candidate, line) indices of the evaluation model.

    3 A with Z 1 and X 5 ship from X alone (one shipment is cheaper than a split); line l1
    (B, no stock anywhere) is backordered.
    """
    net, s = line_of_nodes(Z, X, Z={"A": 1}, X={"A": 5})
    o = order(("B", 1), ("A", 3))
    assert decide(EnginePolicy(RULES), o, net, s) == {"X": {"l2": 3}}


def test_engine_shipping_from_a_non_candidate_is_a_clear_error() -> None:
    """Rules that allow a node the evaluation excludes: the error names the order and node."""
    net, s = line_of_nodes(Z, X, Z={"A": 1}, X={"A": 5})
    strict = Policy(exclude_nodes=frozenset({"X"}))
    with pytest.raises(NotACandidateError, match=r"order o1: .* ships from X, .*FILTERED_BY_RULE"):
        decide(EnginePolicy(RULES), order(("A", 3)), net, s, strict)


def test_the_policy_registry_names_the_five_policies() -> None:
    """POLICIES: engine, full-model (cpsat-full), greedy-nearest, ranked-chain, look-ahead.

    Each key is the name of the policy it makes; the engine policies route with the rules
    given (look-ahead: tests/whatif/test_lookahead.py).
    """
    assert list(POLICIES) == [
        "engine",
        "full-model",
        "greedy-nearest",
        "ranked-chain",
        "look-ahead",
    ]
    heavy = RuleSet.single(Policy(split_penalty=100.0))
    for name, make in POLICIES.items():
        assert make(heavy).name == name
    assert POLICIES["engine"](heavy) == EnginePolicy(heavy)
    assert POLICIES["full-model"](heavy) == EnginePolicy(
        heavy, engine=FULL_MODEL, name="full-model"
    )
    assert POLICIES["greedy-nearest"](heavy) == GreedyNearest()
    assert POLICIES["ranked-chain"](heavy) == RankedChain()


def feasible(built: BuiltModel, decision: dict[tuple[int, int], int]) -> bool:
    """Whether a decision keeps the evaluation model (replay's own check)."""
    try:
        check_decision(decision, built, order_id="o", policy="p")
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def standard():
    return sample_scenario()


def test_engine_is_never_costlier_than_a_baseline_on_one_order(standard) -> None:
    """The engine's cost is at most either baseline's on each single order.

    On each of the standard sample's first 100 orders, on the initial stock: the engine is
    optimal for the evaluation model (rules == evaluation), and the baselines are feasible
    plans of that model (and deterministic). Each baseline is beaten on some order.
    """
    rules = standard.rules
    engine, baselines = EnginePolicy(rules), (GreedyNearest(), RankedChain())
    policy = rules.strategies[0].policy
    beaten = {p.name: 0 for p in baselines}
    for o in standard.orders[:100]:
        built = build_model(o, standard.network, standard.stock, policy, {})
        best = objective(built, engine.decide(o, built, standard.network, standard.stock, {}))
        for baseline in baselines:
            decision = baseline.decide(o, built, standard.network, standard.stock, {})
            assert decision == baseline.decide(o, built, standard.network, standard.stock, {})
            assert feasible(built, decision), (o.order_id, baseline.name)
            cost = objective(built, decision)
            assert best <= cost, (o.order_id, baseline.name)
            beaten[baseline.name] += best < cost
    assert all(count > 0 for count in beaten.values()), beaten


def test_fast_and_full_model_engines_cost_the_same_over_a_replay() -> None:
    """The fast engine and the full CP-SAT model give equal costs over a replay.

    Both are exact, so they reach the same optimum order by order; the replays of 50
    sample orders have equal costs and units shipped.
    """
    scenario = sample_scenario(n_stores=30, n_skus=200, n_orders=50)
    fast = replay(scenario, EnginePolicy(scenario.rules), scenario_name="s", seed=7)
    full = replay(scenario, full_model(scenario.rules), scenario_name="s", seed=7)
    assert len(fast) == len(full) == 50
    assert [r.cost for r in fast] == [r.cost for r in full]
    assert [r.units_shipped for r in fast] == [r.units_shipped for r in full]
    assert {r.policy for r in full} == {"full-model"}
