"""Done when: the service logs its decisions and answers for them, now as then.

Real servers over real sockets on the small scenario (DC ``west`` at 0°, store ``mid`` at
2° with 2 A and 3 B, DC ``east`` at 5°; orders ship to 1°). ``mid`` is the nearest node
for A and B, so an order of 2 A + 1 B goes there alone: 10.75 (tests/service/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.scenario import Scenario
from router.service.convert import order_to_proto
from router.v1 import router_pb2
from tests.service.conftest import Running, order, run
from tests.service.test_reservations import route

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(small_scenario: Scenario) -> Iterator[Running]:
    """A fresh server (its own memory ledger) per test: stock starts as the scenario's."""
    yield from run(small_scenario)


def _replay(s: Running, decision_id: str, now: bool = False) -> router_pb2.ReplayDecisionResponse:
    request = router_pb2.ReplayDecisionRequest(decision_id=decision_id, compare_now=now)
    return s.routing.ReplayDecision(request, timeout=20)


def test_a_route_is_logged_with_its_reservation_and_inputs(served: Running):
    """The answer's decision_id names a ROUTE decision holding its reservation and inputs."""
    answer = served.routing.RouteOrder(route("d1", ("A", 2), ("B", 1)), timeout=20)
    got = served.routing.GetDecision(
        router_pb2.GetDecisionRequest(decision_id=answer.decision_id), timeout=20
    ).decision
    assert got.kind == router_pb2.DECISION_KIND_ROUTE
    assert got.reservation_id == answer.reservation.reservation_id
    assert got.request_id == "d1" and got.order_id == "o1"
    assert list(got.node_ids) == ["mid"]
    assert got.plan == answer.plan
    columns = got.inputs.stock
    assert list(columns.skus) == ["A", "B"] and sum(columns.counts) == len(columns.node_ids) == 4
    # a retry answers the stored response: the same decision, none logged twice
    again = served.routing.RouteOrder(route("d1", ("A", 2), ("B", 1)), timeout=20)
    assert again.decision_id == answer.decision_id
    listed = served.routing.ListDecisions(router_pb2.ListDecisionsRequest(), timeout=20)
    assert [d.decision_id for d in listed.decisions] == [answer.decision_id]


def test_a_plan_is_logged_only_when_asked(served: Running):
    """PlanOrder logs nothing unless record is set; then a PLAN decision without reservation."""
    msg = order_to_proto(order(("A", 1)))
    plain = served.routing.PlanOrder(router_pb2.PlanOrderRequest(order=msg), timeout=20)
    assert plain.decision_id == ""
    recorded = served.routing.PlanOrder(
        router_pb2.PlanOrderRequest(order=msg, record=True), timeout=20
    )
    kinds = router_pb2.ListDecisionsRequest(kind=router_pb2.DECISION_KIND_PLAN)
    [logged] = served.routing.ListDecisions(kinds, timeout=20).decisions
    assert logged.decision_id == recorded.decision_id and not logged.reservation_id
    assert _replay(served, recorded.decision_id).identical


def test_now_differs_only_by_what_others_did(served: Running):
    """Right after routing, "now" is the same plan: the order's own units are not "moved".

    Once another order takes mid's A, now ships A from west (the only A left), and the
    changes name mid/A.
    """
    first = served.routing.RouteOrder(route("d1", ("A", 2), ("B", 1)), timeout=20)
    same = _replay(served, first.decision_id, now=True)
    assert same.identical and list(same.changes) == []
    assert same.explanation.startswith("the same plan now")
    served.routing.ReleaseReservation(
        router_pb2.ReleaseReservationRequest(
            request_id="rel", reservation_id=first.reservation.reservation_id
        ),
        timeout=20,
    )
    other = served.routing.RouteOrder(route("d2", ("A", 2), order_id="o2"), timeout=20)
    assert [s.node_id for s in other.plan.shipments] == ["mid"]  # mid's 2 A are gone
    moved = _replay(served, first.decision_id, now=True)
    assert moved.identical  # the logged decision still replays as it was
    ships_a = {s.node_id for s in moved.now.shipments if any(x.sku == "A" for x in s.lines)}
    assert ships_a == {"west"}
    assert ("stock", "mid/A", "2", "0") in {(c.kind, c.key, c.then, c.now) for c in moved.changes}
    assert "ships from" in moved.explanation and "stock (1)" in moved.explanation


def test_unknown_decisions_are_not_found(served: Running):
    """An id never logged (or pruned) is NOT_FOUND to every lookup and to a replay."""
    import grpc

    for call in (
        lambda: served.routing.GetDecision(
            router_pb2.GetDecisionRequest(decision_id="D-none"), timeout=20
        ),
        lambda: _replay(served, "D-none"),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_decision_made_with_other_scenario_rules_is_not_replayed(small_scenario: Scenario):
    """A plan made with the scenario's own rules replays only where those rules are the same.

    A server whose scenario rules differ refuses (NotReplayableError) rather than answer
    that the plan differs.
    """
    from models.capacity import CapacityUsed
    from models.decision import DecisionKind
    from models.errors import NotReplayableError
    from models.plan import ExplainLevel
    from models.rules import Policy, RuleSet
    from router.engine.stop import Stop
    from router.service.convert import plan_to_proto
    from router.service.decisions import DecisionLog, Planned, solve

    sc = small_scenario
    planned = Planned(
        order(("A", 1)), sc.network, sc.stock, CapacityUsed(), 0, None, None, 1.0,
        ExplainLevel.NONE,
    )  # fmt: skip
    plan = plan_to_proto(solve(planned, sc.rules, Stop(1.0), "fast"), explain=ExplainLevel.NONE)
    record = DecisionLog(sc.network, "fast", sc.rules).record(DecisionKind.PLAN, planned, plan)
    same = DecisionLog(sc.network, "fast", sc.rules)
    _, replayed = same.replay(record, lambda _: sc.rules, Stop)
    assert replayed.shipments == plan.shipments
    other = DecisionLog(sc.network, "fast", RuleSet.single(Policy(split_penalty=9.0)))
    with pytest.raises(NotReplayableError, match="other scenario rules"):
        other.replay(record, lambda _: sc.rules, Stop)
