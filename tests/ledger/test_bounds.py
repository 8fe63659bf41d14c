"""Bounds on every backend: what no column or reply field could hold is refused up front.

Refused before any work, naming its field, and leaving the ledger as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from models.errors import InvalidArgumentError
from models.fields import MAX_INT32, MAX_INT64
from models.reservation import FeedOutcome, ReservationLine
from router.ledger import Ledger, open_ledger
from router.ledger.base import MAX_ID_CHARS
from tests.ledger.conftest import NOW, position

pytestmark = pytest.mark.timeout(60)

L = ReservationLine
LONG_ID = "r" * (MAX_ID_CHARS + 1)


def fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> list[str]:
    """The field paths of an InvalidArgumentError, in order."""
    return [v.field for v in error.value.violations]


def test_an_over_long_request_id_is_refused_by_every_operation(ledger: Ledger):
    """A request_id over MAX_ID_CHARS is INVALID_ARGUMENT on request_id, before any claim.

    The same calls with an id of exactly MAX_ID_CHARS work.
    """
    held = ledger.reserve("q0", b"p", "SO-0", [L("N1", "A", 1)], [], 60, NOW)
    calls = {
        "reserve": lambda rid: ledger.reserve(rid, b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW),
        "stored_response": lambda rid: ledger.stored_response(rid, b"p"),
        "store_response": lambda rid: ledger.store_response(rid, b"p2", b"answer", NOW),
        "confirm": lambda rid: ledger.confirm(rid, held.reservation_id, NOW),
        "release": lambda rid: ledger.release(rid + "x", held.reservation_id, NOW),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidArgumentError) as e:
            call(LONG_ID)
        assert fields(e) == ["request_id"], name
        assert f"at most {MAX_ID_CHARS} characters" in str(e.value), name
    assert position(ledger, "N1", "A") == (10, 1, 7)  # nothing but q0 holds
    fits = "r" * MAX_ID_CHARS
    assert ledger.reserve(fits, b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW).lines
    assert ledger.stored_response(fits, b"p") is None  # a reserve that stored no response
    with pytest.raises(InvalidArgumentError) as e:
        ledger.confirm("c1", "R" * (MAX_ID_CHARS + 1), NOW)
    assert fields(e) == ["reservation_id"]


def test_reserved_units_beyond_int32_are_refused(ledger: Ledger):
    """A line, or a position's lines together, above MAX_INT32 units: INVALID_ARGUMENT.

    No reply could carry such a quantity (ReservationLine.quantity is int32), so no
    backend may hold it.
    """
    with pytest.raises(InvalidArgumentError) as e:
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", MAX_INT32 + 1)], [], 60, NOW)
    assert fields(e) == ["lines"]
    half = MAX_INT32 // 2 + 1
    with pytest.raises(InvalidArgumentError) as e:
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", half), L("N1", "A", half)], [], 60, NOW)
    assert fields(e) == ["lines"]
    assert ledger.stored_response("q1", b"p") is None  # the id was not claimed
    assert position(ledger, "N1", "A") == (10, 0, 8)


def test_feed_values_beyond_their_columns_are_refused(ledger: Ledger):
    """Sequences above int64, safety stock and changes beyond ±int32 are refused by field.

    The refused updates do not consume their sequence.
    """
    with pytest.raises(InvalidArgumentError) as e:
        ledger.apply_snapshot("wms", MAX_INT64 + 1, "N1", [("A", 1, MAX_INT32 + 1)])
    assert fields(e) == ["sequence", "positions[0].safety_stock"]
    with pytest.raises(InvalidArgumentError) as e:
        ledger.apply_delta("wms", 1, "N1", [("A", -(2**31)), ("B", MAX_INT32)])
    assert fields(e) == ["deltas[0].on_hand_change", "deltas"]  # A sums to -2^31 too
    with pytest.raises(InvalidArgumentError) as e:
        ledger.apply_delta("wms", 1, "N1", [("A", -MAX_INT32), ("A", -1)])
    assert fields(e) == ["deltas"]
    assert "'A'" in str(e.value)
    assert ledger.feed_stats()["applied"] == 0
    assert ledger.apply_delta("wms", 1, "N1", [("A", -MAX_INT32)]).outcome is FeedOutcome.APPLIED


def test_clamped_units_beyond_int32_are_counted_exactly(ledger: Ledger):
    """A delta may clamp more units than an int32 holds (summed over SKUs): all counted."""
    result = ledger.apply_delta("wms", 1, "N9", [("X", -MAX_INT32), ("Y", -MAX_INT32)])
    assert result.applied and result.clamped_units == 2 * MAX_INT32
    assert ledger.feed_stats()["clamped_units"] == 2 * MAX_INT32
    assert position(ledger, "N9", "X") == (0, 0, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_clamped_units_counter_stops_at_int64(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """A counter near 2^63 - 1 stops there: the delta still applies (no overflow error)."""
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'l.db'}"
        connect = lambda: sqlite3.connect(tmp_path / "l.db")  # noqa: E731
    else:
        url = str(request.getfixturevalue("pg_url"))
        connect = lambda: psycopg.connect(url)  # noqa: E731
    with open_ledger(url) as ledger:
        conn = connect()
        try:
            conn.execute(
                "UPDATE feed_counters SET value = 9223372036854775800 WHERE name = 'clamped_units'"
            )
            conn.commit()
        finally:
            conn.close()
        assert ledger.apply_delta("wms", 1, "N1", [("A", -100)]).clamped_units == 100
        assert ledger.feed_stats()["clamped_units"] == MAX_INT64
