"""Ship and delivery dates from creation time, processing time, cutoff, transit and calendars.

:func:`ship_date` is the definition for one node. :class:`NodeClocks` computes the same
dates for many nodes at once with integer arithmetic on microseconds: a node's parcel is
ready at ``created_at + processing`` (UTC), its local time is that plus the zone's UTC
offset, and it leaves that local day if the local time of day is at or before the cutoff,
otherwise the next day. The UTC offset is looked up once per time zone when it is the same
at the earliest and the latest ready time of the zone's nodes and these lie at most
:data:`UNIFORM_OFFSET_WINDOW` apart; otherwise (a daylight-saving change in between, a
longer window) each node of that zone falls back to :func:`ship_date`. So does every node
when ``created_at`` is not at a fixed UTC offset (then ``created_at + processing`` is
wall-clock arithmetic in its zone); orders carry fixed offsets (RFC 3339).

Calendars (docs/calendars.md) then move ship dates on a node's non-shipping days to its
next shipping day: :class:`ClosedDays` does it for many nodes at once, and returns at
once when no node has a calendar. (Delivery dates follow the service's calendar:
:meth:`router.engine.arrays.ServiceBands.delivery_ordinals`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from models.calendar import Calendar

UNIFORM_OFFSET_WINDOW = timedelta(hours=96)
"""Longest spread of ready times over which equal UTC offsets at both ends are trusted.

Equal offsets at both ends of a window mean no offset change inside it unless the zone
changes its offset and back within the window. The shortest such round trip in tzdata
(2026) lasts 6.96 days (America/Noronha in 2000, Asia/Gaza from 2040); 4 days stay well
below it. Real processing times are far shorter, so the per-node fallback is rare.
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def ship_date(
    created_at: datetime,
    processing_hours: float,
    cutoff: time,
    timezone: str,
    calendar: Calendar | None = None,
) -> date:
    """The local date on which a node hands the parcel to the carrier.

    The parcel is ready ``processing_hours`` after ``created_at``. If it is ready at or
    before the node's cutoff on that local day (in the node's ``timezone``), it leaves that
    day; otherwise it leaves the next day. A day the node's ``calendar`` closes is no
    shipping day: the parcel leaves on the next one (so a parcel ready on Saturday, or on
    Friday after the cutoff, leaves on Monday when the node does not ship at weekends).
    """
    ready = (created_at + timedelta(hours=processing_hours)).astimezone(_zone(timezone))
    leaves = ready.date()
    if ready.time().replace(tzinfo=None) > cutoff:
        leaves += timedelta(days=1)
    return leaves if calendar is None else calendar.next_open(leaves)


def microseconds(duration: timedelta) -> int:
    """A duration as a whole number of microseconds (exact: timedelta has that resolution)."""
    return duration // _MICROSECOND


def time_of_day_us(moment: time) -> int:
    """A wall-clock time as microseconds since midnight."""
    seconds = (moment.hour * 60 + moment.minute) * 60 + moment.second
    return seconds * 1_000_000 + moment.microsecond


def _offset_us(moment: datetime, zone: ZoneInfo) -> int:
    """The UTC offset of ``zone`` at the instant ``moment``, in microseconds."""
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return microseconds(offset)


_KEY = 1 << 22
"""Stride of a closed date's key ``calendar * _KEY + ordinal`` (above ``date.max``'s ordinal)."""


def _weekday(ordinals: NDArray[np.int64]) -> NDArray[np.int64]:
    """:meth:`datetime.date.weekday` of ordinals (0 Monday): ordinal 1 is a Monday."""
    return (ordinals + 6) % 7


