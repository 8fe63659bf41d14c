"""The filter on grpc's logger: one WARNING line per request type and interval.

With a count of the ones suppressed; every other record untouched.
"""

from __future__ import annotations

import logging

import pytest
from google.protobuf.message import DecodeError

from router.service import undecodable
from router.service.undecodable import GRPC_MESSAGE, UndecodableRequests
from router.v1 import router_pb2


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> tuple[logging.Logger, list[logging.LogRecord], Clock]:
    """A logger of its own with a fresh filter (60 s interval) and the records it lets by."""
    clock = Clock()
    logger = logging.getLogger(f"test.undecodable.{id(clock)}")
    logger.propagate = False
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.addFilter(UndecodableRequests(interval_s=60.0, clock=clock))
    return logger, records, clock


def garbage(logger: logging.Logger, message: type) -> None:
    """Log what grpc logs when ``message`` cannot be parsed: its real DecodeError."""
    try:
        message.FromString(b"\xff\xff\xff\xff")
    except DecodeError:
        logger.exception(GRPC_MESSAGE)


def test_one_line_per_type_and_interval_then_the_count(logged) -> None:
    """One WARNING per request type and interval, no traceback; then the count suppressed."""
    logger, records, clock = logged
    for _ in range(5):
        garbage(logger, router_pb2.RouteOrderRequest)
    garbage(logger, router_pb2.ApplyStockDeltaRequest)
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)] * 2
    assert "RouteOrderRequest" in records[0].getMessage()
    assert "ApplyStockDeltaRequest" in records[1].getMessage()
    clock.now += 59.0
    garbage(logger, router_pb2.RouteOrderRequest)
    assert len(records) == 2
    clock.now += 1.0
    garbage(logger, router_pb2.RouteOrderRequest)
    assert len(records) == 3
    assert "5 more suppressed" in records[2].getMessage()


def test_other_records_pass_unchanged(logged) -> None:
    """Anything but grpc's undecodable-request record keeps its level and traceback."""
    logger, records, _ = logged
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("Exception serializing message!")
    [record] = records
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_memory_is_bounded_by_the_kinds_tracked(logged, monkeypatch) -> None:
    """Beyond MAX_KINDS request types, the rest share one line and one count."""
    logger, records, _ = logged
    monkeypatch.setattr(undecodable, "MAX_KINDS", 1)
    garbage(logger, router_pb2.RouteOrderRequest)
    garbage(logger, router_pb2.ApplyStockDeltaRequest)
    garbage(logger, router_pb2.PlanOrderRequest)
    assert len(records) == 2
    assert "other undecodable requests" in records[1].getMessage()


def test_install_puts_one_filter_on_grpcs_logger() -> None:
    """install() is idempotent: servers created in one process share the one filter."""
    first = undecodable.install()
    assert undecodable.install() is first
    filters = logging.getLogger(undecodable.GRPC_LOGGER).filters
    assert filters.count(first) == 1
    assert sum(isinstance(f, UndecodableRequests) for f in filters) == 1
