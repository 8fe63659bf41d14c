"""Ship and delivery dates from creation time, processing time, cutoff and transit days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def ship_date(created_at: datetime, processing_hours: float, cutoff: time, timezone: str) -> date:
    """The local date on which a node hands the parcel to the carrier.

    The parcel is ready ``processing_hours`` after ``created_at``. If it is ready at or
    before the node's cutoff on that local day (in the node's ``timezone``), it leaves that
    day; otherwise it leaves the next day. Every day is a shipping day (no calendars yet).
    """
    ready = (created_at + timedelta(hours=processing_hours)).astimezone(_zone(timezone))
    if ready.time().replace(tzinfo=None) <= cutoff:
        return ready.date()
    return ready.date() + timedelta(days=1)


def days_late(delivery: date, deliver_by: date | None) -> int:
    """Whole days a delivery arrives after its deliver-by date (0 when on time or no date)."""
    if deliver_by is None:
        return 0
    return max(0, (delivery - deliver_by).days)
