"""Done when: real calls move the service's metrics with the right labels, and log one line.

A server on a free port with its metrics endpoint; the tests call it over gRPC and read
``GET /metrics`` as a Prometheus scraper would (text format, parsed by prometheus-client).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from models.scenario import Scenario
from router.ledger.memory import MemoryLedger
from router.service.config import DEFAULT_METRICS_PORT, AdmissionSettings, ServerConfig
from router.service.observe import ObserveInterceptor, request_fields
from router.service.server import create_server
from router.telemetry import JsonFormatter
from router.v1 import router_pb2, router_pb2_grpc
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.service.conftest import Samples, scrape
from tests.service.test_reservations import Interfering, route
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(120)

ROUTING = "router.v1.RoutingService"
ROUTER = Path(sys.executable).parent / "router"


class Scraped:
    """A running server, its stubs, and its ``/metrics`` read over HTTP."""

    def __init__(self, port: int, metrics_port: int, channel: grpc.Channel) -> None:
        self.port = port
        self.metrics_port = metrics_port
        self.routing = router_pb2_grpc.RoutingServiceStub(channel)
        self.inventory = router_pb2_grpc.InventoryServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def samples(self) -> Samples:
        """Every sample of ``GET /metrics``, by name and sorted labels."""
        return scrape(self.metrics_port)

    def value(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when the series does not exist."""
        return self.samples().get((name, tuple(sorted(labels.items()))), 0.0)


@contextmanager
def scraped(scenario: Scenario, ledger: Any = None, **config: Any) -> Iterator[Scraped]:
    """A server for ``scenario`` with metrics on a free port, until the caller is done."""
    if ledger is not None:
        ledger.load(scenario.network, scenario.stock)
    config.setdefault("ledger_url", "memory://")
    server, port = create_server(ServerConfig(port=0, metrics_port=0, **config), scenario, ledger)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert server.metrics_port is not None
            yield Scraped(port, server.metrics_port, channel)
    finally:
        server.stop(0).wait(10)


def handled(s: Scraped, method: str, code: str, service: str = ROUTING) -> float:
    """``grpc_server_handled_total`` of one method and code."""
    return s.value(
        "grpc_server_handled_total",
        grpc_type="unary",
        grpc_service=service,
        grpc_method=method,
        grpc_code=code,
    )


def test_rpc_metrics_count_every_call_by_method_and_code(small_scenario: Scenario):
    """started/handled/handling_seconds move per call, with go-grpc-prometheus's labels.

    OK, NOT_FOUND (an unknown reservation) and INVALID_ARGUMENT (a request over its limit,
    refused by the limits interceptor before the servicer) each land in their code's series,
    named as Go names them (``NotFound``); started counts all of them; the histogram's count
    equals the calls handled.
    """
    with scraped(small_scenario) as s:
        s.routing.PlanOrder(
            router_pb2.PlanOrderRequest(order=route("x", ("A", 1)).order), timeout=30
        )
        with pytest.raises(grpc.RpcError) as missing:
            s.routing.ConfirmReservation(
                router_pb2.ConfirmReservationRequest(request_id="c1", reservation_id="R-none"),
                timeout=10,
            )
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as bad:
            s.routing.RouteOrder(route("r" * 100_000, ("A", 1)), timeout=10)
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        s.health.Check(health_pb2.HealthCheckRequest(), timeout=10)

        labels = {"grpc_type": "unary", "grpc_service": ROUTING}
        assert handled(s, "PlanOrder", "OK") == 1
        assert handled(s, "ConfirmReservation", "NotFound") == 1
        assert handled(s, "RouteOrder", "InvalidArgument") == 1
        assert handled(s, "Check", "OK", service="grpc.health.v1.Health") == 1
        for method in ("PlanOrder", "ConfirmReservation", "RouteOrder"):
            assert s.value("grpc_server_started_total", grpc_method=method, **labels) == 1
            count = s.value("grpc_server_handling_seconds_count", grpc_method=method, **labels)
            assert count == 1
        assert not any(name.endswith("_created") for name, _ in s.samples())


