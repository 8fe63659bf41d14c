"""The wire's limits, checked before any work: every string, bytes and repeated field.

Every request message is walked with its protobuf descriptors (:func:`violations`): a
string or bytes field may hold at most :data:`DEFAULT_STRING_BYTES` bytes (UTF-8), a
repeated field at most :data:`DEFAULT_ITEMS` items, unless :data:`LIMITS` (the one table,
keyed by full field name) says otherwise: ids are tighter, rule documents bigger. A
request over a limit is refused with INVALID_ARGUMENT and a ``google.rpc.BadRequest``
naming each field as a proto-JSON-ish path (``order.lines[3].sku``), by
:class:`LimitsInterceptor`, before any servicer code runs. The same interceptor answers a
request that does not decode INVALID_ARGUMENT, with one rate-limited WARNING line, where
gRPC would answer INTERNAL and log a traceback. gRPC itself refuses any message over
:data:`MAX_RECEIVE_MESSAGE_BYTES` (RESOURCE_EXHAUSTED) before it is decoded.

:data:`VALUE_BOUNDS` states the numeric bounds the service checks while converting a
request (:mod:`router.service.convert` and the domain), so that the HTTP gateway's
OpenAPI schema can state them too. The tables are documented in docs/api.md, Limits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from models.errors import FieldViolation, InvalidArgumentError
from models.fields import MAX_MONEY, MAX_QUANTITY
from models.order import MAX_LINES_PER_ORDER, MAX_SHIPMENTS
from router.service.errors import status_of

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # generic in grpc-stubs only
    _Interceptor = grpc.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor
    _Handler = grpc.RpcMethodHandler

MAX_RECEIVE_MESSAGE_BYTES = 4 << 20
"""The largest request message the server reads (``grpc.max_receive_message_length``).

4 MiB holds the largest legitimate requests: a PublishRules or TestRules with a document
and a golden suite of :data:`DOCUMENT_BYTES` each, a snapshot of 100,000 positions."""
SERVER_OPTIONS = (("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),)
"""The channel options of the gRPC server."""

DEFAULT_STRING_BYTES = 256
"""Bytes (UTF-8) of any string or bytes field :data:`LIMITS` does not name."""
ID_BYTES = 128
"""Bytes of an id: order, line, SKU, node, reservation, feed, carrier service."""
REQUEST_ID_BYTES = 200
"""Bytes of a ``request_id``: room for the gateway's batch ids, ``batch/<32 hex>/<order_id>``."""
TEXT_BYTES = 4096
"""Bytes of free text a person writes: the reason of a rule-set change."""
DOCUMENT_BYTES = 1 << 20
"""Bytes of a YAML document: a rule set or a golden suite (1 MiB)."""
DEFAULT_ITEMS = 1000
"""Items of any repeated field :data:`LIMITS` does not name."""
STOCK_ITEMS = 100_000
"""Positions of one stock snapshot, delta or test drive."""
FILTER_ITEMS = 10_000
"""Node ids or SKUs one GetStock may filter by."""
LINT_ORDERS = 100
"""Orders one LintRules checks weights against: it plans each of them under every weight."""
MAX_VIOLATIONS = 20
"""At most this many fields are named in one refusal; a last entry counts the rest."""

MAX_WAVE_ORDERS = 10_000
"""Orders one PlanWave plans together. Its request must also fit the receive limit
(:data:`MAX_RECEIVE_MESSAGE_BYTES`): 10,000 orders of a few lines take about 2 MB."""

MAX_TOP_K = 10
"""The most plans a request may ask for in all (``top_k``), the plan itself included."""
MAX_COUNTERFACTUALS = 20
"""The most nodes a request may ask to price (``counterfactual_node_ids``)."""
MAX_TTL_S = 7 * 24 * 3600.0
"""The longest ``ttl`` a RouteOrder may ask for (7 days)."""


