"""The hot path's statements in batches: a reserve and a plan's read each go as one batch.

On PostgreSQL a batch is one round trip (pipeline mode) where each statement was one; a
reserve used to cost about fifteen. The batch must keep what the statements one by one
guaranteed: the lock order, the conflict naming every short position and full node, and
all or nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models.errors import LedgerRefusedError, Shortfall, StockConflictError
from models.reservation import ReservationLine
from router.ledger import Ledger, open_ledger, postgres, reservations, sqlite
from router.ledger.driver import Tx
from tests.ledger.conftest import DAY, NOW, ledger_url, position, scenario, used_on

pytestmark = pytest.mark.timeout(30)

L = ReservationLine

#: N1 unlimited, N2 two orders a day, N3 none at all (no slot row is ever made for it).
POSITIONS = [("N1", "A", 10, 2), ("N1", "B", 5, 0), ("N2", "A", 4, 0), ("N3", "B", 9, 0)]
CAPACITIES: dict[str, int | None] = {"N1": None, "N2": 2, "N3": 0}


@pytest.fixture
def loaded(ledger: Ledger) -> Ledger:
    """Every backend's ledger with a node that takes no order (N3) besides the tiny network."""
    ledger.load(*scenario(POSITIONS, CAPACITIES))
    return ledger


def test_a_conflict_names_every_short_position_and_full_node_at_once(loaded: Ledger):
    """One conflict names two short positions (one unknown) and two full nodes.

    One node is at its limit, one has limit 0 (no slot row is ever made for it); nothing
    is held: not the positions that had the units, nor the slot of the node with room.
    """
    for i in range(2):  # N2 full on DAY
        loaded.reserve(f"f{i}", b"p", f"SO-f{i}", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
    before = loaded.stock()
    with pytest.raises(StockConflictError) as e:
        loaded.reserve("q1", b"p", "SO-1",
                       [L("N3", "B", 1), L("N1", "B", 6), L("N1", "A", 1), L("N9", "Z", 2)],
                       [("N3", DAY), ("N1", DAY), ("N2", DAY)], 60, NOW)  # fmt: skip
    # sorted by (node, sku) and (node, day): N1/B has 5, N9/Z is unknown (0)
    assert e.value.shortfalls == (Shortfall("N1", "B", 6, 5), Shortfall("N9", "Z", 2, 0))
    assert e.value.full_nodes == (("N2", DAY.isoformat()), ("N3", DAY.isoformat()))
    assert loaded.stock() == before
    assert used_on(loaded, DAY) == {"N2": 2}
    # the request_id was not consumed; without the full nodes and short lines it reserves
    r = loaded.reserve("q1", b"p2", "SO-1", [L("N3", "B", 1), L("N1", "A", 1)], [("N1", DAY)],
                       60, NOW)  # fmt: skip
    assert loaded.reservation(r.reservation_id) == r
    assert position(loaded, "N3", "B") == (9, 1, 8)
    assert used_on(loaded, DAY) == {"N1": 1, "N2": 2}


def test_the_first_slot_of_a_day_and_the_next_ones_count_up_to_the_limit(loaded: Ledger):
    """A day's first order makes the slot row, later ones count up; each day on its own."""
    next_day = DAY + timedelta(days=1)
    for i in range(2):
        loaded.reserve(f"q{i}", b"p", f"SO-{i}", [L("N2", "A", 1)], [("N2", DAY)], 60, NOW)
    assert used_on(loaded, DAY) == {"N2": 2}
    assert used_on(loaded, next_day) == {}
    loaded.reserve("q2", b"p", "SO-2", [L("N2", "A", 1)], [("N2", next_day)], 60, NOW)
    assert used_on(loaded, next_day) == {"N2": 1}


class _Logged:
    """A Tx that logs the name of each call it passes on (one round trip each on PostgreSQL)."""

    def __init__(self, tx: Tx, log: list[str]) -> None:
        self._tx = tx
        self._log = log

    def __getattr__(self, name: str) -> Any:
        self._log.append(name)
        return getattr(self._tx, name)


@pytest.fixture(params=["sqlite", "postgres"])
def logged(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Ledger, list[str]]]:
    """A SQL ledger of each backend, loaded, and the log of its Tx calls (cleared)."""
    log: list[str] = []
    module: Any = sqlite if request.param == "sqlite" else postgres
    name = "_SqliteTx" if request.param == "sqlite" else "_PgTx"
    plain = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args, **kw: _Logged(plain(*args, **kw), log))
    with open_ledger(ledger_url(str(request.param), tmp_path, request)) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        log.clear()
        yield ledger, log


def test_a_reserve_is_its_claim_and_one_batch(logged: tuple[Ledger, list[str]]):
    """Four positions, two slots, an owner and a response: the claim, then one batch.

    Before, each position and each slot was a statement of its own (two for a slot), then
    the reservation, its lines, its slots, its owner and its response: about fifteen round
    trips on PostgreSQL.
    """
    ledger, log = logged
    lines = [L("N1", "A", 1), L("N1", "B", 1), L("N2", "A", 1), L("N3", "B", 1)]
    r = ledger.reserve("q1", b"p", "SO-1", lines, [("N1", DAY), ("N2", DAY)], 60, NOW,
                       lambda made: made.reservation_id.encode(), owner="oms")  # fmt: skip
    assert log == ["one", "batch"]
    assert ledger.stored_response("q1", b"p") == r.reservation_id.encode()
    assert ledger.reservation_owner(r.reservation_id) == "oms"
    assert ledger.reservation(r.reservation_id) == r
    log.clear()
    with pytest.raises(StockConflictError):  # the conflict's figures: one batch more
        ledger.reserve("q2", b"p", "SO-2", [L("N2", "A", 9)], [("N3", DAY)], 60, NOW)
    assert log == ["one", "batch", "batch"]


