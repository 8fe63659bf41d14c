"""The ledger on SQLite: the embedded default (one process, durable, WAL).

Each thread gets its own connection (an in-memory database shares one connection under a
lock instead). Every transaction that may write starts with ``BEGIN IMMEDIATE``, which
takes the write lock up front: writers run one at a time, so the conditional updates of
sql.py never race, and a busy database is waited for (busy timeout) rather than failing
at commit. The writers of one process take turns on a lock of their own first, so they
do not poll SQLite's busy handler for each other. Reads (:meth:`SqliteLedger.read`)
start with a deferred ``BEGIN``: in WAL mode they see the last commit as of their first
statement and neither take nor wait for the write lock, so planning goes on while a
reservation commits.
Database errors are classified by their result code (:func:`failure_of`) and raised as
the ledger's own errors.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from models.errors import LedgerUnavailableError
from models.network import Stock
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
from router.ledger.stock import stock_of_sku_arrays

T = TypeVar("T")

SCHEMA = Path(__file__).with_name("schema_sqlite.sql")
BUSY_TIMEOUT_S = 30.0
#: Attempts of one transaction when SQLite still reports the database locked.
MAX_ATTEMPTS = 5
CLOSE_WAIT_S = BUSY_TIMEOUT_S + 5.0
"""How long close() waits for running calls (one may wait out the busy timeout)."""


#: Primary result codes of errors that may pass: another writer holds the database, an
#: I/O error, a full disk, no memory, a file that cannot be opened now, an interrupt.
_TRANSIENT_CODES = frozenset(
    (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_INTERRUPT,
    )
)
#: Primary result codes of a value the database cannot take: too big, or of a wrong type.
_BAD_VALUE_CODES = frozenset((sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH))


def _code(error: sqlite3.Error) -> int | None:
    """The primary result code of ``error`` (extended codes carry it in their low byte)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _busy(error: sqlite3.Error) -> bool:
    """Whether ``error`` means the database is locked by another writer (try again)."""
    return _code(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def failure_of(error: sqlite3.Error) -> Failure:
    """What a sqlite3 error means to the caller, by its result code.

    Errors without one are the module's own: a DataError is a bad value, an
    OperationalError may pass, anything else (a closed connection, a wrong parameter) is
    refused. Every other result code (constraint, read-only file, corruption, SQL error)
    is refused for good.
    """
    code = _code(error)
    if code is None:
        if isinstance(error, sqlite3.DataError):
            return Failure.BAD_VALUE
        if isinstance(error, sqlite3.OperationalError):
            return Failure.TRANSIENT
        return Failure.REFUSED
    if code in _TRANSIENT_CODES:
        return Failure.TRANSIENT
    if code in _BAD_VALUE_CODES:
        return Failure.BAD_VALUE
    return Failure.REFUSED


def _as_ledger_error(error: sqlite3.Error) -> Exception:
    """The ledger's error for ``error`` (see :func:`ledger_error`)."""
    return ledger_error(failure_of(error), error, getattr(error, "sqlite_errorname", None))


class _SqliteTx:
    """A transaction on one sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, tuple(params)).fetchone()
        return row

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return list(self.conn.execute(sql, tuple(params)).fetchall())

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.conn.executemany(sql, [tuple(row) for row in rows])

    def tuples(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples, not the connection's rows by name
        return cursor.execute(sql, tuple(params)).fetchall()

    def batch(self, statements: Sequence[Statement]) -> list[Done]:
        # A statement without result columns is not fetched: fetching steps it once more,
        # and each step lets go of the interpreter's lock (a wait to get it back, under load).
        cursor = self.conn.cursor()
        cursor.row_factory = None
        done = []
        for sql, params in statements:
            cursor.execute(sql, tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
            done.append(Done(rows, cursor.rowcount))
        return done


class SqliteLedger(SqlLedger):
    """The ledger in one SQLite file (or in memory for ``:memory:``)."""

    # Writers serialise (BEGIN IMMEDIATE), so reading a row is enough to hold it.
    lock_position_sql = (
        "SELECT on_hand, reserved, safety_stock FROM positions WHERE node_id = ? AND sku = ?"
    )
    # One row a SKU, its positions in one JSON array: the rows of a popular SKU (hundreds)
    # would each be a step of the statement, and the sqlite3 module lets go of the
    # interpreter's lock for every step (under load, a wait to get it back for each).
    positions_of_skus_sql = (
        "SELECT sku, json_group_array(json_array(node_id, on_hand, safety_stock, reserved)) "
        "FROM positions WHERE sku IN (SELECT value FROM json_each(?)) GROUP BY sku"
    )

    def _stock_of_skus(self, rows: Sequence[tuple[Any, ...]]) -> Stock:
        """The stock of one row a SKU (:func:`stock_of_sku_arrays`)."""
        return stock_of_sku_arrays(rows)

    def sku_list(self, skus: Sequence[str]) -> object:
        """A JSON array, which ``json_each`` reads back as rows."""
        return json.dumps(list(skus))

    def __init__(self, path: str) -> None:
        """Open (creating the file, its directory and the schema when missing) ``path``."""
        self.path = path
        self._memory = path == ":memory:"
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # Writers of this process queue here for their turn at SQLite's write lock: woken
        # when the one before commits, where SQLite's busy handler would poll with sleeps
        # of 1 to 100 ms. Other processes still meet the busy handler.
        self._writer = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._in_use = threading.Condition()
        self._active = 0  # transactions and reads running now
        self._closed = False
        conn = self._connection()
        with self._serial():
            conn.executescript(SCHEMA.read_text())
            columns = {r[1] for r in conn.execute("PRAGMA table_info(idempotency)")}
            if "response" not in columns:  # a ledger made before the column existed
                conn.execute("ALTER TABLE idempotency ADD COLUMN response BLOB")
            _allow_rejections(conn)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,  # sqlite3 sets the connection's busy timeout from it
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # one connection per thread; close() may run anywhere
        )
        conn.row_factory = sqlite3.Row  # rows are read by column name
        conn.execute("PRAGMA foreign_keys = ON")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        with self._guard:
            self._all.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def _serial(self) -> AbstractContextManager[object]:
        """In memory all threads share one connection, so they take turns."""
        return self._guard if self._memory else nullcontext()

    def _writing(self) -> AbstractContextManager[object]:
        """A writer's turn among this process's writers (in memory, :meth:`_serial` is)."""
        return nullcontext() if self._memory else self._writer

    def transaction(self, work: Callable[[Tx], T]) -> T:
        """See :meth:`SqlLedger.transaction`.

        A database still locked (busy) after the retries, and any other database error, is
        raised as the ledger's error of its :func:`failure_of` (nothing was committed).
        """
        with transaction_span(work, "sqlite"), self._using():
            return self._transaction(work)

    def _transaction(self, work: Callable[[Tx], T]) -> T:
        conn = self._connection()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self._serial(), self._writing():
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as e:
                    if not _busy(e) or attempt == MAX_ATTEMPTS:
                        raise _as_ledger_error(e) from e
                    time.sleep(0.01 * attempt)
                    continue
                try:
                    result = work(_SqliteTx(conn))
                    conn.execute("COMMIT")
                    return result
                except sqlite3.Error as e:
                    self._rollback(conn)
                    raise _as_ledger_error(e) from e
                except BaseException:
                    self._rollback(conn)
                    raise
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Tx], T]) -> T:
        """See :meth:`SqlDriver.read`: a deferred transaction, which takes no write lock.

        In WAL mode its statements read one snapshot while writers commit; ``work`` must not
        write (a write would have to take the write lock half way through). A read the
        database refuses as busy (rare in WAL mode: during recovery) is tried again.
        """
        with transaction_span(work, "sqlite"), self._using():
            return self._read_only(work)

    def _read_only(self, work: Callable[[Tx], T]) -> T:
        conn = self._connection()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self._serial():
                try:
                    conn.execute("BEGIN")
                    result = work(_SqliteTx(conn))
                    conn.execute("COMMIT")
                    return result
                except sqlite3.Error as e:
                    self._rollback(conn)
                    if not _busy(e) or attempt == MAX_ATTEMPTS:
                        raise _as_ledger_error(e) from e
                except BaseException:
                    self._rollback(conn)
                    raise
            time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        """Roll back, unless SQLite already has (it does on some errors, e.g. a full disk)."""
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def ts(self, value: datetime) -> object:
        """UTC ISO-8601 text with microseconds: sorts like the instants it names."""
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def from_ts(self, value: Any) -> datetime:
        """Parse the stored text back into an aware datetime."""
        return datetime.fromisoformat(str(value))

    def day(self, value: date) -> object:
        """An ISO date."""
        return value.isoformat()

    def from_day(self, value: Any) -> date:
        """Parse an ISO date."""
        return date.fromisoformat(str(value))

    @contextmanager
    def _using(self) -> Iterator[None]:
        """Count a transaction or read as running; LedgerUnavailableError once closed."""
        with self._in_use:
            if self._closed:
                raise LedgerUnavailableError("the ledger is closed")
            self._active += 1
        try:
            yield
        finally:
            with self._in_use:
                self._active -= 1
                self._in_use.notify_all()

    def close(self) -> None:
        """Close every connection this ledger opened, once no call is using one.

        Calls already running finish first (closing a connection another thread is using
        crashes the interpreter); calls made afterwards raise LedgerUnavailableError.
        """
        with self._in_use:
            self._closed = True
            self._in_use.wait_for(lambda: self._active == 0, timeout=CLOSE_WAIT_S)
            if self._active:
                return  # a call still runs: leave the connections to the process's end
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _allow_rejections(conn: sqlite3.Connection) -> None:
    """Let a ledger made before RejectShipment record 'reject' calls in ``idempotency``.

    SQLite cannot alter a CHECK constraint, so the table is copied into one made as the
    schema makes it now, in one transaction.
    """
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'"
    ).fetchone()
    if row is None or "'reject'" in row[0]:
        return
    made = (
        row[0]
        .replace("'release')", "'release', 'reject')")
        .replace("idempotency (", "idempotency_new (", 1)
    )
    conn.executescript(
        f"BEGIN IMMEDIATE; {made}; INSERT INTO idempotency_new (request_id, operation, digest, "
        "reservation_id, created_at, response) SELECT request_id, operation, digest, "
        "reservation_id, created_at, response FROM idempotency; DROP TABLE idempotency; "
        "ALTER TABLE idempotency_new RENAME TO idempotency; COMMIT;"
    )