@dataclass(frozen=True, slots=True)
class FieldLimit:
    """A field's limits: bytes of each string (or bytes) value, items of a repeated field."""

    max_bytes: int | None = None
    """None: :data:`DEFAULT_STRING_BYTES` (for a string or bytes field)."""
    max_items: int | None = None
    """None: :data:`DEFAULT_ITEMS` (for a repeated field)."""


_ID = FieldLimit(max_bytes=ID_BYTES)
_REQUEST_ID = FieldLimit(max_bytes=REQUEST_ID_BYTES)
_TEXT = FieldLimit(max_bytes=TEXT_BYTES)
_DOCUMENT = FieldLimit(max_bytes=DOCUMENT_BYTES)
_V1 = "router.v1."

LIMITS: Mapping[str, FieldLimit] = MappingProxyType(
    {
        _V1 + name: limit
        for name, limit in {
            "RouteOrderRequest.request_id": _REQUEST_ID,
            "ConfirmReservationRequest.request_id": _REQUEST_ID,
            "ConfirmReservationRequest.reservation_id": _ID,
            "ReleaseReservationRequest.request_id": _REQUEST_ID,
            "ReleaseReservationRequest.reservation_id": _ID,
            "RejectShipmentRequest.request_id": _REQUEST_ID,
            "RejectShipmentRequest.reservation_id": _ID,
            "RejectShipmentRequest.node_id": _ID,
            "RejectShipmentRequest.lines": FieldLimit(max_items=MAX_LINES_PER_ORDER),
            "RejectShipmentRequest.reason": _TEXT,
            "PlanOrderRequest.counterfactual_node_ids": FieldLimit(ID_BYTES, MAX_COUNTERFACTUALS),
            "PlanWaveRequest.orders": FieldLimit(max_items=MAX_WAVE_ORDERS),
            "Order.order_id": _ID,
            "Order.service": _ID,
            "Order.pickup_node_id": _ID,
            "Order.lines": FieldLimit(max_items=MAX_LINES_PER_ORDER),
            "OrderLine.line_id": _ID,
            "OrderLine.sku": _ID,
            "GetStockRequest.node_ids": FieldLimit(ID_BYTES, FILTER_ITEMS),
            "GetStockRequest.skus": FieldLimit(ID_BYTES, FILTER_ITEMS),
            "ApplyStockSnapshotRequest.feed": _ID,
            "ApplyStockSnapshotRequest.node_id": _ID,
            "ApplyStockSnapshotRequest.positions": FieldLimit(max_items=STOCK_ITEMS),
            "SnapshotPosition.sku": _ID,
            "ApplyStockDeltaRequest.feed": _ID,
            "ApplyStockDeltaRequest.node_id": _ID,
            "ApplyStockDeltaRequest.deltas": FieldLimit(max_items=STOCK_ITEMS),
            "StockDelta.sku": _ID,
            "Calendar.node_id": _ID,
            "Calendar.service": _ID,
            "ValidateRulesRequest.document": _DOCUMENT,
            "LintRulesRequest.document": _DOCUMENT,
            "LintRulesRequest.orders": FieldLimit(max_items=LINT_ORDERS),
            "TestRulesRequest.document": _DOCUMENT,
            "TestRulesRequest.golden": _DOCUMENT,
            "TestDriveRequest.document": _DOCUMENT,
            "TestDriveRequest.stock": FieldLimit(max_items=STOCK_ITEMS),
            "StockPosition.node_id": _ID,
            "StockPosition.sku": _ID,
            "PublishRulesRequest.document": _DOCUMENT,
            "PublishRulesRequest.golden": _DOCUMENT,
            "PublishRulesRequest.reason": _TEXT,
            "ActivateRulesRequest.reason": _TEXT,
            "RollbackRulesRequest.reason": _TEXT,
        }.items()
    }
)
"""The one table of per-field limits, by full field name; every other field has the defaults."""


