"""The one table from domain exceptions to gRPC status codes and ``google.rpc`` details."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from models.errors import (
    FieldViolation,
    IdempotencyMismatchError,
    InvalidArgumentError,
    LedgerRefusedError,
    LedgerUnavailableError,
    LedgerValueError,
    NotFoundError,
    NotReplayableError,
    ReservationStateError,
    RulesRefusedError,
    RuleVersionStateError,
    StockConflictError,
)

logger = logging.getLogger(__name__)

_Details = Callable[[Exception], Sequence[Message]]


MAX_MESSAGE_CHARS = 1024
"""A status message is cut to this many characters (ending in "…")."""
MAX_DETAIL_BYTES = 4096
"""A detail lists items only while its serialised size stays within this many bytes.

A status travels in the RPC's trailers, and gRPC clients refuse trailers over 8 KiB (some
calls) or 16 KiB (every call): a larger status would reach the client as
RESOURCE_EXHAUSTED ("received metadata size exceeds limit") instead of itself."""
MAX_DESCRIPTION_CHARS = 512
"""Each item of a detail (a field violation's description) is cut to this many characters."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bad_request_detail(violations: Iterable[FieldViolation]) -> error_details_pb2.BadRequest:
    """A ``google.rpc.BadRequest`` with one field violation per item, paths as written.

    Within :data:`MAX_DETAIL_BYTES`: a last violation on ``…`` counts the ones left out.
    """
    detail = error_details_pb2.BadRequest()
    items = list(violations)
    for i, v in enumerate(items):
        detail.field_violations.add(
            field=clip(v.field, MAX_DESCRIPTION_CHARS),
            description=clip(v.description, MAX_DESCRIPTION_CHARS),
        )
        if detail.ByteSize() > MAX_DETAIL_BYTES:
            del detail.field_violations[-1]
            detail.field_violations.add(field="…", description=f"and {len(items) - i} more")
            break
    return detail


def _bad_request(exc: Exception) -> Sequence[Message]:
    """One field violation per bad field, paths as the domain wrote them."""
    assert isinstance(exc, InvalidArgumentError)
    return [bad_request_detail(exc.violations)]


def _no_details(exc: Exception) -> Sequence[Message]:
    return ()


def _reused_request_id(exc: Exception) -> Sequence[Message]:
    """A violation on ``request_id``: it was used before for another request."""
    assert isinstance(exc, IdempotencyMismatchError)
    why = "already used with a different request; use a new request_id"
    return [bad_request_detail([FieldViolation("request_id", why)])]


def _precondition_failure(exc: Exception) -> Sequence[Message]:
    """One violation per refusal: type LINT or GOLDEN, its path or case, what is wrong."""
    assert isinstance(exc, RulesRefusedError)
    detail = error_details_pb2.PreconditionFailure()
    for i, r in enumerate(exc.refusals):
        detail.violations.add(
            type=r.kind,
            subject=clip(r.subject, MAX_DESCRIPTION_CHARS),
            description=clip(r.description, MAX_DESCRIPTION_CHARS),
        )
        if detail.ByteSize() > MAX_DETAIL_BYTES:
            del detail.violations[-1]
            more = f"and {len(exc.refusals) - i} more"
            detail.violations.add(type=r.kind, subject="…", description=more)
            break
    return [detail]


_TABLE: dict[type[Exception], tuple[grpc.StatusCode, _Details]] = {
    InvalidArgumentError: (grpc.StatusCode.INVALID_ARGUMENT, _bad_request),
    NotFoundError: (grpc.StatusCode.NOT_FOUND, _no_details),
    # The message names every short position and full node; the client may retry later.
    StockConflictError: (grpc.StatusCode.ABORTED, _no_details),
    ReservationStateError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
    RuleVersionStateError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
    NotReplayableError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
    # Lint errors or failing golden cases: a PreconditionFailure names each of them.
    RulesRefusedError: (grpc.StatusCode.FAILED_PRECONDITION, _precondition_failure),
    # The id exists already (with another request): ALREADY_EXISTS, and a BadRequest
    # detail on request_id says which field to change.
    IdempotencyMismatchError: (grpc.StatusCode.ALREADY_EXISTS, _reused_request_id),
    # The ledger failed for now (timeout, busy, lost connection); request ids make a retry
    # safe. Permanent database failures are the two rows below: a retry would fail alike.
    # None carries the database's words (docs/ledger.md, "When the database fails").
    LedgerUnavailableError: (grpc.StatusCode.UNAVAILABLE, _no_details),
    LedgerValueError: (grpc.StatusCode.INVALID_ARGUMENT, _no_details),
    LedgerRefusedError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
}
"""Each domain exception (or its nearest listed base class) → status code and details."""


def status_of(exc: Exception) -> grpc.Status:
    """The status an RPC ends with when ``exc`` escapes it, small enough to reach the client.

    Exceptions not in the table are unexpected: logged with their traceback and returned as
    INTERNAL with a message that reveals nothing of it.
    """
    row = next((_TABLE[cls] for cls in type(exc).__mro__ if cls in _TABLE), None)
    if row is None:
        logger.error("unexpected error in an RPC", exc_info=exc)
        status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
        return rpc_status.to_status(status)
    code, details = row
    status = status_pb2.Status(code=code.value[0], message=clip(str(exc), MAX_MESSAGE_CHARS))
    for detail in details(exc):
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return rpc_status.to_status(status)


@contextmanager
def abort_on_error(context: grpc.ServicerContext) -> Iterator[None]:
    """End the RPC with :func:`status_of` of any exception raised in the block."""
    try:
        yield
    except Exception as exc:
        context.abort_with_status(status_of(exc))
