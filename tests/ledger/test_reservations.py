"""Reservation arithmetic on every backend: reserve, confirm, release, expire, capacity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.errors import (
    InvalidArgumentError,
    NotFoundError,
    ReservationExpiredError,
    ReservationStateError,
    Shortfall,
    StockConflictError,
)
from models.reservation import ReservationLine, ReservationStatus
from router.ledger import Ledger
from tests.ledger.conftest import DAY, NOW, position, used_on

pytestmark = pytest.mark.timeout(30)

L = ReservationLine


def test_reserve_holds_units_and_slots(ledger: Ledger):
    """A reservation raises reserved by its units and takes one slot per (node, day)."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3), L("N2", "A", 1)],
                       [("N1", DAY), ("N2", DAY)], 60, NOW)  # fmt: skip
    assert r.status is ReservationStatus.HELD
    assert r.expires_at == NOW + timedelta(seconds=60)
    # N1/A: on hand 10, safety 2 -> available 8; holding 3 leaves 5
    assert position(ledger, "N1", "A") == (10, 3, 5)
    assert position(ledger, "N2", "A") == (4, 1, 3)
    assert position(ledger, "N1", "B") == (5, 0, 5)
    assert used_on(ledger, DAY) == {"N1": 1, "N2": 1}
    assert ledger.reservation(r.reservation_id) == r


def test_confirm_ships_held_units(ledger: Ledger):
    """Confirm lowers on hand and reserved by the held units; the order keeps its slot."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [("N1", DAY)], 60, NOW)
    done = ledger.confirm("c1", r.reservation_id, NOW)
    assert done.status is ReservationStatus.CONFIRMED
    assert position(ledger, "N1", "A") == (7, 0, 5)
    assert used_on(ledger, DAY) == {"N1": 1}


def test_release_gives_units_and_slots_back(ledger: Ledger):
    """Release returns reserved units and the order slots; on hand is untouched."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N2", "A", 4)], [("N2", DAY)], 60, NOW)
    done = ledger.release("x1", r.reservation_id, NOW)
    assert done.status is ReservationStatus.RELEASED
    assert position(ledger, "N2", "A") == (4, 0, 4)
    assert used_on(ledger, DAY) == {}


