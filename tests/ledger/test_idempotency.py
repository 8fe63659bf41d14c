"""Idempotency by request_id on every backend: retries, mismatches, races, lost replies."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from models.errors import IdempotencyMismatchError, ReservationStateError
from models.reservation import Reservation, ReservationLine, ReservationStatus
from router.ledger import Ledger, open_ledger
from router.ledger.base import NoReservationError
from tests.ledger import workers
from tests.ledger.conftest import (
    CAPACITIES,
    DAY,
    NOW,
    POSITIONS,
    ledger_url,
    position,
    scenario,
    used_on,
)

pytestmark = pytest.mark.timeout(60)

L = ReservationLine


def test_retry_returns_the_first_reservation(ledger: Ledger):
    """A retry with the same id and payload returns the first reservation and holds nothing more."""
    first = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [("N2", DAY)], 60, NOW)
    again = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [("N2", DAY)], 60, NOW)
    assert again == first
    assert position(ledger, "N1", "A") == (10, 3, 5)
    assert used_on(ledger, DAY) == {"N2": 1}


def test_retry_after_the_reservation_moved_on(ledger: Ledger):
    """A late retry returns the reservation as it is now (same id), without a second effect."""
    first = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [], 60, NOW)
    ledger.confirm("c1", first.reservation_id, NOW)
    again = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [], 60, NOW)
    assert again.reservation_id == first.reservation_id
    assert again.status is ReservationStatus.CONFIRMED
    assert position(ledger, "N1", "A") == (7, 0, 5)


def test_same_id_different_payload_is_refused(ledger: Ledger):
    """The same request_id with another payload, or for another operation, is refused."""
    r = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW)
    with pytest.raises(IdempotencyMismatchError, match="request_id: 'q1'"):
        ledger.reserve("q1", b"other", "SO-1", [L("N1", "A", 1)], [], 60, NOW)
    with pytest.raises(IdempotencyMismatchError):
        ledger.confirm("q1", r.reservation_id, NOW)
    ledger.confirm("c1", r.reservation_id, NOW)
    with pytest.raises(IdempotencyMismatchError):
        ledger.release("c1", r.reservation_id, NOW)
    assert position(ledger, "N1", "A") == (9, 0, 7)


def test_confirm_and_release_retries(ledger: Ledger):
    """Retried confirm/release calls return the settled reservation instead of a state error."""
    a = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 2)], [], 60, NOW)
    b = ledger.reserve("q2", b"p", "SO-2", [L("N1", "B", 2)], [("N1", DAY)], 60, NOW)
    assert ledger.confirm("c1", a.reservation_id, NOW).status is ReservationStatus.CONFIRMED
    assert ledger.confirm("c1", a.reservation_id, NOW).status is ReservationStatus.CONFIRMED
    assert ledger.release("x1", b.reservation_id, NOW).status is ReservationStatus.RELEASED
    assert ledger.release("x1", b.reservation_id, NOW).status is ReservationStatus.RELEASED
    assert position(ledger, "N1", "A") == (8, 0, 6)
    assert position(ledger, "N1", "B") == (5, 0, 5)
    assert used_on(ledger, DAY) == {}
    with pytest.raises(ReservationStateError):  # a new id is a new request
        ledger.confirm("c2", a.reservation_id, NOW)


def test_concurrent_calls_with_one_id_take_effect_once(ledger: Ledger):
    """Eight threads send one request at once: all get one reservation, held once."""
    barrier = threading.Barrier(8)
    results: list[Reservation] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait(timeout=10)
        try:
            results.append(
                ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 2)], [("N2", DAY)], 60, NOW)
            )
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len({r.reservation_id for r in results}) == 1 and len(results) == 8
    assert position(ledger, "N1", "A") == (10, 2, 6)
    assert used_on(ledger, DAY) == {"N2": 1}


def test_reply_lost_after_commit_in_this_process(ledger: Ledger):
    """A client that never saw the reply retries and gets the committed reservation."""
    ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 4)], [], 60, NOW)  # reply dropped
    retried = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 4)], [], 60, NOW)
    assert retried.status is ReservationStatus.HELD
    assert position(ledger, "N1", "A") == (10, 4, 4)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_reply_lost_when_the_replica_dies_after_commit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """A replica commits a reservation and dies before replying; the retry elsewhere gets it."""
    url = ledger_url(backend, tmp_path, request)
    with open_ledger(url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        lines = [L("N1", "A", 4), L("N2", "A", 1)]
        ctx = multiprocessing.get_context("spawn")
        replica = ctx.Process(target=workers.reserve_then_die, args=(url, "q1", lines))
        replica.start()
        replica.join(timeout=30)
        assert replica.exitcode == 0
        retried = ledger.reserve("q1", b"payload", "SO-lost", lines, [], 600, NOW)
        assert retried.order_id == "SO-lost" and retried.lines == tuple(lines)
        assert position(ledger, "N1", "A") == (10, 4, 4)
        assert position(ledger, "N2", "A") == (4, 1, 3)


def test_stored_response_is_kept_with_the_reservation(ledger: Ledger):
    """A reserve call's response bytes are stored with its record and returned to retries."""
    assert ledger.stored_response("q1", b"p") is None
    calls: list[str] = []

    def response(r: Reservation) -> bytes:
        calls.append(r.reservation_id)
        return b"reply:" + r.reservation_id.encode()

    first = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW, response)
    assert ledger.stored_response("q1", b"p") == b"reply:" + first.reservation_id.encode()
    again = ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 1)], [], 60, NOW, response)
    assert again.reservation_id == first.reservation_id
    assert calls == [first.reservation_id]  # a replay does not build a second response
    with pytest.raises(IdempotencyMismatchError):
        ledger.stored_response("q1", b"other")
    ledger.confirm("c1", first.reservation_id, NOW)
    with pytest.raises(IdempotencyMismatchError):
        ledger.stored_response("c1", first.reservation_id.encode())
    ledger.reserve("q2", b"p", "SO-2", [L("N1", "A", 1)], [], 60, NOW)
    assert ledger.stored_response("q2", b"p") is None  # reserved without a response


