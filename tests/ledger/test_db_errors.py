"""Database errors as the ledger raises them: transient or permanent, in our words.

Transient ones may be retried, permanent ones not, and none carries the database's words
(which are logged once, at WARNING). Errors come from the real servers: PostgreSQL raises
each SQLSTATE of the table from a ``DO`` block (and the common ones from real statements),
SQLite from real statements.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import grpc
import psycopg
import pytest

from models.errors import LedgerRefusedError, LedgerUnavailableError, LedgerValueError
from router.ledger import open_ledger
from router.ledger.driver import Failure
from router.ledger.postgres import PostgresLedger
from router.ledger.sqlite import SqliteLedger, failure_of
from router.service.errors import status_of
from tests.ledger.conftest import CAPACITIES, POSITIONS, scenario

pytestmark = pytest.mark.timeout(60)

#: What the database says, which must reach the log and never the caller.
INTERNALS = 'index "idempotency_pkey" tuple (0,1) hint'

#: SQLSTATE → the ledger's error and the RPC's code (docs/ledger.md has the same table).
SQLSTATES = {
    "22001": (LedgerValueError, grpc.StatusCode.INVALID_ARGUMENT),  # string too long
    "22003": (LedgerValueError, grpc.StatusCode.INVALID_ARGUMENT),  # numeric out of range
    "22P02": (LedgerValueError, grpc.StatusCode.INVALID_ARGUMENT),  # invalid text
    "54000": (LedgerValueError, grpc.StatusCode.INVALID_ARGUMENT),  # index row too large
    "23514": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # check violation
    "23505": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # unique violation
    "23000": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # our triggers
    "42P01": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # undefined table
    "42501": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # no privilege
    "XX000": (LedgerRefusedError, grpc.StatusCode.FAILED_PRECONDITION),  # internal error
    "08006": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # connection failure
    "40001": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # serialization
    "40P01": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # deadlock
    "55P03": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # lock timeout
    "57014": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # statement timeout
    "57P01": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # admin shutdown
    "53300": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # too many connections
    "53100": (LedgerUnavailableError, grpc.StatusCode.UNAVAILABLE),  # disk full
}


def ledger_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ledger driver's log records."""
    return [r for r in caplog.records if r.name == "router.ledger.driver"]


def assert_reported(
    error: Exception, expected: type[Exception], code: grpc.StatusCode, caplog
) -> None:
    """``error`` is ``expected`` and maps to ``code`` without the database's words.

    The database's words were logged once, at WARNING, on one line.
    """
    assert type(error) is expected
    status = status_of(error)
    assert status.code == code
    for words in (INTERNALS, "idempotency_pkey", "tuple", "DETAIL", "HINT"):
        assert words not in status.details
    [logged] = ledger_warnings(caplog)
    assert logged.levelno == logging.WARNING
    assert "idempotency_pkey" in logged.getMessage()
    assert "\n" not in logged.getMessage()


