"""Work run by the concurrency tests in threads or in separate processes.

Process targets open their own ledger from a URL (as a router replica would) and are
importable functions, so they run under the ``spawn`` start method.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from models.errors import ReservationStateError, StockConflictError
from models.reservation import ReservationLine
from router.ledger import Ledger, open_ledger

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)


def hammer(
    ledger: Ledger, worker: int, seed: int, iterations: int, hot: Sequence[tuple[str, str]]
) -> tuple[dict[str, int], list[str]]:
    """Reserve 1–2 hot positions ``iterations`` times; confirm, release or keep at random.

    Returns counts of outcomes and the ids of every reservation made. Every reservation
    has a unique request id; about one in five is retried with the same id (which must
    not take effect again).
    """
    rng = random.Random(seed)
    counts = {"held": 0, "conflict": 0, "confirmed": 0, "released": 0, "lost": 0}
    mine: list[str] = []
    made: list[str] = []
    for i in range(iterations):
        picks = rng.sample(list(hot), rng.choice((1, 1, 2)))
        lines = [ReservationLine(n, s, rng.randint(1, 3)) for n, s in picks]
        nodes = sorted({n for n, _ in picks})
        request_id = f"w{worker}-{i}"
        payload = repr(lines).encode()
        try:
            r = ledger.reserve(request_id, payload, f"SO-{worker}-{i}", lines,
                               [(n, DAY) for n in nodes], 600, NOW)  # fmt: skip
        except StockConflictError:
            counts["conflict"] += 1
            continue
        counts["held"] += 1
        if rng.random() < 0.2:
            again = ledger.reserve(request_id, payload, f"SO-{worker}-{i}", lines,
                                   [(n, DAY) for n in nodes], 600, NOW)  # fmt: skip
            assert again.reservation_id == r.reservation_id
        mine.append(r.reservation_id)
        made.append(r.reservation_id)
        if mine and rng.random() < 0.7:
            target = mine.pop(rng.randrange(len(mine)))
            try:
                if rng.random() < 0.4:
                    ledger.confirm(f"c-{worker}-{i}", target, NOW)
                    counts["confirmed"] += 1
                else:
                    ledger.release(f"x-{worker}-{i}", target, NOW)
                    counts["released"] += 1
            except ReservationStateError:
                counts["lost"] += 1
    return counts, made


def hammer_process(
    url: str,
    worker: int,
    seed: int,
    iterations: int,
    hot: list[tuple[str, str]],
    barrier: Barrier,
    out: Queue[object],
) -> None:
    """:func:`hammer` in a process of its own with its own ledger (a replica)."""
    with open_ledger(url) as ledger:
        ledger.stock()  # connected before the start
        barrier.wait(timeout=30)
        out.put(hammer(ledger, worker, seed, iterations, hot))


def settle_process(
    url: str, action: str, reservation_ids: list[str], barrier: Barrier, out: Queue[object]
) -> None:
    """For each reservation: wait for the other racer, then confirm or release it."""
    with open_ledger(url) as ledger:
        for rid in reservation_ids:
            barrier.wait(timeout=20)
            out.put((rid, action, settle(ledger, action, rid)))


def settle(ledger: Ledger, action: str, reservation_id: str) -> str:
    """Confirm or release; "won" when this call changed the reservation, else "lost"."""
    try:
        if action == "confirm":
            ledger.confirm(f"{action}-{reservation_id}", reservation_id, NOW)
        else:
            ledger.release(f"{action}-{reservation_id}", reservation_id, NOW)
    except ReservationStateError:
        return "lost"
    return "won"


def reserve_then_die(url: str, request_id: str, lines: list[ReservationLine]) -> None:
    """Commit a reservation, then exit before the reply reaches anyone (a lost reply)."""
    with open_ledger(url) as ledger:
        ledger.reserve(request_id, b"payload", "SO-lost", lines, [], 600, NOW)
    os._exit(0)