def test_duplicate_lines_add_up(ledger: Ledger):
    """Two lines for one position hold their sum and are kept as given."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "B", 2), L("N1", "B", 3)], [], 60, NOW)
    assert position(ledger, "N1", "B") == (5, 5, 0)
    assert ledger.reservation(r.reservation_id).lines == (L("N1", "B", 2), L("N1", "B", 3))
    ledger.confirm("c1", r.reservation_id, NOW)
    assert position(ledger, "N1", "B") == (0, 0, 0)


def test_safety_stock_is_never_promised(ledger: Ledger):
    """Available is on hand − reserved − safety: N1/A (10 on hand, 2 safety) holds 8, not 9."""
    with pytest.raises(StockConflictError) as e:
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 9)], [], 60, NOW)
    assert e.value.shortfalls == (Shortfall("N1", "A", 9, 8),)
    assert "N1/A: requested 9, available 8" in str(e.value)
    ledger.reserve("q2", b"p", "SO-2", [L("N1", "A", 8)], [], 60, NOW)
    assert position(ledger, "N1", "A") == (10, 8, 0)


def test_all_or_nothing(ledger: Ledger):
    """A multi-line reservation with one short line changes nothing and names that line."""
    before = ledger.stock()
    with pytest.raises(StockConflictError) as e:
        ledger.reserve("q1", b"p", "SO-1",
                       [L("N1", "A", 2), L("N1", "B", 6), L("N2", "A", 1), L("N9", "Z", 1)],
                       [("N1", DAY), ("N2", DAY)], 60, NOW)  # fmt: skip
    assert e.value.shortfalls == (Shortfall("N1", "B", 6, 5), Shortfall("N9", "Z", 1, 0))
    assert ledger.stock() == before
    assert used_on(ledger, DAY) == {}
    # the failed request_id was not consumed: a corrected retry with it succeeds
    ledger.reserve("q1", b"p2", "SO-1", [L("N1", "B", 5)], [], 60, NOW)
    assert position(ledger, "N1", "B") == (5, 5, 0)


def test_capacity_limit(ledger: Ledger):
    """N2 takes two orders a day: the third conflicts and holds nothing; other days are free."""
    for i in range(2):
        ledger.reserve(f"q{i}", b"p", f"SO-{i}", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
    with pytest.raises(StockConflictError) as e:
        ledger.reserve("q2", b"p", "SO-2", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
    assert e.value.full_nodes == (("N2", DAY.isoformat()),)
    assert e.value.shortfalls == ()
    assert position(ledger, "N2", "A") == (4, 2, 2)
    next_day = DAY + timedelta(days=1)
    ledger.reserve("q3", b"p", "SO-3", [L("N2", "A", 1)], [("N2", next_day)], 60, NOW)
    assert used_on(ledger, DAY) == {"N2": 2}
    assert used_on(ledger, next_day) == {"N2": 1}


def test_released_slot_can_be_taken_again(ledger: Ledger):
    """A released order's slot returns to the node's daily capacity."""
    r = [ledger.reserve(f"q{i}", b"p", f"SO-{i}", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
         for i in range(2)]  # fmt: skip
    ledger.release("x0", r[0].reservation_id, NOW)
    ledger.reserve("q2", b"p", "SO-2", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
    assert used_on(ledger, DAY) == {"N2": 2}


def test_unknown_capacity_node_is_not_found(ledger: Ledger):
    """A capacity entry for a node the ledger does not know raises NotFoundError, holds nothing."""
    before = ledger.stock()
    with pytest.raises(NotFoundError, match="N9"):
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 1)], [("N9", DAY)], 60, NOW)
    assert ledger.stock() == before


def test_second_transition_is_refused(ledger: Ledger):
    """Only a HELD reservation can be confirmed or released; later calls name its status."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW)
    ledger.release("x1", r.reservation_id, NOW)
    with pytest.raises(ReservationStateError, match="cannot confirm, status is RELEASED"):
        ledger.confirm("c1", r.reservation_id, NOW)
    with pytest.raises(ReservationStateError):
        ledger.release("x2", r.reservation_id, NOW)
    assert position(ledger, "N1", "A") == (10, 0, 8)


def test_unknown_reservation(ledger: Ledger):
    """Confirm, release and lookup of an unknown reservation raise NotFoundError."""
    with pytest.raises(NotFoundError):
        ledger.confirm("c1", "R-nope", NOW)
    with pytest.raises(NotFoundError):
        ledger.release("x1", "R-nope", NOW)
    with pytest.raises(NotFoundError):
        ledger.reservation("R-nope")


def test_expiry_by_the_sweeper(ledger: Ledger):
    """The sweeper expires HELD reservations whose TTL has lapsed, and only those."""
    short = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 2)], [("N2", DAY)], 10, NOW)
    long = ledger.reserve("q2", b"p", "SO-2", [L("N1", "A", 3)], [("N1", DAY)], 100, NOW)
    done = ledger.reserve("q3", b"p", "SO-3", [L("N1", "B", 1)], [], 5, NOW)
    ledger.confirm("c3", done.reservation_id, NOW)
    assert ledger.expire(NOW + timedelta(seconds=9)) == 0
    assert ledger.expire(NOW + timedelta(seconds=10)) == 1  # expires_at <= now
    assert ledger.reservation(short.reservation_id).status is ReservationStatus.EXPIRED
    assert ledger.reservation(long.reservation_id).status is ReservationStatus.HELD
    assert ledger.reservation(done.reservation_id).status is ReservationStatus.CONFIRMED
    assert position(ledger, "N1", "A") == (10, 3, 5)
    assert used_on(ledger, DAY) == {"N1": 1}
    assert ledger.expire(NOW + timedelta(seconds=10)) == 0  # a second sweep finds nothing
    with pytest.raises(ReservationStateError, match="EXPIRED"):
        ledger.confirm("c1", short.reservation_id, NOW)


