"""PlanWave over a real server socket: joint plans on the ledger's live stock, no side effects.

The wave scenario is the hand-worked one of tests/engine/test_wave.py: DC ``NEAR`` at 0°
holds the last unit of A near both orders, DC ``FAR`` at 10° holds 5 more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import grpc
import pytest

from models.capacity import CapacityUsed
from models.plan import ExplainLevel
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.wave import plan_wave
from router.service import wave as wave_service
from router.service.convert import order_to_proto, plan_to_proto
from router.service.limits import MAX_WAVE_ORDERS
from router.v1 import router_pb2
from tests.engine.conftest import network, node, stock
from tests.engine.test_wave import wave_order
from tests.service.conftest import Running, bad_request_fields, run

O2 = wave_order("o2", 4.0, ("A", 1))
O1 = wave_order("o1", 0.0, ("A", 1), minutes=5, deliver_by=date(2026, 11, 21))


@pytest.fixture(scope="module")
def contested() -> Scenario:
    """Two orders competing for NEAR's last unit of A; o2 arrives first."""
    net = network(node("NEAR", 0.0), node("FAR", 10.0))
    on_hand = stock(("NEAR", "A", 1), ("FAR", "A", 5))
    return Scenario(net, on_hand, RuleSet(), (O2, O1))


@pytest.fixture(scope="module")
def server(contested: Scenario) -> Iterator[Running]:
    """A server for the contested scenario (memory ledger seeded with its stock)."""
    yield from run(contested)


def request(*orders: router_pb2.Order, **fields: object) -> router_pb2.PlanWaveRequest:
    return router_pb2.PlanWaveRequest(orders=list(orders), **fields)  # type: ignore[arg-type]


def stream(running: Running, req: router_pb2.PlanWaveRequest) -> list[router_pb2.PlanWaveResponse]:
    """Every message of a PlanWave call, in order."""
    return list(running.routing.PlanWave(req, timeout=30))


def plans_of(messages: list[router_pb2.PlanWaveResponse]) -> list[router_pb2.Plan]:
    """The per-order plans of a stream, checked to follow the request's order without gaps."""
    plans: list[router_pb2.Plan] = []
    for m in messages:
        if m.WhichOneof("event") == "plans":
            assert m.plans.first_index == len(plans)
            plans.extend(m.plans.plans)
    return plans


def nodes_of(plan: router_pb2.Plan) -> list[str]:
    return [s.node_id for s in plan.shipments]


def ledger_state(running: Running) -> tuple[object, ...]:
    """What a wave must not change: stock (with reservations), reservations, decisions."""
    stock_now = running.inventory.GetStock(router_pb2.GetStockRequest(), timeout=10)
    held = running.routing.ListReservations(router_pb2.ListReservationsRequest(), timeout=10)
    logged = running.routing.ListDecisions(router_pb2.ListDecisionsRequest(), timeout=10)
    return (
        sorted(p.SerializeToString(deterministic=True) for p in stock_now.positions),
        list(held.reservations),
        list(logged.decisions),
    )


def test_the_last_near_unit_goes_to_the_order_that_saves_more(server: Running) -> None:
    """The wave's plans share the ledger's stock: NEAR's one unit of A serves one order.

    Worked out (tests/engine/test_wave.py): A weighs 1 kg, each node charges 1 per
    shipment, ground costs 5 + 1/kg up to 500 km (1 day) and 8 + 2/kg up to 1,500 km
    (3 days), lateness 6 a day.

    * o1 to lon 0, due 11-21: NEAR 1 + 5 + 1 = 7; FAR (1,112 km) 11, 2 days late: 23.
    * o2 to lon 4, no due date: NEAR (445 km) 7; FAR (667 km) 11.

    One by one o2 (first) takes NEAR: 7 + 23 = 30. The wave gives NEAR to o1, which
    saves 16 by it against o2's 4: 7 + 11 = 18, proven optimal. The stream starts with a
    progress message and ends with the result; the plans come between, in request order.
    """
    messages = stream(server, request(order_to_proto(O2), order_to_proto(O1)))
    kinds = [m.WhichOneof("event") for m in messages]
    assert kinds[0] == "progress" and kinds[-1] == "result"
    assert messages[0].progress.orders == 2
    assert messages[0].progress.phase != router_pb2.WAVE_PHASE_UNSPECIFIED
    result = messages[-1].result
    assert result.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert result.objective == pytest.approx(18.0)
    assert result.bound == pytest.approx(18.0) and result.gap == 0
    assert result.plans == 2 and result.stats.orders == 2
    plan_o2, plan_o1 = plans_of(messages)
    assert (plan_o2.order_id, nodes_of(plan_o2)) == ("o2", ["FAR"])
    assert (plan_o1.order_id, nodes_of(plan_o1)) == ("o1", ["NEAR"])
    assert plan_o1.objective == pytest.approx(7.0) and plan_o2.objective == pytest.approx(11.0)
    assert not plan_o1.HasField("explain")  # no explanation unless asked


