"""Calendars and capacity used: the one-date definitions and their validation."""

from __future__ import annotations

from datetime import date

import pytest

from models.calendar import Calendar, CalendarKind, Calendars, ClosedDay
from models.capacity import CapacityUsed
from models.errors import Violations

FRI, SAT, SUN, MON, TUE = (date(2026, 11, d) for d in (20, 21, 22, 23, 24))


def test_next_open_and_open_days_after_skip_weekdays_and_dates():
    """Worked example: closed at weekends and on Mon 23 (a holiday).

    From Fri 20: open. From Sat 21: Tue 24 (Sat, Sun, holiday Mon closed). Two open days
    after Fri 20: Tue 24 (1), Wed 25 (2). Zero after Sun 22: its first open day, Tue 24.
    """
    calendar = Calendar(frozenset({5, 6}), frozenset({MON}))
    assert calendar.next_open(FRI) == FRI
    assert calendar.next_open(SAT) == TUE
    assert calendar.open_days_after(FRI, 2) == date(2026, 11, 25)
    assert calendar.open_days_after(SUN, 0) == TUE
    assert Calendar().open_days_after(SAT, 3) == date(2026, 11, 24)  # open every day: + 3


def test_closed_days_are_written_weekdays_first_then_dates():
    """closed_days: weekdays in week order, then dates ascending, as calendars.csv has them."""
    calendar = Calendar(frozenset({6, 0}), frozenset({TUE, SAT}))
    assert calendar.closed_days == ("MON", "SUN", "2026-11-21", "2026-11-24")
    assert Calendar.parse(list(calendar.closed_days), "days", Violations()) == calendar


@pytest.mark.parametrize(
    ("days", "fields"),
    [
        (["Sunday"], ["closed_days[0]"]),
        (["SUN", "2026-13-01", ""], ["closed_days[1]", "closed_days[2]"]),
        (["1969-12-31"], ["closed_days[0]"]),
        (["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], ["closed_days"]),
        ([f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)] * 10, []),
    ],
)
def test_parse_names_every_bad_day(days, fields):
    """Each bad day is named by its index; closing every weekday is refused as a whole."""
    v = Violations()
    parsed = Calendar.parse(days, "closed_days", v)
    assert [x.field for x in v.items] == fields
    assert (parsed is None) == bool(fields)


def test_too_many_dates_are_refused():
    """More than MAX_CLOSED_DATES distinct dates are refused (they bound every search)."""
    days = [date.fromordinal(FRI.toordinal() + k).isoformat() for k in range(2_001)]
    v = Violations()
    assert Calendar.parse(days, "closed_days", v) is None
    assert [x.field for x in v.items] == ["closed_days"]


def test_closed_day_row_needs_exactly_one_owner():
    """A calendars.csv row names a node or a service, never both or neither."""
    for raw in ({"node_id": "N1", "service": "ground", "closed_day": "SUN"}, {"closed_day": "SUN"}):
        v = Violations()
        assert ClosedDay.from_raw(raw, v) is None
        assert [x.field for x in v.items] == ["node_id"]
    row = ClosedDay.from_raw({"service": "ground", "closed_day": "sun"}, Violations())
    assert row == ClosedDay("", "ground", "SUN")
    assert row.owner == (CalendarKind.SERVICE, "ground")


def test_calendars_replace_and_drop_empty_ones():
    """replaced() sets one owner's calendar; an empty calendar removes it."""
    sundays = Calendar(frozenset({6}))
    calendars = Calendars().replaced(CalendarKind.NODE, "N1", sundays)
    assert calendars == Calendars({"N1": sundays})
    assert calendars.for_owner(CalendarKind.NODE, "N1") == sundays
    assert calendars.for_owner(CalendarKind.SERVICE, "N1") == Calendar()
    assert not calendars.replaced(CalendarKind.NODE, "N1", Calendar())


def test_capacity_used_per_node_and_day():
    """Slots count per (node, day); with_full overrides the pairs it names only."""
    used = CapacityUsed({("N1", FRI): 2, ("N1", SAT): 1})
    assert (used.used("N1", FRI), used.used("N1", SAT), used.used("N1", SUN)) == (2, 1, 0)
    assert used.used("N2", FRI) == 0
    full = used.with_full({("N1", SAT): 5, ("N2", SUN): 3})
    assert (full.used("N1", FRI), full.used("N1", SAT), full.used("N2", SUN)) == (2, 5, 3)
    assert full.nodes == frozenset({"N1", "N2"})
