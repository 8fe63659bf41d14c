from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from router.engine.dates import NodeClocks, ship_date


@pytest.mark.parametrize(
    ("created", "hours", "cutoff", "tz", "expected"),
    [
        # 12:00Z + 4 h = 16:00Z = 11:00 in New York (EST, UTC-5): before the 17:00 cutoff.
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            4,
            time(17),
            "America/New_York",
            date(2026, 11, 20),
        ),
        # 12:00Z + 10 h = 22:00Z = 17:00 New York: exactly at the cutoff still ships today.
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            10,
            time(17),
            "America/New_York",
            date(2026, 11, 20),
        ),
        # 12:00Z + 10 h 1 min = 17:01 New York: after the cutoff, ships tomorrow.
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            10 + 1 / 60,
            time(17),
            "America/New_York",
            date(2026, 11, 21),
        ),
        # 12:00Z + 10 h = 22:00Z = 14:00 in Los Angeles (PST): before a 17:00 cutoff there,
        # although the same instant is past the cutoff in New York.
        (
            datetime(2026, 11, 20, 12, tzinfo=UTC),
            10,
            time(17),
            "America/Los_Angeles",
            date(2026, 11, 20),
        ),
        # 03:00Z on the 21st is still the evening of the 20th in Los Angeles (19:00): past a
        # 17:00 cutoff, so the parcel leaves on the 21st local time.
        (
            datetime(2026, 11, 21, 3, tzinfo=UTC),
            0,
            time(17),
            "America/Los_Angeles",
            date(2026, 11, 21),
        ),
        # 03:00Z on the 21st with an 20:00 cutoff: 19:00 on the 20th in Los Angeles, ships the 20th.
        (
            datetime(2026, 11, 21, 3, tzinfo=UTC),
            0,
            time(20),
            "America/Los_Angeles",
            date(2026, 11, 20),
        ),
        # Daylight saving: 2026-07-01 12:00Z + 9 h = 21:00Z = 17:00 EDT (UTC-4): at the cutoff.
        (datetime(2026, 7, 1, 12, tzinfo=UTC), 9, time(17), "America/New_York", date(2026, 7, 1)),
        # Processing across midnight: 20:00Z + 30 h = 02:00Z on the 22nd = 21:00 on the 21st EST.
        (
            datetime(2026, 11, 20, 20, tzinfo=UTC),
            30,
            time(22),
            "America/New_York",
            date(2026, 11, 21),
        ),
    ],
)
def test_ship_date_respects_cutoff_in_node_timezone(created, hours, cutoff, tz, expected):
    """A parcel ready by the cutoff in the node's own time zone leaves that local day."""
    assert ship_date(created, hours, cutoff, tz) == expected


# Zones with whole, half and quarter hour offsets, both hemispheres, and a zone (Gaza in
# 2040) whose offset changes and changes back within a week.
CLOCK_ZONES = (
    "UTC",
    "America/New_York",
    "America/St_Johns",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Sydney",
    "Pacific/Chatham",
    "Asia/Gaza",
)
CLOCK_HOURS = (0.0, 0.25, 1 / 60, 5.5, 17.0, 26.5, 95.75, 150.0, 200.0, 720.0)
CLOCK_CUTOFFS = (time(0), time(8, 30), time(17), time(23, 59, 59, 999_999))
CLOCK_AROUND = (
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # US spring forward
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # US fall back
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # EU fall back
    datetime(2026, 4, 4, 16, tzinfo=UTC),  # Sydney fall back
    datetime(2040, 10, 20, tzinfo=UTC),  # Gaza: a change and back within a week
)


@pytest.mark.parametrize("around", CLOCK_AROUND)
def test_node_clocks_equal_ship_date_node_by_node(around):
    """The vectorised ship dates equal ship_date for every node, across offset changes.

    Orders every 30 minutes for a day and a half either side, so that ready times land
    exactly on cutoffs too; some zone groups take the per-node fallback (long processing).
    """
    nodes = [
        (hours, CLOCK_CUTOFFS[(z + h) % len(CLOCK_CUTOFFS)], zone)
        for z, zone in enumerate(CLOCK_ZONES)
        for h, hours in enumerate(CLOCK_HOURS)
    ]
    # Two networks: every processing time (zones fall back), and only short ones.
    for chosen in (nodes, [n for n in nodes if n[0] < 30]):
        clocks = NodeClocks.of(*zip(*chosen, strict=True))
        rows = np.arange(len(chosen))
        for step in range(-72, 73):
            created = around + timedelta(minutes=30 * step)
            got = clocks.ship_ordinals(created, rows).tolist()
            want = [ship_date(created, h, c, tz).toordinal() for h, c, tz in chosen]
            assert got == want, created


def test_node_clocks_with_other_offsets_and_a_subset_of_nodes():
    """Creation times in other fixed offsets or in a zone; rows pick a subset in any order."""
    nodes = [(3.0, time(17), "UTC"), (10.0, time(16, 30), "UTC"), (0.5, time(23), "Asia/Gaza")]
    clocks = NodeClocks.of(*zip(*nodes, strict=True))
    rows = np.array([2, 1, 0], dtype=np.intp)
    for created in (
        datetime(2026, 11, 1, 1, 30, tzinfo=timezone(timedelta(hours=-4))),
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        # In a zone, ``created_at + processing`` is wall-clock arithmetic: 01:59 EST + 10 h
        # is 11:59 EDT (15:59Z), before the 16:30 cutoff, where 06:59Z + 10 h is not.
        datetime(2026, 3, 8, 1, 59, tzinfo=ZoneInfo("America/New_York")),
    ):
        got = clocks.ship_ordinals(created, rows).tolist()
        want = [ship_date(created, *nodes[row]).toordinal() for row in rows.tolist()]
        assert got == want
    assert clocks.ship_ordinals(datetime(2026, 1, 1, tzinfo=UTC), rows[:0]).tolist() == []
