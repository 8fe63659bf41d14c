from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from router.engine.dates import days_late, ship_date


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


def test_days_late_counts_whole_days_after_deliver_by():
    """Lateness is whole days past the deliver-by date, never negative, 0 with no date."""
    assert days_late(date(2026, 11, 25), date(2026, 11, 22)) == 3
    assert days_late(date(2026, 11, 20), date(2026, 11, 22)) == 0
    assert days_late(date(2026, 11, 20), None) == 0