@dataclass(frozen=True, slots=True)
class Bound:
    """The values a numeric (or Duration, in seconds) field may take, both ends inclusive.

    ``above`` is an exclusive lower end instead (a Duration that must be > 0).
    """

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None


VALUE_BOUNDS: Mapping[str, Bound] = MappingProxyType(
    {
        _V1 + name: bound
        for name, bound in {
            "PlanOrderRequest.top_k": Bound(0, MAX_TOP_K),
            "PlanOrderRequest.time_limit": Bound(above=0),
            "PlanWaveRequest.time_limit": Bound(above=0),
            "RouteOrderRequest.time_limit": Bound(above=0),
            "RouteOrderRequest.ttl": Bound(maximum=MAX_TTL_S, above=0),
            "RouteOrderRequest.max_gap": Bound(minimum=0),
            "RejectShipmentRequest.time_limit": Bound(above=0),
            "RejectShipmentRequest.corrected_on_hand": Bound(minimum=0),
            "Order.max_shipments": Bound(1, MAX_SHIPMENTS),
            "OrderLine.quantity": Bound(1, MAX_QUANTITY),
            "OrderLine.unit_price": Bound(0, MAX_MONEY),
            "ShipTo.latitude": Bound(-90, 90),
            "ShipTo.longitude": Bound(-180, 180),
        }.items()
    }
)
"""Bounds the service checks while converting a request, by full field name (documentation
for the gateway's schema; :mod:`router.service.convert` and the domain enforce them)."""


def max_bytes(field: FieldDescriptor) -> int:
    """The most bytes each value of a string or bytes ``field`` may hold."""
    limit = LIMITS.get(field.full_name)
    return DEFAULT_STRING_BYTES if limit is None or limit.max_bytes is None else limit.max_bytes


def max_items(field: FieldDescriptor) -> int:
    """The most items a repeated ``field`` may hold."""
    limit = LIMITS.get(field.full_name)
    return DEFAULT_ITEMS if limit is None or limit.max_items is None else limit.max_items


_STRING, _BYTES, _MESSAGE = (
    FieldDescriptor.TYPE_STRING,
    FieldDescriptor.TYPE_BYTES,
    FieldDescriptor.TYPE_MESSAGE,
)