def test_a_failing_response_reserves_nothing(ledger: Ledger):
    """The response is built inside the transaction: when it fails, nothing is held."""

    def broken(r: Reservation) -> bytes:
        raise RuntimeError("cannot serialise")

    with pytest.raises(RuntimeError):
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [("N2", DAY)], 60, NOW, broken)
    assert position(ledger, "N1", "A") == (10, 0, 8)
    assert used_on(ledger, DAY) == {}
    assert ledger.stored_response("q1", b"p") is None


def test_store_response_records_an_answer_without_a_reservation(ledger: Ledger):
    """store_response claims the id with its response and holds nothing; retries replay it."""
    assert ledger.store_response("q1", b"p", b"nothing ships", NOW) == b"nothing ships"
    assert ledger.stored_response("q1", b"p") == b"nothing ships"
    assert ledger.store_response("q1", b"p", b"a second answer", NOW) == b"nothing ships"
    with pytest.raises(IdempotencyMismatchError):
        ledger.store_response("q1", b"other", b"x", NOW)
    with pytest.raises(NoReservationError):  # the id was answered without a reservation
        ledger.reserve("q1", b"p", "SO-1", [L("N1", "A", 3)], [("N2", DAY)], 60, NOW)
    with pytest.raises(IdempotencyMismatchError):
        ledger.reserve("q1", b"other", "SO-1", [L("N1", "A", 3)], [], 60, NOW)
    r = ledger.reserve("q2", b"p", "SO-2", [L("N1", "A", 1)], [], 60, NOW, lambda _: b"held")
    with pytest.raises(IdempotencyMismatchError):
        ledger.confirm("q1", r.reservation_id, NOW)
    assert ledger.store_response("q2", b"p", b"x", NOW) == b"held"  # the reserve came first
    assert position(ledger, "N1", "A") == (10, 1, 7)
    assert used_on(ledger, DAY) == {}


def test_concurrent_store_response_with_one_id_records_once(ledger: Ledger):
    """Eight threads store different answers under one id at once: all get one winner's."""
    barrier = threading.Barrier(8)
    results: list[bytes | None] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results.append(ledger.store_response("q1", b"p", f"answer-{i}".encode(), NOW))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert results[0] in {f"answer-{i}".encode() for i in range(8)}
    assert ledger.stored_response("q1", b"p") == results[0]


def test_store_response_races_reserve_with_one_id(ledger: Ledger):
    """store_response and reserve race on one id: exactly one kind of record wins."""
    barrier = threading.Barrier(8)
    stored: list[bytes | None] = []
    reserved: list[str] = []
    refused: list[BaseException] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            if i % 2:
                stored.append(ledger.store_response("q1", b"p", b"nothing", NOW))
            else:
                r = ledger.reserve(
                    "q1", b"p", "SO-1", [L("N1", "A", 2)], [], 60, NOW, lambda _: b"held"
                )
                reserved.append(r.reservation_id)
        except NoReservationError as e:
            refused.append(e)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    if refused:  # store_response won: nothing is held, every call sees its answer
        assert (stored, reserved, len(refused)) == ([b"nothing"] * 4, [], 4)
        assert position(ledger, "N1", "A") == (10, 0, 8)
    else:  # a reserve won: one reservation, held once, and its answer for everyone
        assert stored == [b"held"] * 4 and len(reserved) == 4 and len(set(reserved)) == 1
        assert position(ledger, "N1", "A") == (10, 2, 6)
