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
    PermissionDeniedError,
    ReservationStateError,
    RulesRefusedError,
    RuleVersionStateError,
    StockConflictError,
    clipped,
)

logger = logging.getLogger(__name__)

_Details = Callable[[Exception], Sequence[Message]]


def bad_request_detail(violations: Iterable[FieldViolation]) -> error_details_pb2.BadRequest:
    """A ``google.rpc.BadRequest`` with one field violation per item, paths as written."""
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )


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
    return [
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=r.kind, subject=r.subject, description=r.description
                )
                for r in exc.refusals
            ]
        )
    ]


_TABLE: dict[type[Exception], tuple[grpc.StatusCode, _Details]] = {
    InvalidArgumentError: (grpc.StatusCode.INVALID_ARGUMENT, _bad_request),
    NotFoundError: (grpc.StatusCode.NOT_FOUND, _no_details),
    # Another principal's reservation (docs/security.md): the caller may not touch it.
    PermissionDeniedError: (grpc.StatusCode.PERMISSION_DENIED, _no_details),
    # The message names every short position and full node; the client may retry later.
    StockConflictError: (grpc.StatusCode.ABORTED, _no_details),
    ReservationStateError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
    RuleVersionStateError: (grpc.StatusCode.FAILED_PRECONDITION, _no_details),
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
    """The status an RPC ends with when ``exc`` escapes it.

    Exceptions not in the table are unexpected: logged with their traceback and returned as
    INTERNAL with a message that reveals nothing of it.
    """
    row = next((_TABLE[cls] for cls in type(exc).__mro__ if cls in _TABLE), None)
    if row is None:
        logger.error("unexpected error in an RPC", exc_info=exc)
        status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
        return rpc_status.to_status(status)
    code, details = row
    status = status_pb2.Status(code=code.value[0], message=clipped(str(exc), MAX_MESSAGE_CHARS))
    budget = MAX_DETAILS_BYTES
    for detail in details(exc):
        _fit(detail, budget)
        packed = any_pb2.Any()
        packed.Pack(detail)
        budget -= packed.ByteSize()
        status.details.append(packed)
    return rpc_status.to_status(status)


MAX_MESSAGE_CHARS = 1000
"""The longest status message sent (it travels percent-encoded in a header)."""
MAX_DETAILS_BYTES = 6000
"""The most bytes of details sent: the message and details travel in trailing metadata,
which gRPC clients refuse beyond 16 KiB (base64 makes details a third larger)."""


def _fit(detail: Message, budget: int) -> None:
    """Trim ``detail``'s list of violations to ``budget`` bytes, naming how many were cut.

    A document with hundreds of problems would otherwise make the answer too large to
    send, and the client would see RESOURCE_EXHAUSTED instead of its first problems.
    """
    if detail.ByteSize() <= budget:
        return
    name = next((f for f in ("field_violations", "violations") if hasattr(detail, f)), None)
    if name is None:
        return
    items = getattr(detail, name)
    total = len(items)
    while len(items) > 1 and detail.ByteSize() > budget - 100:
        keep = len(items) // 2 if detail.ByteSize() > 2 * budget else len(items) - 1
        del items[keep:]
    more = f"... and {total - len(items)} more not shown; fix these and ask again"
    extra = items.add()
    if name == "field_violations":
        extra.description = more
    else:
        extra.description, extra.type = more, "TRUNCATED"


@contextmanager
def abort_on_error(context: grpc.ServicerContext) -> Iterator[None]:
    """End the RPC with :func:`status_of` of any exception raised in the block."""
    try:
        yield
    except Exception as exc:
        context.abort_with_status(status_of(exc))
