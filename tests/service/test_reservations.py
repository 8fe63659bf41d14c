"""RouteOrder, ConfirmReservation, ReleaseReservation and InventoryService over real gRPC.

Servers run on port 0 over a ledger the test holds (memory or SQLite), so the test can
look at the ledger directly and interfere with it between a solve and its reservation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from models.errors import Shortfall, StockConflictError
from models.reservation import Reservation, ReservationLine
from models.scenario import Scenario
from router.ledger import Ledger, open_ledger
from router.ledger.memory import MemoryLedger
from router.scenario.reader import read_scenario
from router.service.config import ServerConfig
from router.service.convert import order_to_proto
from router.service.server import create_server
from router.v1 import router_pb2, router_pb2_grpc
from tests.service.conftest import order

pytestmark = pytest.mark.timeout(60)


@dataclass
class Served:
    """A started server over ``ledger`` and clients on one channel to it."""

    ledger: Ledger
    port: int
    channel: grpc.Channel

    @property
    def routing(self) -> router_pb2_grpc.RoutingServiceStub:
        return router_pb2_grpc.RoutingServiceStub(self.channel)

    @property
    def inventory(self) -> router_pb2_grpc.InventoryServiceStub:
        return router_pb2_grpc.InventoryServiceStub(self.channel)


def serve_on(ledger: Ledger, scenario: Scenario, **config: float) -> Iterator[Served]:
    """Seed ``ledger`` from ``scenario`` and serve it on a free port until the caller is done."""
    ledger.load(scenario.network, scenario.stock)
    server, port = create_server(ServerConfig(port=0, **config), scenario, ledger)  # type: ignore[arg-type]
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Served(ledger, port, channel)
    finally:
        server.stop(0).wait(10)
        ledger.close()


@pytest.fixture(params=["memory", "sqlite"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, small_scenario: Scenario
) -> Iterator[Served]:
    """A server over a fresh ledger of each embedded backend."""
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'l.db'}"
    yield from serve_on(open_ledger(url), small_scenario)


def route(
    request_id: str, *lines: tuple[str, int], order_id: str = "o1", ttl_s: float | None = None
) -> router_pb2.RouteOrderRequest:
    """A RouteOrder request for an order of (sku, quantity) lines of the small scenario."""
    msg = router_pb2.RouteOrderRequest(
        request_id=request_id, order=order_to_proto(order(*lines, order_id=order_id))
    )
    if ttl_s is not None:
        msg.ttl.CopyFrom(duration_pb2.Duration(nanos=int(ttl_s * 1e9) % 10**9, seconds=int(ttl_s)))
    return msg


def stock_of(served: Served, sku: str) -> dict[str, tuple[int, int, int]]:
    """(on_hand, reserved, available) per node of ``sku``, through GetStock."""
    answer = served.inventory.GetStock(router_pb2.GetStockRequest(skus=[sku]), timeout=10)
    return {p.node_id: (p.on_hand, p.reserved, p.available) for p in answer.positions}


def test_route_order_reserves_and_get_stock_shows_it(served: Served):
    """The plan's shipments are reserved: GetStock shows the units reserved, not available."""
    before = stock_of(served, "A")
    answer = served.routing.RouteOrder(route("r1", ("A", 2)), timeout=10)
    assert answer.attempts == 1
    assert answer.outcome == router_pb2.ROUTE_OUTCOME_RESERVED and not answer.detail
    assert answer.reservation.status == router_pb2.RESERVATION_STATUS_HELD
    assert answer.reservation.order_id == "o1"
    shipped = [
        (shipment.node_id, line.sku, line.quantity)
        for shipment in answer.plan.shipments
        for line in shipment.lines
    ]
    assert [(x.node_id, x.sku, x.quantity) for x in answer.reservation.lines] == shipped
    after = stock_of(served, "A")
    for node_id, _sku, quantity in shipped:
        on_hand, reserved, available = before[node_id]
        assert after[node_id] == (on_hand, reserved + quantity, available - quantity)
    # PlanOrder sees the live stock and still reserves nothing.
    plan = served.routing.PlanOrder(
        router_pb2.PlanOrderRequest(order=order_to_proto(order(("A", 1)))), timeout=10
    )
    assert plan.plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert stock_of(served, "A") == after


