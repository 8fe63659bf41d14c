"""What a SQL backend supplies to the shared statements: a transaction runner and conversions.

:class:`SqlDriver` is the base of the SQL operations of each store (stock.py,
reservations.py, rule_versions.py); sqlite.py and postgres.py implement it. Each turns
its database's errors into the ledger's own (:class:`Failure`, :func:`ledger_error`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from enum import Enum
from typing import Any, NamedTuple, Protocol, TypeVar

from opentelemetry import trace

from models.errors import (
    LedgerRefusedError,
    LedgerUnavailableError,
    LedgerValueError,
    RouterError,
)

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

T = TypeVar("T")

Row = Mapping[str, Any]
"""A row as the backends return it: its values by column name (never by position)."""

Statement = tuple[str, Sequence[object]]
"""One statement of a :meth:`Tx.batch`: its SQL and its parameters."""


class Done(NamedTuple):
    """What one statement of a :meth:`Tx.batch` gave."""

    rows: list[tuple[Any, ...]]
    """Its rows as tuples of their columns (none for a statement that returns none)."""
    changed: int
    """The rows it inserted, updated or deleted (-1 for a select)."""


class Failure(Enum):
    """What a database error means to the caller; each backend classifies its own errors.

    By the database's error code (PostgreSQL's SQLSTATE, SQLite's result code), never by
    its message; docs/ledger.md ("When the database fails") has the table.
    """

    TRANSIENT = "transient"
    """It may work in a moment (timeout, busy, lost connection, restart): UNAVAILABLE."""
    BAD_VALUE = "bad value"
    """A value of the request cannot be stored (too long, out of range): INVALID_ARGUMENT."""
    REFUSED = "refused"
    """A constraint, or a fault of set-up or statements: FAILED_PRECONDITION."""


_ERRORS: dict[Failure, tuple[type[RouterError], str]] = {
    Failure.TRANSIENT: (
        LedgerUnavailableError,
        "the ledger is unavailable for now (a timeout, a busy or restarting database or a "
        "lost connection); retrying with the same request_id is safe",
    ),
    Failure.BAD_VALUE: (
        LedgerValueError,
        "the ledger cannot store a value of this request (too long, out of range or "
        "malformed); a retry fails the same way",
    ),
    Failure.REFUSED: (
        LedgerRefusedError,
        "the ledger refused this change (it breaks a rule of the ledger, or the ledger is "
        "misconfigured; the server log says which); a retry fails the same way",
    ),
}

#: The most characters of a database's message that are logged (it may quote the request).
LOGGED_CHARS = 500


def ledger_error(failure: Failure, error: BaseException, code: str | None) -> RouterError:
    """The ledger's error for a database ``error`` classified as ``failure``.

    ``code`` is its SQLSTATE or result code, if any. The database's message (names of
    indexes, rows, values) goes to the log once, at WARNING, on one line and cut to
    :data:`LOGGED_CHARS`; the error returned says only what happened, in the ledger's
    words, and whether a retry can help. Raise it ``from error``.
    """
    words = " ".join(str(error).split())
    if len(words) > LOGGED_CHARS:
        words = words[:LOGGED_CHARS] + "…"
    logger.warning(
        "ledger error, %s: %s (%s): %s",
        failure.value,
        type(error).__name__,
        code or "no code",
        words,
    )
    cls, message = _ERRORS[failure]
    return cls(message)


class Tx(Protocol):
    """One open transaction, as the shared statements see it."""

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """Run ``sql`` and return its first row, if any."""
        ...

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run ``sql`` and return every row."""
        ...

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run ``sql`` and return the number of rows it changed."""
        ...

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run ``sql`` once per parameter row, in one batch (PostgreSQL: one round trip)."""
        ...

    def tuples(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` and return every row as a tuple of its columns, in the select's order.

        For reads of many rows on the hot path (an order's stock), where building a row
        by name for each costs more than the read.
        """
        ...

    def batch(self, statements: Sequence[Statement]) -> list[Done]:
        """Run ``statements`` in turn; what each gave (its rows as tuples, the rows it changed).

        One round trip on PostgreSQL (pipeline mode) where each statement would cost one
        (SQLite runs them one by one, in process): for the hot path, whose statements do
        not depend on each other's results (the read of an order's inputs; the units,
        slots and records of a reservation). The first statement to fail raises, as
        :meth:`run` would, and the rest do not run.
        """
        ...


class SqlDriver(ABC):
    """A database driver: transactions, and how instants and days are stored."""

    @abstractmethod
    def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction: commit when it returns, roll back when it raises.

        Retries transient conflicts (busy database, deadlock, serialisation failure) a
        bounded number of times; ``work`` must therefore only touch the database.
        """

    def read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work``, which only reads (errors are raised as :meth:`transaction` raises them).

        Here it is :meth:`transaction`. SQLite overrides it with a deferred transaction (one
        snapshot, and never the write lock), PostgreSQL with statements outside a block
        (each reads the last commit, as it would inside one at READ COMMITTED).
        """
        return self.transaction(work)

    @abstractmethod
    def ts(self, value: datetime) -> object:
        """A UTC instant as the database stores it."""

    @abstractmethod
    def from_ts(self, value: Any) -> datetime:
        """An instant read from the database."""

    @abstractmethod
    def day(self, value: date) -> object:
        """A calendar day as the database stores it."""

    @abstractmethod
    def from_day(self, value: Any) -> date:
        """A day read from the database."""


def transaction_span(work: Callable[..., object], system: str) -> AbstractContextManager[Any]:
    """The span of one ledger transaction (or read), named for the operation that runs it.

    ``ledger.reserve`` for the ``work`` of :meth:`reserve` (its qualified name's method),
    with the OpenTelemetry attribute ``db.system``; a child of the RPC's span.
    """
    owner = work.__qualname__.split(".<locals>")[0]
    return tracer.start_as_current_span(
        f"ledger.{owner.rsplit('.', 1)[-1]}", attributes={"db.system": system}
    )