def test_refusals_of_the_access_check_are_counted(small_scenario: Scenario):
    """A call without a token to a server with auth on: Unauthenticated in handled_total."""
    with scraped(small_scenario, auth=True) as s:
        with pytest.raises(grpc.RpcError) as refused:
            s.routing.PlanOrder(
                router_pb2.PlanOrderRequest(order=route("x", ("A", 1)).order), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert handled(s, "PlanOrder", "Unauthenticated") == 1
        assert handled(s, "PlanOrder", "OK") == 0


def test_domain_metrics_follow_reservations_replays_feeds_and_the_sweeper(
    small_scenario: Scenario,
):
    """Held, replayed, confirmed, released and expired reservations; feed outcomes; plans.

    Four RouteOrders (one replayed by request_id, one with a 0.2 s TTL left to expire), one
    confirm, one release; a snapshot applied, repeated (duplicate) and an older one (stale);
    the sweeper runs every 0.1 s and stamps its last success.
    """
    with scraped(small_scenario, sweep_interval_s=0.1) as s:
        held = [s.routing.RouteOrder(route(f"r{i}", ("A", 1)), timeout=30) for i in range(3)]
        s.routing.RouteOrder(route("r0", ("A", 1)), timeout=30)  # a replay
        s.routing.RouteOrder(route("short", ("B", 1), ttl_s=0.2), timeout=30)
        s.routing.ConfirmReservation(
            router_pb2.ConfirmReservationRequest(
                request_id="c", reservation_id=held[0].reservation.reservation_id
            ),
            timeout=10,
        )
        s.routing.ReleaseReservation(
            router_pb2.ReleaseReservationRequest(
                request_id="x", reservation_id=held[1].reservation.reservation_id
            ),
            timeout=10,
        )
        for sequence in (5, 5, 4):
            s.inventory.ApplyStockSnapshot(
                router_pb2.ApplyStockSnapshotRequest(
                    feed="wms",
                    sequence=sequence,
                    node_id="east",
                    positions=[router_pb2.SnapshotPosition(sku="C", on_hand=7)],
                ),
                timeout=10,
            )
        deadline = time.monotonic() + 20
        while s.value("router_reservations_total", outcome="expired") < 1:
            assert time.monotonic() < deadline, "the sweeper expired nothing"
            time.sleep(0.1)

        outcomes = {o: s.value("router_reservations_total", outcome=o) for o in _OUTCOMES}
        assert outcomes == {"held": 4, "confirmed": 1, "released": 1, "expired": 1}
        assert s.value("router_idempotent_replays_total", grpc_method="RouteOrder") == 1
        feeds = {
            o: s.value("router_feed_updates_total", kind="snapshot", outcome=o)
            for o in ("applied", "duplicate", "stale")
        }
        assert feeds == {"applied": 1, "duplicate": 1, "stale": 1}
        assert s.value("router_feed_updates_total", kind="delta", outcome="applied") == 0
        stamped = s.value("router_feed_last_applied_timestamp_seconds", feed="wms")
        assert abs(stamped - time.time()) < 60
        assert abs(s.value("router_sweeper_last_success_timestamp_seconds") - time.time()) < 5
        assert s.value("router_sweeps_total", result="ok") >= 1
        plans = s.value(
            "router_plans_by_strategy_total", strategy="default", status="SOLVE_STATUS_OPTIMAL"
        )
        assert plans == 4  # the replay is not a new plan
        assert s.value("router_solve_duration_seconds_count", engine="fast") == 4
        assert s.value("router_plan_gap_bucket", le="0.0") == 4  # all proven optimal
        assert s.value("router_rule_version_active") == 1


_OUTCOMES = ("held", "confirmed", "released", "expired")


def test_a_stock_conflict_and_its_re_solve_are_counted(small_scenario: Scenario):
    """Stock taken between solve and reserve: one conflict, one re-solve, one reservation."""
    ledger = Interfering()
    with scraped(small_scenario, ledger) as s:

        def second_client(port: int = s.port) -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as other:
                stub = router_pb2_grpc.RoutingServiceStub(other)
                stub.RouteOrder(route("other", ("A", 3), order_id="o2"), timeout=10)

        ledger.meddle = second_client
        answer = s.routing.RouteOrder(route("r1", ("A", 4)), timeout=10)
        assert answer.attempts == 2
        assert s.value("router_stock_conflicts_total") == 1
        assert s.value("router_resolve_attempts_total") == 1
        assert s.value("router_reservations_total", outcome="held") == 2


def test_each_call_logs_one_line_with_its_ids_status_and_trace(
    small_scenario: Scenario, caplog: pytest.LogCaptureFixture
):
    """One ``router.requests`` record per call: method, status, duration, request/order ids.

    A client's error (NOT_FOUND) is INFO without a traceback; the trace id is the W3C
    ``traceparent``'s the caller sent (the service continues the caller's trace).
    """
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    traceparent = (("traceparent", f"00-{trace_id}-b7ad6b7169203331-01"),)
    with caplog.at_level(logging.DEBUG, logger="router.requests"), scraped(small_scenario) as s:
        s.routing.RouteOrder(route("req-7", ("A", 1), order_id="ORD-7"), timeout=30)
        with pytest.raises(grpc.RpcError):
            s.routing.ConfirmReservation(
                router_pb2.ConfirmReservationRequest(request_id="c9", reservation_id="R-x"),
                timeout=10,
                metadata=traceparent,
            )
    lines = [r for r in caplog.records if r.name == "router.requests"]
    assert [r.method for r in lines] == [  # type: ignore[attr-defined]
        f"/{ROUTING}/RouteOrder",
        f"/{ROUTING}/ConfirmReservation",
    ]
    routed, refused = lines
    assert (routed.status, routed.request_id, routed.order_id) == ("OK", "req-7", "ORD-7")  # type: ignore[attr-defined]
    assert routed.levelno == logging.INFO and routed.duration_ms > 0  # type: ignore[attr-defined]
    assert (refused.status, refused.reservation_id) == ("NOT_FOUND", "R-x")  # type: ignore[attr-defined]
    assert refused.levelno == logging.INFO and refused.exc_info is None
    assert refused.trace_id == trace_id  # type: ignore[attr-defined]


def test_json_formatter_writes_one_object_with_the_extras():
    """A record becomes one line of JSON: time, level, logger, message and its extras."""
    record = logging.LogRecord("router.requests", logging.INFO, "f.py", 1, "%s done", ("x",), None)
    record.status = "OK"
    record.when = datetime(2026, 1, 1, tzinfo=UTC)  # not JSON: written as its str
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "x done" and parsed["level"] == "INFO"
    assert parsed["logger"] == "router.requests" and parsed["status"] == "OK"
    assert parsed["when"] == "2026-01-01 00:00:00+00:00"
    assert parsed["time"].endswith("+00:00")


def test_request_fields_take_the_ids_a_request_carries():
    """request_id, reservation_id and the order's id; nothing for messages without them."""
    request = route("req-1", ("A", 1), order_id="ORD-1")
    assert request_fields(request) == {"request_id": "req-1", "order_id": "ORD-1"}
    confirm = router_pb2.ConfirmReservationRequest(request_id="c", reservation_id="R-1")
    assert request_fields(confirm) == {"request_id": "c", "reservation_id": "R-1"}
    assert request_fields(health_pb2.HealthCheckRequest()) == {}
    assert request_fields(object()) == {}


def test_the_observer_keeps_the_pool_tags_of_the_behaviour_it_wraps():
    """A behaviour tagged ``deferred`` (a solve) stays tagged once observed.

    The priority pool reads the tag off the outermost behaviour: lost, every solve would
    run ahead of health checks under load.
    """
    from router.service.metrics import ServiceMetrics

    def behaviour(request: Any, context: Any) -> None:
        return None

    behaviour.deferred = True  # type: ignore[attr-defined]
    handler = grpc.unary_unary_rpc_method_handler(behaviour)
    details = _Details(f"/{ROUTING}/PlanOrder")
    observed = ObserveInterceptor(ServiceMetrics()).intercept_service(lambda _: handler, details)
    assert observed.unary_unary is not behaviour
    assert observed.unary_unary.deferred is True


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def test_make_run_serves_metrics_on_the_default_port(tmp_path: Path):
    """``router serve`` with no metrics flag serves them on :data:`DEFAULT_METRICS_PORT`.

    Its log is JSON lines, and a request's line has a trace id though nothing is exported
    and the caller sent no traceparent.
    """
    if not _free(DEFAULT_METRICS_PORT):
        pytest.skip(f"port {DEFAULT_METRICS_PORT} is taken on this machine")
    from benchmarks.fuzz import processes

    command = [str(ROUTER), "serve", "--port", "0", "--ledger", "memory://"]
    with processes.running(command, tmp_path / "serve.log") as address:
        with grpc.insecure_channel(address) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            rules = router_pb2_grpc.RulesServiceStub(channel)
            rules.ListRuleVersions(router_pb2.ListRuleVersionsRequest(), timeout=10)
        samples = eventually(lambda: scrape(DEFAULT_METRICS_PORT))
        key = (
            "grpc_server_handled_total",
            tuple(
                sorted(
                    {
                        "grpc_type": "unary",
                        "grpc_service": "grpc.health.v1.Health",
                        "grpc_method": "Check",
                        "grpc_code": "OK",
                    }.items()
                )
            ),
        )
        assert samples[key] == 1
    log = (tmp_path / "serve.log").read_text().splitlines()
    started = [json.loads(line) for line in log if line.startswith("{")]
    assert any("metrics at" in line["message"] for line in started)
    (request,) = [line for line in started if line["logger"] == "router.requests"]
    assert request["method"] == "/router.v1.RulesService/ListRuleVersions"
    assert re.fullmatch("[0-9a-f]{32}", request["trace_id"]) and set(request["trace_id"]) != {"0"}


def test_drain_keeps_serving_while_health_says_not_serving(tmp_path: Path):
    """SIGTERM with ``--drain 3``: health NOT_SERVING at once, calls still answered, then exit."""
    from benchmarks.fuzz import processes

    command = [
        str(ROUTER), "serve", "--port", "0", "--ledger", "memory://", "--metrics-port", "0",
        "--drain", "3",
    ]  # fmt: skip
    process, address = processes.start(command, tmp_path / "serve.log")
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            assert (
                health.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING
            )
            process.send_signal(subprocess.signal.SIGTERM)  # type: ignore[attr-defined]
            status = eventually(lambda: _not_serving(health.Check(request, timeout=2).status))
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            rules = router_pb2_grpc.RulesServiceStub(channel)
            rules.ListRuleVersions(router_pb2.ListRuleVersionsRequest(), timeout=5)  # served
        assert process.wait(timeout=30) == 0
    finally:
        processes.stop(process)


def _not_serving(status: int) -> int:
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    return status


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_memory_ledger_has_no_pool_metrics(small_scenario: Scenario):
    """Pool figures appear only for a ledger with a pool (PostgreSQL): none on memory."""
    with scraped(small_scenario, MemoryLedger()) as s:
        assert not any(name.startswith("router_db_pool") for name, _ in s.samples())


def test_postgres_pool_figures_are_exported(
    small_scenario: Scenario,
    pg_url: str,  # noqa: F811
) -> None:
    """On PostgreSQL the pool's size, free connections and requests are scraped live."""
    with scraped(small_scenario, ledger_url=pg_url) as s:
        s.routing.RouteOrder(route("r1", ("A", 1)), timeout=30)
        samples = s.samples()
        assert samples["router_db_pool_requests_total", ()] >= 2  # at least read and reserve
        assert samples["router_db_pool_size", ()] >= 1
        assert samples["router_db_pool_requests_waiting", ()] == 0
        assert ("router_db_pool_wait_seconds_total", ()) in samples


def test_calls_dropped_while_waiting_for_a_thread_are_counted(small_scenario: Scenario):
    """Calls whose deadline passes while every thread is busy: started, and Canceled.

    One thread; a RouteOrder holds it for 1.5 s (its ledger sleeps in reserve); three health
    checks with 0.3 s deadlines wait behind it and expire. gRPC never runs their behaviour,
    yet each is counted handled (Canceled) with its wait in the histogram.
    """
    ledger = Interfering()
    config = {
        "max_workers": 1,
        "cheap_workers": 0,
        "admission": AdmissionSettings(queued_solves=0),
    }
    with scraped(small_scenario, ledger, **config) as s:
        ledger.meddle = lambda: time.sleep(1.5)
        routing = s.routing.RouteOrder.future(route("slow", ("A", 1)), timeout=30)
        time.sleep(0.3)  # the route holds the only thread
        request = health_pb2.HealthCheckRequest()
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as late:
                s.health.Check(request, timeout=0.3)
            assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        routing.result()
        check = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health"}
        eventually(lambda: _equal(handled(s, "Check", "Canceled", "grpc.health.v1.Health"), 3))
        assert s.value("grpc_server_started_total", grpc_method="Check", **check) == 3
        waited = s.value("grpc_server_handling_seconds_sum", grpc_method="Check", **check)
        assert waited >= 3 * 0.3
        assert handled(s, "RouteOrder", "OK") == 1


def _equal(value: float, expected: float) -> None:
    assert value == expected, value
