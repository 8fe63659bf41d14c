"""PlanOrder's explanations over a real socket: top_k alternatives, the runner-up, counterfactuals.

On the small scenario the order (A×2, B×1) ships best from ``mid`` alone; other plans ship
from {east, mid}, {east, west}, {west}, {east} or from no node at all (all backordered).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from models.scenario import Scenario
from router.engine.solve import FULL_MODEL
from router.service.convert import MAX_COUNTERFACTUALS, MAX_TOP_K, order_to_proto
from router.v1 import router_pb2
from tests.service.conftest import Running, bad_request_fields, order, run


def _request(small_scenario: Scenario, **fields: object) -> router_pb2.PlanOrderRequest:
    msg = order_to_proto(small_scenario.orders[0])
    return router_pb2.PlanOrderRequest(order=msg, **fields)  # type: ignore[arg-type]


def _nodes(shipments: object) -> frozenset[str]:
    return frozenset(s.node_id for s in shipments)  # type: ignore[attr-defined]


def test_top_k_returns_k_minus_one_alternatives_best_first(
    server: Running, small_scenario: Scenario
) -> None:
    """top_k=k gives the plan and k−1 alternatives, best first, each over its own node set.

    Costs are non-decreasing from the plan's, and the shipping node sets are distinct from
    each other and from the plan's.
    """
    plan = server.routing.PlanOrder(_request(small_scenario, top_k=4), timeout=30).plan

    assert plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert len(plan.alternatives) == 3
    costs = [plan.objective, *(a.objective for a in plan.alternatives)]
    assert costs == sorted(costs)
    node_sets = [_nodes(plan.shipments), *(_nodes(a.shipments) for a in plan.alternatives)]
    assert len(set(node_sets)) == len(node_sets)
    for alternative in plan.alternatives:
        assert alternative.shipments  # on this order the next best plans all ship something
        assert all(s.cost > 0 and s.lines for s in alternative.shipments)


@pytest.mark.parametrize("top_k", [0, 1])
def test_top_k_of_0_or_1_is_just_the_plan(
    server: Running, small_scenario: Scenario, top_k: int
) -> None:
    """Without explain, top_k 0 or 1 returns no alternatives and no counterfactuals."""
    plan = server.routing.PlanOrder(_request(small_scenario, top_k=top_k), timeout=30).plan
    assert plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert not plan.alternatives
    assert not plan.counterfactuals


def test_explain_includes_the_runner_up(server: Running, small_scenario: Scenario) -> None:
    """explain=true adds the runner-up when another plan exists.

    With top_k unset that is exactly one alternative, no cheaper than the plan, over another
    node set, and the same as top_k=3's first; explain with top_k=3 still gives two.
    """
    plan = server.routing.PlanOrder(_request(small_scenario, explain=True), timeout=30).plan
    ranked = server.routing.PlanOrder(_request(small_scenario, top_k=3), timeout=30).plan

    [runner_up] = plan.alternatives
    assert runner_up.objective >= plan.objective
    assert _nodes(runner_up.shipments) != _nodes(plan.shipments)
    assert runner_up == ranked.alternatives[0]

    more = _request(small_scenario, explain=True, top_k=3)
    assert len(server.routing.PlanOrder(more, timeout=30).plan.alternatives) == 2


def test_counterfactual_of_a_candidate_ships_from_it(
    server: Running, small_scenario: Scenario
) -> None:
    """A counterfactual for a candidate node ships from it and costs delta ≥ 0 over the plan.

    delta is its objective − the plan's objective; 0 for the node the optimum ships from.
    """
    request = _request(small_scenario, counterfactual_node_ids=["west", "mid"])
    plan = server.routing.PlanOrder(request, timeout=30).plan

    assert [c.node_id for c in plan.counterfactuals] == ["west", "mid"]
    for counterfactual in plan.counterfactuals:
        assert counterfactual.status == router_pb2.SOLVE_STATUS_OPTIMAL
        assert counterfactual.HasField("objective") and counterfactual.HasField("delta")
        assert counterfactual.delta >= 0
        assert counterfactual.delta == pytest.approx(counterfactual.objective - plan.objective)
        assert counterfactual.node_id in _nodes(counterfactual.shipments)
    west, mid = plan.counterfactuals
    assert west.delta > 0  # the optimum does not ship from west
    assert _nodes(plan.shipments) == {"mid"} and mid.delta == 0
    for counterfactual in plan.counterfactuals:  # proven: bound = objective, no gap
        assert counterfactual.bound == counterfactual.objective and counterfactual.gap == 0


def test_counterfactual_of_an_excluded_node_is_infeasible_with_the_reason(
    server: Running,
) -> None:
    """A counterfactual for an excluded node is INFEASIBLE, its detail the exclusion reason.

    east has no unit of A: there is no objective or delta, and the detail names the reason
    explain.excluded reports for the node.
    """
    request = router_pb2.PlanOrderRequest(
        order=order_to_proto(order(("A", 1))),
        explain_level=router_pb2.EXPLAIN_LEVEL_FULL,
        counterfactual_node_ids=["east"],
    )
    plan = server.routing.PlanOrder(request, timeout=30).plan

    [counterfactual] = plan.counterfactuals
    assert counterfactual.node_id == "east"
    assert counterfactual.status == router_pb2.SOLVE_STATUS_INFEASIBLE
    assert not counterfactual.HasField("objective")
    assert not counterfactual.HasField("delta")
    assert not counterfactual.shipments
    [exclusion] = [e for e in plan.explain.excluded if e.node_id == "east"]
    assert exclusion.reason == router_pb2.EXCLUSION_REASON_NO_AVAILABLE_STOCK
    assert "excluded" in counterfactual.detail
    assert "NO_AVAILABLE_STOCK" in counterfactual.detail


def _violations(server: Running, request: router_pb2.PlanOrderRequest) -> list[str]:
    """The BadRequest field paths of a call that must fail with INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        server.routing.PlanOrder(request, timeout=30)
    return sorted(bad_request_fields(caught.value))


