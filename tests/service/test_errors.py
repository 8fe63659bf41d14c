"""The error table: domain exceptions to gRPC status codes and google.rpc details."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from models.errors import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    Refusal,
    RulesRefusedError,
)
from router.service.errors import (
    MAX_DESCRIPTION_CHARS,
    MAX_DETAIL_BYTES,
    MAX_MESSAGE_CHARS,
    status_of,
)
from router.v1 import router_pb2, router_pb2_grpc
from tests.service.conftest import Running


def _rpc_status(status: grpc.Status) -> status_pb2.Status:
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


def test_invalid_argument_carries_one_field_violation_each() -> None:
    """InvalidArgumentError → INVALID_ARGUMENT with a BadRequest of its violations, in order."""
    error = InvalidArgumentError(
        [FieldViolation("order.service", "unknown"), FieldViolation("order.lines", "empty")]
    )
    status = status_of(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert _rpc_status(status).details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("order.service", "unknown"),
        ("order.lines", "empty"),
    ]


def test_subclasses_map_like_their_base() -> None:
    """A subclass of a listed exception takes its base's code."""

    class UnknownNode(NotFoundError):
        pass

    status = status_of(UnknownNode("node 'x'"))
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.details == "node 'x'"


def test_unexpected_error_is_internal_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected error is logged with its traceback; the status reveals nothing of it."""
    try:
        raise RuntimeError("password=hunter2")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR):
            status = status_of(error)
    assert status.code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in status.details
    assert "hunter2" not in str(_rpc_status(status))
    assert "Traceback" in caplog.text
    assert "hunter2" in caplog.text


def test_a_status_with_hundreds_of_items_stays_within_the_trailer_budget() -> None:
    """500 violations or refusals: the message is clipped, the details kept small.

    The details stop within MAX_DETAIL_BYTES; their last item counts the ones left out.
    """
    long = "x" * 2000
    violations = [FieldViolation(f"order.lines[{i}].sku", long) for i in range(500)]
    refusals = [Refusal("LINT", f"strategies[{i}]", long) for i in range(500)]
    for error, kind in (
        (InvalidArgumentError(violations), error_details_pb2.BadRequest),
        (RulesRefusedError(refusals), error_details_pb2.PreconditionFailure),
    ):
        status = status_of(error)
        assert len(status.details) <= MAX_MESSAGE_CHARS and status.details.endswith("…")
        detail = kind()
        assert _rpc_status(status).details[0].Unpack(detail)
        assert detail.ByteSize() <= MAX_DETAIL_BYTES
        items = list(getattr(detail, "field_violations", None) or detail.violations)
        assert 1 < len(items) < 500
        assert items[-1].description == f"and {500 - len(items) + 1} more"
        assert all(len(item.description) <= MAX_DESCRIPTION_CHARS for item in items)


def test_a_document_with_hundreds_of_problems_still_gets_its_first_ones_back(
    server: Running,
) -> None:
    """300 unknown keys over the wire: INVALID_ARGUMENT with the first ones and a count.

    Before, the trailing metadata outgrew gRPC's 16 KiB and the client saw
    RESOURCE_EXHAUSTED instead of any of its problems.
    """
    keys = "".join(f"    unknown_weight_{i:03d}: 1\n" for i in range(300))
    document = f"name: big\nstrategies:\n  - name: s\n    weights:\n{keys}"
    stub = router_pb2_grpc.RulesServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ValidateRules(router_pb2.ValidateRulesRequest(document=document), timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    shown = bad_request.field_violations
    assert 10 < len(shown) < 300
    assert "unknown_weight_000" in shown[0].description + shown[0].field
    assert shown[-1].description == f"and {300 - len(shown) + 1} more"
