"""What every RPC leaves behind: its metrics, its span and one structured log line.

:class:`ObserveInterceptor` is the server's outermost interceptor, so it sees every call
gRPC found a method for, refusals of the access and limits checks included. Per call:

- ``grpc_server_started_total`` when it arrives; ``grpc_server_handled_total`` with its
  status code and ``grpc_server_handling_seconds`` (from its arrival: the wait for a
  thread counts) when it ends (:mod:`router.service.metrics`). A call gRPC drops before it
  runs (its caller left while it waited for a thread) is counted CANCELLED; one refused
  by gRPC's own bound on calls at once (``max_concurrent_rpcs``) is counted started and
  never handled: ``started - handled`` beyond the calls in progress;
- a SERVER span named ``router.v1.RoutingService/RouteOrder``, the child of the caller's
  span when the call carries a W3C ``traceparent`` (the gateway's does), with the
  OpenTelemetry RPC attributes (``rpc.system``, ``rpc.service``, ``rpc.method``,
  ``rpc.grpc.status_code``); health checks and streams (reflection, health watches) get
  none;
- one log line on the ``router.requests`` logger: method, principal (when the call was
  authenticated), request id, order id, reservation id, status, duration, trace and span
  ids, at
  INFO for a success or a client's error, WARNING for overload and deadlines (the
  operator's business), ERROR for the server's own faults; health checks at DEBUG.

A response produced after the client cancelled or its deadline passed was never
delivered: it counts as CANCELLED or DEADLINE_EXCEEDED. The contrib gRPC server
instrumentation is not used: it drops the attributes the access interceptor tags
behaviours with for the pool (:mod:`router.service.pool`) and does not see the status of
``abort_with_status``, which every refusal uses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from router.service.metrics import ServiceMetrics
from router.service.names import HEALTH_SERVICE

requests_log = logging.getLogger("router.requests")
tracer = trace.get_tracer("router.service")

SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAVAILABLE,
    }
)
"""Codes that say the server (or its database) failed: logged at ERROR, span status ERROR."""
PRESSURE = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Codes that say the server is overloaded or too slow for its callers: WARNING."""


GO_CODE_NAMES = {
    code: "OK" if code is grpc.StatusCode.OK
    else "Canceled" if code is grpc.StatusCode.CANCELLED
    else "".join(word.capitalize() for word in code.name.split("_"))
    for code in grpc.StatusCode
}  # fmt: skip
"""The ``grpc_code`` label values: Go's names of the codes (``InvalidArgument``), as
go-grpc-prometheus and the dashboards built on it write them; log lines keep the
canonical ``INVALID_ARGUMENT``."""


class Call:
    """What the log line of the call in progress needs from inner layers (its principal)."""

    __slots__ = ("principal",)

    def __init__(self) -> None:
        self.principal = ""


_CALL: ContextVar[Call | None] = ContextVar("call", default=None)


def note_principal(name: str) -> None:
    """Record the authenticated principal of the call in progress for its log line."""
    call = _CALL.get()
    if call is not None:
        call.principal = name


class ObserveInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Metrics, span and log line of every call (module docstring); first in the chain."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """The method's handler, its behaviour wrapped (its pool tags kept by ``wraps``).

        Runs on gRPC's polling thread as the call arrives: the call is counted as started
        and its clock starts here, so the time it waits for a thread counts. The wrapped
        behaviour carries ``after_run`` for :class:`~router.service.pool.PriorityPool`: a
        call whose behaviour gRPC never ran (the caller left while it waited) is counted
        then.
        """
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # no such method: gRPC answers UNIMPLEMENTED itself
        method: str = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        health = service == HEALTH_SERVICE
        streaming = handler.request_streaming or handler.response_streaming
        seen = _Seen(
            method, (_grpc_type(handler), service, name), health, not (health or streaming)
        )
        call = _Observed(self._metrics, seen, handler_call_details.invocation_metadata or ())
        field = behaviour_field(handler)
        behaviour = getattr(handler, field)
        observed = (self._streaming if handler.response_streaming else self._unary)(behaviour, call)
        wrapped = functools.wraps(behaviour)(observed)
        wrapped.after_run = call.if_never_ran  # type: ignore[attr-defined]
        return handler._replace(**{field: wrapped})

    def _unary(self, behaviour: Callable[..., Any], call: _Observed) -> Callable[..., Any]:
        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            with call.running(request):
                try:
                    response = behaviour(request, context)
                except BaseException:
                    call.failed(context)
                    raise
                call.ended(context)
                return response

        return observed

    def _streaming(self, behaviour: Callable[..., Any], call: _Observed) -> Callable[..., Any]:
        def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with call.running(request):
                try:
                    yield from behaviour(request, context)
                except BaseException:
                    call.failed(context)
                    raise
                call.ended(context)

        return observed


@dataclass(frozen=True, slots=True)
class _Seen:
    """A method as observed: its path, metric labels, whether health, whether traced."""

    path: str
    labels: tuple[str, str, str]
    health: bool
    traced: bool


class _Observed:
    """One call, from its arrival: counted started at once; counted, logged, ended once."""

    def __init__(self, metrics: ServiceMetrics, method: _Seen, metadata: Any) -> None:
        self._metrics = metrics
        self._method = method.path
        self._labels = method.labels
        self._health = method.health
        self._traced = method.traced
        self._metadata = metadata
        self._request: Any = None
        self._ran = False
        self._code = grpc.StatusCode.UNKNOWN
        self._call = Call()
        self._span: trace.Span = trace.INVALID_SPAN
        self._use: Any = None  # the span made current, while the call runs
        self._arrived = time.perf_counter()
        metrics.rpcs_started.labels(*self._labels).inc()

    def running(self, request: Any) -> _Observed:
        """The call's behaviour starts on a worker with ``request``: enter around it."""
        self._request = request
        return self

    def __enter__(self) -> _Observed:
        self._ran = True
        self._token = _CALL.set(self._call)
        if self._traced:
            carrier = {k: v for k, v in self._metadata if isinstance(v, str)}
            parent = propagate.extract(carrier)
            _, service, name = self._labels
            self._span = tracer.start_span(
                self._method.lstrip("/"),
                context=parent,
                kind=SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            )
            self._use = trace.use_span(self._span, end_on_exit=False)
            self._use.__enter__()
        return self

    def ended(self, context: grpc.ServicerContext) -> None:
        """The behaviour returned: its code is the one it set, unless the caller is gone."""
        code = context.code() or grpc.StatusCode.OK  # type: ignore[attr-defined]
        self._code = _gone(context) or code if code is grpc.StatusCode.OK else code

    def failed(self, context: grpc.ServicerContext) -> None:
        """The behaviour raised: an abort's code; the caller gone; else UNKNOWN (as gRPC)."""
        code = context.code()  # type: ignore[attr-defined]
        self._code = code or _gone(context) or grpc.StatusCode.UNKNOWN

    def if_never_ran(self) -> None:
        """Count and log the call as CANCELLED when gRPC dropped it before it ran.

        gRPC does not run a behaviour whose caller cancelled or whose deadline passed while
        the call waited for a thread; the pool calls this after every call it ran.
        """
        if not self._ran:
            self._ran = True
            self._code = grpc.StatusCode.CANCELLED
            self._finish()

    def __exit__(self, *exc: object) -> None:
        span = self._span
        span.set_attribute("rpc.grpc.status_code", self._code.value[0])
        if self._code in SERVER_FAULTS or self._code is grpc.StatusCode.DEADLINE_EXCEEDED:
            span.set_status(Status(StatusCode.ERROR, self._code.name))
        try:
            self._finish()
        finally:
            if self._use is not None:
                self._use.__exit__(None, None, None)
                span.end()
            with contextlib.suppress(ValueError):  # a stream resumed in another context
                _CALL.reset(self._token)

    def _finish(self) -> None:
        """Count the call's status and time since it arrived; log its line."""
        seconds = time.perf_counter() - self._arrived
        self._metrics.rpcs_handled.labels(*self._labels, GO_CODE_NAMES[self._code]).inc()
        self._metrics.rpc_seconds.labels(*self._labels).observe(seconds)
        self._log(self._code, seconds)

    def _log(self, code: grpc.StatusCode, seconds: float) -> None:
        if code in SERVER_FAULTS:
            level = logging.ERROR
        elif code in PRESSURE:
            level = logging.WARNING
        elif self._health:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if not requests_log.isEnabledFor(level):
            return
        fields: dict[str, Any] = {"method": self._method, "status": code.name}
        fields["duration_ms"] = round(seconds * 1000, 3)
        if self._call.principal:
            fields["principal"] = self._call.principal
        fields.update(request_fields(self._request))
        context = self._span.get_span_context()
        if context.is_valid:
            fields["trace_id"] = trace.format_trace_id(context.trace_id)
            fields["span_id"] = trace.format_span_id(context.span_id)
        ms = seconds * 1000
        requests_log.log(level, "%s %s %.1f ms", self._method, code.name, ms, extra=fields)


def _gone(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """DEADLINE_EXCEEDED or CANCELLED when the caller is gone (no one gets the answer)."""
    if context.is_active():
        return None
    remaining = context.time_remaining()
    late = remaining is not None and remaining <= 0
    return grpc.StatusCode.DEADLINE_EXCEEDED if late else grpc.StatusCode.CANCELLED


def request_fields(request: Any) -> dict[str, str]:
    """The ids a request carries, for its log line: request, order and reservation ids."""
    fields: dict[str, str] = {}
    for name in ("request_id", "reservation_id"):
        value = getattr(request, name, "")
        if value and isinstance(value, str):
            fields[name] = value[:128]
    order = getattr(request, "order", None)
    order_id = getattr(order, "order_id", "")
    if order_id and isinstance(order_id, str):
        fields["order_id"] = order_id[:128]
    return fields


_TYPES = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}


def behaviour_field(handler: Any) -> str:
    """The handler field that holds its behaviour: unary_unary, …, stream_stream."""
    if handler.request_streaming:
        return "stream_stream" if handler.response_streaming else "stream_unary"
    return "unary_stream" if handler.response_streaming else "unary_unary"


def _grpc_type(handler: Any) -> str:
    """go-grpc-prometheus's ``grpc_type``: unary, server_stream, client_stream, bidi_stream."""
    return _TYPES[handler.request_streaming, handler.response_streaming]
