"""Reads of the ledger: they never wait for a writer, and planning's reads come as one.

SQLite serialises writers with ``BEGIN IMMEDIATE``; a read that took it too would queue
behind every reservation committing (and make PlanOrder, which only reads, as slow as
RouteOrder). Planning reads the calendar revision, the active rule version, an order's
stock, the slots used and a stored response: one transaction on the SQL ledgers. Stock
read twice unchanged gives the very same per-SKU positions (what the engine keys its
per-SKU arrays on), and positions that moved give new ones with the new values.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from models.errors import IdempotencyMismatchError
from models.reservation import ReservationLine
from router.ledger import Ledger, open_ledger
from router.ledger.base import PlanInputs
from router.ledger.sqlite import SqliteLedger
from tests.ledger.conftest import CAPACITIES, DAY, NOW, POSITIONS, scenario

pytestmark = pytest.mark.timeout(60)


def test_sqlite_reads_answer_while_another_connection_holds_the_write_lock(tmp_path: Path):
    """Every read planning makes answers while a writer holds the lock, from the last commit.

    Another connection takes SQLite's write lock (as a reservation committing does) and
    changes a position without committing: stock, capacity, the calendar revision, the
    active rule version, a stored response and plan_inputs all answer within two seconds
    (the busy timeout is 30 s) and show the position as last committed.
    """
    path = tmp_path / "ledger.db"
    with open_ledger(f"sqlite://{path}") as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        read: dict[str, Any] = {}

        def reads() -> None:
            read["stock"] = ledger.stock({"A"})
            read["capacity"] = ledger.capacity_used(DAY, DAY)
            read["revision"] = ledger.calendar_revision()
            read["rules"] = ledger.active_rule_version()
            read["stored"] = ledger.stored_response("r1", b"payload")
            read["inputs"] = ledger.plan_inputs({"A"}, DAY, DAY, "r1", b"payload")

        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE positions SET reserved = 3 WHERE node_id = 'N1' AND sku = 'A'")
        reader = threading.Thread(target=reads)
        reader.start()
        try:
            reader.join(2.0)
            waited = reader.is_alive()
        finally:
            writer.execute("ROLLBACK")
            writer.close()
            reader.join()  # before the ledger closes its connection
        assert not waited, f"reads waited for the writer; done before it let go: {sorted(read)}"
        assert read["stock"].positions[("N1", "A")].reserved == 0
        assert read["inputs"].stock == read["stock"]


class CountingSqlite(SqliteLedger):
    """A SQLite ledger that logs each transaction it runs: "read" or "write"."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.log: list[str] = []

    def read(self, work: Any) -> Any:
        self.log.append("read")
        return super().read(work)

    def transaction(self, work: Any) -> Any:
        self.log.append("write")
        return super().transaction(work)


def counting_postgres(url: str) -> Ledger:
    """A PostgreSQL ledger that logs each transaction: "read", or "write" when not a read."""
    from router.ledger.postgres import PostgresLedger

    class CountingPostgres(PostgresLedger):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.log: list[str] = []
            self.local = threading.local()

        def read(self, work: Any) -> Any:
            self.log.append("read")
            self.local.reading = True
            try:
                return super().read(work)
            finally:
                self.local.reading = False

        def transaction(self, work: Any) -> Any:
            if not getattr(self.local, "reading", False):
                self.log.append("write")
            return super().transaction(work)

    return CountingPostgres(url)


