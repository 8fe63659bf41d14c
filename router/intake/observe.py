"""What every HTTP request leaves behind at the gateway: metrics and one log line; probes.

:class:`ObserveMiddleware` (outermost) counts each request in ``http_requests_total`` and
``http_request_duration_seconds`` by method, route template (``/v1/orders:route``, never the
raw path, so the label set stays bounded) and status code, keeps
``http_requests_in_flight``, and logs one line on the ``router.intake.requests`` logger:
method, route, status, duration, the Idempotency-Key as ``request_id``, and the trace id
(the FastAPI instrumentation's span, whose context the gRPC client instrumentation carries
to the service). Probes and unmatched paths log at DEBUG whatever their status; otherwise
5xx answers at ERROR, 429 and 504 at WARNING, the rest at INFO. A method outside the
usual ones is labelled ``other``.

The probes: ``GET /healthz`` answers 200 while the process runs; ``GET /readyz`` asks the
service's standard gRPC health check and answers 200 only when it is SERVING (503 naming
why otherwise), so a load balancer stops sending orders to a gateway whose service is gone.
Metrics are served on their own port (:func:`serve_metrics`), not on the API's.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.telemetry import current_trace_ids

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: what go-grpc-prometheus dashboards expect

requests_log = logging.getLogger("router.intake.requests")

DURATION_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip
"""Buckets of ``http_request_duration_seconds`` (the gateway's deadline is 5 s by default)."""
PROBES = frozenset({"/healthz", "/readyz"})
READY_TIMEOUT_S = 1.0
"""How long ``/readyz`` waits for the service's health check."""
UNMATCHED = "unmatched"
"""The ``route`` label of requests no route matched (404s of arbitrary paths)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
"""The ``method`` label (and log field) of any method outside :data:`METHODS`: a client
choosing the method must not choose new series."""


class HttpMetrics:
    """The gateway's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "code"],
            registry=r,
        )
        self.seconds = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by method and route",
            ["method", "route"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being answered now", registry=r
        )


class ObserveMiddleware:
    """Metrics and the log line of every HTTP request (module docstring)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, then count and log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that raises without answering: what the server sends
        fields: dict[str, Any] = {}

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                fields.update(current_trace_ids())  # the request's span is current here
            await send(message)

        m = self.metrics
        m.in_flight.inc()
        try:
            await self.app(scope, receive, observed)
        finally:
            m.in_flight.dec()
            seconds = time.perf_counter() - started
            route = _route(scope)
            method = str(scope.get("method", ""))
            method = method if method in METHODS else OTHER_METHOD
            m.requests.labels(method, route, str(status)).inc()
            m.seconds.labels(method, route).observe(seconds)
            _log(scope, method, route, status, seconds, fields)


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/orders:route``), or :data:`UNMATCHED`.

    A request answered before routing (429 of the in-flight limit) is matched here against
    the app's routes, so it is counted under its route too.
    """
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _log(
    scope: Scope,
    method: str,
    route: str,
    status: int,
    seconds: float,
    fields: dict[str, Any],
) -> None:
    if route in PROBES or route == UNMATCHED:
        level = logging.DEBUG  # a load balancer's probes; scanners' paths
    elif status >= 500 and status != 504:
        level = logging.ERROR
    elif status in (429, 504):
        level = logging.WARNING
    else:
        level = logging.INFO
    if not requests_log.isEnabledFor(level):
        return
    line: dict[str, Any] = {"method": method, "route": route, "status": status}
    line["duration_ms"] = round(seconds * 1000, 3)
    for name, value in scope.get("headers", ()):
        if name == b"idempotency-key":
            line["request_id"] = value.decode("latin-1")[:128]
    line.update(fields)
    ms = seconds * 1000
    requests_log.log(level, "%s %s %d %.1f ms", method, route, status, ms, extra=line)


probes = APIRouter(include_in_schema=False)
"""``/healthz`` and ``/readyz`` (left out of the OpenAPI document: they are for machines)."""


@probes.get("/healthz")
async def healthz() -> JSONResponse:
    """200 while the gateway's process runs and its event loop answers."""
    return JSONResponse({"status": "alive"})


@probes.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the service answers its gRPC health check SERVING; else 503 saying why."""
    gateway = request.app.state.gateway
    try:
        answer = await gateway.health.Check(
            health_pb2.HealthCheckRequest(), timeout=READY_TIMEOUT_S
        )
    except Exception as error:  # any failure to reach the service means not ready
        code = getattr(error, "code", None)
        why = code().name if callable(code) else type(error).__name__
        return JSONResponse(
            {"status": "not ready", "service": gateway.config.target, "reason": why},
            status_code=503,
        )
    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return JSONResponse(
        {"status": "ready" if serving else "not ready", "service": name},
        status_code=200 if serving else 503,
    )
