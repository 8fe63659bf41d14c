"""Seeding: replicas starting together on an empty ledger load it exactly once.

The check for an empty ledger and the load run in one transaction (under an advisory lock
on PostgreSQL, BEGIN IMMEDIATE on SQLite), so a late seeder never resets live stock.
"""

from __future__ import annotations

import threading

import pytest

from models.reservation import ReservationLine
from router.ledger import Ledger, open_ledger
from tests.ledger.conftest import CAPACITIES, NOW, POSITIONS, position, scenario

pytestmark = pytest.mark.timeout(60)

SEEDERS = 4


def test_concurrent_seeders_load_once_and_never_reset_live_stock(backend_url: str) -> None:
    """Four seeders at once: one loads; after a confirm, another seed changes nothing."""
    network, stock = scenario(POSITIONS, CAPACITIES)
    if backend_url == "memory://":  # one process: the seeders share one ledger
        shared = open_ledger(backend_url)
        ledgers = [shared] * SEEDERS
    else:
        ledgers = [open_ledger(backend_url) for _ in range(SEEDERS)]
    barrier = threading.Barrier(SEEDERS)
    loaded: list[bool] = []
    errors: list[BaseException] = []

    def seeder(ledger: Ledger) -> None:
        try:
            barrier.wait(timeout=10)
            loaded.append(ledger.seed(network, stock))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=seeder, args=(ledger,)) for ledger in ledgers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        assert sorted(loaded) == [False] * (SEEDERS - 1) + [True]
        first, late = ledgers[0], ledgers[-1]
        made = first.reserve("r1", b"p", "o1", [ReservationLine("N1", "A", 3)], [], 60.0, NOW)
        first.confirm("c1", made.reservation_id, NOW)
        assert position(first, "N1", "A") == (7, 0, 5)
        assert late.seed(network, stock) is False  # a replica started later: live stock
        assert position(late, "N1", "A") == (7, 0, 5)
    finally:
        for ledger in set(ledgers):
            ledger.close()


def test_a_sqlite_ledger_creates_its_directory(tmp_path) -> None:
    """``sqlite://a/b/ledger.db`` with neither a/ nor a/b/ there: the ledger makes both."""
    path = tmp_path / "a" / "b" / "ledger.db"
    with open_ledger(f"sqlite://{path}") as ledger:
        network, stock = scenario(POSITIONS, CAPACITIES)
        assert ledger.seed(network, stock)
    assert path.is_file()
