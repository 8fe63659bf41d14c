"""The ledger on PostgreSQL: shared by any number of router replicas (psycopg 3 + a pool).

Transactions run at READ COMMITTED; reads run outside any (each statement reads the last
commit, as it would inside one). Correctness rests on row locks taken by conditional
updates (each UPDATE re-reads the latest committed row version after waiting for its
lock) in the fixed order of sql.py, and on the unique key of the idempotency records.
Deadlocks and serialisation failures should not occur with that order; when one does,
the whole transaction is retried a bounded number of times. Any other database error is
classified by its SQLSTATE (:func:`failure_of`) and raised as the ledger's own error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from router.ledger.driver import (
    Done,
    Failure,
    Row,
    Statement,
    Tx,
    ledger_error,
    transaction_span,
)
from router.ledger.sql import SqlLedger

T = TypeVar("T")

SCHEMA = Path(__file__).with_name("schema_postgres.sql")
#: Attempts of one transaction on a deadlock or serialisation failure.
MAX_ATTEMPTS = 5
#: Arbitrary key of the advisory lock that serialises schema creation across processes.
SCHEMA_LOCK_KEY = 0x6C656467  # "ledg"
#: Arbitrary key of the advisory lock that serialises seeding an empty ledger.
SEED_LOCK_KEY = 0x73656564  # "seed"
#: Arbitrary key of the advisory lock that serialises rule-set publishes and activations.
RULES_LOCK_KEY = 0x72756C65  # "rule"
#: Longest wait for a row lock before a statement fails (LockNotAvailable).
LOCK_TIMEOUT_S = 5.0
#: Longest run of one statement before it is cancelled (QueryCanceled).
STATEMENT_TIMEOUT_S = 15.0
#: Longest wait for a pooled connection (and for the pool's first one at open).
POOL_TIMEOUT_S = 5.0


def _sqlstate(error: type[psycopg.Error]) -> str:
    """The SQLSTATE psycopg raises ``error`` for (every class in psycopg.errors has one)."""
    assert error.sqlstate is not None, error
    return error.sqlstate


#: SQLSTATE classes (the first two characters) whose errors may pass: connection
#: exceptions, transaction rollbacks (serialisation failures, deadlocks), insufficient
#: resources (too many connections, disk full), operator intervention (admin or crash
#: shutdown, a cancelled statement: the statement timeout) and system errors (I/O).
_TRANSIENT_CLASSES = frozenset(
    _sqlstate(cls)[:2]
    for cls in (
        pg_errors.ConnectionException,
        pg_errors.TransactionRollback,
        pg_errors.InsufficientResources,
        pg_errors.OperatorIntervention,
        pg_errors.SystemError,
    )
)
#: Single SQLSTATEs that may pass, of classes that otherwise do not: lock and idle timeouts.
_TRANSIENT_CODES = frozenset(
    _sqlstate(cls)
    for cls in (
        pg_errors.LockNotAvailable,
        pg_errors.IdleInTransactionSessionTimeout,
        pg_errors.TransactionTimeout,
    )
)
#: SQLSTATE classes of a value the database cannot take: data exceptions (too long, out of
#: range, invalid text) and program limits (an index row too large).
_BAD_VALUE_CLASSES = frozenset(
    _sqlstate(cls)[:2] for cls in (pg_errors.DataException, pg_errors.ProgramLimitExceeded)
)


def failure_of(error: psycopg.Error) -> Failure:
    """What a psycopg error means to the caller, by its SQLSTATE.

    Errors without one are psycopg's own: a lost or closed connection may pass; a value
    it cannot send (a NUL character in text) is a bad value. Every other SQLSTATE
    (constraint violations, undefined objects, missing privileges, internal errors) is
    refused for good.
    """
    code = error.sqlstate
    if code is None:
        if isinstance(error, psycopg.DataError):
            return Failure.BAD_VALUE
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return Failure.TRANSIENT
        return Failure.REFUSED
    if code in _TRANSIENT_CODES or code[:2] in _TRANSIENT_CLASSES:
        return Failure.TRANSIENT
    if code[:2] in _BAD_VALUE_CLASSES:
        return Failure.BAD_VALUE
    return Failure.REFUSED


def _roll_back(conn: psycopg.Connection[Any]) -> None:
    """Roll back an open transaction block; the error that ended it is the one raised.

    A connection that cannot roll back (lost) is left to the pool, which discards it.
    """
    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
        with suppress(psycopg.Error):
            conn.rollback()


class _PgTx:
    """A transaction on one psycopg connection; ``?`` placeholders become ``%s``.

    With ``begin``, the transaction block is not open yet: its BEGIN is sent in one
    pipeline with the first statement (one round trip for both, where BEGIN alone took
    one).
    """

    def __init__(self, cur: psycopg.Cursor[dict[str, Any]], *, begin: bool = False) -> None:
        self.cur = cur
        self._begin = begin

    @contextmanager
    def _first(self, *, pipeline: bool = False) -> Iterator[None]:
        """Where statements are sent: in one pipeline after the BEGIN still to send, if any.

        With ``pipeline``, in one pipeline in any case (entering a second one inside would
        first send the BEGIN alone).
        """
        begin, self._begin = self._begin, False
        if not (begin or pipeline):
            yield
            return
        conn = self.cur.connection
        with conn.pipeline():
            if begin:
                conn.execute(b"BEGIN")
            yield

    def _begun(self) -> None:
        """Send the BEGIN still to send, alone (before what cannot share its pipeline)."""
        with self._first():
            pass

    def _execute(self, sql: str, params: Sequence[object]) -> None:
        with self._first():
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

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        # psycopg sends the rows in pipeline mode: one round trip, not one per row.
        self._begun()
        self.cur.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])

    def tuples(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        self._begun()
        with self.cur.connection.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))
            return cur.fetchall()

    def batch(self, statements: Sequence[Statement]) -> list[Done]:
        # Sent in one pipeline (with the BEGIN still to send, if any): the results come
        # back together at its sync, each to its own cursor (an error raises at the sync;
        # the statements after it are skipped).
        conn = self.cur.connection
        cursors = [conn.cursor(row_factory=tuple_row) for _ in statements]
        try:
            with self._first(pipeline=True):
                for cur, (sql, params) in zip(cursors, statements, strict=True):
                    cur.execute(sql.replace("?", "%s"), tuple(params))
            return [
                Done(cur.fetchall() if cur.description is not None else [], cur.rowcount)
                for cur in cursors
            ]
        finally:
            for cur in cursors:
                cur.close()


class PostgresLedger(SqlLedger):
    """The ledger in a PostgreSQL database (the schema on the connection's search_path)."""

    lock_position_sql = (
        "SELECT on_hand, reserved, safety_stock FROM positions WHERE node_id = ? AND sku = ? "
        "FOR UPDATE"
    )
    positions_of_skus_sql = (
        "SELECT node_id, sku, on_hand, safety_stock, reserved FROM positions "
        "WHERE sku = ANY(?) ORDER BY node_id, sku"
    )

    def sku_list(self, skus: Sequence[str]) -> object:
        """A Python list: psycopg sends it as a text array for ``ANY``."""
        return list(skus)

    def __init__(
        self,
        conninfo: str,
        *,
        max_connections: int = 8,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        statement_timeout_s: float = STATEMENT_TIMEOUT_S,
        pool_timeout_s: float = POOL_TIMEOUT_S,
    ) -> None:
        """Open a pool on ``conninfo`` and create the schema when missing.

        Every connection waits at most ``lock_timeout_s`` for a row lock and runs a
        statement for at most ``statement_timeout_s``; taking a connection from the pool
        waits at most ``pool_timeout_s``. On any failure the pool is closed again.
        """
        settings = (
            f"SET lock_timeout = {int(lock_timeout_s * 1000)}; "
            f"SET statement_timeout = {int(statement_timeout_s * 1000)}"
        )

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(settings.encode())
            conn.commit()

        connect_timeout = max(2, int(pool_timeout_s))
        # The schema first, on a connection of its own: a bad URL or database fails here,
        # at once and with the server's message, before any pool thread exists.
        with (
            psycopg.connect(conninfo, connect_timeout=connect_timeout) as conn,
            conn.cursor() as cur,
        ):
            configure(conn)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            cur.execute(SCHEMA.read_text().encode())
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            # Autocommit: reads run without BEGIN and COMMIT (see read); every change still
            # runs in a transaction block of its own (transaction).
            kwargs={"autocommit": True, "connect_timeout": connect_timeout},
            configure=configure,
            timeout=pool_timeout_s,
            open=True,
        )
        try:
            self.pool.wait(timeout=pool_timeout_s)
        except BaseException:
            self.pool.close()
            raise

    def transaction(self, work: Callable[[Tx], T]) -> T:
        """See :meth:`SqlLedger.transaction`.

        A database error is raised as the ledger's error of its :func:`failure_of` (see
        :func:`ledger_error`); an empty pool and a conflict that outlasts its retries as
        :class:`LedgerUnavailableError`.
        """
        with transaction_span(work, "postgresql"):
            return self._transaction(work)

    def _transaction(self, work: Callable[[Tx], T]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                    try:
                        result = work(_PgTx(cur, begin=True))
                        conn.commit()  # nothing to commit when work sent nothing
                    except BaseException:
                        _roll_back(conn)
                        raise
                    return result
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as e:
                if attempt == MAX_ATTEMPTS:
                    raise ledger_error(Failure.TRANSIENT, e, e.sqlstate) from e
                time.sleep(random.uniform(0, 0.02 * attempt))
            except PoolTimeout as e:
                raise ledger_error(Failure.TRANSIENT, e, None) from e
            except psycopg.Error as e:
                raise ledger_error(failure_of(e), e, e.sqlstate) from e
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Tx], T]) -> T:
        """See :meth:`SqlDriver.read`: the statements run outside a transaction block.

        At READ COMMITTED each statement reads its own snapshot even inside one, so a block
        around reads would add nothing but the round trips of BEGIN and COMMIT. Errors are
        raised as :meth:`transaction` raises them.
        """
        with transaction_span(work, "postgresql"):
            return self._read_only(work)

    def _read_only(self, work: Callable[[Tx], T]) -> T:
        try:
            with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                return work(_PgTx(cur))
        except PoolTimeout as e:
            raise ledger_error(Failure.TRANSIENT, e, None) from e
        except psycopg.Error as e:
            raise ledger_error(failure_of(e), e, e.sqlstate) from e

    def _seed_lock(self, tx: Tx) -> None:
        """A transaction-scoped advisory lock: one seeder at a time across replicas."""
        tx.one("SELECT pg_advisory_xact_lock(?)", (SEED_LOCK_KEY,))

    def _rules_lock(self, tx: Tx) -> None:
        """A transaction-scoped advisory lock: one rule-set writer at a time across replicas.

        Publishes and activations read the highest number (and the active version) and then
        insert the next; under READ COMMITTED only this lock keeps two replicas from reading
        the same ones. Reads (``active_rules``) do not take it.
        """
        tx.one("SELECT pg_advisory_xact_lock(?)", (RULES_LOCK_KEY,))

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

    def pool_stats(self) -> dict[str, int]:
        """The connection pool's figures now (psycopg_pool's ``get_stats``): for metrics."""
        return self.pool.get_stats()

    def close(self) -> None:
        """Close the pool and its connections."""
        self.pool.close()
