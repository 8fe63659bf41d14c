"""RoutingService over a real socket: plans, health, reflection, errors and deadlines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from models.scenario import Scenario
from router.engine import plan_order
from router.service.convert import order_to_proto
from router.v1 import router_pb2
from tests.service.conftest import Running, order, run


def test_plan_order_matches_the_engine(server: Running, small_scenario: Scenario) -> None:
    """PlanOrder returns the engine's plan: same status, objective and shipments."""
    sc = small_scenario
    domain = plan_order(sc.orders[0], sc.network, sc.stock, sc.rules)
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
    """explain=true adds the model (every candidate, every line); it does not change the plan."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(small_scenario.orders[0]))
    plain = server.routing.PlanOrder(request, timeout=30).plan
    request.explain = True
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

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(cast(grpc.Call, caught.value))
    assert status is not None
    [detail] = status.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    fields = [v.field for v in bad_request.field_violations]
    assert sorted(fields) == [
        "order.created_at",
        "order.lines[0].quantity",
        "order.lines[1].sku",
        "order.service",
        "order.ship_to.latitude",
    ]
    assert all(v.description for v in bad_request.field_violations)


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
    msg = order_to_proto(order(("Z", 1), ("A", 1), allow_partial=False))

    plan = server.routing.PlanOrder(router_pb2.PlanOrderRequest(order=msg), timeout=30).plan

    assert plan.status == router_pb2.SOLVE_STATUS_INFEASIBLE
    assert not plan.HasField("objective")
    assert not plan.shipments
    assert {u.line_id: u.quantity for u in plan.unfulfilled} == {"l1": 1, "l2": 1}
    assert all(u.reason != router_pb2.UNFULFILLED_REASON_UNSPECIFIED for u in plan.unfulfilled)


@pytest.fixture
def one_worker(large_scenario: Scenario) -> Iterator[Running]:
    """A one-worker server for the large scenario, whose order takes ~60 s to solve fully."""
    yield from run(large_scenario, max_workers=1, default_time_limit_s=60.0)


def _small_request(large_scenario: Scenario) -> router_pb2.PlanOrderRequest:
    sku = large_scenario.orders[0].lines[0].sku
    return router_pb2.PlanOrderRequest(order=order_to_proto(order((sku, 1), order_id="next")))


def test_tiny_deadline_returns_and_frees_the_worker(
    one_worker: Running, large_scenario: Scenario
) -> None:
    """A 0.3 s deadline ends the call at once and stops the solve: the one worker is free again.

    Were the solve not cut, the next call would queue behind it for a minute.
    """
    request = router_pb2.PlanOrderRequest(order=order_to_proto(large_scenario.orders[0]))
    started = time.monotonic()
    try:
        plan = one_worker.routing.PlanOrder(request, timeout=0.3).plan
        assert plan.status != router_pb2.SOLVE_STATUS_UNSPECIFIED
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5

    started = time.monotonic()
    plan = one_worker.routing.PlanOrder(_small_request(large_scenario), timeout=30).plan
    assert plan.order_id == "next"
    assert time.monotonic() - started < 10


def test_cancelled_call_stops_the_solve(one_worker: Running, large_scenario: Scenario) -> None:
    """Cancelling an RPC stops its solve: the one worker serves the next call promptly."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(large_scenario.orders[0]))
    future = one_worker.routing.PlanOrder.future(request)
    time.sleep(0.5)  # the solve is under way
    future.cancel()  # type: ignore[no-untyped-call]

    started = time.monotonic()
    plan = one_worker.routing.PlanOrder(_small_request(large_scenario), timeout=30).plan
    assert plan.order_id == "next"
    assert time.monotonic() - started < 10


def test_request_time_limit_bounds_the_solve(one_worker: Running, large_scenario: Scenario) -> None:
    """A 0.3 s time_limit (no deadline) returns a stopped solve's plan, not a minute's."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(large_scenario.orders[0]))
    request.time_limit.FromMilliseconds(300)
    started = time.monotonic()
    plan = one_worker.routing.PlanOrder(request).plan
    assert time.monotonic() - started < 10
    assert plan.status in (router_pb2.SOLVE_STATUS_FEASIBLE, router_pb2.SOLVE_STATUS_NO_SOLUTION)
    assert plan.solve_time.ToTimedelta().total_seconds() < 5
