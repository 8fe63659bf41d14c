"""Daily order capacity is counted on each node's own ship date, through the real service.

The scenario: two DCs 1° (111 km) either side of the customer, each able to ship one order
a day, each holding 5 units of A. The order is created on Friday 2026-11-20 at 20:00 UTC,
after both nodes' 12:00 cutoff, so both ship on Saturday 2026-11-21. Before it, another
order took ``sat``'s one slot of the 21st (its ship date), and ``fri``'s one slot of the
20th (the creation day only).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import grpc
import pytest

from models.order import Order, OrderLine, ShipTo
from models.reservation import ReservationLine
from models.rules import RuleSet
from models.scenario import Scenario
from router.ledger import Ledger, open_ledger
from router.service.config import ServerConfig
from router.service.convert import order_to_proto
from router.service.server import create_server
from router.v1 import router_pb2, router_pb2_grpc
from tests.engine.conftest import network, node, stock

pytestmark = pytest.mark.timeout(60)

CREATED = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
FRIDAY, SATURDAY = date(2026, 11, 20), date(2026, 11, 21)


def _scenario() -> Scenario:
    nodes = (
        node("fri", 0.0, cutoff=time(12), capacity=1),
        node("sat", 2.0, cutoff=time(12), capacity=1),
    )
    return Scenario(network(*nodes), stock(("fri", "A", 5), ("sat", "A", 5)), RuleSet())


def _order(order_id: str) -> Order:
    return Order(
        order_id=order_id,
        created_at=CREATED,
        ship_to=ShipTo(0.0, 1.0, "US", "00000"),
        service="ground",
        lines=(OrderLine("l1", "A", 1),),
    )


@pytest.fixture(params=["memory", "sqlite"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, grpc.Channel]]:
    """A server over a ledger whose slots are taken as the module docstring says."""
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'l.db'}"
    scenario = _scenario()
    ledger = open_ledger(url)
    ledger.load(scenario.network, scenario.stock)
    now = datetime.now(UTC)
    for request_id, node_id, day in (("early-sat", "sat", SATURDAY), ("early-fri", "fri", FRIDAY)):
        ledger.reserve(
            request_id, b"", "early", [ReservationLine(node_id, "A", 1)], [(node_id, day)], 600, now
        )
    server, port = create_server(ServerConfig(port=0), scenario, ledger)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield ledger, channel
    finally:
        server.stop(0).wait(10)
        ledger.close()


def test_plan_excludes_a_node_full_on_its_ship_date_not_one_full_on_the_creation_day(served):
    """PlanOrder excludes a node full on its ship date, not one full on the creation day.

    ``sat`` (full on the 21st, its ship date) is out of capacity, the detail naming the
    date; ``fri`` (full only on the 20th) stays a candidate and ships.

    Failed before the fix: planning read the slots of the creation day, so ``fri`` was
    excluded and ``sat`` offered although reserving it must fail.
    """
    _, channel = served
    stub = router_pb2_grpc.RoutingServiceStub(channel)
    request = router_pb2.PlanOrderRequest(
        order=order_to_proto(_order("o1")), explain_level=router_pb2.EXPLAIN_LEVEL_FULL
    )
    plan = stub.PlanOrder(request, timeout=10).plan
    excluded = {e.node_id: e for e in plan.explain.excluded}
    assert set(excluded) == {"sat"}
    assert excluded["sat"].reason == router_pb2.EXCLUSION_REASON_OUT_OF_CAPACITY
    assert "2026-11-21" in excluded["sat"].detail
    assert [c.node_id for c in plan.explain.model.candidates] == ["fri"]
    assert [(s.node_id, s.ship_date) for s in plan.shipments] == [("fri", "2026-11-21")]


def test_route_reserves_the_node_free_on_its_ship_date_at_the_first_attempt(served):
    """RouteOrder reserves ``fri``'s slot of the 21st at once: no second attempt.

    Failed before the fix: the plan offered ``sat``, whose reservation conflicted, so the
    order needed a second attempt (and then, with ``sat`` marked full, found no node).
    """
    ledger, channel = served
    stub = router_pb2_grpc.RoutingServiceStub(channel)
    request = router_pb2.RouteOrderRequest(request_id="r1", order=order_to_proto(_order("o1")))
    answer = stub.RouteOrder(request, timeout=10)
    assert answer.attempts == 1
    assert [(s.node_id, s.ship_date) for s in answer.plan.shipments] == [("fri", "2026-11-21")]
    held = ledger.reservation(answer.reservation.reservation_id)
    assert held.capacity == (("fri", SATURDAY),)