@pytest.fixture(params=["sqlite", "postgres"])
def counting(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """A SQL ledger of each backend, loaded, that logs its transactions in ``log``."""
    if request.param == "sqlite":
        ledger: Ledger = CountingSqlite(str(tmp_path / "ledger.db"))
    else:
        ledger = counting_postgres(str(request.getfixturevalue("pg_url")))
    ledger.load(*scenario(POSITIONS, CAPACITIES))
    ledger.log.clear()  # type: ignore[attr-defined]
    yield ledger  # type: ignore[misc]
    ledger.close()


def test_plan_inputs_is_one_read_transaction(counting: Ledger):
    """plan_inputs reads revision, rules, a stored response, stock and slots in one read."""
    inputs = counting.plan_inputs({"A", "B"}, DAY, DAY, "r1", b"payload")
    assert counting.log == ["read"]  # type: ignore[attr-defined]
    assert isinstance(inputs, PlanInputs)
    assert inputs.stored_response is None
    assert inputs.stock == counting.stock({"A", "B"})
    assert inputs.capacity_used == counting.capacity_used(DAY, DAY)
    assert inputs.calendar_revision == counting.calendar_revision()
    assert inputs.active_rule_version == counting.active_rule_version()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_unchanged_stock_reads_as_the_same_positions_and_moved_stock_as_new(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """A SKU whose positions did not move reads as the very same tuple; a moved one anew.

    So the engine's per-SKU arrays, keyed by that tuple, are found again across requests;
    and a reservation in between shows at once in the next read (never a stale tuple).
    """
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    with open_ledger(url) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        first = ledger.stock({"A", "B"})
        again = ledger.plan_inputs({"A", "B"}, DAY, DAY).stock
        assert again.by_sku["A"] is first.by_sku["A"]
        assert again.by_sku["B"] is first.by_sku["B"]
        ledger.reserve("r1", b"p", "o1", [ReservationLine("N1", "A", 2)], [], 60.0, NOW)
        moved = ledger.stock({"A", "B"})
        assert moved.by_sku["A"] is not first.by_sku["A"]
        assert moved.positions[("N1", "A")].reserved == 2
        assert moved.positions[("N1", "A")].available == 10 - 2 - 2
        assert moved.by_sku["B"] is first.by_sku["B"]
        assert moved == ledger.stock()  # the same values as a read of every position


def test_sqlite_reads_an_orders_stock_from_a_covering_index(tmp_path: Path):
    """The stock read of planning is one range scan per SKU of an index holding every column.

    Before, the index on sku alone sent each of a popular SKU's hundreds of rows back to
    the table for its counts.
    """
    with open_ledger(f"sqlite://{tmp_path / 'ledger.db'}") as ledger:
        assert isinstance(ledger, SqliteLedger)
        conn = sqlite3.connect(ledger.path)
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN {ledger.positions_of_skus_sql}", ('["A", "B"]',)
        ).fetchall()
        conn.close()
        assert any("USING COVERING INDEX positions_by_sku_covering" in str(step) for step in plan)


def test_plan_inputs_gives_a_stored_response_and_refuses_another_payload(ledger: Ledger):
    """plan_inputs answers a request_id as stored_response does, on every backend.

    None before anything is stored under it (and without a request_id); the stored bytes
    for the same payload; IdempotencyMismatchError for another payload.
    """
    assert ledger.plan_inputs({"A"}, DAY, DAY, "r1", b"p").stored_response is None
    ledger.store_response("r1", b"p", b"answer", NOW)
    assert ledger.plan_inputs({"A"}, DAY, DAY, "r1", b"p").stored_response == b"answer"
    assert ledger.plan_inputs({"A"}, DAY, DAY).stored_response is None
    with pytest.raises(IdempotencyMismatchError):
        ledger.plan_inputs({"A"}, DAY, DAY, "r1", b"other")


def test_an_orders_stock_reads_odd_node_ids_whole_and_in_node_order(ledger: Ledger):
    """Node ids with quotes, backslashes and non-ASCII letters come back as stored.

    SQLite reads an order's stock as one JSON array a SKU (one step of the statement, not
    one a position); the array is parsed back into the same positions a read of every
    position gives, in node order.
    """
    odd = ['N"1', "N\\2", "Nø", "a", "B"]
    ledger.load(*scenario([(n, "S", i + 1, 0) for i, n in enumerate(odd)], dict.fromkeys(odd)))
    ledger.reserve("r1", b"p", "o1", [ReservationLine("Nø", "S", 2)], [], 60.0, NOW)
    read = ledger.stock({"S"})
    assert read.positions == {k: p for k, p in ledger.stock().positions.items() if k[1] == "S"}
    assert read.positions[("Nø", "S")].reserved == 2
    if isinstance(ledger, SqliteLedger):
        assert [p.node_id for p in read.by_sku["S"]] == sorted(odd)
