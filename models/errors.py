"""Domain errors. They never import grpc: the service maps them to status codes in one table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: where it is (a field path, prefixed by file and line for files) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class RouterError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidArgumentError(RouterError):
    """Input that breaks the contract; carries every violation found, not just the first."""

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(str(v) for v in self.violations) or "invalid argument")


class NotFoundError(RouterError):
    """A referenced entity (node, sku, order) does not exist."""


class Violations:
    """Collects field violations so that a validator reports every problem at once.

    Fields are joined to ``prefix`` the way they are written in the source: ``order.lines[0]``
    for messages, ``nodes.csv:3:latitude`` for files (the caller picks the prefix).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.items: list[FieldViolation] = []

    def path(self, field: str) -> str:
        """The full path of ``field`` under this collector's prefix."""
        if not self.prefix:
            return field
        if not field:
            return self.prefix
        sep = "" if field.startswith("[") or self.prefix.endswith(":") else "."
        return f"{self.prefix}{sep}{field}"

    def add(self, field: str, description: str) -> None:
        """Record that ``field`` is bad, and why."""
        self.items.append(FieldViolation(self.path(field), description))

    def extend(self, other: Iterable[FieldViolation]) -> None:
        """Take over violations found by another collector (already fully pathed)."""
        self.items.extend(other)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise :class:`InvalidArgumentError` with everything collected, if anything was."""
        if self.items:
            raise InvalidArgumentError(self.items)
