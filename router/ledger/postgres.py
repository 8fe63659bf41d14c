"""The ledger on PostgreSQL: shared by any number of router replicas (psycopg 3 + a pool).

Transactions run at READ COMMITTED. Correctness rests on row locks taken by conditional
updates (each UPDATE re-reads the latest committed row version after waiting for its
lock) in the fixed order of sql.py, and on the unique key of the idempotency records.
Deadlocks and serialisation failures should not occur with that order; when one does,
the whole transaction is retried a bounded number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from router.ledger.sql import Row, SqlLedger, Tx

T = TypeVar("T")

SCHEMA = Path(__file__).with_name("schema_postgres.sql")
#: Attempts of one transaction on a deadlock or serialisation failure.
MAX_ATTEMPTS = 5
#: Arbitrary key of the advisory lock that serialises schema creation across processes.
SCHEMA_LOCK_KEY = 0x6C656467  # "ledg"


class _PgTx:
    """A transaction on one psycopg connection; ``?`` placeholders become ``%s``."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.cur = cur

    def _execute(self, sql: str, params: Sequence[object]) -> None:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        self._execute(sql, params)
        row: Row | None = self.cur.fetchone()
        return row

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._execute(sql, params)
        return list(self.cur.fetchall())

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        self._execute(sql, params)
        return self.cur.rowcount


class PostgresLedger(SqlLedger):
    """The ledger in a PostgreSQL database (the schema on the connection's search_path)."""

    for_update = " FOR UPDATE"

    def __init__(self, conninfo: str, *, max_connections: int = 8) -> None:
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": False},
            open=True,
        )
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            cur.execute(SCHEMA.read_text().encode())

    def transaction(self, work: Callable[[Tx], T]) -> T:
        """See :meth:`SqlLedger.transaction`."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with (
                    self.pool.connection() as conn,
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    return work(_PgTx(cur))
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                if attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))
        raise AssertionError("unreachable")

    def ts(self, value: datetime) -> object:
        """Instants go to timestamptz as aware datetimes."""
        return value.astimezone(UTC)

    def from_ts(self, value: Any) -> datetime:
        """A timestamptz comes back aware; normalised to UTC."""
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def day(self, value: date) -> object:
        """Days go to ``date`` columns as they are."""
        return value

    def from_day(self, value: Any) -> date:
        """``date`` columns come back as dates."""
        assert isinstance(value, date)
        return value

    def close(self) -> None:
        """Close the pool and its connections."""
        self.pool.close()
