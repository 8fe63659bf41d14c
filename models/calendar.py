"""Calendars: the days a node does not ship and the days a carrier service does not run.

A :class:`Calendar` closes whole days, every week (``SUN``) or on one date
(``2026-12-25``). A node's calendar lists its non-shipping days: a parcel ready on one of
them, or after the cutoff on the day before one, leaves on the next shipping day. A carrier
service's calendar lists its non-delivery days: the service collects, moves and delivers
nothing on them, so its transit days count only the days it runs (docs/calendars.md says
why). :class:`Calendars` holds the calendars of a network, by node and by service.

Closed days are written the same way everywhere (``calendars.csv``, the gRPC contract,
the ledger): a weekday ``MON`` … ``SUN`` or an ISO date ``YYYY-MM-DD``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from models import fields as f
from models.errors import Violations, quoted

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
"""Weekday names, indexed by :meth:`datetime.date.weekday` (0 is Monday)."""

MAX_CLOSED_DATES = 2_000
"""Most closed dates one calendar may list (some five years of holidays and closures)."""


class CalendarKind(StrEnum):
    """Whose calendar it is: a node's (non-shipping days) or a carrier service's."""

    NODE = "node"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Calendar:
    """Closed days: ``closed_weekdays`` (0 Monday … 6 Sunday) every week, ``closed_dates``.

    At least one weekday is open (:meth:`parse` refuses a calendar that closes all
    seven), so every day is followed by an open day within ``7 + len(closed_dates)`` days.
    """

    closed_weekdays: frozenset[int] = frozenset()
    closed_dates: frozenset[date] = frozenset()

    def __bool__(self) -> bool:
        """Whether the calendar closes any day at all."""
        return bool(self.closed_weekdays or self.closed_dates)

    def is_open(self, day: date) -> bool:
        """Whether ``day`` is open (a shipping day of a node, a running day of a service)."""
        return day.weekday() not in self.closed_weekdays and day not in self.closed_dates

    def next_open(self, day: date) -> date:
        """The first open day on or after ``day``."""
        while not self.is_open(day):
            day += timedelta(days=1)
        return day

    def open_days_after(self, day: date, days: int) -> date:
        """The ``days``-th open day after the first open day on or after ``day``.

        With ``days`` 0, that first open day itself. A carrier service delivers a parcel
        handed over on ``day`` with ``days`` transit days on this date: it collects on its
        first running day, then each transit day is one more running day.
        """
        day = self.next_open(day)
        for _ in range(days):
            day = self.next_open(day + timedelta(days=1))
        return day

    @property
    def closed_days(self) -> tuple[str, ...]:
        """The closed days as written: weekdays in week order, then dates ascending."""
        weekdays = tuple(WEEKDAYS[d] for d in sorted(self.closed_weekdays))
        return weekdays + tuple(d.isoformat() for d in sorted(self.closed_dates))

    @staticmethod
    def parse(days: Sequence[object], path: str, v: Violations) -> Calendar | None:
        """The calendar closing ``days`` (each a weekday or a date), paths ``path[i]``.

        Refuses a day that is neither, a calendar that closes every weekday (no day would
        ever be open) and one of more than :data:`MAX_CLOSED_DATES` dates. Repeated days
        count once. ``None`` after violations.
        """
        before = len(v.items)
        weekdays: set[int] = set()
        dates: set[date] = set()
        for i, value in enumerate(days):
            day = closed_day(value, f"{path}[{i}]", v)
            if isinstance(day, date):
                dates.add(day)
            elif day is not None:
                weekdays.add(day)
        if len(weekdays) == len(WEEKDAYS):
            v.add(path, "closes every day of the week: no day would ever be open")
        if len(dates) > MAX_CLOSED_DATES:
            v.add(path, f"lists {len(dates)} dates, more than {MAX_CLOSED_DATES}")
        if len(v.items) > before:
            return None
        return Calendar(frozenset(weekdays), frozenset(dates))


def closed_day(value: object, path: str, v: Violations) -> int | date | None:
    """A weekday ``MON`` … ``SUN`` (any case; its index) or a date ``YYYY-MM-DD``.

    ``None`` after recording why ``value`` (at ``path``) is neither.
    """
    text = f.text({path: value}, path, v)
    if text is None:
        return None
    if text.upper() in WEEKDAYS:
        return WEEKDAYS.index(text.upper())
    day = f.calendar_date({path: text}, path, Violations())
    if day is None:
        v.add(
            path, f"must be a weekday {'|'.join(WEEKDAYS)} or a date YYYY-MM-DD, got {quoted(text)}"
        )
    return day


@dataclass(frozen=True, slots=True)
class ClosedDay:
    """One row of ``calendars.csv``: one closed day of one node's or one service's calendar.

    Exactly one of ``node_id`` and ``service`` is set (the other is ""); ``closed_day`` is
    written as in :attr:`Calendar.closed_days`.
    """

    node_id: str
    service: str
    closed_day: str

    @property
    def owner(self) -> tuple[CalendarKind, str]:
        """Whose calendar the row belongs to."""
        if self.node_id:
            return CalendarKind.NODE, self.node_id
        return CalendarKind.SERVICE, self.service

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> ClosedDay | None:
        """Validate one ``calendars.csv`` row; ``None`` after violations."""
        before = len(v.items)
        node_id = f.text(raw, "node_id", v, required=False)
        service = f.text(raw, "service", v, required=False)
        if (node_id is None) == (service is None):
            v.add("node_id", "set exactly one of node_id and service")
        day = closed_day(raw.get("closed_day"), "closed_day", v)
        if len(v.items) > before:
            return None
        assert day is not None
        written = WEEKDAYS[day] if isinstance(day, int) else day.isoformat()
        return ClosedDay(node_id or "", service or "", written)


@dataclass(frozen=True, slots=True)
class Calendars:
    """The calendars of a network: ``nodes`` by node id, ``services`` by service name.

    Only calendars that close some day are kept; a node or service without one is open
    every day.
    """

    nodes: Mapping[str, Calendar] = field(default_factory=dict)
    services: Mapping[str, Calendar] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Whether any node or service has a closed day."""
        return bool(self.nodes or self.services)

    def for_owner(self, kind: CalendarKind, owner: str) -> Calendar:
        """The calendar of a node or a service; an empty one when it has none."""
        found = (self.nodes if kind is CalendarKind.NODE else self.services).get(owner)
        return Calendar() if found is None else found

    def replaced(self, kind: CalendarKind, owner: str, calendar: Calendar) -> Calendars:
        """These calendars with ``owner``'s set to ``calendar`` (removed when it is empty)."""
        kept = (e for e in self.entries() if e[:2] != (kind, owner))
        return Calendars.of([*kept, (kind, owner, calendar)])

    @staticmethod
    def of(entries: Iterable[tuple[CalendarKind, str, Calendar]]) -> Calendars:
        """The calendars of (kind, owner, calendar) entries; empty calendars are left out."""
        nodes: dict[str, Calendar] = {}
        services: dict[str, Calendar] = {}
        for kind, owner, calendar in entries:
            if calendar:
                (nodes if kind is CalendarKind.NODE else services)[owner] = calendar
        return Calendars(nodes, services)

    def entries(self) -> tuple[tuple[CalendarKind, str, Calendar], ...]:
        """Every calendar with its owner: nodes, then services, each sorted by owner."""
        return tuple(
            (kind, owner, mapping[owner])
            for kind, mapping in (
                (CalendarKind.NODE, self.nodes),
                (CalendarKind.SERVICE, self.services),
            )
            for owner in sorted(mapping)
        )

    def rows(self) -> tuple[ClosedDay, ...]:
        """The calendars as ``calendars.csv`` rows, in :meth:`entries` order."""
        return tuple(
            ClosedDay(owner if kind is CalendarKind.NODE else "",
                      owner if kind is CalendarKind.SERVICE else "", day)
            for kind, owner, calendar in self.entries()
            for day in calendar.closed_days
        )  # fmt: skip
