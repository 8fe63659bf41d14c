"""Bounded waits: a ledger that cannot answer in time says so (UNAVAILABLE), never hangs.

PostgreSQL connections carry a lock and a statement timeout; opening a bad database fails
at once and leaves no pool threads behind; busy or timed-out databases raise
:class:`LedgerUnavailableError`, which the service maps to UNAVAILABLE.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest

from models.errors import LedgerUnavailableError
from models.reservation import ReservationLine
from router.ledger import open_ledger
from router.ledger.postgres import PostgresLedger
from router.service.errors import status_of
from tests.ledger.conftest import CAPACITIES, NOW, POSITIONS, scenario

pytestmark = pytest.mark.timeout(60)


def test_ledger_unavailable_maps_to_unavailable() -> None:
    """LedgerUnavailableError → UNAVAILABLE with its message (a retry is safe)."""
    status = status_of(LedgerUnavailableError("ledger busy, try again"))
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert status.details == "ledger busy, try again"


def test_opening_a_missing_database_fails_at_once_without_leaking_threads(
    pg_server: str,
) -> None:
    """A database that does not exist: open_ledger raises promptly, no pool threads stay."""
    parts = urlsplit(pg_server)
    missing = urlunsplit(parts._replace(path="/no_such_database_for_router_tests"))
    before = threading.active_count()
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        open_ledger(missing)
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_a_held_row_lock_times_out_as_ledger_unavailable(pg_url: str) -> None:
    """Another connection holds a position's row lock: reserve gives up after lock_timeout."""
    with open_ledger(pg_url) as seeded:
        seeded.load(*scenario(POSITIONS, CAPACITIES))
    ledger = PostgresLedger(pg_url, lock_timeout_s=0.2)
    try:
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("SELECT 1 FROM positions WHERE node_id = 'N1' AND sku = 'A' FOR UPDATE")
            started = time.monotonic()
            with pytest.raises(LedgerUnavailableError):
                ledger.reserve("r1", b"p", "o1", [line("N1", "A", 1)], [], 60.0, NOW)
            assert time.monotonic() - started < 5
            blocker.rollback()
        # Nothing was committed: the same request succeeds once the lock is gone.
        made = ledger.reserve("r1", b"p", "o1", [line("N1", "A", 1)], [], 60.0, NOW)
        assert [(x.node_id, x.sku, x.quantity) for x in made.lines] == [("N1", "A", 1)]
    finally:
        ledger.close()


def line(node_id: str, sku: str, quantity: int) -> ReservationLine:
    """A reservation line."""
    return ReservationLine(node_id, sku, quantity)
