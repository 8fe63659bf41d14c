"""Calendars move ship dates, delivery dates, lateness and capacity days (docs/calendars.md).

Worked examples on the engine tests' equator network (tests/engine/conftest.py): N1 at 1°
(111 km) is in ground's first band, 1 transit day; N3 at 8° (890 km) in its second, 3
transit days. November 2026: Fri 20, Sat 21, Sun 22, Mon 23, … Wed 25, Thu 26
(Thanksgiving), Fri 27, Sat 28, Sun 29, Mon 30, Tue 1 December.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import Calendar, CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.network import Network, RateBand
from models.plan import ExclusionReason
from models.rules import Policy, SlaMode
from router.engine.arrays import ServiceBands
from router.engine.candidates import build_model, ship_window
from router.engine.dates import ClosedDays
from tests.engine.conftest import network, node, order, stock

SAT, SUN, MON = 5, 6, 0
THANKSGIVING = date(2026, 11, 26)
WEEKENDS = Calendar(frozenset({SAT, SUN}))
NO_SUNDAYS_NOR_THANKSGIVING = Calendar(frozenset({SUN}), frozenset({THANKSGIVING}))


def with_calendars(net: Network, nodes: dict[str, Calendar], ground: Calendar) -> Network:
    """``net`` with these node calendars and ``ground``'s."""
    entries = [(CalendarKind.NODE, n, c) for n, c in nodes.items()]
    entries.append((CalendarKind.SERVICE, "ground", ground))
    return replace(net, calendars=Calendars.of(entries))


def dates(built) -> dict[str, tuple[date, date, int]]:
    """(ship date, delivery date, days late) per candidate."""
    return {c.node_id: (c.ship_date, c.delivery_date, c.days_late) for c in built.model.candidates}


def test_after_the_cutoff_before_a_weekend_ships_on_monday():
    """Friday after the cutoff, at a node that does not ship at weekends: Monday.

    Created Fri 20 at 12:00 UTC; N1's cutoff is 11:00 (UTC), so by the clock it would leave
    Sat 21; Sat and Sun are no shipping days: it leaves Mon 23. Ground does not run on
    Sundays or Thanksgiving; 1 transit day after collecting on Mon 23: Tue 24. Deliver by
    Mon 23: 1 day late. Without calendars: Sat 21, Sun 22, on time.
    """
    net = network(node("N1", 1, cutoff=time(11)))
    o = order(("A", 1), deliver_by=date(2026, 11, 23))
    on_hand = stock(("N1", "A", 1))
    plain = build_model(o, net, on_hand, Policy())
    assert dates(plain) == {"N1": (date(2026, 11, 21), date(2026, 11, 22), 0)}
    closed = with_calendars(net, {"N1": WEEKENDS}, NO_SUNDAYS_NOR_THANKSGIVING)
    built = build_model(o, closed, on_hand, Policy())
    assert dates(built) == {"N1": (date(2026, 11, 23), date(2026, 11, 24), 1)}


def test_ready_on_a_holiday_ships_the_next_day_and_transit_skips_closed_days():
    """Ready on Thanksgiving, when neither the node ships nor ground runs.

    Created Wed 25 at 20:00 UTC, after the 17:00 cutoff: by the clock Thu 26, the node's
    holiday: it leaves Fri 27. N1 (1 transit day): Sat 28. N3 (3 transit days): Sat 28,
    (Sun 29 ground does not run) Mon 30, Tue 1 December. The hard SLA (deliver by Mon 30)
    now excludes N3, naming the date.
    """
    net = network(node("N1", 1, cutoff=time(17)), node("N3", 8, cutoff=time(17)))
    closed_thanksgiving = Calendar(frozenset(), frozenset({THANKSGIVING}))
    closed = with_calendars(
        net, {"N1": closed_thanksgiving, "N3": closed_thanksgiving}, NO_SUNDAYS_NOR_THANKSGIVING
    )
    created = datetime(2026, 11, 25, 20, tzinfo=UTC)
    o = order(("A", 1), created_at=created, deliver_by=date(2026, 11, 30))
    on_hand = stock(("N1", "A", 1), ("N3", "A", 1))
    assert dates(build_model(o, closed, on_hand, Policy())) == {
        "N1": (date(2026, 11, 27), date(2026, 11, 28), 0),
        "N3": (date(2026, 11, 27), date(2026, 12, 1), 1),
    }
    hard = build_model(o, closed, on_hand, Policy(sla=SlaMode.HARD))
    assert [(e.node_id, e.reason, e.detail) for e in hard.excluded] == [
        ("N3", ExclusionReason.CANNOT_MEET_SLA, "delivers 2026-12-01, 1 day(s) after 2026-11-30")
    ]


