"""Done when: part of a reservation can be confirmed or released, and balances hold.

On every backend: a reservation of 3 A and 2 B at N1 and 1 A at N2 (whose order slots
are limited). A partial confirm ships what it names and gives the rest back, with the
slots of nodes that ship nothing; a partial release gives back what it names and keeps
the rest held. Both are idempotent by request id, refuse more than is held, and race
whole settlements with exactly one winner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from models.errors import (
    IdempotencyMismatchError,
    InvalidArgumentError,
    ReservationExpiredError,
    ReservationStateError,
)
from models.reservation import ReservationLine, ReservationStatus
from router.ledger import Ledger, open_ledger
from router.ledger.base import held_units, part_digest
from tests.ledger.conftest import (
    CAPACITIES,
    POSITIONS,
    pg_server,  # noqa: F401  (fixture)
    pg_url,  # noqa: F401  (fixture)
    position,
    scenario,
    used_on,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 8)
L = ReservationLine


def reserve(ledger: Ledger, request_id: str = "r1", ttl_s: float = 600.0) -> str:
    made = ledger.reserve(
        request_id,
        request_id.encode(),
        "O-1",
        [L("N1", "A", 2), L("N1", "B", 2), L("N2", "A", 1), L("N1", "A", 1)],
        [("N1", DAY), ("N2", DAY)],
        ttl_s,
        NOW,
    )
    return made.reservation_id


def test_partial_confirm_ships_what_it_names_and_gives_the_rest_back(ledger: Ledger):
    """Ship 2 of N1/A: on hand drops 2; 1 A, 2 B at N1 and N2's unit and slot come back."""
    rid = reserve(ledger)
    assert used_on(ledger, DAY) == {"N1": 1, "N2": 1}
    done = ledger.confirm("c1", rid, NOW, [L("N1", "A", 2)])
    assert done.status is ReservationStatus.CONFIRMED
    assert held_units(done.lines) == {("N1", "A"): 2}
    assert done.capacity == (("N1", DAY),)
    assert position(ledger, "N1", "A") == (8, 0, 6)  # on hand 10 - 2; safety 2
    assert position(ledger, "N1", "B") == (5, 0, 5)
    assert position(ledger, "N2", "A") == (4, 0, 4)
    assert used_on(ledger, DAY) == {"N1": 1}  # a confirmed order keeps the slot it ships in
    again = ledger.confirm("c1", rid, NOW, [L("N1", "A", 2)])  # a retry: no second effect
    assert again == done and position(ledger, "N1", "A") == (8, 0, 6)
    with pytest.raises(IdempotencyMismatchError):
        ledger.confirm("c1", rid, NOW, [L("N1", "A", 1)])
    with pytest.raises(ReservationStateError):
        ledger.release("x1", rid, NOW)


def test_partial_release_cancels_lines_and_keeps_the_rest_held(ledger: Ledger):
    """Give back 1 B, then N2's unit (its slot with it), then the rest: RELEASED."""
    rid = reserve(ledger)
    kept = ledger.release("p1", rid, NOW, [L("N1", "B", 1)])
    assert kept.status is ReservationStatus.HELD
    assert position(ledger, "N1", "B") == (5, 1, 4)
    kept = ledger.release("p2", rid, NOW, [L("N2", "A", 1)])
    assert kept.capacity == (("N1", DAY),) and used_on(ledger, DAY) == {"N1": 1}
    assert position(ledger, "N2", "A") == (4, 0, 4)
    assert held_units(kept.lines) == {("N1", "A"): 3, ("N1", "B"): 1}
    done = ledger.release("p3", rid, NOW, [L("N1", "A", 3), L("N1", "B", 1)])
    assert done.status is ReservationStatus.RELEASED
    assert position(ledger, "N1", "A") == (10, 0, 8) and position(ledger, "N1", "B") == (5, 0, 5)
    assert used_on(ledger, DAY) == {}
    assert ledger.release("p2", rid, NOW, [L("N2", "A", 1)]).status is ReservationStatus.RELEASED


def test_a_partial_confirm_of_everything_is_a_whole_confirm(ledger: Ledger):
    """Naming every unit held ships them all and keeps every slot, as a whole confirm."""
    rid = reserve(ledger)
    done = ledger.confirm("c1", rid, NOW, [L("N1", "A", 3), L("N1", "B", 2), L("N2", "A", 1)])
    assert done.status is ReservationStatus.CONFIRMED and len(done.lines) == 4
    assert position(ledger, "N2", "A") == (3, 0, 3)
    assert used_on(ledger, DAY) == {"N1": 1, "N2": 1}


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([L("N1", "A", 4)], "lines"),  # more than held (3)
        ([L("N2", "B", 1)], "lines"),  # not held at all
        ([L("N1", "A", 1), L("N1", "A", 1)], "lines[1]"),  # named twice
        ([L("N1", "A", 0)], "lines[0].quantity"),
        ([L("", "A", 1)], "lines[0]"),
    ],
)
def test_bad_lines_are_refused_naming_them_and_change_nothing(ledger: Ledger, lines, field):
    """A line over what is held, not held, repeated, empty or zero: InvalidArgumentError."""
    rid = reserve(ledger)
    for settle in (ledger.confirm, ledger.release):
        with pytest.raises(InvalidArgumentError) as bad:
            settle("bad", rid, NOW, lines)
        assert field in [v.field for v in bad.value.violations]
    assert ledger.reservation(rid).status is ReservationStatus.HELD
    assert position(ledger, "N1", "A") == (10, 3, 5)
    ledger.confirm("bad", rid, NOW, [L("N1", "A", 1)])  # the id was not spent by the refusals