@pytest.mark.parametrize("top_k", [-1, MAX_TOP_K + 1])
def test_bad_top_k_and_unknown_node_are_invalid_argument(
    server: Running, small_scenario: Scenario, top_k: int
) -> None:
    """A top_k outside 0..10 and an unknown node id are INVALID_ARGUMENT, each at its path.

    The paths are ``top_k`` and ``counterfactual_node_ids[i]``, i the unknown id's index.
    """
    request = _request(small_scenario, top_k=top_k, counterfactual_node_ids=["mid", "nowhere"])
    assert _violations(server, request) == ["counterfactual_node_ids[1]", "top_k"]


def test_limits_are_inclusive_and_too_many_nodes_is_invalid_argument(
    server: Running, small_scenario: Scenario
) -> None:
    """top_k=10 and 20 counterfactual ids are served; 21 ids is a violation at the list."""
    ok = _request(
        small_scenario, top_k=MAX_TOP_K, counterfactual_node_ids=["mid"] * MAX_COUNTERFACTUALS
    )
    plan = server.routing.PlanOrder(ok, timeout=60).plan
    assert len(plan.counterfactuals) == MAX_COUNTERFACTUALS
    assert 1 <= len(plan.alternatives) <= MAX_TOP_K - 1

    too_many = _request(small_scenario, counterfactual_node_ids=["mid"] * (MAX_COUNTERFACTUALS + 1))
    assert _violations(server, too_many) == ["counterfactual_node_ids"]


@pytest.fixture(scope="module")
def full_model_server(small_scenario: Scenario) -> Iterator[Running]:
    """A server for the small scenario that plans with the cpsat-full engine."""
    yield from run(small_scenario, engine=FULL_MODEL)


def test_server_engine_plans_every_request(
    server: Running, full_model_server: Running, small_scenario: Scenario
) -> None:
    """The server's engine (ServerConfig.engine, fast by default) plans every request.

    Both engines reach the same optimum and price a counterfactual alike.
    """
    request = _request(small_scenario, top_k=2, counterfactual_node_ids=["west"])
    fast = server.routing.PlanOrder(request, timeout=30).plan
    full = full_model_server.routing.PlanOrder(request, timeout=30).plan

    assert fast.engine == "fast"
    assert full.engine == "cpsat-full"
    assert full.objective == fast.objective
    assert full.counterfactuals[0].delta == pytest.approx(fast.counterfactuals[0].delta)
    assert len(full.alternatives) == 1


def test_unknown_server_engine_is_refused(small_scenario: Scenario) -> None:
    """A server cannot be built with an engine that does not exist."""
    with pytest.raises(ValueError, match="unknown engine"):
        next(run(small_scenario, engine="magic"))


