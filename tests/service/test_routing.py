"""RoutingService over a real socket: plans, health, reflection, errors and deadlines."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from models.scenario import Scenario
from router.engine import route_order
from router.service.convert import order_to_proto
from router.v1 import router_pb2
from tests.service.conftest import Running, bad_request_fields, order, run


def test_plan_order_matches_the_engine(server: Running, small_scenario: Scenario) -> None:
    """PlanOrder returns the engine's plan: same status, objective and shipments."""
    sc = small_scenario
    domain = route_order(sc.orders[0], sc.network, sc.stock, sc.rules)
    request = router_pb2.PlanOrderRequest(order=order_to_proto(sc.orders[0]))

    plan = server.routing.PlanOrder(request, timeout=30).plan

    assert plan.order_id == "o1"
    assert plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert plan.HasField("objective")
    assert plan.objective == domain.objective_amount
    assert [(s.node_id, [(x.line_id, x.quantity) for x in s.lines]) for s in plan.shipments] == [
        (s.node_id, [(x.line_id, x.quantity) for x in s.lines]) for s in domain.shipments
    ]
    assert not plan.HasField("explain")


def test_explanation_only_when_asked(server: Running, small_scenario: Scenario) -> None:
    """EXPLAIN_LEVEL_FULL adds the model (every candidate, every line); the plan is the same."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(small_scenario.orders[0]))
    plain = server.routing.PlanOrder(request, timeout=30).plan
    request.explain_level = router_pb2.EXPLAIN_LEVEL_FULL
    explained = server.routing.PlanOrder(request, timeout=30).plan

    assert explained.objective == plain.objective
    model = explained.explain.model
    assert {c.node_id for c in model.candidates} == {"west", "mid", "east"}
    assert [line.line_id for line in model.lines] == ["l1", "l2"]
    assert all(len(c.lines) == 2 for c in model.candidates)


def test_health_is_serving(server: Running) -> None:
    """Health reports SERVING overall and for router.v1.RoutingService."""
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "router.v1.RoutingService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_service(server: Running) -> None:
    """Reflection lists router.v1.RoutingService and serves its descriptor to a client."""
    database = ProtoReflectionDescriptorDatabase(server.channel)
    assert "router.v1.RoutingService" in database.get_services()
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName("router.v1.RoutingService").FindMethodByName("PlanOrder")
    assert method.input_type.full_name == "router.v1.PlanOrderRequest"


def test_bad_input_lists_every_bad_field(server: Running, small_scenario: Scenario) -> None:
    """Several bad fields at once give INVALID_ARGUMENT with one BadRequest violation each."""
    msg = order_to_proto(order(("A", 2), ("NOPE", 1)))
    msg.lines[0].quantity = -3
    msg.ship_to.latitude = 91.0
    msg.service = "teleport"
    msg.created_at.seconds = -(10**13)  # before year 1: not a valid Timestamp

    with pytest.raises(grpc.RpcError) as caught:
        server.routing.PlanOrder(router_pb2.PlanOrderRequest(order=msg), timeout=30)

    assert sorted(bad_request_fields(caught.value)) == [
        "order.created_at",
        "order.lines[0].quantity",
        "order.lines[1].sku",
        "order.service",
        "order.ship_to.latitude",
    ]


def test_bad_time_limit_is_invalid_argument(server: Running, small_scenario: Scenario) -> None:
    """A time limit that is not positive is bad input, reported at its own path."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(small_scenario.orders[0]))
    request.time_limit.FromMilliseconds(-5)
    with pytest.raises(grpc.RpcError) as caught:
        server.routing.PlanOrder(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "time_limit" in (caught.value.details() or "")


def test_unservable_order_is_an_infeasible_plan(server: Running) -> None:
    """No stock anywhere and no partial allowed: OK with status INFEASIBLE, a reason per line."""
    msg = order_to_proto(order(("C", 1), ("A", 1), allow_partial=False))

    plan = server.routing.PlanOrder(router_pb2.PlanOrderRequest(order=msg), timeout=30).plan

    assert plan.status == router_pb2.SOLVE_STATUS_INFEASIBLE
    assert not plan.HasField("objective")
    assert not plan.shipments
    # C is stocked nowhere; A is stocked, but without C the order cannot ship complete.
    assert [(u.line_id, u.quantity, u.reason) for u in plan.unfulfilled] == [
        ("l1", 1, router_pb2.UNFULFILLED_REASON_NO_STOCK),
        ("l2", 1, router_pb2.UNFULFILLED_REASON_ORDER_INFEASIBLE),
    ]


@pytest.fixture
def one_worker(large_scenario: Scenario) -> Iterator[Running]:
    """A one-worker server for the large scenario, whose order takes ~60 s to solve uncut.

    With one worker a second call waits for the first to finish, so a follow-up call with a
    deadline of FOLLOW_UP_TIMEOUT_S succeeds only if the first solve was stopped early.
    """
    yield from run(large_scenario, max_workers=1, default_time_limit_s=60.0)


FOLLOW_UP_TIMEOUT_S = 10.0
"""Far shorter than the uncut solve (60 s), far longer than a small order's solve."""


def _large_request(large_scenario: Scenario) -> router_pb2.PlanOrderRequest:
    return router_pb2.PlanOrderRequest(order=order_to_proto(large_scenario.orders[0]))


def _follow_up(server: Running, large_scenario: Scenario) -> router_pb2.Plan:
    """Plan a one-line order; DEADLINE_EXCEEDED when the worker is still busy."""
    sku = large_scenario.orders[0].lines[0].sku
    request = router_pb2.PlanOrderRequest(order=order_to_proto(order((sku, 1), order_id="next")))
    return server.routing.PlanOrder(request, timeout=FOLLOW_UP_TIMEOUT_S).plan


STOPPED = (router_pb2.SOLVE_STATUS_FEASIBLE, router_pb2.SOLVE_STATUS_NO_SOLUTION)
"""The statuses of a solve stopped before it proved its plan optimal."""


def test_tiny_deadline_returns_a_stopped_plan_in_time(
    one_worker: Running, large_scenario: Scenario
) -> None:
    """A 0.3 s deadline gets a plan, not DEADLINE_EXCEEDED, and leaves the worker free.

    The servicer ends the solve DEADLINE_MARGIN_S (0.1 s) before the deadline, so the plan
    reaches the client in time: FEASIBLE, or NO_SOLUTION if no plan was found that soon.
    Were the deadline not passed to the solve, it would run on and the call would fail.
    """
    plan = one_worker.routing.PlanOrder(_large_request(large_scenario), timeout=0.3).plan

    assert plan.status in STOPPED
    assert _follow_up(one_worker, large_scenario).order_id == "next"


def test_cancelled_call_stops_the_solve(one_worker: Running, large_scenario: Scenario) -> None:
    """Cancelling an RPC stops its solve: the one worker serves a follow-up call in time."""
    future = one_worker.routing.PlanOrder.future(_large_request(large_scenario))
    time.sleep(0.5)  # let the solve get under way before cancelling it
    future.cancel()  # type: ignore[no-untyped-call]

    assert _follow_up(one_worker, large_scenario).order_id == "next"


def test_request_time_limit_bounds_the_solve(one_worker: Running, large_scenario: Scenario) -> None:
    """A 0.3 s time_limit (no deadline) returns a stopped solve's plan and frees the worker.

    The follow-up is queued behind the limited call; it is served within its deadline only
    if the solve stops at its time_limit rather than at the server's 60 s.
    """
    request = _large_request(large_scenario)
    request.time_limit.FromMilliseconds(300)
    limited = one_worker.routing.PlanOrder.future(request)

    assert _follow_up(one_worker, large_scenario).order_id == "next"
    assert limited.result().plan.status in STOPPED
