"""The server's pool runs calls that do not solve ahead of queued solves (service/pool.py)."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from router.service.access import _BUSY, AccessInterceptor, refusal
from router.service.config import AdmissionSettings
from router.service.pool import PriorityPool

PLAN = "/router.v1.RoutingService/PlanOrder"
STOCK = "/router.v1.InventoryService/GetStock"


def behaviour(method: str) -> Any:
    """The behaviour the access interceptor hands gRPC for ``method`` (tagged for the pool)."""
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: None)
    details = type("Details", (), {"method": method, "invocation_metadata": ()})()
    checked = AccessInterceptor(None, AdmissionSettings(), 1).intercept_service(
        lambda _: handler, details
    )
    return checked.unary_unary


def test_urgent_work_overtakes_queued_solves_and_everything_runs() -> None:
    """Queued behind a busy thread: a read first, then a refusal, then three earlier solves.

    The work carries the behaviours the interceptor makes, as gRPC submits them; the read
    overtakes the refusal queued before it; the solves run last, in arrival order.
    """
    pool = PriorityPool(1)
    gate = threading.Event()
    ran: list[str] = []

    def step(name: str, *submitted: object) -> str:
        ran.append(name)
        return name

    blocker = pool.submit(lambda: gate.wait(10))
    solves = [pool.submit(step, f"solve-{i}", object(), behaviour(PLAN)) for i in range(3)]
    refused = pool.submit(step, "refusal", object(), refusal(_BUSY))
    read = pool.submit(step, "read", object(), behaviour(STOCK))
    gate.set()
    assert blocker.result(10) is True
    assert [f.result(10) for f in (*solves, read, refused)] == [
        "solve-0", "solve-1", "solve-2", "read", "refusal"
    ]  # fmt: skip
    assert ran == ["read", "refusal", "solve-0", "solve-1", "solve-2"]
    pool.shutdown()


def test_an_error_reaches_the_future_and_shutdown_refuses_new_work() -> None:
    """Work that raises fails its future, not the pool; after shutdown nothing is taken."""
    pool = PriorityPool(2)
    failed = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result(10)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)
