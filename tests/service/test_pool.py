"""The server's pool runs calls that do not solve ahead of queued solves (service/pool.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from router.service.access import SOLVING_METHODS, refusal
from router.service.pool import PriorityPool

PLAN = "/router.v1.RoutingService/PlanOrder"
STOCK = "/router.v1.InventoryService/GetStock"


def rpc(method: str) -> SimpleNamespace:
    """What gRPC passes with each call: an event whose call details name the method."""
    return SimpleNamespace(call_details=SimpleNamespace(method=method.encode()))


def test_urgent_work_overtakes_queued_solves_and_everything_runs() -> None:
    """Queued behind a busy thread: a read first, then a refusal, then three earlier solves.

    The read overtakes the refusal queued before it; the solves run last, in arrival
    order, and every future gets its result.
    """
    assert PLAN in SOLVING_METHODS and STOCK not in SOLVING_METHODS
    pool = PriorityPool(1, deferred=SOLVING_METHODS)
    gate = threading.Event()
    ran: list[str] = []

    def step(name: str, event: object, behaviour: object = None) -> str:
        ran.append(name)
        return name

    blocker = pool.submit(lambda: gate.wait(10))
    solves = [pool.submit(step, f"solve-{i}", rpc(PLAN)) for i in range(3)]
    refused = pool.submit(step, "refusal", rpc(PLAN), refusal(None))  # type: ignore[arg-type]
    read = pool.submit(step, "read", rpc(STOCK))
    gate.set()
    assert blocker.result(10) is True
    assert [f.result(10) for f in (*solves, read, refused)] == [
        "solve-0", "solve-1", "solve-2", "read", "refusal"
    ]  # fmt: skip
    assert ran == ["read", "refusal", "solve-0", "solve-1", "solve-2"]
    pool.shutdown()


def test_an_error_reaches_the_future_and_shutdown_refuses_new_work() -> None:
    """Work that raises fails its future, not the pool; after shutdown nothing is taken."""
    pool = PriorityPool(2, deferred=SOLVING_METHODS)
    failed = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result(10)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)
