"""The error table: domain exceptions to gRPC status codes and google.rpc details."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from models.errors import FieldViolation, InvalidArgumentError, NotFoundError
from router.service.errors import status_of


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