def test_a_lapsed_reservation_cannot_be_confirmed(ledger: Ledger):
    """Confirm at or after expires_at (before any sweep) expires it and says when.

    Its units and slots are given back in the same call. Its retries with the same
    request_id fail alike; a release finds it EXPIRED; the sweeper finds nothing to do.
    """
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 2)], [("N2", DAY)], 10, NOW)
    at = NOW + timedelta(seconds=10)  # expires_at <= now
    for attempt in range(2):
        with pytest.raises(ReservationExpiredError) as e:
            ledger.confirm("c1", r.reservation_id, at + timedelta(seconds=attempt))
        assert e.value.status == "EXPIRED" and e.value.expires_at == at
        assert "expired at 2026-11-20T15:00:10+00:00" in str(e.value)
    assert ledger.reservation(r.reservation_id).status is ReservationStatus.EXPIRED
    assert position(ledger, "N1", "A") == (10, 0, 8)  # nothing shipped, nothing held
    assert used_on(ledger, DAY) == {}
    with pytest.raises(ReservationStateError, match="EXPIRED"):
        ledger.release("x1", r.reservation_id, at)
    assert ledger.expire(at) == 0


def test_a_confirm_before_expiry_ships_and_replays_after_it(ledger: Ledger):
    """A confirm a microsecond before expires_at ships; its retry after expiry replays it."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 2)], [], 10, NOW)
    just_before = NOW + timedelta(seconds=10) - timedelta(microseconds=1)
    assert ledger.confirm("c1", r.reservation_id, just_before).status is (
        ReservationStatus.CONFIRMED
    )
    later = NOW + timedelta(seconds=60)
    assert ledger.confirm("c1", r.reservation_id, later).status is ReservationStatus.CONFIRMED
    assert position(ledger, "N1", "A") == (8, 0, 6)
    assert ledger.expire(later) == 0


def test_invalid_input_names_fields(ledger: Ledger):
    """Bad reserve input raises InvalidArgumentError with every field path at once."""
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(InvalidArgumentError) as e:
        ledger.reserve("", b"p", "", [L("N1", "A", 0), L("", "A", 1)], [], 0, naive)
    fields = [v.field for v in e.value.violations]
    assert fields == ["request_id", "order_id", "lines[0].quantity", "lines[1].node_id",
                      "ttl_s", "now"]  # fmt: skip


def test_load_keeps_reserved_units(ledger: Ledger):
    """Reloading a scenario updates on hand and safety stock but never drops held units."""
    from tests.ledger.conftest import CAPACITIES, scenario

    ledger.reserve("q1", b"p", "SO-1", [L("N1", "B", 4)], [], 60, NOW)
    ledger.load(*scenario([("N1", "B", 2, 1), ("N3", "C", 7, 0)], CAPACITIES))
    assert position(ledger, "N1", "B") == (4, 4, 0)  # on hand kept at reserved
    assert position(ledger, "N3", "C") == (7, 0, 7)


def test_stock_of_some_skus(ledger: Ledger):
    """``stock(skus)`` holds only the positions of those SKUs; an empty set holds none."""
    assert sorted(ledger.stock(["A"]).positions) == [("N1", "A"), ("N2", "A")]
    assert sorted(ledger.stock({"B", "Z"}).positions) == [("N1", "B")]
    assert ledger.stock([]).positions == {}
    assert len(ledger.stock().positions) == 3


def test_stock_of_some_skus_sees_positions_feeds_added(ledger: Ledger):
    """Positions a feed creates are found by ``stock(skus)``, as ``stock()`` sees them."""
    assert ledger.apply_delta("wms", 1, "N3", [("A", 6), ("Q", 2)]).applied
    assert ledger.apply_snapshot("wms", 2, "N2", [("B", 5, 0), ("A", 1, 0)]).applied
    everything = ledger.stock().positions
    for skus in (["A"], ["B"], ["Q"], ["A", "B", "Q"]):
        some = ledger.stock(skus).positions
        assert some == {k: p for k, p in everything.items() if k[1] in skus}
    assert ("N3", "Q") in ledger.stock(["Q"]).positions