@dataclass(frozen=True, slots=True)
class ClosedDays:
    """The calendars of many rows (nodes), to move many dates to open days at once.

    ``calendar[r]`` indexes row ``r``'s calendar (-1: open every day); equal calendars
    share an index. Weekly closures are a table: ``skip[c, w]`` is how many days from a
    day of weekday ``w`` (0 Monday) to calendar ``c``'s first weekly-open day on or after
    it. ``dated`` holds ``c * _KEY + ordinal`` of each closed date that falls on a
    weekly-open day (the others change nothing), sorted. So a weekend costs one table
    lookup, and only closed dates need further rounds. Dates are ordinals
    (:meth:`datetime.date.toordinal`); the results equal :meth:`Calendar.next_open`.
    """

    calendar: NDArray[np.intp]
    skip: NDArray[np.int64]
    dated: NDArray[np.int64]
    any: bool

    @staticmethod
    def of(calendars: Sequence[Calendar | None]) -> ClosedDays:
        """The closed days of rows whose calendars are ``calendars`` (None: open every day)."""
        index: dict[Calendar, int] = {}
        rows = [-1 if not c else index.setdefault(c, len(index)) for c in calendars]
        skip = np.zeros((len(index), 7), dtype=np.int64)
        dated: list[int] = []
        for c, k in index.items():
            open_weekdays = [w for w in range(7) if w not in c.closed_weekdays]
            if not open_weekdays:
                raise ValueError("a calendar must leave a weekday open")
            skip[k] = [min((o - w) % 7 for o in open_weekdays) for w in range(7)]
            dated += [
                k * _KEY + d.toordinal() for d in c.closed_dates if d.weekday() in open_weekdays
            ]
        return ClosedDays(
            calendar=np.array(rows, dtype=np.intp),
            skip=skip,
            dated=np.array(sorted(dated), dtype=np.int64),
            any=bool(index),
        )

    def _is_dated(self, c: NDArray[np.intp], day: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each ``day`` is a closed date (on a weekly-open day) of calendar ``c``."""
        if not len(self.dated):
            return np.zeros(len(day), dtype=np.bool_)
        key = c * _KEY + day
        at = np.minimum(np.searchsorted(self.dated, key), len(self.dated) - 1)
        return np.asarray(self.dated[at] == key)

    def _open_from(self, c: NDArray[np.intp], day: NDArray[np.int64]) -> NDArray[np.int64]:
        """The first open day on or after each ``day`` in calendar ``c`` (all calendared).

        One lookup skips weekly closures; each further round moves the dates that landed on
        a closed date past it (rounds: the longest run of closed dates met).
        """
        day = day + self.skip[c, _weekday(day)]
        hit = np.flatnonzero(self._is_dated(c, day))
        while len(hit):
            following = day[hit] + 1
            day[hit] = following + self.skip[c[hit], _weekday(following)]
            hit = hit[self._is_dated(c[hit], day[hit])]
        return day

    def next_open(self, ordinals: NDArray[np.int64], rows: NDArray[np.intp]) -> NDArray[np.int64]:
        """The first open day on or after ``ordinals[i]`` in the calendar of ``rows[i]``."""
        out = np.array(ordinals, dtype=np.int64)
        if not self.any:
            return out
        calendar = self.calendar[rows]
        moved = np.flatnonzero(calendar >= 0)
        if len(moved):
            out[moved] = self._open_from(calendar[moved], out[moved])
        return out


@dataclass(frozen=True, slots=True)
class NodeClocks:
    """Processing times, cutoffs, time zones and calendars of many nodes, for ship dates.

    ``processing_hours``, ``cutoffs`` and ``timezones`` are the nodes' own values (for the
    per-node fallback); ``processing_us`` and ``cutoff_us`` the same in microseconds;
    ``closed`` the nodes' non-shipping days;
    ``zone_index[i]`` indexes node ``i``'s zone in ``zones``. Per zone, ``earliest`` and
    ``latest`` are the shortest and longest processing time of its nodes, and ``narrow``
    says whether they lie within :data:`UNIFORM_OFFSET_WINDOW` of each other.
    """

    processing_hours: tuple[float, ...]
    cutoffs: tuple[time, ...]
    timezones: tuple[str, ...]
    processing_us: NDArray[np.int64]
    cutoff_us: NDArray[np.int64]
    zone_index: NDArray[np.intp]
    zones: tuple[str, ...]
    earliest: tuple[timedelta, ...]
    latest: tuple[timedelta, ...]
    narrow: tuple[bool, ...]
    closed: ClosedDays

    @staticmethod
    def of(
        processing_hours: Sequence[float],
        cutoffs: Sequence[time],
        timezones: Sequence[str],
        calendars: Sequence[Calendar | None] | None = None,
    ) -> NodeClocks:
        """The clocks of nodes: processing hours, cutoffs, time zones and calendars.

        Without ``calendars`` every node ships every day.
        """
        zones = tuple(sorted(set(timezones)))
        position = {name: i for i, name in enumerate(zones)}
        processing = [timedelta(hours=h) for h in processing_hours]
        by_zone: list[list[timedelta]] = [[] for _ in zones]
        for name, duration in zip(timezones, processing, strict=True):
            by_zone[position[name]].append(duration)
        earliest = tuple(min(d) for d in by_zone)
        latest = tuple(max(d) for d in by_zone)
        return NodeClocks(
            processing_hours=tuple(processing_hours),
            cutoffs=tuple(cutoffs),
            timezones=tuple(timezones),
            processing_us=np.array([microseconds(d) for d in processing], dtype=np.int64),
            cutoff_us=np.array([time_of_day_us(c) for c in cutoffs], dtype=np.int64),
            zone_index=np.array([position[name] for name in timezones], dtype=np.intp),
            zones=zones,
            earliest=earliest,
            latest=latest,
            narrow=tuple(
                last - first <= UNIFORM_OFFSET_WINDOW
                for first, last in zip(earliest, latest, strict=True)
            ),
            closed=ClosedDays.of(calendars or [None] * len(timezones)),
        )

    def ship_ordinals(self, created_at: datetime, rows: NDArray[np.intp]) -> NDArray[np.int64]:
        """``ship_date(...).toordinal()`` of the nodes ``rows`` for an order created then.

        Equal to :func:`ship_date` with each node's calendar, node by node (see the module
        docstring for how): the dates by the clock, then moved to shipping days.
        """
        return self.closed.next_open(self._by_clock(created_at, rows), rows)

    def _by_clock(self, created_at: datetime, rows: NDArray[np.intp]) -> NDArray[np.int64]:
        """The ship date ordinals of ``rows`` by processing time and cutoff alone."""
        if not isinstance(created_at.tzinfo, timezone):
            # Not a fixed offset: ``created_at + processing`` is wall-clock arithmetic there.
            return np.array([self._one(created_at, row) for row in rows.tolist()], dtype=np.int64)
        zone_of = self.zone_index[rows]
        offset = np.zeros(len(self.zones), dtype=np.int64)
        uniform = np.zeros(len(self.zones), dtype=np.bool_)
        for z in set(zone_of.tolist()):
            zone = _zone(self.zones[z])
            first = _offset_us(created_at + self.earliest[z], zone)
            last = _offset_us(created_at + self.latest[z], zone)
            if self.narrow[z] and first == last:
                offset[z], uniform[z] = first, True
        local = microseconds(created_at - _EPOCH) + offset[zone_of] + self.processing_us[rows]
        day = local // _DAY_US
        after_cutoff = local - day * _DAY_US > self.cutoff_us[rows]
        out = day + after_cutoff + _EPOCH_ORDINAL
        for i in np.flatnonzero(~uniform[zone_of]).tolist():
            out[i] = self._one(created_at, int(rows[i]))
        return out

    def _one(self, created_at: datetime, row: int) -> int:
        """The ship date ordinal of one node by :func:`ship_date`, before its calendar."""
        shipped = ship_date(
            created_at, self.processing_hours[row], self.cutoffs[row], self.timezones[row]
        )
        return shipped.toordinal()
