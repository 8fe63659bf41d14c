"""Stock feeds on every backend: snapshots and deltas in sequence, stale and duplicate ignored."""

from __future__ import annotations

import pytest

from models.errors import InvalidArgumentError
from models.reservation import FeedOutcome, ReservationLine
from router.ledger import Ledger
from tests.ledger.conftest import NOW, position

pytestmark = pytest.mark.timeout(30)


def test_snapshots_and_deltas_apply_in_order(ledger: Ledger):
    """Each update with a higher sequence applies: a snapshot sets, a delta adds."""
    assert ledger.apply_snapshot("wms", 1, "N1", [("A", 20, 3), ("B", 5, 0)]).applied
    assert position(ledger, "N1", "A") == (20, 0, 17)
    assert ledger.apply_delta("wms", 2, "N1", [("A", -4), ("C", 6)]).applied
    assert position(ledger, "N1", "A") == (16, 0, 13)
    assert position(ledger, "N1", "C") == (6, 0, 6)  # a new position
    assert ledger.apply_delta("wms", 5, "N1", [("A", 1)]).applied  # gaps are fine
    assert position(ledger, "N1", "A") == (17, 0, 14)
    assert ledger.feed_stats() == {"applied": 3, "stale": 0, "duplicate": 0, "clamped_units": 0}


def test_stale_and_duplicate_updates_are_ignored_and_counted(ledger: Ledger):
    """An update whose sequence is not above the last applied one changes nothing."""
    ledger.apply_snapshot("wms", 7, "N1", [("A", 20, 2), ("B", 5, 0)])
    before = ledger.stock()
    assert ledger.apply_snapshot("wms", 7, "N1", [("A", 99, 0)]).outcome is FeedOutcome.DUPLICATE
    assert ledger.apply_delta("wms", 6, "N1", [("A", 50)]).outcome is FeedOutcome.STALE
    assert ledger.apply_delta("wms", 3, "N1", [("A", 50)]).outcome is FeedOutcome.STALE
    assert ledger.stock() == before
    assert ledger.feed_stats() == {"applied": 1, "stale": 2, "duplicate": 1, "clamped_units": 0}


def test_sequences_are_per_feed_and_node(ledger: Ledger):
    """Sequence 1 of another node or another feed is not stale."""
    assert ledger.apply_delta("wms", 9, "N1", [("A", 1)]).applied
    assert ledger.apply_delta("wms", 1, "N2", [("A", 1)]).applied
    assert ledger.apply_delta("pos", 1, "N1", [("A", 1)]).applied
    assert position(ledger, "N1", "A") == (12, 0, 10)
    assert position(ledger, "N2", "A") == (5, 0, 5)


def test_snapshot_is_the_whole_node(ledger: Ledger):
    """SKUs a snapshot omits drop to zero on hand (keeping their safety stock)."""
    ledger.apply_snapshot("wms", 1, "N1", [("B", 8, 1)])
    assert ledger.stock().positions[("N1", "A")].on_hand == 0
    assert ledger.stock().positions[("N1", "A")].safety_stock == 2
    assert position(ledger, "N1", "B") == (8, 0, 7)
    assert position(ledger, "N2", "A") == (4, 0, 4)  # other nodes untouched


def test_on_hand_never_drops_below_reserved(ledger: Ledger):
    """Feeds that would take reserved units keep on hand at reserved and count the shortfall."""
    ledger.reserve("q1", b"p", "SO-1", [ReservationLine("N1", "A", 6)], [], 60, NOW)
    r = ledger.apply_snapshot("wms", 1, "N1", [("A", 4, 2), ("B", 5, 0)])
    assert r.applied and r.clamped_units == 2
    assert position(ledger, "N1", "A") == (6, 6, 0)
    r = ledger.apply_delta("wms", 2, "N1", [("A", -3), ("B", -7)])
    assert r.clamped_units == 3 + 2  # 3 reserved units of A; 2 units of B that never were
    assert position(ledger, "N1", "A") == (6, 6, 0)
    assert position(ledger, "N1", "B") == (0, 0, 0)
    assert ledger.feed_stats()["clamped_units"] == 7


def test_invalid_feed_updates(ledger: Ledger):
    """Bad feed input names every bad field and changes nothing, not even the sequence."""
    with pytest.raises(InvalidArgumentError) as e:
        ledger.apply_snapshot("", -1, "N1", [("A", -1, 0), ("A", 1, -2)])
    assert [v.field for v in e.value.violations] == [
        "feed", "sequence", "positions[0].on_hand", "positions[1].sku",
        "positions[1].safety_stock",
    ]  # fmt: skip
    assert ledger.feed_stats()["applied"] == 0


def test_a_delta_past_int32_is_invalid_and_changes_nothing(ledger: Ledger):
    """On hand must stay within int32 (the API's and PostgreSQL's): INVALID_ARGUMENT."""
    big = 2**31 - 1
    assert ledger.apply_snapshot("wms", 1, "N1", [("A", big - 5, 0)]).applied
    with pytest.raises(InvalidArgumentError) as error:
        ledger.apply_delta("wms", 2, "N1", [("A", 3), ("A", 3)])
    assert [v.field for v in error.value.violations] == ["deltas"]
    assert position(ledger, "N1", "A")[0] == big - 5
    assert ledger.apply_delta("wms", 2, "N1", [("A", 5)]).applied  # sequence 2 not used up
    assert position(ledger, "N1", "A")[0] == big
    with pytest.raises(InvalidArgumentError):
        ledger.apply_snapshot("wms", 3, "N1", [("A", big + 1, 0)])
