"""No oversell under real concurrency: threads on one SQLite file, processes on one PostgreSQL.

Each worker hammers a few hot positions with reservations and random confirms and
releases. Afterwards every position must balance against the reservations the workers
made: reserved is the sum of HELD lines, on hand is the initial on hand minus CONFIRMED
lines, nothing went negative, and held plus shipped units never exceeded what was
available at the start. Node capacity balances the same way.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import pytest

from models.reservation import ReservationLine, ReservationStatus
from router.ledger import Ledger, open_ledger
from tests.ledger import workers
from tests.ledger.conftest import DAY, NOW, ledger_url, scenario, used_on

pytestmark = pytest.mark.timeout(60)

N2_LIMIT = 150
HOT_POSITIONS = [("N1", "A", 200, 5), ("N1", "B", 150, 0), ("N2", "A", 120, 2)]
HOT_CAPACITIES: dict[str, int | None] = {"N1": None, "N2": N2_LIMIT}
HOT = [(n, s) for n, s, _, _ in HOT_POSITIONS]
REPLICAS = 4


def run_threads(targets: list[Callable[[], object]]) -> list[object]:
    """Start one thread per target at once; their results, re-raising the first error."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = targets[i]()
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]
    return results


def collect(
    procs: Sequence[BaseProcess], out: Queue[Any], n: int, timeout_s: float = 45
) -> list[Any]:
    """``n`` results from the worker processes; fails fast when one dies or all hang."""
    results: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(results) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"workers hung: {len(results)} of {n} results")
        try:
            results.append(out.get(timeout=0.2))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                pytest.fail(f"a worker process failed with exit code {dead[0]}")
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    return results


def check_balance(ledger: Ledger, reservation_ids: list[str]) -> Counter[str]:
    """Assert every position and node balances against the reservations; their statuses."""
    held: Counter[tuple[str, str]] = Counter()
    shipped: Counter[tuple[str, str]] = Counter()
    slots: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for rid in reservation_ids:
        r = ledger.reservation(rid)
        statuses[r.status.value] += 1
        for line in r.lines:
            if r.status is ReservationStatus.HELD:
                held[(line.node_id, line.sku)] += line.quantity
            elif r.status is ReservationStatus.CONFIRMED:
                shipped[(line.node_id, line.sku)] += line.quantity
        if r.status in (ReservationStatus.HELD, ReservationStatus.CONFIRMED):
            slots.update(node for node, _day in r.capacity)
    stock = ledger.stock()
    for node_id, sku, on_hand, safety in HOT_POSITIONS:
        p = stock.positions[(node_id, sku)]
        key = (node_id, sku)
        assert p.reserved == held[key], key
        assert p.on_hand == on_hand - shipped[key], key
        assert p.reserved >= 0 and p.on_hand >= p.reserved
        assert p.on_hand - p.reserved - p.safety_stock >= 0, key
        assert held[key] + shipped[key] <= on_hand - safety, key
    used = used_on(ledger, DAY)
    assert used == {n: c for n, c in slots.items() if c}
    assert used.get("N2", 0) <= N2_LIMIT
    return statuses


def check_counts(statuses: Counter[str], counts: list[dict[str, int]], made: int) -> None:
    """What the workers saw matches what the ledger holds; contention really happened."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    assert total["held"] == made
    assert statuses["CONFIRMED"] == total["confirmed"]
    assert statuses["RELEASED"] == total["released"]
    assert total["conflict"] > 0, "demand never exceeded supply: the test proved nothing"
    assert total["confirmed"] > 0 and total["released"] > 0


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_threads_never_oversell(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Six threads, 150 reservations each, on one ledger: every position balances."""
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        ledger.load(*scenario(HOT_POSITIONS, HOT_CAPACITIES))
        out = run_threads([
            partial(workers.hammer, ledger, w, 1000 + w, 150, HOT) for w in range(6)
        ])  # fmt: skip
        results = [r for r in out if isinstance(r, tuple)]
        ids = [rid for _, made in results for rid in made]
        statuses = check_balance(ledger, ids)
        check_counts(statuses, [c for c, _ in results], len(ids))


def test_postgres_replicas_never_oversell(pg_url: str):
    """Four replica processes, 150 reservations each, on one database: every position balances."""
    with open_ledger(pg_url) as ledger:
        ledger.load(*scenario(HOT_POSITIONS, HOT_CAPACITIES))
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        barrier = ctx.Barrier(REPLICAS)
        procs = [
            ctx.Process(
                target=workers.hammer_process,
                args=(pg_url, w, 2000 + w, 150, HOT, barrier, out),
            )
            for w in range(REPLICAS)
        ]
        for p in procs:
            p.start()
        results = collect(procs, out, len(procs))
        ids = [rid for _, made in results for rid in made]
        statuses = check_balance(ledger, ids)
        check_counts(statuses, [c for c, _ in results], len(ids))


def _race_reservations(ledger: Ledger, n: int) -> list[str]:
    return [
        ledger.reserve(f"q{i}", b"p", f"SO-{i}", [ReservationLine("N1", "A", 1)],
                       [("N2", DAY)], 600, NOW).reservation_id
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_confirm_release_race_threads(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """A confirm and a release started together on one reservation: exactly one wins."""
    with open_ledger(ledger_url(backend, tmp_path, request)) as ledger:
        ledger.load(*scenario(HOT_POSITIONS, HOT_CAPACITIES))
        ids = _race_reservations(ledger, 20)
        wins: Counter[str] = Counter()
        for rid in ids:
            a, b = run_threads(
                [
                    partial(workers.settle, ledger, "confirm", rid),
                    partial(workers.settle, ledger, "release", rid),
                ]
            )
            assert sorted([str(a), str(b)]) == ["lost", "won"]
            wins["confirm" if a == "won" else "release"] += 1
        statuses = check_balance(ledger, ids)
        assert statuses["CONFIRMED"] == wins["confirm"]
        assert statuses["RELEASED"] == wins["release"]


def test_confirm_release_race_processes(pg_url: str):
    """Two replicas confirm and release the same reservations at once: exactly one wins each."""
    with open_ledger(pg_url) as ledger:
        ledger.load(*scenario(HOT_POSITIONS, HOT_CAPACITIES))
        ids = _race_reservations(ledger, 15)
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        out = ctx.Queue()
        procs = [ctx.Process(target=workers.settle_process, args=(pg_url, a, ids, barrier, out))
                 for a in ("confirm", "release")]  # fmt: skip
        for p in procs:
            p.start()
        outcomes: dict[str, list[tuple[str, str]]] = {rid: [] for rid in ids}
        for rid, action, result in collect(procs, out, 2 * len(ids)):
            outcomes[rid].append((action, result))
        for rid, pair in outcomes.items():
            assert sorted(r for _, r in pair) == ["lost", "won"], rid
            winner = next(a for a, r in pair if r == "won")
            expected = (
                ReservationStatus.CONFIRMED if winner == "confirm" else ReservationStatus.RELEASED
            )
            assert ledger.reservation(rid).status is expected
        check_balance(ledger, ids)