def test_the_node_calendar_reads_the_local_day_not_the_utc_one():
    """In Tokyo the order is created on Monday although it is still Sunday in UTC.

    Created Sun 22 at 16:00 UTC = Mon 23 01:00 in Tokyo (UTC+9). TOKYO does not ship on
    Mondays: it leaves Tue 24. LONDON (UTC+0 in November), with the same calendar, reads
    Sunday 16:00, before its 23:59 cutoff, a shipping day for it: it leaves Sun 22.
    """
    net = network(
        node("LONDON", 1, timezone="Europe/London"), node("TOKYO", 1, timezone="Asia/Tokyo")
    )
    no_mondays = Calendar(frozenset({MON}))
    closed = with_calendars(net, {"LONDON": no_mondays, "TOKYO": no_mondays}, Calendar())
    o = order(("A", 1), created_at=datetime(2026, 11, 22, 16, tzinfo=UTC))
    built = build_model(o, closed, stock(("LONDON", "A", 1), ("TOKYO", "A", 1)), Policy())
    assert dates(built) == {
        "LONDON": (date(2026, 11, 22), date(2026, 11, 23), 0),
        "TOKYO": (date(2026, 11, 24), date(2026, 11, 25), 0),
    }


def test_capacity_counts_on_the_calendar_ship_date():
    """A node is checked against the slots of its ship date after its calendar moved it.

    As in the weekend example, N1 and N2 leave Mon 23. N1 is full on Sat 21 (the date by
    the clock alone, never its ship date): a candidate. N2 is full on Mon 23: out.
    """
    net = network(
        node("N1", 1, cutoff=time(11), capacity=1), node("N2", 1, cutoff=time(11), capacity=1)
    )
    closed = with_calendars(net, {"N1": WEEKENDS, "N2": WEEKENDS}, Calendar())
    used = CapacityUsed({("N1", date(2026, 11, 21)): 1, ("N2", date(2026, 11, 23)): 1})
    built = build_model(
        order(("A", 1)), closed, stock(("N1", "A", 1), ("N2", "A", 1)), Policy(), used
    )
    assert [c.node_id for c in built.model.candidates] == ["N1"]
    assert [(e.node_id, e.detail) for e in built.excluded] == [
        ("N2", "1 of 1 orders taken on 2026-11-23, its ship date")
    ]


def test_pickup_at_the_counter_ignores_the_carrier_calendar():
    """A pickup at the node's own counter needs no carrier: it is ready on the ship date.

    P (pickup node) ships Fri 20; ground does not run on Fridays; the counter hands the
    order over on Fri 20 all the same.
    """
    net = network(node("P", 0, pickup=True))
    closed = with_calendars(net, {}, Calendar(frozenset({4})))
    built = build_model(order(("A", 1), pickup_node_id="P"), closed, stock(("P", "A", 1)), Policy())
    assert dates(built) == {"P": (date(2026, 11, 20), date(2026, 11, 20), 0)}


def test_ship_window_spans_every_node_ship_date():
    """The window runs from the earliest to the latest ship date of any node.

    Created Fri 20 at 12:00 UTC: N1 leaves Fri 20; N2 (cutoff 11:00, no weekends) Mon 23.
    """
    net = network(node("N1", 1), node("N2", 2, cutoff=time(11)))
    closed = with_calendars(net, {"N2": WEEKENDS}, Calendar())
    assert ship_window(order(("A", 1)), closed) == (date(2026, 11, 20), date(2026, 11, 23))


_CALENDARS = st.lists(
    st.builds(
        Calendar,
        st.frozensets(st.integers(0, 6), max_size=6),
        st.frozensets(st.dates(date(2026, 11, 1), date(2027, 1, 31)), max_size=20),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    calendars=_CALENDARS,
    picks=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 80)), max_size=30),
)
def test_closed_days_equal_the_calendar_definition(calendars, picks):
    """ClosedDays moves every date of every row exactly as Calendar.next_open does."""
    rows_of = [*calendars, None]  # the last row has no calendar
    closed = ClosedDays.of(rows_of)
    rows = np.array([r % len(rows_of) for r, _ in picks], dtype=np.intp)
    days = [date(2026, 11, 1).toordinal() + d for _, d in picks]
    opened = closed.next_open(np.array(days, dtype=np.int64), rows).tolist()
    for got, row, day in zip(opened, rows.tolist(), days, strict=True):
        calendar = rows_of[row] or Calendar()
        assert got == calendar.next_open(date.fromordinal(day)).toordinal()


@settings(max_examples=100, deadline=None)
@given(
    calendar=_CALENDARS.map(lambda c: c[0]),
    picks=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 60)), max_size=30),
)
def test_delivery_dates_follow_the_service_calendar(calendar, picks):
    """delivery_ordinals gives each (ship date, transit days) Calendar.open_days_after."""
    service = ServiceBands.of((RateBand("ground", 100.0, 1.0, 1.0, 1),), calendar)
    shipped = np.array([date(2026, 11, 1).toordinal() + d for d, _ in picks], dtype=np.int64)
    transit = np.array([t for _, t in picks], dtype=np.int64)
    got = service.delivery_ordinals(shipped, transit).tolist()
    for delivered, day, days in zip(got, shipped.tolist(), transit.tolist(), strict=True):
        assert delivered == calendar.open_days_after(date.fromordinal(day), days).toordinal()
