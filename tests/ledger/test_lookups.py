"""Done when: every ledger lists reservations by each filter, page by page, completely.

The same history on memory, SQLite and PostgreSQL: reservations of two orders and two
owners at two nodes, with several expiries and ship dates, some confirmed, released or
expired. Each backend's pages are checked against the filter applied to every
reservation in Python (:meth:`ReservationQuery.matches`), and the status timers' counts
against the lists.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.reservation import (
    Reservation,
    ReservationLine,
    ReservationQuery,
    ReservationStatus,
)
from router.ledger import Ledger, open_ledger
from tests.ledger.conftest import scenario

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ROOMY = scenario([("N1", "A", 100, 0), ("N2", "A", 100, 0)], {"N1": None, "N2": None})
TODAY = NOW.date()


def history(ledger: Ledger) -> dict[str, tuple[Reservation, str]]:
    """Twelve reservations; every third confirmed, one released, one expired."""
    made: dict[str, tuple[Reservation, str]] = {}
    for i in range(12):
        node = "N1" if i % 2 else "N2"
        owner = ("oms-a", "oms-b", "")[i % 3]
        day = TODAY + timedelta(days=(i % 4) - 2)  # two days ago to a day ahead
        r = ledger.reserve(
            f"req-{i}",
            b"payload-%d" % i,
            f"order-{i % 5}",
            [ReservationLine(node, "A", 1)],
            [(node, day)],
            60.0 * (i + 1),  # same-second expiries never: order by expiry is strict
            NOW,
            owner=owner,
        )
        made[r.reservation_id] = (r, owner)
    ids = list(made)
    for rid in ids[::3]:
        made[rid] = (ledger.confirm(f"c-{rid}", rid, NOW), made[rid][1])
    made[ids[1]] = (ledger.release("rel", ids[1], NOW), made[ids[1]][1])
    assert ledger.expire(NOW + timedelta(seconds=190)) == 1  # ids[2]; 0 shipped, 1 released
    for rid in list(made):
        made[rid] = (ledger.reservation(rid), made[rid][1])
    return made


QUERIES = [
    ReservationQuery(),
    ReservationQuery(order_id="order-1"),
    ReservationQuery(node_id="N1"),
    ReservationQuery(status=ReservationStatus.HELD),
    ReservationQuery(status=ReservationStatus.CONFIRMED, node_id="N2"),
    ReservationQuery(expires_before=NOW + timedelta(seconds=400)),
    ReservationQuery(ships_before=TODAY),
    ReservationQuery(owner="oms-a"),
    ReservationQuery(owner=""),
    ReservationQuery(owner="oms-b", ships_before=TODAY, node_id="N1"),
    ReservationQuery(order_id="no-such-order"),
]


@pytest.mark.parametrize("page_size", [1, 4, 100])
def test_pages_list_exactly_what_the_filter_selects_in_expiry_order(
    backend_url: str, page_size: int
):
    """Following next pages yields each selected reservation once, by (expires_at, id)."""
    with open_ledger(backend_url) as ledger:
        _pages(ledger, page_size)


def _pages(ledger: Ledger, page_size: int) -> None:
    ledger.load(*ROOMY)
    made = history(ledger)
    for query in QUERIES:
        expected = sorted(
            (r for r, owner in made.values() if query.matches(r, owner)),
            key=lambda r: (r.expires_at, r.reservation_id),
        )
        seen: list[Reservation] = []
        after = None
        for _ in range(100):
            page = ledger.reservations(
                ReservationQuery(**{**_fields(query), "page_size": page_size, "after": after})
            )
            assert len(page.reservations) <= page_size
            seen += page.reservations
            for r in page.reservations:
                assert page.owners[r.reservation_id] == made[r.reservation_id][1]
            after = page.after
            if after is None:
                break
        assert [r.reservation_id for r in seen] == [r.reservation_id for r in expected], query
        assert seen == expected  # lines, status, slots and times as stored


def test_status_timers_count_what_the_lookups_list(backend_url: str):
    """held_timers equals the lengths of the expiring and past-ship-date lists."""
    with open_ledger(backend_url) as ledger:
        ledger.load(*ROOMY)
        _timers(ledger, history(ledger))


def _timers(ledger: Ledger, made: dict[str, tuple[Reservation, str]]) -> None:
    window = NOW + timedelta(seconds=500)
    expiring, late = ledger.held_timers(window, TODAY)
    held = [r for r, _ in made.values() if r.status is ReservationStatus.HELD]
    assert expiring == sum(r.expires_at < window for r in held) > 0
    first_days = [r.first_ship_date for r in held]
    assert late == sum(d is not None and d < TODAY for d in first_days) > 0
    listed = ledger.reservations(ReservationQuery(ships_before=TODAY)).reservations
    assert len(listed) == late


def _fields(query: ReservationQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in query.__slots__}  # type: ignore[attr-defined]


def test_first_ship_date_is_the_earliest_slot():
    """A reservation's first ship date is its earliest slot's day; None without slots."""
    r = Reservation("R", "O", (), ReservationStatus.HELD, NOW, NOW, (("a", date(2026, 1, 3)),))
    assert r.first_ship_date == date(2026, 1, 3)
    assert Reservation("R", "O", (), ReservationStatus.HELD, NOW, NOW).first_ship_date is None
