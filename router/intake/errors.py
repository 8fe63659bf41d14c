"""The one table from gRPC status codes to HTTP statuses, and the JSON error body.

Every error the gateway answers has the shape of ``google.rpc.Status`` in JSON::

    {"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT",
               "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": "...", "description": "..."}]}]}}

Errors from the gRPC service keep their code, message and details (rendered with
``json_format``); errors the gateway finds itself (bad JSON, a missing header, a body too
large) are built here in the same shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from grpc_status import rpc_status

from models.errors import FieldViolation
from router.service.errors import bad_request_detail

logger = logging.getLogger(__name__)

_C = grpc.StatusCode

MAX_VIOLATIONS = 100
"""At most this many field violations are listed in an error; a last entry counts the rest."""
MAX_MESSAGE_CHARS = 2000
"""An error's message is cut to this many characters (ending in "…")."""

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    _C.OK: 200,
    _C.INVALID_ARGUMENT: 400,
    _C.FAILED_PRECONDITION: 400,
    _C.OUT_OF_RANGE: 400,
    _C.UNAUTHENTICATED: 401,
    _C.PERMISSION_DENIED: 403,
    _C.NOT_FOUND: 404,
    _C.ABORTED: 409,
    _C.ALREADY_EXISTS: 409,
    _C.RESOURCE_EXHAUSTED: 429,
    _C.CANCELLED: 499,
    _C.UNIMPLEMENTED: 501,
    _C.UNAVAILABLE: 503,
    _C.DEADLINE_EXCEEDED: 504,
    # UNKNOWN, INTERNAL, DATA_LOSS and anything else: 500.
}
"""gRPC status code → HTTP status (Google's mapping); codes not listed are 500."""


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status of a gRPC status code, per :data:`HTTP_STATUS` (500 when unlisted)."""
    return HTTP_STATUS.get(code, 500)


GATEWAY_ONLY_STATUS: dict[int, grpc.StatusCode] = {
    405: _C.UNIMPLEMENTED,  # no such method on this path (as grpc-gateway answers it)
    408: _C.DEADLINE_EXCEEDED,
    413: _C.INVALID_ARGUMENT,  # the body is too large or the batch has too many orders
    415: _C.INVALID_ARGUMENT,  # a batch Content-Type the gateway cannot read
}
"""HTTP statuses only the gateway answers (no gRPC code maps to them) → their gRPC code."""


def status_name_of_http(status: int) -> str:
    """The gRPC status name for an HTTP status the gateway answers on its own.

    :data:`GATEWAY_ONLY_STATUS` first, then the first code of :data:`HTTP_STATUS` with that
    status (400 is INVALID_ARGUMENT, 409 ABORTED); any other 4xx is INVALID_ARGUMENT, any
    other 5xx INTERNAL.
    """
    if status in GATEWAY_ONLY_STATUS:
        return GATEWAY_ONLY_STATUS[status].name
    for code, http in HTTP_STATUS.items():
        if http == status and code is not _C.OK:
            return code.name
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL"


def cap_message(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS`."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def cap_violations(violations: Sequence[FieldViolation]) -> list[FieldViolation]:
    """The first :data:`MAX_VIOLATIONS`, then one ``"…"`` entry saying how many more."""
    items = list(violations)
    if len(items) <= MAX_VIOLATIONS:
        return items
    more = len(items) - MAX_VIOLATIONS
    return [*items[:MAX_VIOLATIONS], FieldViolation("…", f"and {more} more")]


class GatewayError(Exception):
    """An error answered as the JSON body of :func:`error_body`."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: Sequence[dict[str, Any]] = (),
        *,
        http: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = cap_message(message)
        self.details = list(details)
        self.http = http if http is not None else http_status(code)
        self.headers = headers or {}

    def error(self) -> dict[str, Any]:
        """The ``error`` object: code (HTTP), message, status (gRPC name), details."""
        return {
            "code": self.http,
            "message": self.message,
            "status": self.code.name,
            "details": self.details,
        }

    def body(self) -> dict[str, Any]:
        """The whole response body, ``{"error": ...}``."""
        return {"error": self.error()}


def detail_json(detail: Message) -> dict[str, Any]:
    """A ``google.rpc`` detail message as proto3 JSON of an ``Any`` (with ``@type``)."""
    packed = any_pb2.Any()
    packed.Pack(detail)
    return json_format.MessageToDict(packed)


def bad_request(violations: Iterable[FieldViolation]) -> dict[str, Any]:
    """A ``google.rpc.BadRequest`` detail (as the service builds it) as proto3 JSON."""
    return detail_json(bad_request_detail(violations))


def invalid_argument(
    violations: Iterable[FieldViolation], *, http: int | None = None
) -> GatewayError:
    """INVALID_ARGUMENT (400 unless ``http`` says otherwise) naming every bad field."""
    items = cap_violations(list(violations))
    message = "; ".join(str(v) for v in items) or "invalid argument"
    return GatewayError(_C.INVALID_ARGUMENT, message, [bad_request(items)], http=http)


def invalid_field(field: str, description: str, *, http: int | None = None) -> GatewayError:
    """INVALID_ARGUMENT naming one bad field."""
    return invalid_argument([FieldViolation(field, description)], http=http)


_GENERIC_5XX = {
    _C.UNAVAILABLE: "the routing service is unavailable; retry later",
    _C.DEADLINE_EXCEEDED: "Deadline Exceeded",
    _C.UNIMPLEMENTED: "not implemented by the routing service",
}


def unavailable(message: str = _GENERIC_5XX[_C.UNAVAILABLE]) -> GatewayError:
    """UNAVAILABLE (503) with ``Retry-After: 1``."""
    return GatewayError(_C.UNAVAILABLE, message, headers={"Retry-After": "1"})


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    """The gateway error of a failed RPC: its code, message and rich-status details.

    A 5xx keeps only its code: the message is generic (the real one is logged), so nothing
    of the backend (addresses, stack traces) leaks; 503 carries ``Retry-After: 1``.
    """
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name
    if http_status(code) >= 500:
        logger.warning("gRPC call failed: %s: %s", code.name, message)
        if code is _C.UNAVAILABLE:
            return unavailable()
        return GatewayError(code, _GENERIC_5XX.get(code, "internal error"))
    details: list[dict[str, Any]] = []
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # rich status disagrees with the call's code/message: ignore it
        status = None
    if status is not None:
        for packed in status.details:
            try:
                details.append(json_format.MessageToDict(packed))
            except (TypeError, KeyError, json_format.Error):  # a type not linked in
                details.append({"@type": packed.type_url})
    return GatewayError(code, message, details)


def internal() -> GatewayError:
    """INTERNAL (500) that reveals nothing of the failure."""
    return GatewayError(_C.INTERNAL, "internal error")


_PREFIX = re.compile(r"^(Failed to parse \w+ field: )+")
_SUFFIX = re.compile(r"\s+at \S+\.*$")


def parse_error_description(message: str) -> str:
    """The innermost reason of a ``json_format.ParseError`` message, without its path."""
    text = _PREFIX.sub("", message.strip())
    return _SUFFIX.sub("", text).rstrip(".") or message
