"""The databases enforce the ledger's invariants themselves, and URLs pick the backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from models.errors import InvalidArgumentError
from models.reservation import ReservationLine
from router.ledger import open_ledger
from router.ledger.memory import MemoryLedger
from router.ledger.postgres import PostgresLedger
from router.ledger.sqlite import SqliteLedger
from tests.ledger.conftest import CAPACITIES, DAY, NOW, POSITIONS, scenario

pytestmark = pytest.mark.timeout(30)

#: Writes that break an invariant; each must be refused by a constraint.
VIOLATIONS = [
    "UPDATE positions SET reserved = on_hand + 1 WHERE node_id = 'N1' AND sku = 'A'",
    "UPDATE positions SET reserved = -1 WHERE node_id = 'N1' AND sku = 'A'",
    "UPDATE positions SET on_hand = -1, reserved = -1 WHERE node_id = 'N1' AND sku = 'A'",
    "UPDATE capacity SET used = daily_limit + 1 WHERE node_id = 'N2'",
    "UPDATE reservations SET status = 'LOST'",
    "INSERT INTO idempotency SELECT * FROM idempotency",
]


def _seeded(url: str) -> None:
    with open_ledger(url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        ledger.reserve("q1", b"p", "SO-1", [ReservationLine("N1", "A", 1)], [("N2", DAY)], 60, NOW)


@pytest.mark.parametrize("sql", VIOLATIONS)
def test_sqlite_constraints(sql: str, tmp_path: Path):
    """SQLite refuses every write that breaks an invariant (CHECK, UNIQUE)."""
    _seeded(f"sqlite://{tmp_path / 'l.db'}")
    with sqlite3.connect(tmp_path / "l.db") as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)


@pytest.mark.parametrize("sql", VIOLATIONS)
def test_postgres_constraints(sql: str, pg_url: str):
    """PostgreSQL refuses every write that breaks an invariant (CHECK, UNIQUE)."""
    _seeded(pg_url)
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.IntegrityError):
        conn.execute(sql)


def test_urls_pick_the_backend(tmp_path: Path):
    """memory://, sqlite://PATH and sqlite://:memory: open the matching backend."""
    assert isinstance(open_ledger("memory://"), MemoryLedger)
    with open_ledger(f"sqlite://{tmp_path / 'x.db'}") as on_disk:
        assert isinstance(on_disk, SqliteLedger) and (tmp_path / "x.db").exists()
    with open_ledger("sqlite://:memory:") as in_memory:
        in_memory.load(*scenario(POSITIONS, CAPACITIES))
        assert len(in_memory.stock().positions) == 3


def test_sqlite_is_durable_and_in_wal_mode(tmp_path: Path):
    """A reopened SQLite ledger keeps its reservations; the journal is WAL."""
    url = f"sqlite://{tmp_path / 'l.db'}"
    _seeded(url)
    with open_ledger(url) as reopened:
        assert reopened.stock().positions[("N1", "A")].reserved == 1
    with sqlite3.connect(tmp_path / "l.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("url", ["", "mysql://x", "sqlite://", "memory:"])
def test_unknown_urls_are_refused(url: str):
    """An unknown ledger URL is an InvalidArgumentError naming the field."""
    with pytest.raises(InvalidArgumentError, match="ledger"):
        open_ledger(url)


@pytest.mark.parametrize(
    "busy",
    [
        "UPDATE positions SET reserved = reserved WHERE node_id = 'N1' AND sku = 'A'",
        "UPDATE capacity SET used = used WHERE node_id = 'N2'",
        "UPDATE reservations SET updated_at = updated_at",
        "UPDATE idempotency SET digest = digest",
        "UPDATE calendar_revision SET revision = revision",
        "UPDATE feed_counters SET value = value",
    ],
)
def test_postgres_opens_beside_open_transactions(busy: str, pg_url: str):
    """A replica starting on a live ledger takes no table lock that waits for live writes.

    Opening runs the schema script; on a database that has the schema it must not lock a
    table against the row writes of transactions in flight (CREATE INDEX IF NOT EXISTS takes
    a SHARE lock, ALTER TABLE … ADD COLUMN IF NOT EXISTS an ACCESS EXCLUSIVE one, even when
    there is nothing to do). Such a lock waited for RouteOrder's transactions and deadlocked
    with them when a replica restarted under load (benchmarks/reliability). Here a
    transaction holds a row write open while the ledger opens: it must open at once.
    """
    _seeded(pg_url)
    with psycopg.connect(pg_url) as busy_conn:
        busy_conn.execute(busy)  # its transaction stays open until the block ends
        PostgresLedger(pg_url, lock_timeout_s=1.0).close()  # a lock wait fails in 1 s