def _size(value: str | bytes, limit: int) -> int | None:
    """The UTF-8 size of ``value`` when it is over ``limit`` bytes, else None (cheaply)."""
    if isinstance(value, bytes):
        return len(value) if len(value) > limit else None
    if 4 * len(value) <= limit:  # a character is at most 4 bytes
        return None
    size = len(value.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


class _Found:
    """Violations found so far, stopping the walk at :data:`MAX_VIOLATIONS`."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []
        self.more = 0

    def add(self, path: str, description: str) -> None:
        if len(self.items) < MAX_VIOLATIONS:
            self.items.append(FieldViolation(path, description))
        else:
            self.more += 1

    def done(self) -> list[FieldViolation]:
        if not self.more:
            return self.items
        return [*self.items, FieldViolation("…", f"and {self.more} more fields over their limits")]


def violations(message: Message) -> list[FieldViolation]:
    """Every field of ``message`` (recursively) over its limit, pathed from the request.

    A repeated field over its count is reported once and its items are not looked at;
    at most :data:`MAX_VIOLATIONS` fields are named, a last entry counts the rest.
    """
    found = _Found()
    _walk(message, "", found)
    return found.done()


def _walk(message: Message, prefix: str, found: _Found) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.is_repeated:
            count = len(value)
            if count > max_items(field):
                found.add(path, f"has {count} items, at most {max_items(field)}")
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                _walk_map(field, value, path, found)
                continue
            for i, item in enumerate(value):
                _check_value(field, item, f"{path}[{i}]", found)
        else:
            _check_value(field, value, path, found)


def _walk_map(field: FieldDescriptor, value: Any, path: str, found: _Found) -> None:
    entry = field.message_type
    assert entry is not None
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for key in value:
        item = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
        _check_value(key_field, key, item, found)
        _check_value(value_field, value[key], item, found)


def _check_value(field: FieldDescriptor, value: Any, path: str, found: _Found) -> None:
    if field.type == _MESSAGE:
        _walk(value, path, found)
    elif field.type in (_STRING, _BYTES):
        limit = max_bytes(field)
        size = _size(value, limit)
        if size is not None:
            found.add(path, f"is {size} bytes, at most {limit}")


def check(message: Message) -> None:
    """Raise :class:`InvalidArgumentError` naming every field of ``message`` over its limit."""
    found = violations(message)
    if found:
        raise InvalidArgumentError(found)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What the server's deserializer gives for bytes that are not the request message."""

    error: str


UNDECODABLE_FIELD = "request"
"""Where the violation of an undecodable request points: the request as a whole."""


class LogThrottle:
    """At most ``burst`` log lines per ``window_s`` seconds; the next line counts the rest."""

    def __init__(
        self, burst: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._start = -math.inf
        self._lines = 0
        self._suppressed = 0

    def admit(self) -> int | None:
        """None when a line must be suppressed; else how many were suppressed before it."""
        with self._lock:
            now = self._clock()
            if now - self._start >= self._window_s:
                self._start, self._lines = now, 0
            if self._lines >= self._burst:
                self._suppressed += 1
                return None
            self._lines += 1
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed


class LimitsInterceptor(_Interceptor):
    """Refuses, before the servicer runs, requests over a limit or that do not decode.

    Both are INVALID_ARGUMENT with a ``google.rpc.BadRequest``: one violation per field
    over its limit (:func:`violations`), or one on :data:`UNDECODABLE_FIELD` saying the
    bytes are not the method's request message. An undecodable request is logged as one
    WARNING line, at most ``throttle`` allows.
    """

    def __init__(self, throttle: LogThrottle | None = None) -> None:
        self._throttle = throttle or LogThrottle()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        """The method's handler, its deserializer and behaviour wrapped with the checks."""
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method: str = handler_call_details.method
        decode = _decoder(handler.request_deserializer)
        serialize = handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), decode, serialize
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._unary(handler.unary_stream, method), decode, serialize
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._streaming(handler.stream_unary, method), decode, serialize
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method), decode, serialize
        )

    def _unary(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        def checked(request: Any, context: grpc.ServicerContext) -> Any:
            self._refuse_if_bad(request, method, context)
            return behaviour(request, context)

        return checked

    def _streaming(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        def checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            def each() -> Iterator[Any]:
                for request in requests:
                    self._refuse_if_bad(request, method, context)
                    yield request

            return behaviour(each(), context)

        return checked

    def _refuse_if_bad(self, request: Any, method: str, context: grpc.ServicerContext) -> None:
        """Abort the RPC with INVALID_ARGUMENT when ``request`` breaks a limit or is garbage."""
        if isinstance(request, Undecodable):
            suppressed = self._throttle.admit()
            if suppressed is not None:
                more = f" ({suppressed} more not logged)" if suppressed else ""
                logger.warning(
                    "undecodable request to %s from %s: %s%s",
                    method,
                    context.peer(),
                    request.error,
                    more,
                )
            why = f"does not decode as the method's request message: {request.error}"
            context.abort_with_status(
                status_of(InvalidArgumentError([FieldViolation(UNDECODABLE_FIELD, why)]))
            )
        if isinstance(request, Message):
            found = violations(request)
            if found:
                context.abort_with_status(status_of(InvalidArgumentError(found)))


def _decoder(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize``, giving :class:`Undecodable` for bytes it refuses instead of raising."""

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # whatever the bytes make the parser raise, they are bad
            return Undecodable(str(error)[:200] or type(error).__name__)

    return decode