@pytest.fixture
def pg_ledger(pg_url: str):
    """A PostgreSQL ledger in a fresh schema."""
    with open_ledger(pg_url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        yield ledger


@pytest.mark.parametrize("sqlstate", sorted(SQLSTATES))
def test_each_sqlstate_is_classified_and_its_words_stay_in_the_log(
    pg_ledger: PostgresLedger, sqlstate: str, caplog: pytest.LogCaptureFixture
):
    """Every SQLSTATE of the table becomes its ledger error and RPC code, with our words."""
    expected, code = SQLSTATES[sqlstate]
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION '{INTERNALS}' USING ERRCODE = '{sqlstate}'; END $$"
    with caplog.at_level(logging.WARNING), pytest.raises(Exception) as caught:
        pg_ledger.transaction(lambda tx: tx.run(raise_it))
    assert_reported(caught.value, expected, code, caplog)


def test_an_over_long_key_is_a_bad_value_not_a_retry(
    pg_ledger: PostgresLedger, caplog: pytest.LogCaptureFixture
):
    """A SKU too large for its index (real 54000): INVALID_ARGUMENT, and nothing applied."""
    sku = secrets.token_urlsafe(4000)  # incompressible: the index cannot shrink it
    with caplog.at_level(logging.WARNING), pytest.raises(LedgerValueError) as caught:
        pg_ledger.apply_snapshot("wms", 1, "N1", [(sku, 1, 0)])
    status = status_of(caught.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "index" not in status.details and sku[:20] not in status.details
    [logged] = ledger_warnings(caplog)
    assert "54000" in logged.getMessage() and len(logged.getMessage()) < 700
    assert pg_ledger.feed_stats()["applied"] == 0


def test_a_nul_character_is_a_bad_value(pg_ledger: PostgresLedger):
    """PostgreSQL text cannot hold NUL (psycopg refuses it, no SQLSTATE): INVALID_ARGUMENT."""
    with pytest.raises(LedgerValueError):
        pg_ledger.apply_snapshot("wms", 1, "N1", [("A\x00B", 1, 0)])


def test_a_check_violation_is_refused(pg_ledger: PostgresLedger):
    """A statement breaking a CHECK constraint (real 23514): FAILED_PRECONDITION."""
    with pytest.raises(LedgerRefusedError):
        pg_ledger.transaction(lambda tx: tx.run("UPDATE positions SET on_hand = -1"))


def test_a_statement_timeout_may_be_retried(pg_url: str):
    """A statement cut by statement_timeout (real 57014): UNAVAILABLE."""
    ledger = PostgresLedger(pg_url, statement_timeout_s=0.1)
    try:
        with pytest.raises(LedgerUnavailableError):
            ledger.transaction(lambda tx: tx.one("SELECT pg_sleep(2)"))
    finally:
        ledger.close()


def test_a_terminated_connection_may_be_retried(pg_ledger: PostgresLedger, pg_server: str):
    """The server ends the ledger's connection (admin shutdown): UNAVAILABLE, then it works."""
    row = pg_ledger.transaction(lambda tx: tx.one("SELECT pg_backend_pid() AS pid"))
    assert row is not None
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
    with pytest.raises(LedgerUnavailableError):
        pg_ledger.stock()
    assert pg_ledger.stock().positions  # the pool replaced the connection


@pytest.fixture
def sqlite_ledger(tmp_path: Path):
    """A SQLite ledger in a fresh file."""
    ledger = SqliteLedger(str(tmp_path / "l.db"))
    ledger.load(*scenario(POSITIONS, CAPACITIES))
    yield ledger
    ledger.close()


def test_sqlite_constraint_and_sql_errors_are_refused(sqlite_ledger: SqliteLedger, caplog):
    """A CHECK violation and a missing table: FAILED_PRECONDITION, logged once each."""
    for statement in ("UPDATE positions SET on_hand = -1", "SELECT * FROM no_such_table"):
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(LedgerRefusedError) as caught:
            sqlite_ledger.transaction(lambda tx, sql=statement: tx.run(sql))
        assert status_of(caught.value).code == grpc.StatusCode.FAILED_PRECONDITION
        assert "positions" not in str(caught.value) and "no_such_table" not in str(caught.value)
        assert len(ledger_warnings(caplog)) == 1
    assert sqlite_ledger.stock().positions[("N1", "A")].on_hand == 10  # rolled back


def test_sqlite_too_big_is_a_bad_value(sqlite_ledger: SqliteLedger):
    """A value over SQLite's length limit (SQLITE_TOOBIG): INVALID_ARGUMENT."""
    with pytest.raises(LedgerValueError):
        sqlite_ledger.transaction(lambda tx: tx.one("SELECT zeroblob(2000000000)"))
    assert sqlite_ledger.stock().positions[("N1", "A")].on_hand == 10


def test_sqlite_busy_may_be_retried(tmp_path: Path):
    """A database another connection holds for writing (SQLITE_BUSY) is TRANSIENT."""
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("BEGIN IMMEDIATE")
        assert failure_of(caught.value) is Failure.TRANSIENT
    finally:
        holder.close()
        waiter.close()


def test_closing_a_ledger_others_are_reading_waits_for_them_and_refuses_later_calls(
    backend_url: str,
):
    """close() while threads read (a price refresh during a server's stop) crashes nothing.

    Closing a SQLite connection another thread was using killed the interpreter (seen when
    a server stopped in the middle of a look-ahead refresh); the running reads finish, and
    every call after the close is LedgerUnavailableError.
    """
    if backend_url.startswith("memory"):
        pytest.skip("the memory ledger holds no connection: close() releases nothing")
    ledger = open_ledger(backend_url)
    ledger.load(*scenario(POSITIONS, CAPACITIES))
    errors: list[BaseException] = []
    reads = [0, 0]

    def read(slot: int) -> None:
        try:
            while True:
                ledger.stock()
                reads[slot] += 1
        except BaseException as e:  # what ended the loop is the result
            errors.append(e)

    threads = [threading.Thread(target=read, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    while min(reads) < 20:
        time.sleep(0.01)
    ledger.close()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 2
    assert all(isinstance(e, LedgerUnavailableError) for e in errors), errors