def test_the_service_plans_as_plan_wave_does_on_the_same_inputs(
    server: Running, contested: Scenario
) -> None:
    """Each streamed plan is plan_wave's on the scenario's stock, field for field.

    The solve time aside (the wave's time on the server), and the rule set's label: the
    server publishes the scenario's rules as version 1 at start; explanations as asked.
    """
    messages = stream(
        server,
        request(
            order_to_proto(O2),
            order_to_proto(O1),
            explain_level=router_pb2.EXPLAIN_LEVEL_SUMMARY,
        ),
    )
    direct = plan_wave(contested.orders, contested.network, contested.stock, contested.rules)
    expected = [plan_to_proto(p, explain=ExplainLevel.SUMMARY) for p in direct.plans]
    got = plans_of(messages)
    result = messages[-1].result
    assert result.rule_version == "default@v1"
    for plan in (*expected, *got):
        plan.ClearField("solve_time")
        plan.rule_version = result.rule_version
    assert got == expected
    assert (result.objective, result.bound) == (direct.objective / 1e4, direct.bound / 1e4)


def test_a_wave_changes_nothing_in_the_ledger(server: Running) -> None:
    """Stock, reservations and the decision log are the same after a wave as before."""
    before = ledger_state(server)
    stream(server, request(order_to_proto(O2), order_to_proto(O1)))
    assert ledger_state(server) == before


def test_too_many_orders_is_invalid_argument_naming_orders(server: Running) -> None:
    """More than MAX_WAVE_ORDERS orders are refused before any solve, naming ``orders``."""
    one = order_to_proto(O2)
    with pytest.raises(grpc.RpcError) as caught:
        stream(server, request(*([one] * (MAX_WAVE_ORDERS + 1))))
    assert bad_request_fields(caught.value) == ["orders"]


def test_bad_orders_are_named_by_their_index(server: Running) -> None:
    """An unknown SKU and a repeated order_id are named under ``orders[i]``; no orders too."""
    bad = order_to_proto(O1)
    bad.lines[0].sku = "NOPE"
    with pytest.raises(grpc.RpcError) as caught:
        stream(server, request(order_to_proto(O2), bad, order_to_proto(O2)))
    fields = bad_request_fields(caught.value)
    assert "orders[1].lines[0].sku" in fields and "orders[2].order_id" in fields
    with pytest.raises(grpc.RpcError) as caught:
        stream(server, request())
    assert bad_request_fields(caught.value) == ["orders"]


def test_progress_is_sent_while_the_wave_solves(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a short interval, progress messages come before the plans, orders counted.

    Every progress message counts the wave's 2 orders and never more done than that.
    """
    monkeypatch.setattr(wave_service, "PROGRESS_INTERVAL_S", 0.001)
    messages = stream(server, request(order_to_proto(O2), order_to_proto(O1)))
    kinds = [m.WhichOneof("event") for m in messages]
    first_plans = kinds.index("plans")
    assert set(kinds[:first_plans]) == {"progress"}
    assert kinds[first_plans:] == ["plans", "result"]
    for m in messages[:first_plans]:
        assert m.progress.orders == 2 and 0 <= m.progress.orders_done <= 2


def test_the_observing_interceptor_counts_a_streamed_wave_by_its_code(contested: Scenario) -> None:
    """A PlanWave stream is counted once it ends, as a server_stream, OK or InvalidArgument.

    The interceptors wrap server-streaming behaviours too (observe, access, limits): the
    call that streamed to its end is OK, the one the limits refused is InvalidArgument.
    """
    from tests.service.test_observability import scraped

    with scraped(contested) as s:
        list(s.routing.PlanWave(request(order_to_proto(O2), order_to_proto(O1)), timeout=30))
        with pytest.raises(grpc.RpcError):
            list(s.routing.PlanWave(request(), timeout=30))
        labels = {"grpc_type": "server_stream", "grpc_service": "router.v1.RoutingService"}
        for code in ("OK", "InvalidArgument"):
            got = s.value(
                "grpc_server_handled_total", **labels, grpc_method="PlanWave", grpc_code=code
            )
            assert got == 1, code


def test_a_stream_closed_early_stops_the_solve_and_waits_for_it(
    contested: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the client leaves mid-wave (the stream is closed), the stop is set and joined.

    The solve is replaced by one that runs until it is told to stop.
    """
    from router.engine.stop import Stop
    from router.ledger.base import PlanInputs
    from router.service.convert import PlanWaveArgs

    stopped: list[bool] = []

    def endless(*args: object, stop: Stop, **kwargs: object) -> None:
        while not stop.is_set():
            time.sleep(0.01)
        stopped.append(True)

    monkeypatch.setattr(wave_service, "solve_wave", endless)
    monkeypatch.setattr(wave_service, "PROGRESS_INTERVAL_S", 0.01)
    inputs = PlanInputs(0, None, contested.stock, CapacityUsed())
    read = wave_service.WaveRead(
        contested.network, PlanWaveArgs((O2, O1), ExplainLevel.NONE, None), inputs
    )
    stop = Stop(None)
    messages = wave_service.stream_wave(read, contested.rules, stop, "fast")
    assert next(messages).WhichOneof("event") == "progress"
    assert next(messages).WhichOneof("event") == "progress"  # still solving
    messages.close()
    assert stop.is_set() and stopped == [True]