def test_a_partial_confirm_after_the_expiry_expires_it(ledger: Ledger):
    """As a whole confirm: a lapsed hold is expired, its units back, and the call refused."""
    rid = reserve(ledger, ttl_s=60)
    with pytest.raises(ReservationExpiredError):
        ledger.confirm("late", rid, NOW + timedelta(seconds=61), [L("N1", "A", 1)])
    assert ledger.reservation(rid).status is ReservationStatus.EXPIRED
    assert position(ledger, "N1", "A") == (10, 0, 8)


def test_a_partial_confirm_racing_a_release_has_one_winner(ledger: Ledger):
    """Rounds of a partial confirm and a whole release of one reservation at once."""
    for round_no in range(8):  # at most 8 A shipped: N1 has 8 above its safety stock
        rid = ledger.reserve(
            f"race-{round_no}",
            b"race-%d" % round_no,
            "O-race",
            [L("N1", "A", 1), L("N1", "B", 1), L("N2", "A", 1)],
            [("N1", DAY), ("N2", DAY)],
            600.0,
            NOW,
        ).reservation_id
        outcomes = _race(
            ("confirmed", lambda rid=rid: ledger.confirm(f"c{rid}", rid, NOW, [L("N1", "A", 1)])),
            ("released", lambda rid=rid: ledger.release(f"r{rid}", rid, NOW)),
        )
        assert sorted(outcomes) in (["confirmed", "refused"], ["refused", "released"])
        status = ledger.reservation(rid).status
        assert status.value.lower() == next(o for o in outcomes if o != "refused")
    shipped = 10 - position(ledger, "N1", "A")[0]
    assert position(ledger, "N1", "A")[1] == 0 and position(ledger, "N1", "B")[1] == 0
    assert position(ledger, "N2", "A") == (4, 0, 4)
    assert used_on(ledger, DAY) == ({"N1": shipped} if shipped else {})


def _race(*calls: tuple[str, Callable[[], object]]) -> list[str]:
    """Run the calls at once (threads behind a barrier): each one's name, or "refused"."""
    outcomes: list[str] = []
    barrier = threading.Barrier(len(calls))

    def run(name: str, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            outcomes.append(name)
        except ReservationStateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_part_digests_of_different_lines_differ():
    """Lines whose ids run into each other still make different request fingerprints."""
    one = part_digest("release", "R", {("a", "b\0c"): 1})
    other = part_digest("release", "R", {("a\0b", "c"): 1})
    assert one != other
    assert part_digest("release", "R", {("a", "b"): 1}) != part_digest(
        "release", "R", {("a", "b"): 2}
    )


def test_a_partial_confirm_locks_positions_in_key_order(pg_url: str):  # noqa: F811
    """Shipping N1/B and freeing N1/A waits at N1/A before it touches N1/B.

    Another transaction holds N1/A's row; while the partial confirm waits for it, N1/B
    must still be free (every transaction locks positions in (node, sku) order, so none
    can hold B while waiting for A: no deadlock with a reservation of A and B).
    Failed before the fix: the shipped units were moved first, locking B, then A.
    """
    with open_ledger(pg_url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        rid = ledger.reserve(
            "r", b"r", "O", [L("N1", "A", 1), L("N1", "B", 1)], [], 600.0, NOW
        ).reservation_id
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("SELECT 1 FROM positions WHERE node_id = 'N1' AND sku = 'A' FOR UPDATE")
            worker = threading.Thread(
                target=lambda: ledger.confirm("c", rid, NOW, [L("N1", "B", 1)])
            )
            worker.start()
            time.sleep(1.0)  # the confirm is now waiting for N1/A
            with psycopg.connect(pg_url, autocommit=True) as probe:
                probe.execute("SET lock_timeout = '200ms'")
                probe.execute(
                    "SELECT 1 FROM positions WHERE node_id = 'N1' AND sku = 'B' FOR UPDATE NOWAIT"
                )
            blocker.rollback()
        worker.join(timeout=30)
        assert ledger.reservation(rid).status is ReservationStatus.CONFIRMED
        assert position(ledger, "N1", "B") == (4, 0, 4)
