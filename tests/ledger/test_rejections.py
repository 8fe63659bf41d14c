"""The ledger's part of RejectShipment: one transaction releases, corrects and re-holds.

On every backend, on the tiny scenario (N1: 10 A with 2 safety, 5 B; N2: 4 A, two orders
a day): a reservation of 2 A at N2 and 2 B at N1. N2 rejects its A; the re-route holds
2 A at N1 in the same reservation. Balances hold, the rejecting node's slot comes back,
a correction of on hand is clamped and counted like a feed's, the call is idempotent by
request id, and racing calls have exactly one effect.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg
import pytest

from models.errors import (
    IdempotencyMismatchError,
    InvalidArgumentError,
    ReservationStateError,
    StockConflictError,
)
from models.reservation import Reservation, ReservationLine, ReservationQuery, ReservationStatus
from router.ledger import Ledger, open_ledger
from router.ledger.base import Rejection, validate_rejection
from tests.ledger.conftest import (
    CAPACITIES,
    POSITIONS,
    ledger_url,
    pg_server,  # noqa: F401  (fixture)
    pg_url,  # noqa: F401  (fixture)
    position,
    scenario,
    used_on,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 8)
L = ReservationLine


def reserve(ledger: Ledger) -> str:
    """2 A at N2 and 2 B at N1, one slot at each."""
    made = ledger.reserve(
        "r1", b"r1", "O-1", [L("N2", "A", 2), L("N1", "B", 2)], [("N1", DAY), ("N2", DAY)], 600, NOW
    )
    return made.reservation_id


def rejection(
    rid: str,
    request_id: str = "x1",
    *,
    units: int = 2,
    reroute: tuple[L, ...] = (L("N1", "A", 2),),
    corrected: int | None = None,
    excluded: tuple[str, ...] = (),
    payload: bytes = b"x",
) -> Rejection:
    """N2 rejects ``units`` A; ``reroute`` holds them elsewhere (at N1 on DAY by default)."""
    return validate_rejection(
        request_id,
        payload,
        rid,
        "N2",
        {("N2", "A"): units},
        corrected_on_hand=corrected,
        excluded=excluded,
        lines=reroute,
        capacity=[(line.node_id, DAY) for line in reroute],
        reason="not on the shelf",
        now=NOW,
    )


def answer(reservation: Reservation) -> bytes:
    """The stored response: the lines as text, enough to tell answers apart."""
    return repr(reservation.lines).encode()


def test_reject_releases_rehomes_and_frees_the_node_slot(ledger: Ledger):
    """N2's 2 A go back (reserved 0) and N1 holds 2 A more (reserved 2); N2's slot is freed.

    N1 already held a slot on DAY for the B, so the re-route takes no new one.
    """
    rid = reserve(ledger)
    done, stored = ledger.reject(rejection(rid), answer)
    assert done.status is ReservationStatus.HELD
    assert done.lines == (L("N1", "B", 2), L("N1", "A", 2))  # the re-routed lines last
    assert done.capacity == (("N1", DAY),)
    assert stored == answer(done)
    assert position(ledger, "N2", "A") == (4, 0, 4)
    assert position(ledger, "N1", "A") == (10, 2, 6)
    assert used_on(ledger, DAY) == {"N1": 1}
    assert ledger.rejected_nodes(rid) == ("N2",)
    assert ledger.reservation(rid).expires_at == done.expires_at


def test_correction_sets_on_hand_clamped_to_reserved_and_counts_like_a_feed(ledger: Ledger):
    """Rejecting 1 of 2 A with on hand corrected to 0: 1 A stays reserved, so on hand is 1.

    One unit is clamped (the count is below what is still promised), counted with one
    applied update, as a feed's correction would be.
    """
    rid = reserve(ledger)
    before = ledger.feed_stats()
    ledger.reject(rejection(rid, units=1, reroute=(L("N1", "A", 1),), corrected=0), answer)
    assert position(ledger, "N2", "A") == (1, 1, 0)
    stats = ledger.feed_stats()
    assert stats["applied"] == before["applied"] + 1
    assert stats["clamped_units"] == before["clamped_units"] + 1
    assert used_on(ledger, DAY) == {"N1": 1, "N2": 1}  # N2 still ships its other A


def test_backorder_releases_without_holding_and_an_empty_reservation_is_released(
    ledger: Ledger,
):
    """No re-route lines: the A come back; with B released first nothing is left: RELEASED."""
    rid = reserve(ledger)
    ledger.release("rel", rid, NOW, [L("N1", "B", 2)])
    done, _ = ledger.reject(rejection(rid, reroute=()), answer)
    assert done.status is ReservationStatus.RELEASED
    assert done.lines == ()
    assert used_on(ledger, DAY) == {}
    assert position(ledger, "N2", "A") == (4, 0, 4)


def test_retry_replays_and_another_payload_is_a_mismatch(ledger: Ledger):
    """The same id and payload: no second effect, the first answer; another payload refused."""
    rid = reserve(ledger)
    first = ledger.reject(rejection(rid), answer)
    again = ledger.reject(rejection(rid), lambda r: b"other")
    assert again == first
    assert position(ledger, "N1", "A") == (10, 2, 6)
    assert ledger.stored_response("x1", b"x", "reject") == first[1]
    with pytest.raises(IdempotencyMismatchError):
        ledger.reject(rejection(rid, payload=b"y"), answer)
    with pytest.raises(IdempotencyMismatchError):
        ledger.release("x1", rid, NOW)


def test_more_than_held_is_invalid_and_changes_nothing(ledger: Ledger):
    """Rejecting 3 A where 2 are held names ``lines``; nothing moves, no id is recorded."""
    rid = reserve(ledger)
    with pytest.raises(InvalidArgumentError, match="lines"):
        ledger.reject(rejection(rid, units=3, reroute=(L("N1", "A", 3),)), answer)
    assert position(ledger, "N2", "A") == (4, 2, 2)
    assert position(ledger, "N1", "A") == (10, 0, 8)
    assert ledger.rejected_nodes(rid) == ()


def test_a_short_reroute_conflicts_and_rolls_everything_back(ledger: Ledger):
    """9 A at N1 (8 available): StockConflictError naming N1/A; N2 still holds its 2 A."""
    rid = reserve(ledger)
    with pytest.raises(StockConflictError) as e:
        ledger.reject(rejection(rid, units=2, reroute=(L("N1", "A", 9),)), answer)
    assert [(s.node_id, s.sku, s.available) for s in e.value.shortfalls] == [("N1", "A", 8)]
    assert position(ledger, "N2", "A") == (4, 2, 2)
    assert ledger.rejected_nodes(rid) == ()


def test_a_rejection_since_the_plan_is_a_conflict(ledger: Ledger):
    """A plan that excluded no node is refused once N2 has rejected: plan again."""
    rid = reserve(ledger)
    ledger.reject(rejection(rid, units=1, reroute=(L("N1", "A", 1),)), answer)
    with pytest.raises(StockConflictError):
        ledger.reject(rejection(rid, "x2", units=1, reroute=(L("N1", "A", 1),)), answer)
    ledger.reject(
        rejection(rid, "x3", units=1, reroute=(L("N1", "A", 1),), excluded=("N2",)), answer
    )
    assert ledger.rejected_nodes(rid) == ("N2", "N2")


def test_not_held_is_refused(ledger: Ledger):
    """A confirmed reservation cannot be rejected: FAILED_PRECONDITION's error."""
    rid = reserve(ledger)
    ledger.confirm("c", rid, NOW)
    with pytest.raises(ReservationStateError):
        ledger.reject(rejection(rid), answer)


