"""Capacity per ship date and calendars, on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from models.calendar import Calendar, CalendarKind, Calendars
from models.errors import InvalidArgumentError
from models.reservation import ReservationLine
from router.ledger import Ledger, open_ledger
from tests.ledger.conftest import CAPACITIES, DAY, NOW, POSITIONS, scenario

pytestmark = pytest.mark.timeout(60)

SUNDAYS = Calendar(frozenset({6}))
HOLIDAYS = Calendar(frozenset(), frozenset({date(2026, 12, 25), date(2027, 1, 1)}))


def _slot(ledger: Ledger, request_id: str, node_id: str, day: date) -> None:
    ledger.reserve(
        request_id, b"p", request_id, [ReservationLine(node_id, "A", 1)], [(node_id, day)], 60, NOW
    )


def test_capacity_used_reads_every_day_of_the_range_per_node_and_day(ledger: Ledger):
    """capacity_used(first, last) holds the slots of each (node, day) in the range, no other.

    N2 takes one slot on DAY - 1, DAY + 1 and DAY + 2 (twice), N1 one on DAY + 1: the range
    DAY … DAY + 2 holds the last four pairs' counts, not DAY - 1's.
    """
    before, after, later = DAY - timedelta(days=1), DAY + timedelta(days=1), DAY + timedelta(2)
    _slot(ledger, "r1", "N2", before)
    _slot(ledger, "r2", "N2", after)
    _slot(ledger, "r3", "N2", later)
    _slot(ledger, "r4", "N2", later)
    _slot(ledger, "r5", "N1", after)
    used = ledger.capacity_used(DAY, later)
    assert dict(used.slots) == {("N1", after): 1, ("N2", after): 1, ("N2", later): 2}
    assert used.used("N2", later) == 2 and used.used("N2", before) == 0
    assert dict(ledger.capacity_used(before, before).slots) == {("N2", before): 1}
    assert not ledger.capacity_used(DAY, DAY).slots


def test_capacity_used_refuses_a_backward_range(ledger: Ledger):
    """A range whose last day is before its first is INVALID_ARGUMENT naming ``last``."""
    with pytest.raises(InvalidArgumentError) as error:
        ledger.capacity_used(DAY, DAY - timedelta(days=1))
    assert [v.field for v in error.value.violations] == ["last"]


def test_calendars_are_set_listed_and_removed(ledger: Ledger):
    """set_calendar replaces one owner's calendar and counts a revision; empty removes it."""
    assert ledger.calendars() == (0, Calendars())
    assert ledger.set_calendar(CalendarKind.NODE, "N1", SUNDAYS) == 1
    assert ledger.set_calendar(CalendarKind.SERVICE, "ground", HOLIDAYS) == 2
    assert ledger.calendar_revision() == 2
    revision, calendars = ledger.calendars()
    assert revision == 2
    assert calendars == Calendars({"N1": SUNDAYS}, {"ground": HOLIDAYS})
    both = Calendar(SUNDAYS.closed_weekdays, HOLIDAYS.closed_dates)
    assert ledger.set_calendar(CalendarKind.NODE, "N1", both) == 3
    assert ledger.set_calendar(CalendarKind.SERVICE, "ground", Calendar()) == 4
    assert ledger.calendars() == (4, Calendars({"N1": both}))


def test_set_calendar_refuses_an_empty_owner(ledger: Ledger):
    """An owner must be named: INVALID_ARGUMENT on ``owner``, nothing stored."""
    with pytest.raises(InvalidArgumentError) as error:
        ledger.set_calendar(CalendarKind.NODE, "", SUNDAYS)
    assert [v.field for v in error.value.violations] == ["owner"]
    assert ledger.calendars() == (0, Calendars())


def test_seeding_stores_the_scenario_calendars(backend_url: str):
    """Seeding stores a network's calendars; load upserts them and keeps the others.

    An empty ledger seeded from a network with calendars holds them at revision 1; a later
    load of another network's calendars replaces those owners' only (revision 2).
    """
    network, stock = scenario(POSITIONS, CAPACITIES)
    network = replace(network, calendars=Calendars({"N1": SUNDAYS}, {"ground": HOLIDAYS}))
    with open_ledger(backend_url) as ledger:
        assert ledger.seed(network, stock)
        assert ledger.calendars() == (1, network.calendars)
        again = replace(network, calendars=Calendars({"N2": HOLIDAYS}))
        ledger.load(again, stock)
        revision, calendars = ledger.calendars()
        assert revision == 2
        assert calendars == Calendars({"N1": SUNDAYS, "N2": HOLIDAYS}, {"ground": HOLIDAYS})


def test_calendars_outlive_the_process_on_sqlite(tmp_path: Path):
    """A calendar set on a SQLite ledger is there after reopening the file."""
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        ledger.set_calendar(CalendarKind.NODE, "N2", HOLIDAYS)
    with open_ledger(url) as reopened:
        assert reopened.calendars() == (1, Calendars({"N2": HOLIDAYS}))
