"""Done when: gateway probes, request metrics, and one trace across gateway and service.

Real processes on loopback (:mod:`tests.intake.conftest`); for the trace, a gateway and a
service of their own export their spans over OTLP/HTTP to a collector this test runs.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.fuzz import processes
from tests.intake.conftest import TINY, tiny_orders
from tests.waiting import eventually

ROUTER = Path(sys.executable).parent / "router"

pytestmark = pytest.mark.timeout(180)

SPAN_KIND_CLIENT = 3
"""OTLP's ``Span.SpanKind.SPAN_KIND_CLIENT``."""


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthz_answers_and_readyz_follows_the_service(gateway: str, down_gateway: str):
    """/healthz is 200 on both gateways; /readyz is 200 only where the service answers."""
    for url in (gateway, down_gateway):
        alive = httpx.get(f"{url}/healthz", timeout=10)
        assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = httpx.get(f"{gateway}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    gone = httpx.get(f"{down_gateway}/readyz", timeout=10)
    assert gone.status_code == 503
    assert gone.json()["status"] == "not ready" and gone.json()["reason"] == "UNAVAILABLE"


def test_request_metrics_count_by_route_template_and_code(
    start_gateway: Callable[..., str], grpc_target: str
):
    """http_requests_total moves by method, route template (not the raw path) and code.

    Neither a made-up path nor a made-up method makes a series of its own.
    """
    port = free_port()
    url = start_gateway("metrics", grpc_target, "--metrics-port", str(port))
    httpx.get(f"{url}/v1/stock", params={"sku": "SKU-1"}, timeout=10)
    key = {"Idempotency-Key": "c-1"}
    httpx.post(f"{url}/v1/reservations/R-none:confirm", headers=key, timeout=10)
    httpx.get(f"{url}/no/such/path/12345", timeout=10)
    for made_up in ("FOO1", "FOO2"):  # a client's methods are not new series
        httpx.request(made_up, f"{url}/v1/stock", timeout=10)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        )
        for s in family.samples
    }

    def count(method: str, route: str, code: str) -> float:
        labels = tuple(sorted({"method": method, "route": route, "code": code}.items()))
        return samples.get(("http_requests_total", labels), 0.0)

    assert count("GET", "/v1/stock", "200") == 1
    assert count("POST", "/v1/reservations/{reservation_id}:confirm", "404") == 1
    assert count("GET", "unmatched", "404") == 1
    assert not any("12345" in str(labels) for _, labels in samples)
    assert count("other", "/v1/stock", "405") == 2
    durations = ("http_request_duration_seconds_count", (("method", "GET"), ("route", "/v1/stock")))
    assert samples[durations] == 1
    assert samples["http_requests_in_flight", ()] == 0


class Collector:
    """An OTLP/HTTP trace receiver: every span exported to it, with its service's name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                with collector.lock:
                    for resource_spans in request.resource_spans:
                        service = next(
                            a.value.string_value
                            for a in resource_spans.resource.attributes
                            if a.key == "service.name"
                        )
                        for scope in resource_spans.scope_spans:
                            collector.spans.extend((service, span) for span in scope.spans)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/traces"

    def of_trace(self, trace_id: str) -> list[tuple[str, Any]]:
        with self.lock:
            return [(s, span) for s, span in self.spans if span.trace_id.hex() == trace_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    try:
        yield running
    finally:
        running.close()


def test_one_trace_spans_gateway_and_service(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
):
    """A request with a traceparent: gateway and service spans share its trace id.

    The service's RouteOrder span is the child of the gateway's gRPC client span, which is
    the child of the gateway's HTTP span; the solve and the ledger's reservation are spans
    under the service's; each process's log line of the request names the same trace id.
    """
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s, not 5
    otlp = ["--otlp-endpoint", collector.endpoint, "--log-format", "json"]
    serve = [
        str(ROUTER), "serve", "--scenario", str(TINY), "--ledger", f"sqlite://{tmp_path / 'l.db'}",
        "--port", "0", "--metrics-port", "0", *otlp,
    ]  # fmt: skip
    with processes.running(serve, tmp_path / "serve.log") as target:
        intake = [
            str(ROUTER), "intake", "--port", "0", "--target", target, "--metrics-port", "0",
            *otlp,
        ]  # fmt: skip
        with processes.running(intake, tmp_path / "intake.log") as address:
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            answer = httpx.post(
                f"http://{address}/v1/orders:route",
                json={"order": tiny_orders()[0]},
                headers={
                    "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
                    "Idempotency-Key": "trace-1",
                },
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            spans = eventually(lambda: _both(collector.of_trace(trace_id)))
    by_name = {span.name: (service, span) for service, span in spans}
    service_span = by_name["router.v1.RoutingService/RouteOrder"]
    assert service_span[0] == "router-serve"
    client_spans = [
        span
        for service, span in spans
        if service == "router-intake" and span.kind == SPAN_KIND_CLIENT
    ]
    assert [s.span_id for s in client_spans] == [service_span[1].parent_span_id]
    assert by_name["solve"][1].parent_span_id == service_span[1].span_id
    assert any(name.startswith("ledger.") for name in by_name)
    for log in ("serve.log", "intake.log"):
        lines = [json.loads(x) for x in (tmp_path / log).read_text().splitlines() if x[:1] == "{"]
        request_lines = [x for x in lines if x["logger"].endswith("requests")]
        assert [x["trace_id"] for x in request_lines] == [trace_id], log


def _both(spans: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    services = {service for service, _ in spans}
    names = {span.name for _, span in spans}
    assert services == {"router-intake", "router-serve"}, services
    assert "router.v1.RoutingService/RouteOrder" in names and "solve" in names, names
    kinds = {(service, span.kind) for service, span in spans}
    assert ("router-intake", SPAN_KIND_CLIENT) in kinds, kinds
    return spans