def _race(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` in threads released together; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _balanced(ledger: Ledger) -> None:
    """Every position's reserved units are exactly what HELD reservations hold there."""
    held: dict[tuple[str, str], int] = {}
    for r in ledger.reservations(_all()).reservations:
        if r.status is ReservationStatus.HELD:
            for line in r.lines:
                held[line.node_id, line.sku] = held.get((line.node_id, line.sku), 0) + line.quantity
    reserved = {k: p.reserved for k, p in ledger.stock().positions.items() if p.reserved}
    assert reserved == held


def _all() -> ReservationQuery:
    return ReservationQuery(page_size=100)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("rounds", [5])
def test_rejection_racing_a_confirm_has_one_winner(
    backend: str, rounds: int, tmp_path, request: pytest.FixtureRequest
):
    """Threads: a rejection and a confirm of one reservation; exactly one takes effect.

    Confirm first: the rejection is refused (not HELD) and on hand drops by what shipped.
    Rejection first: the confirm ships the re-routed reservation (2 A at N1, 2 B at N1).
    Either way reserved equals what HELD reservations hold (none are left held).
    """
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        # confirms keep slots; N2 holds an A for every round whichever call wins each
        ledger.load(*scenario([*POSITIONS[:2], ("N2", "A", 10, 0)], {"N1": None, "N2": None}))
        for i in range(rounds):
            made = ledger.reserve(
                f"r{i}", b"r", "O", [L("N2", "A", 1), L("N1", "B", 1)], [("N1", DAY), ("N2", DAY)],
                600, NOW,
            )  # fmt: skip
            rid = made.reservation_id
            reject = rejection(rid, f"x{i}", units=1, reroute=(L("N1", "A", 1),))
            results = _race(
                lambda r=reject: ledger.reject(r, answer),  # type: ignore[misc]
                lambda c=f"c{i}", rid=rid: ledger.confirm(c, rid, NOW),  # type: ignore[misc]
            )
            errors = [r for r in results if isinstance(r, Exception)]
            assert len(errors) <= 1
            assert all(isinstance(e, ReservationStateError) for e in errors)
            final = ledger.reservation(rid)
            assert final.status is ReservationStatus.CONFIRMED
            shipped = {line.node_id for line in final.lines}
            assert shipped == ({"N1"} if not errors else {"N1", "N2"})
            _balanced(ledger)
        on_hand = sum(p.on_hand for p in ledger.stock().positions.values())
        assert on_hand == 25 - 2 * rounds


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_rejections_of_one_node_have_one_effect(
    backend: str, tmp_path, request: pytest.FixtureRequest
):
    """Two request ids reject N2's 2 A at once: one releases and re-routes, one is refused.

    The loser either finds the units gone (InvalidArgumentError: N2 holds 0) or the
    rejection it did not plan for (StockConflictError); never a second release.
    """
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        rid = reserve(ledger)
        results = _race(
            lambda: ledger.reject(rejection(rid, "x1"), answer),
            lambda: ledger.reject(rejection(rid, "x2", payload=b"2"), answer),
        )
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(wins) == 1
        assert all(
            isinstance(r, InvalidArgumentError | StockConflictError)
            for r in results
            if isinstance(r, Exception)
        )
        assert ledger.rejected_nodes(rid) == ("N2",)
        assert position(ledger, "N2", "A") == (4, 0, 4)
        assert position(ledger, "N1", "A") == (10, 2, 6)
        _balanced(ledger)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_same_request_id_twice_at_once_has_one_effect(
    backend: str, tmp_path, request: pytest.FixtureRequest
):
    """One request id sent twice at once: both get the one stored answer; one re-route."""
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        rid = reserve(ledger)
        results = _race(
            lambda: ledger.reject(rejection(rid), answer),
            lambda: ledger.reject(rejection(rid), answer),
        )
        assert results[0] == results[1]
        assert ledger.rejected_nodes(rid) == ("N2",)
        assert position(ledger, "N1", "A") == (10, 2, 6)
        _balanced(ledger)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_partial_confirms_under_load_keep_balances(
    backend: str, tmp_path, request: pytest.FixtureRequest
):
    """Eight threads: each reserves, has N2 reject, and confirms part; balances hold.

    Each reservation is 1 A at N2 and 1 B at N1; N2 rejects its A (re-routed to N1 when
    N1 has it, else backordered); then half the B ship by a partial confirm of 1 B
    whenever the reservation is still HELD. Whatever interleaves, reserved equals what
    HELD reservations hold, and on hand dropped by exactly what was confirmed.
    """
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        ledger.load(*scenario(POSITIONS, {"N1": None, "N2": None}))
        shipped: list[int] = []
        lock = threading.Lock()

        def worker(w: int) -> None:
            for i in range(3):
                key = f"{w}-{i}"
                try:
                    made = ledger.reserve(
                        f"r{key}", b"r", "O", [L("N2", "A", 1), L("N1", "B", 1)],
                        [("N1", DAY), ("N2", DAY)], 600, NOW,
                    )  # fmt: skip
                except StockConflictError:
                    continue
                rid = made.reservation_id
                try:
                    ledger.reject(
                        rejection(rid, f"x{key}", units=1, reroute=(L("N1", "A", 1),)), answer
                    )
                except StockConflictError:
                    ledger.reject(rejection(rid, f"y{key}", units=1, reroute=()), answer)
                done = ledger.confirm(f"c{key}", rid, NOW, [L("N1", "B", 1)])
                with lock:
                    shipped.append(sum(line.quantity for line in done.lines))

        _race(*[lambda w=w: worker(w) for w in range(8)])
        _balanced(ledger)
        on_hand = sum(p.on_hand for p in ledger.stock().positions.values())
        assert on_hand == 19 - sum(shipped)
        assert all(p.reserved == 0 for p in ledger.stock().positions.values())


def _widen_test_schema(sql: str) -> str:
    """The idempotency CHECK as ledgers made before RejectShipment have it."""
    return sql.replace("'release', 'reject')", "'release')")


def test_an_older_sqlite_ledger_learns_the_reject_operation(tmp_path):
    """A ledger whose idempotency CHECK predates 'reject' is widened when opened, records kept."""
    path = tmp_path / "old.db"
    with open_ledger(f"sqlite://{path}") as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        rid = reserve(ledger)
    conn = sqlite3.connect(path)
    old = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'idempotency'").fetchone()[0]
    conn.executescript(
        "PRAGMA foreign_keys = OFF; BEGIN; CREATE TABLE idem_old AS SELECT * FROM idempotency; "
        f"DROP TABLE idempotency; {_widen_test_schema(old)}; "
        "INSERT INTO idempotency SELECT * FROM idem_old; DROP TABLE idem_old; COMMIT;"
    )
    conn.close()
    with open_ledger(f"sqlite://{path}") as ledger:
        done, _ = ledger.reject(rejection(rid), answer)
        assert done.lines == (L("N1", "B", 2), L("N1", "A", 2))
        assert ledger.stored_response("r1", b"r1") is None  # the reserve's record kept


def test_an_older_postgres_ledger_learns_the_reject_operation(pg_url: str):  # noqa: F811
    """The same on PostgreSQL: the constraint is replaced when the ledger is opened."""
    with open_ledger(pg_url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        rid = reserve(ledger)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE idempotency DROP CONSTRAINT idempotency_operation_check")
        conn.execute(
            "ALTER TABLE idempotency ADD CONSTRAINT idempotency_operation_check "
            "CHECK (operation IN ('reserve', 'confirm', 'release'))"
        )
    with open_ledger(pg_url) as ledger:
        done, _ = ledger.reject(rejection(rid), answer)
        assert done.lines == (L("N1", "B", 2), L("N1", "A", 2))