def test_get_stock_filters(served: Served):
    """GetStock filters by nodes and SKUs; with neither it returns every position."""
    every = served.inventory.GetStock(router_pb2.GetStockRequest(), timeout=10).positions
    assert {(p.node_id, p.sku) for p in every} == {
        ("west", "A"),
        ("mid", "A"),
        ("mid", "B"),
        ("east", "B"),
    }
    some = served.inventory.GetStock(
        router_pb2.GetStockRequest(node_ids=["mid"], skus=["B"]), timeout=10
    ).positions
    assert [(p.node_id, p.sku, p.on_hand, p.available) for p in some] == [("mid", "B", 3, 3)]


def test_confirm_and_release(served: Served):
    """Confirm ships units, release gives them back, retries repeat, errors are mapped.

    A second transition is FAILED_PRECONDITION, an unknown reservation NOT_FOUND.
    """
    a = served.routing.RouteOrder(route("r1", ("B", 2), order_id="a"), timeout=10).reservation
    b = served.routing.RouteOrder(route("r2", ("A", 1), order_id="b"), timeout=10).reservation
    before_a, before_b = stock_of(served, "B"), stock_of(served, "A")
    confirmed = served.routing.ConfirmReservation(
        router_pb2.ConfirmReservationRequest(request_id="c1", reservation_id=a.reservation_id),
        timeout=10,
    )
    assert confirmed.reservation.status == router_pb2.RESERVATION_STATUS_CONFIRMED
    again = served.routing.ConfirmReservation(
        router_pb2.ConfirmReservationRequest(request_id="c1", reservation_id=a.reservation_id),
        timeout=10,
    )
    assert again == confirmed
    (line,) = a.lines
    on_hand, reserved, available = before_a[line.node_id]
    assert stock_of(served, "B")[line.node_id] == (on_hand - 2, reserved - 2, available)
    released = served.routing.ReleaseReservation(
        router_pb2.ReleaseReservationRequest(request_id="x1", reservation_id=b.reservation_id),
        timeout=10,
    )
    assert released.reservation.status == router_pb2.RESERVATION_STATUS_RELEASED
    (line,) = b.lines
    on_hand, reserved, available = before_b[line.node_id]
    assert stock_of(served, "A")[line.node_id] == (on_hand, reserved - 1, available + 1)
    with pytest.raises(grpc.RpcError) as error:
        served.routing.ReleaseReservation(
            router_pb2.ReleaseReservationRequest(request_id="x2", reservation_id=a.reservation_id),
            timeout=10,
        )
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "status is CONFIRMED" in str(error.value.details())
    with pytest.raises(grpc.RpcError) as error:
        served.routing.ConfirmReservation(
            router_pb2.ConfirmReservationRequest(request_id="c9", reservation_id="R-none"),
            timeout=10,
        )
    assert error.value.code() is grpc.StatusCode.NOT_FOUND