def test_a_plan_read_is_one_batch(logged: tuple[Ledger, list[str]]):
    """What planning reads (header, stock, slots) is one batch: one round trip on PostgreSQL."""
    ledger, log = logged
    inputs = ledger.plan_inputs({"A", "B"}, DAY, DAY + timedelta(days=2), "q1", b"p")
    assert log == ["batch"]
    assert set(inputs.stock.positions) == {("N1", "A"), ("N1", "B"), ("N2", "A"), ("N3", "B")}
    assert inputs.stored_response is None


def test_a_failing_statement_fails_its_batch_and_transaction(logged: tuple[Ledger, list[str]]):
    """A statement breaking a constraint raises the ledger's error and undoes its batch.

    The statements before it in the batch are rolled back with the transaction, and the
    ledger (its connection, back in the pool) serves the next call.
    """
    ledger, _ = logged
    insert = "INSERT INTO nodes (node_id, daily_order_capacity) VALUES (?, ?)"
    with pytest.raises(LedgerRefusedError):
        ledger.transaction(  # type: ignore[attr-defined]
            lambda tx: tx.batch([(insert, ("N7", 1)), (insert, ("N1", 1)), (insert, ("N8", 1))])
        )
    read = ledger.read(  # type: ignore[attr-defined]
        lambda tx: tx.tuples("SELECT node_id FROM nodes WHERE node_id IN ('N7', 'N8')")
    )
    assert read == []
    for i in range(3):  # every pooled connection still works
        ledger.reserve(f"q{i}", b"p", f"SO-{i}", [L("N1", "A", 1)], [("N1", DAY)], 60, NOW)
    assert position(ledger, "N1", "A") == (10, 3, 5)


def test_the_writers_of_one_process_queue_without_sqlites_busy_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Six threads reserving at once on SQLite with no busy timeout at all: none is refused.

    They take turns on the ledger's own lock before BEGIN IMMEDIATE, so none finds the
    database busy (which, without a busy timeout, fails at once, and with one polls with
    sleeps of 1 to 100 ms while the writer before it commits).
    """
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_S", 0.0)
    monkeypatch.setattr(sqlite, "MAX_ATTEMPTS", 1)  # no retry either: a busy BEGIN raises
    with open_ledger(f"sqlite://{tmp_path / 'ledger.db'}") as ledger:
        ledger.load(*scenario([("N1", "A", 10_000, 0)], {"N1": None}))
        failures: list[BaseException] = []

        def reserve_many(worker: int) -> None:
            try:
                for i in range(40):
                    ledger.reserve(f"w{worker}-{i}", b"p", f"SO-{worker}-{i}",
                                   [L("N1", "A", 1)], [("N1", DAY)], 60, NOW)  # fmt: skip
            except BaseException as e:  # reported by the assertion below
                failures.append(e)

        threads = [threading.Thread(target=reserve_many, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert position(ledger, "N1", "A") == (10_000, 240, 9_760)
        assert used_on(ledger, DAY) == {"N1": 240}


def test_a_reservations_lines_and_slots_are_inserted_many_to_a_statement(
    loaded: Ledger, monkeypatch: pytest.MonkeyPatch
):
    """Lines and slots go in INSERTs of several rows each, cut at MAX_INSERTED_ROWS.

    With the cut lowered to two rows, five lines (two for one position) and three slots
    take several statements each and come back whole and in order.
    """
    monkeypatch.setattr(reservations, "MAX_INSERTED_ROWS", 2)
    lines = [L("N1", "A", 1), L("N1", "B", 1), L("N2", "A", 1), L("N3", "B", 1), L("N1", "A", 2)]
    slots = [("N1", DAY), ("N2", DAY), ("N1", DAY + timedelta(days=1))]
    r = loaded.reserve("q1", b"p", "SO-1", lines, slots, 60, NOW)
    assert r.lines == tuple(lines)
    assert loaded.reservation(r.reservation_id) == r
    assert position(loaded, "N1", "A") == (10, 3, 5)
    assert used_on(loaded, DAY) == {"N1": 1, "N2": 1}


def test_a_write_transaction_is_whole_when_its_first_statement_carries_the_begin(
    logged: tuple[Ledger, list[str]],
):
    """On PostgreSQL BEGIN goes in one pipeline with a write's first statement.

    The block is still one transaction: work that fails after a write leaves nothing
    behind; a first statement that fails raises the ledger's error; a write that commits
    is seen; and every pooled connection is left clean for the next call.
    """
    ledger, _ = logged
    insert = "INSERT INTO nodes (node_id, daily_order_capacity) VALUES (?, ?)"
    nodes = "SELECT node_id FROM nodes WHERE node_id IN ('M1', 'M2')"

    def write_then_fail(tx: Tx) -> None:
        tx.run(insert, ("M1", 1))
        raise RuntimeError("work failed after its first write")

    with pytest.raises(RuntimeError):
        ledger.transaction(write_then_fail)  # type: ignore[attr-defined]
    with pytest.raises(LedgerRefusedError):
        ledger.transaction(lambda tx: tx.one(insert, ("N1", 1)))  # type: ignore[attr-defined]
    ledger.transaction(lambda tx: tx.run(insert, ("M2", 1)))  # type: ignore[attr-defined]
    assert ledger.read(lambda tx: tx.tuples(nodes)) == [("M2",)]  # type: ignore[attr-defined]
    for i in range(4):
        ledger.reserve(f"q{i}", b"p", f"SO-{i}", [L("N1", "B", 1)], [], 60, NOW)
    assert position(ledger, "N1", "B") == (5, 4, 1)
