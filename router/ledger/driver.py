"""What a SQL backend supplies to the shared statements: a transaction runner and conversions.

:class:`SqlDriver` is the base of the SQL operations of each store (stock.py,
reservations.py, rule_versions.py); sqlite.py and postgres.py implement it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = Mapping[str, Any]
"""A row as the backends return it: its values by column name (never by position)."""


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


class SqlDriver(ABC):
    """A database driver: transactions, and how instants and days are stored."""

    @abstractmethod
    def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction: commit when it returns, roll back when it raises.

        Retries transient conflicts (busy database, deadlock, serialisation failure) a
        bounded number of times; ``work`` must therefore only touch the database.
        """

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