def test_replay_returns_the_identical_response(served: Served):
    """The same request_id and request return the first response byte for byte.

    Even after the stock changed (so a fresh solve would differ) and the reservation moved on.
    """
    first = served.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=10)
    served.routing.RouteOrder(route("r2", ("A", 3), order_id="o2"), timeout=10)
    served.routing.ConfirmReservation(
        router_pb2.ConfirmReservationRequest(
            request_id="c1", reservation_id=first.reservation.reservation_id
        ),
        timeout=10,
    )
    again = served.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=10)
    assert again.SerializeToString() == first.SerializeToString()
    with pytest.raises(grpc.RpcError) as error:
        served.routing.RouteOrder(route("r1", ("A", 1)), timeout=10)
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS
    status = rpc_status.from_call(error.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["request_id"]


@pytest.mark.parametrize("request_id", ["", "   "])
def test_request_id_is_required(served: Served, request_id: str):
    """A blank request_id is INVALID_ARGUMENT on field request_id; nothing is reserved."""
    before = served.ledger.stock()
    with pytest.raises(grpc.RpcError) as error:
        served.routing.RouteOrder(route(request_id, ("A", 1)), timeout=10)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["request_id"]
    assert served.ledger.stock() == before


def test_nothing_to_ship_reserves_nothing(served: Served):
    """An order no node can serve returns its plan and no reservation: NOTHING_TO_RESERVE."""
    answer = served.routing.RouteOrder(route("r1", ("C", 1)), timeout=10)
    assert answer.outcome == router_pb2.ROUTE_OUTCOME_NOTHING_TO_RESERVE
    assert not answer.HasField("reservation")
    assert not answer.plan.shipments
    assert [(u.sku, u.quantity) for u in answer.plan.unfulfilled] == [("C", 1)]
    assert answer.attempts == 1


def test_nothing_to_ship_replays_the_identical_response(served: Served):
    """A retry of an order that shipped nothing returns the first response byte for byte.

    Even after stock arrived (so a fresh solve would ship); the same id with another request
    is ALREADY_EXISTS.
    """
    first = served.routing.RouteOrder(route("r1", ("C", 1)), timeout=10)
    assert not first.HasField("reservation")
    served.inventory.ApplyStockDelta(
        router_pb2.ApplyStockDeltaRequest(
            feed="wms",
            sequence=1,
            node_id="west",
            deltas=[router_pb2.StockDelta(sku="C", on_hand_change=5)],
        ),
        timeout=10,
    )
    assert served.routing.RouteOrder(route("r2", ("C", 1)), timeout=10).HasField("reservation")
    again = served.routing.RouteOrder(route("r1", ("C", 1)), timeout=10)
    assert again.SerializeToString() == first.SerializeToString()
    assert stock_of(served, "C")["west"] == (5, 1, 4)  # only r2 holds a unit
    with pytest.raises(grpc.RpcError) as error:
        served.routing.RouteOrder(route("r1", ("C", 2)), timeout=10)
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS


class Interfering(MemoryLedger):
    """A memory ledger that, on its first reserve, first lets ``meddle`` take stock."""

    def __init__(self) -> None:
        super().__init__()
        self.meddle: Callable[[], None] | None = None
        self.reserves = 0

    def reserve(self, *args: Any, **kwargs: Any) -> Reservation:
        self.reserves += 1
        meddle, self.meddle = self.meddle, None
        if meddle is not None:
            meddle()
        return super().reserve(*args, **kwargs)


def test_conflict_is_re_solved_against_fresh_stock(small_scenario: Scenario):
    """Stock taken by a second client between solve and reservation: the order re-solves.

    The second attempt plans against what is left and reserves it.
    """
    ledger = Interfering()
    for served in serve_on(ledger, small_scenario):
        # west holds 5 A: the plan takes all 5 from west (nearest); a second client takes 3
        # of them first, so the order must re-solve onto mid's 2 + west's 2 (or report).
        def second_client(port: int = served.port) -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as other:
                stub = router_pb2_grpc.RoutingServiceStub(other)
                taken = stub.RouteOrder(route("other", ("A", 3), order_id="o2"), timeout=10)
                assert taken.reservation.status == router_pb2.RESERVATION_STATUS_HELD

        ledger.meddle = second_client
        answer = served.routing.RouteOrder(route("r1", ("A", 4)), timeout=10)
        assert answer.attempts == 2
        assert sum(line.quantity for line in answer.reservation.lines) == 4
        a = stock_of(served, "A")
        assert sum(reserved for _, reserved, _ in a.values()) == 7
        assert all(available == 0 for _, _, available in a.values())


def test_reserve_after_a_concurrent_nothing_to_ship_answer(small_scenario: Scenario):
    """A concurrent call with the same id answered without a reservation: its answer wins."""
    ledger = Interfering()
    request = route("r1", ("A", 1))
    theirs = router_pb2.RouteOrderResponse(attempts=2).SerializeToString(deterministic=True)
    for served in serve_on(ledger, small_scenario):

        def other_call() -> None:
            payload = request.SerializeToString(deterministic=True)
            ledger.store_response("r1", payload, theirs, datetime.now(UTC))

        ledger.meddle = other_call
        answer = served.routing.RouteOrder(request, timeout=10)
        assert answer.SerializeToString(deterministic=True) == theirs
        assert sum(reserved for _, reserved, _ in stock_of(served, "A").values()) == 0


class LosesFirstReply(MemoryLedger):
    """A memory ledger whose first reserve commits and then fails, as a lost reply would."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def reserve(self, *args: Any, **kwargs: Any) -> Reservation:
        made = super().reserve(*args, **kwargs)
        if not self.lost:
            self.lost = True
            raise ConnectionError("the reply is lost after the commit")
        return made


def test_reply_lost_after_commit_is_recovered_by_a_retry(small_scenario: Scenario):
    """The client never saw the first reply; its retry gets the committed reservation."""
    ledger = LosesFirstReply()
    for served in serve_on(ledger, small_scenario):
        with pytest.raises(grpc.RpcError) as error:
            served.routing.RouteOrder(route("r1", ("A", 2)), timeout=10)
        assert error.value.code() is grpc.StatusCode.INTERNAL
        held = sum(reserved for _, reserved, _ in stock_of(served, "A").values())
        assert held == 2  # committed
        answer = served.routing.RouteOrder(route("r1", ("A", 2)), timeout=10)
        assert answer.reservation.status == router_pb2.RESERVATION_STATUS_HELD
        assert ledger.reservation(answer.reservation.reservation_id).lines == tuple(
            ReservationLine(x.node_id, x.sku, x.quantity) for x in answer.reservation.lines
        )
        assert sum(reserved for _, reserved, _ in stock_of(served, "A").values()) == 2


class Starved(MemoryLedger):
    """A memory ledger whose every reserve finds its stock gone."""

    def reserve(
        self,
        request_id: str,
        payload: bytes,
        order_id: str,
        lines: Sequence[ReservationLine],
        *rest: Any,
        **kwargs: Any,
    ) -> Reservation:
        self.attempts = getattr(self, "attempts", 0) + 1
        raise StockConflictError([Shortfall(lines[0].node_id, lines[0].sku, lines[0].quantity, 0)])


def test_three_conflicts_abort_naming_the_shortfalls(small_scenario: Scenario):
    """After 3 attempts that each lose the stock, RouteOrder fails ABORTED with the shortfall."""
    ledger = Starved()
    for served in serve_on(ledger, small_scenario):
        with pytest.raises(grpc.RpcError) as error:
            served.routing.RouteOrder(route("r1", ("A", 1)), timeout=10)
        assert error.value.code() is grpc.StatusCode.ABORTED
        assert "requested 1, available 0" in str(error.value.details())
        assert ledger.attempts == 3


def test_ttl_expiry_by_the_sweeper(small_scenario: Scenario, tmp_path: Path):
    """A reservation whose TTL lapses is expired by the server's sweeper: units come back."""
    ledger = open_ledger(f"sqlite://{tmp_path / 'l.db'}")
    for served in serve_on(ledger, small_scenario, sweep_interval_s=0.05):
        before = stock_of(served, "B")
        answer = served.routing.RouteOrder(route("r1", ("B", 2), ttl_s=0.3), timeout=10)
        assert sum(reserved for _, reserved, _ in stock_of(served, "B").values()) == 2
        deadline = time.monotonic() + 10
        while stock_of(served, "B") != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stock_of(served, "B") == before
        assert (
            served.ledger.reservation(answer.reservation.reservation_id).status.value == "EXPIRED"
        )


def test_feeds_through_inventory_service(served: Served):
    """Snapshots and deltas apply once per sequence; stale ones are reported."""
    snap = served.inventory.ApplyStockSnapshot(
        router_pb2.ApplyStockSnapshotRequest(
            feed="wms",
            sequence=5,
            node_id="west",
            positions=[router_pb2.SnapshotPosition(sku="A", on_hand=9, safety_stock=1)],
        ),
        timeout=10,
    )
    assert snap.applied and snap.outcome == router_pb2.FEED_OUTCOME_APPLIED
    assert stock_of(served, "A")["west"] == (9, 0, 8)
    stale = served.inventory.ApplyStockDelta(
        router_pb2.ApplyStockDeltaRequest(
            feed="wms",
            sequence=4,
            node_id="west",
            deltas=[router_pb2.StockDelta(sku="A", on_hand_change=-3)],
        ),
        timeout=10,
    )
    assert not stale.applied and stale.outcome == router_pb2.FEED_OUTCOME_STALE
    delta = served.inventory.ApplyStockDelta(
        router_pb2.ApplyStockDeltaRequest(
            feed="wms",
            sequence=6,
            node_id="west",
            deltas=[router_pb2.StockDelta(sku="A", on_hand_change=-3)],
        ),
        timeout=10,
    )
    assert delta.applied
    assert stock_of(served, "A")["west"] == (6, 0, 5)
    with pytest.raises(grpc.RpcError) as error:
        served.inventory.ApplyStockDelta(
            router_pb2.ApplyStockDeltaRequest(feed="", sequence=7, node_id="west"), timeout=10
        )
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_inventory_service_is_healthy(served: Served):
    """Health reports SERVING for router.v1.InventoryService."""
    health = health_pb2_grpc.HealthStub(served.channel)
    answer = health.Check(
        health_pb2.HealthCheckRequest(service="router.v1.InventoryService"), timeout=10
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_sweeper_thread_stops_with_the_server(small_scenario: Scenario):
    """Stopping the server stops its sweeper thread."""
    for _ in serve_on(MemoryLedger(), small_scenario, sweep_interval_s=0.05):
        assert any(t.name == "ledger-sweeper" for t in threading.enumerate())
    deadline = time.monotonic() + 5
    while any(t.name == "ledger-sweeper" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_solve_cut_short_is_not_stored_and_a_retry_plans_again(small_scenario: Scenario):
    """A RouteOrder stopped by its time limit before any plan is not stored for replay.

    The first call (1 µs to solve with the full CP-SAT model) finds NO_SOLUTION and ships
    nothing; the retry under the same request_id, with a normal limit, plans and reserves.
    """
    for served in serve_on(MemoryLedger(), small_scenario, engine="cpsat-full"):  # type: ignore[arg-type]
        hurried = route("r1", ("A", 2))
        hurried.time_limit.CopyFrom(duration_pb2.Duration(nanos=1000))
        first = served.routing.RouteOrder(hurried, timeout=10)
        assert first.plan.status == router_pb2.SOLVE_STATUS_NO_SOLUTION
        assert first.outcome == router_pb2.ROUTE_OUTCOME_CUT_SHORT
        assert not first.HasField("reservation")
        retry = route("r1", ("A", 2))
        retry.time_limit.CopyFrom(duration_pb2.Duration(seconds=5))
        again = served.routing.RouteOrder(retry, timeout=10)
        assert again.HasField("reservation")
        assert sum(line.quantity for line in again.reservation.lines) == 2


TRAP = Path(__file__).parent.parent / "data" / "trap"
"""A scenario whose order a stopped solve cannot prove (tests/data/trap/README.md)."""


@pytest.fixture(params=["memory", "sqlite"])
def trapped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A server for the trap scenario over a fresh ledger of each embedded backend."""
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'l.db'}"
    yield from serve_on(open_ledger(url), read_scenario(TRAP))


def cut_short(request_id: str, **fields: Any) -> router_pb2.RouteOrderRequest:
    """The trap order (A ×1, B ×1), solved for 1 ns: the greedy plan, FEASIBLE, unproven.

    A stop already set leaves the engine its greedy plan, HUB alone (38.50), and the
    two-shipment bound 19.50; the optimum, WEST and EAST, costs 19.50 (gap 0.4935).
    """
    trap = read_scenario(TRAP).orders[0]
    request = router_pb2.RouteOrderRequest(request_id=request_id, order=order_to_proto(trap))
    request.time_limit.CopyFrom(duration_pb2.Duration(nanos=1))
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def test_a_plan_cut_short_is_not_reserved_by_default(trapped: Served):
    """A FEASIBLE plan is not reserved unless the request accepts it; a retry plans again.

    Failed before: the cut-short plan was reserved and stored, so every retry replayed it.
    Now the answer is CUT_SHORT, nothing is held in the ledger, nothing is stored: the
    retry under the same request_id, with a longer time limit (a different request, which
    a stored answer would refuse as ALREADY_EXISTS), plans the optimum and reserves it.
    """
    before = trapped.ledger.stock()
    first = trapped.routing.RouteOrder(cut_short("r1"), timeout=10)
    assert first.plan.status == router_pb2.SOLVE_STATUS_FEASIBLE
    assert [s.node_id for s in first.plan.shipments] == ["HUB"]
    assert first.plan.gap == pytest.approx(0.4935, abs=1e-4)
    assert first.outcome == router_pb2.ROUTE_OUTCOME_CUT_SHORT
    assert not first.HasField("reservation")
    assert "accepts proven plans only" in first.detail
    assert trapped.ledger.stock() == before
    assert all(reserved == 0 for _, reserved, _ in stock_of(trapped, "A").values())

    retry = cut_short("r1")
    retry.time_limit.CopyFrom(duration_pb2.Duration(seconds=5))
    again = trapped.routing.RouteOrder(retry, timeout=10)
    assert again.plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert again.outcome == router_pb2.ROUTE_OUTCOME_RESERVED
    assert sorted((x.node_id, x.sku, x.quantity) for x in again.reservation.lines) == [
        ("EAST", "B", 1),
        ("WEST", "A", 1),
    ]


@pytest.mark.parametrize(
    ("fields", "reserved"),
    [
        ({"accept": router_pb2.PLAN_ACCEPTANCE_PROVEN}, False),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_WITHIN_GAP, "max_gap": 0.4}, False),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_WITHIN_GAP, "max_gap": 0.6}, True),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_ANY}, True),
    ],
)
def test_a_plan_cut_short_is_reserved_only_within_what_the_request_accepts(
    trapped: Served, fields: dict[str, Any], reserved: bool
):
    """The gap-0.4935 plan is reserved with accept ANY or WITHIN_GAP max_gap 0.6, not below.

    Reserved, it is the stored answer: a retry replays it byte for byte and holds no more.
    """
    first = trapped.routing.RouteOrder(cut_short("r1", **fields), timeout=10)
    assert first.plan.status == router_pb2.SOLVE_STATUS_FEASIBLE
    assert first.HasField("reservation") is reserved
    if not reserved:
        assert first.outcome == router_pb2.ROUTE_OUTCOME_CUT_SHORT
        assert stock_of(trapped, "A")["HUB"] == (10, 0, 10)
        return
    assert first.outcome == router_pb2.ROUTE_OUTCOME_RESERVED and not first.detail
    assert sorted((x.node_id, x.sku, x.quantity) for x in first.reservation.lines) == [
        ("HUB", "A", 1),
        ("HUB", "B", 1),
    ]
    again = trapped.routing.RouteOrder(cut_short("r1", **fields), timeout=10)
    assert again.SerializeToString() == first.SerializeToString()
    assert stock_of(trapped, "A")["HUB"] == (10, 1, 9)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_gap": 0.1}, "max_gap"),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_ANY, "max_gap": 0.1}, "max_gap"),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_WITHIN_GAP, "max_gap": -0.1}, "max_gap"),
        ({"accept": router_pb2.PLAN_ACCEPTANCE_WITHIN_GAP, "max_gap": float("nan")}, "max_gap"),
        ({"accept": 9}, "accept"),
    ],
)
def test_bad_acceptance_is_invalid_argument(served: Served, fields: dict[str, Any], field: str):
    """Bad acceptance fields are INVALID_ARGUMENT naming the field; nothing is reserved.

    A max_gap without accept WITHIN_GAP, a negative or NaN one, an unknown accept value.
    """
    before = served.ledger.stock()
    with pytest.raises(grpc.RpcError) as error:
        served.routing.RouteOrder(cut_short("r1", **fields), timeout=10)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == [field]
    assert served.ledger.stock() == before
