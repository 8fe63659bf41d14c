"""The routing hot path over real gRPC: how often it goes to the ledger, and that reads never queue.

PlanOrder reads the ledger in one read-only transaction; RouteOrder of a new request in
one read and one write (the atomic conditional reserve, which stores its answer). On
SQLite that read takes no write lock, so a PlanOrder answers while another connection
holds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.scenario import Scenario
from router.ledger import Ledger, sqlite
from router.service.convert import order_to_proto
from router.v1 import router_pb2, router_pb2_grpc
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.ledger.test_reads import CountingSqlite, counting_postgres
from tests.service.conftest import order
from tests.service.test_reservations import serve_on

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sqlite", "postgres"])
def counted(
    request: pytest.FixtureRequest, tmp_path: Path, small_scenario: Scenario
) -> Iterator[tuple[Ledger, router_pb2_grpc.RoutingServiceStub]]:
    """A server over a SQL ledger of each backend that logs its transactions."""
    if request.param == "sqlite":
        ledger: Ledger = CountingSqlite(str(tmp_path / "ledger.db"))
    else:
        ledger = counting_postgres(str(request.getfixturevalue("pg_url")))
    for served in serve_on(ledger, small_scenario, sweep_interval_s=3600.0):
        yield ledger, served.routing


def test_plan_order_reads_the_ledger_once_and_route_order_once_more_to_reserve(counted):
    """PlanOrder: one read transaction. RouteOrder of a new request: one read, one write.

    Before, a PlanOrder took four transactions (calendar revision, active rule version,
    stock, slots) and a RouteOrder seven (and the idempotency lookup and the owner of its
    own new reservation besides), each a connection checkout on PostgreSQL and, on SQLite,
    the write lock.
    """
    ledger, stub = counted
    wanted = order_to_proto(order(("A", 2), ("B", 1)))
    stub.PlanOrder(router_pb2.PlanOrderRequest(order=wanted), timeout=30)  # warm: rules parsed
    ledger.log.clear()
    plan = stub.PlanOrder(router_pb2.PlanOrderRequest(order=wanted), timeout=30)
    assert plan.plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert ledger.log == ["read"]
    ledger.log.clear()
    routed = stub.RouteOrder(
        router_pb2.RouteOrderRequest(request_id="r1", order=wanted), timeout=30
    )
    assert routed.outcome == router_pb2.ROUTE_OUTCOME_RESERVED
    assert ledger.log == ["read", "write"]
    again = stub.RouteOrder(router_pb2.RouteOrderRequest(request_id="r1", order=wanted), timeout=30)
    assert again == routed  # the answer given is the answer stored


def test_plan_order_answers_while_another_connection_holds_the_sqlite_write_lock(
    tmp_path: Path, small_scenario: Scenario, monkeypatch: pytest.MonkeyPatch
):
    """A PlanOrder (reads only) answers while a writer holds SQLite's write lock.

    Before, its reads began with BEGIN IMMEDIATE and waited for the lock: with the busy
    timeout cut to 0.2 s (so that the test ends soon either way), it failed UNAVAILABLE.
    """
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "ledger.db"
    for served in serve_on(CountingSqlite(str(path)), small_scenario, sweep_interval_s=3600.0):
        stub = served.routing
        wanted = order_to_proto(order(("A", 2), ("B", 1)))
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            plan = stub.PlanOrder(router_pb2.PlanOrderRequest(order=wanted), timeout=5)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert plan.plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
