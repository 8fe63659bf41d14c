"""Domain errors. They never import grpc: the service maps them to status codes in one table."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

QUOTE_LIMIT = 80
"""Most characters of a value that an error message quotes."""


def clipped(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text``, or its first ``limit`` characters, an ellipsis and its length when longer.

    ``aaaa… (5000 chars)``: for text that is not a value, such as a parser's message.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def _short_repr() -> reprlib.Repr:
    """A repr that shows the first few items of the first few levels, and no more."""
    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxtuple = short.maxlist = short.maxarray = short.maxdeque = 4
    short.maxdict = short.maxset = short.maxfrozenset = 4
    short.maxstring = short.maxlong = short.maxother = QUOTE_LIMIT
    return short


_SHORT = _short_repr()


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as an error message quotes it: its repr, bounded to about ``limit`` characters.

    Text is shown as its repr, cut to its first ``limit`` characters with an ellipsis and
    its full length when longer (``'aaaa…' (5000 chars)``). A list or mapping shows its
    first few items on its first few levels (``[[1, 2, 3, 4, ...], ...]``): quoting never
    walks or copies the whole of a value, which may be huge (a document's, a request's)
    or share its parts many times over (YAML aliases).
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} chars)"
    try:
        shown = _SHORT.repr(value)
    except ValueError:  # an int too long to convert to text
        return f"<{type(value).__name__} too long to show>"
    return shown if len(shown) <= limit else f"{shown[:limit]}…"


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


@dataclass(frozen=True, slots=True)
class Shortfall:
    """One position that could not cover a reservation: requested more than available."""

    node_id: str
    sku: str
    requested: int
    available: int

    def __str__(self) -> str:
        return f"{self.node_id}/{self.sku}: requested {self.requested}, available {self.available}"


class StockConflictError(RouterError):
    """A reservation could not commit: stock or node capacity changed since the plan.

    ``shortfalls`` names every short position; ``full_nodes`` every (node_id, day) whose
    daily order capacity is used up. Nothing was reserved.
    """

    def __init__(
        self, shortfalls: Iterable[Shortfall], full_nodes: Iterable[tuple[str, str]] = ()
    ) -> None:
        # full_nodes: (node_id, ISO day) pairs
        self.shortfalls = tuple(shortfalls)
        self.full_nodes = tuple(full_nodes)
        parts = [str(s) for s in self.shortfalls]
        parts += [f"{node}@{day}: daily order capacity used up" for node, day in self.full_nodes]
        super().__init__("reservation conflict: " + "; ".join(parts))


class ReservationStateError(RouterError):
    """A confirm or release of a reservation that is no longer HELD (another call won)."""

    def __init__(self, reservation_id: str, status: str, action: str) -> None:
        self.reservation_id = reservation_id
        self.status = status
        self.action = action
        super().__init__(f"reservation {reservation_id}: cannot {action}, status is {status}")


class ReservationExpiredError(ReservationStateError):
    """A confirm of a reservation whose ``expires_at`` has passed: it is EXPIRED, not shipped.

    The ledger expires it (units and slots given back) when the confirm is the first to
    notice; either way the reservation can no longer be confirmed.
    """

    def __init__(self, reservation_id: str, expires_at: datetime) -> None:
        super().__init__(reservation_id, "EXPIRED", "confirm")
        self.expires_at = expires_at
        self.args = (f"{self.args[0]}: it expired at {expires_at.isoformat()}",)


class IdempotencyMismatchError(RouterError):
    """A request_id was used before with a different operation or payload."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request_id: {quoted(request_id)} was already used with a different payload or "
            "operation"
        )


class LedgerUnavailableError(RouterError):
    """The ledger could not answer now (a transient failure); a retry is safe.

    Raised for a lock or statement timeout, a busy, full, restarting or unreachable
    database, a lost connection, or a conflict that outlasted its retries. Retrying with
    the same request_id cannot act twice. The message is the ledger's own words, never
    the database's (which go to the log).
    """


class LedgerValueError(RouterError):
    """The database cannot store a value of the request (too long, out of range, malformed).

    A permanent failure: the same request fails the same way, so it is the client's to
    change. Nothing was changed. The message never carries the database's words.
    """


class LedgerRefusedError(RouterError):
    """The database refused the change for good: a constraint, or a fault of set-up.

    A constraint of the ledger's schema, or a fault of the ledger's set-up or statements
    (permissions, a missing table). Retrying the same request fails the same way; nothing
    was changed. The message never carries the database's words (they go to the log).
    """


class NotReplayableError(RouterError):
    """A logged decision cannot be solved again here (another network, calendars pruned)."""


class RuleVersionStateError(RouterError):
    """The rule-set history does not allow this now, e.g. rollback with no earlier version."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One reason a rule set may not be published: a lint error or a failing golden case.

    ``kind`` is ``"LINT"`` (``subject`` the path in the document) or ``"GOLDEN"``
    (``subject`` the case's name); ``description`` says what is wrong.
    """

    kind: str
    subject: str
    description: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.description}"


class RulesRefusedError(RouterError):
    """A rule set failed the checks a publish requires; nothing was stored."""

    def __init__(self, refusals: Iterable[Refusal]) -> None:
        self.refusals = tuple(refusals)
        super().__init__(
            f"publish refused ({len(self.refusals)} problems): "
            + "; ".join(str(r) for r in self.refusals)
        )