def test_explain_true_is_the_summary_without_the_full_model(
    server: Running, small_scenario: Scenario
) -> None:
    """explain=true returns the summary: the chosen node's terms, the runner-up, the counts.

    On the small scenario the plan ships from mid; the runner-up's nodes other than mid are
    named with their terms and its cost over the plan. No candidate list, no exclusion list:
    those are EXPLAIN_LEVEL_FULL's. east holds no A but B, so every node is a candidate.
    """
    plan = server.routing.PlanOrder(_request(small_scenario, explain=True), timeout=30).plan

    assert not plan.explain.HasField("model") and not plan.explain.excluded
    summary = plan.explain.summary
    assert (summary.candidate_count, summary.excluded_count) == (3, 0)
    assert [c.node_id for c in summary.chosen] == [s.node_id for s in plan.shipments] == ["mid"]
    [runner_up] = plan.alternatives
    assert [c.node_id for c in summary.runner_up] == [
        s.node_id for s in runner_up.shipments if s.node_id != "mid"
    ]
    assert summary.runner_up_delta == pytest.approx(runner_up.objective - plan.objective)
    assert [line.line_id for line in summary.lines] == ["l1", "l2"]


def test_full_level_adds_the_model_and_every_exclusion(server: Running) -> None:
    """EXPLAIN_LEVEL_FULL: the summary plus every candidate's terms and every excluded node.

    For one unit of A, east (no A) is excluded; the summary groups it under its reason with
    its distance, 4° of longitude from the customer at 1° (444.8 km).
    """
    request = router_pb2.PlanOrderRequest(
        order=order_to_proto(order(("A", 1))), explain_level=router_pb2.EXPLAIN_LEVEL_FULL
    )
    explain = server.routing.PlanOrder(request, timeout=30).plan.explain

    assert {c.node_id for c in explain.model.candidates} == {"west", "mid"}
    [east] = explain.excluded
    assert east.node_id == "east" and east.distance_km == pytest.approx(444.8, abs=0.1)
    [group] = explain.summary.excluded
    assert group.reason == router_pb2.EXCLUSION_REASON_NO_AVAILABLE_STOCK
    assert group.count == 1 and list(group.nearest) == [east]
    assert explain.summary.candidate_count == 2


@pytest.mark.parametrize(
    ("fields", "explained"),
    [
        ({}, False),
        ({"explain_level": router_pb2.EXPLAIN_LEVEL_NONE}, False),
        ({"explain_level": router_pb2.EXPLAIN_LEVEL_SUMMARY}, True),
        ({"explain": True, "explain_level": router_pb2.EXPLAIN_LEVEL_SUMMARY}, True),
    ],
)
def test_explain_level_decides_when_set(
    server: Running, small_scenario: Scenario, fields: dict[str, object], explained: bool
) -> None:
    """explain_level, when set, says whether there is an explanation; unset, explain does."""
    plan = server.routing.PlanOrder(_request(small_scenario, **fields), timeout=30).plan
    assert plan.HasField("explain") is explained
    assert not plan.explain.HasField("model")


@pytest.mark.parametrize(
    "fields",
    [{"explain": True, "explain_level": router_pb2.EXPLAIN_LEVEL_NONE}, {"explain_level": 9}],
)
def test_contradictory_or_unknown_explain_level_is_invalid_argument(
    server: Running, small_scenario: Scenario, fields: dict[str, object]
) -> None:
    """explain=true with EXPLAIN_LEVEL_NONE, or a level the proto does not have, is refused."""
    assert _violations(server, _request(small_scenario, **fields)) == ["explain_level"]


def test_route_order_and_test_drive_explain_alike(
    server: Running, small_scenario: Scenario
) -> None:
    """RouteOrder and TestDrive take explain and explain_level as PlanOrder does."""
    msg = order_to_proto(small_scenario.orders[0])
    routed = server.routing.RouteOrder(
        router_pb2.RouteOrderRequest(request_id="explained", order=msg, explain=True), timeout=30
    )
    assert routed.plan.explain.summary.chosen and not routed.plan.explain.HasField("model")
    driven = server.rules.TestDrive(
        router_pb2.TestDriveRequest(
            document="name: t\nstrategies:\n  - name: all\n",
            order=msg,
            explain_level=router_pb2.EXPLAIN_LEVEL_FULL,
        ),
        timeout=30,
    )
    assert driven.plan.explain.model.candidates and driven.plan.explain.summary.chosen
