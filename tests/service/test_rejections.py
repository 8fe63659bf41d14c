"""Done when: a node that cannot ship is re-routed around, atomically, over real sockets.

The small scenario (tests/service/conftest.py): west (DC, 0°) holds 5 A, mid (store, 2°)
2 A and 3 B, east (DC, 5°) 10 B; orders ship to 1°. An order of 2 A and 1 B routes whole
to mid (one shipment). When mid rejects it, A is stocked only at west and B only at east
among the other nodes, so the only plan that ships everything is 2 A from west and 1 B
from east: two shipments, held in the same reservation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from models.scenario import Scenario
from router.service.convert import order_to_proto
from router.v1 import router_pb2
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.service.conftest import Running, bad_request_fields, order, run, scrape
from tests.service.test_observability import scraped
from tests.service.test_reservations import route, stock_of

pytestmark = pytest.mark.timeout(180)

Units = list[tuple[str, str, int]]


def units(reservation: router_pb2.Reservation) -> Units:
    """A reservation's lines as sorted (node, sku, quantity)."""
    return sorted((x.node_id, x.sku, x.quantity) for x in reservation.lines)


def reject(
    request_id: str,
    reservation_id: str,
    node_id: str,
    *lines: tuple[str, int],
    corrected: int | None = None,
) -> router_pb2.RejectShipmentRequest:
    """A RejectShipment of ``lines`` (sku, quantity) at ``node_id``; none: all it holds."""
    msg = router_pb2.RejectShipmentRequest(
        request_id=request_id,
        reservation_id=reservation_id,
        node_id=node_id,
        reason="not on the shelf",
        lines=[router_pb2.ReservationLine(sku=s, quantity=q) for s, q in lines],
    )
    if corrected is not None:
        msg.corrected_on_hand = corrected
    return msg


@pytest.fixture
def served(small_scenario: Scenario) -> Iterator[Running]:
    """A fresh server (and memory ledger) per test."""
    yield from run(small_scenario)


def test_mid_rejects_everything_and_west_and_east_split_it(served: Running):
    """Hand-worked: mid excluded, A goes to west and B to east, in the same reservation.

    The reservation keeps its id and expiry; mid gives its units back and, corrected to 0,
    shows on hand 0 for A and B; the REROUTE decision names mid as excluded and links to
    the RouteOrder decision as its parent.
    """
    routed = served.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=30)
    held = routed.reservation
    assert units(held) == [("mid", "A", 2), ("mid", "B", 1)]
    answer = served.routing.RejectShipment(
        reject("x1", held.reservation_id, "mid", corrected=0), timeout=30
    )
    assert answer.outcome == router_pb2.ROUTE_OUTCOME_RESERVED and not answer.detail
    assert answer.rejections == 1
    after = answer.reservation
    assert after.reservation_id == held.reservation_id
    assert after.status == router_pb2.RESERVATION_STATUS_HELD
    assert after.expires_at == held.expires_at
    assert units(after) == [("east", "B", 1), ("west", "A", 2)]
    assert sorted(slot.node_id for slot in after.slots) == ["east", "west"]  # mid's freed
    assert stock_of(served, "A") == {"west": (5, 2, 3), "mid": (0, 0, 0)}  # type: ignore[arg-type]
    assert stock_of(served, "B") == {"mid": (0, 0, 0), "east": (10, 1, 9)}  # type: ignore[arg-type]

    decision = served.routing.GetDecision(
        router_pb2.GetDecisionRequest(decision_id=answer.decision_id), timeout=10
    ).decision
    assert decision.kind == router_pb2.DECISION_KIND_REROUTE
    assert decision.parent_decision_id == routed.decision_id
    assert decision.reservation_id == held.reservation_id
    assert decision.reason == "not on the shelf"
    assert list(decision.inputs.excluded_node_ids) == ["mid"]
    listed = served.routing.ListDecisions(
        router_pb2.ListDecisionsRequest(reservation_id=held.reservation_id), timeout=10
    ).decisions
    assert [d.decision_id for d in listed] == [answer.decision_id, routed.decision_id]


def test_no_loop_back_to_a_rejecting_node(served: Running):
    """A node that rejected an order never gets its units again, whatever its stock says.

    mid rejects B (B goes to east), then east rejects it: mid still holds 3 B, uncorrected,
    but it rejected before, so the B is backordered while mid ships the A; when mid then
    rejects the A too, it goes to west.
    """
    held = served.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=30).reservation
    rid = held.reservation_id
    first = served.routing.RejectShipment(reject("x1", rid, "mid", ("B", 1)), timeout=30)
    assert units(first.reservation) == [("east", "B", 1), ("mid", "A", 2)]
    second = served.routing.RejectShipment(reject("x2", rid, "east"), timeout=30)
    assert second.outcome == router_pb2.ROUTE_OUTCOME_NOTHING_TO_RESERVE
    assert second.rejections == 2
    assert "backordered" in second.detail
    assert [u.sku for u in second.plan.unfulfilled] == ["B"]
    assert units(second.reservation) == [("mid", "A", 2)]
    assert stock_of(served, "B") == {"mid": (3, 0, 3), "east": (10, 0, 10)}  # type: ignore[arg-type]
    again = served.routing.RejectShipment(reject("x3", rid, "mid"), timeout=30)
    assert units(again.reservation) == [("west", "A", 2)]  # never back to mid or east
    assert list(
        served.routing.GetDecision(
            router_pb2.GetDecisionRequest(decision_id=again.decision_id), timeout=10
        ).decision.inputs.excluded_node_ids
    ) == ["mid", "east"]


def test_the_rejection_limit_backorders(small_scenario: Scenario):
    """With --max-rejections 0 the first rejection backorders, though west holds A.

    Nothing is left, so the reservation is RELEASED; the answer is logged and counted.
    """
    with scraped(small_scenario, max_rejections=0) as s:
        held = s.routing.RouteOrder(route("r1", ("A", 1)), timeout=30).reservation
        assert units(held) == [("mid", "A", 1)]
        answer = s.routing.RejectShipment(reject("x1", held.reservation_id, "mid"), timeout=30)
        assert answer.outcome == router_pb2.ROUTE_OUTCOME_NOTHING_TO_RESERVE
        assert "beyond the limit of 0" in answer.detail
        assert answer.reservation.status == router_pb2.RESERVATION_STATUS_RELEASED
        assert answer.decision_id
        assert stock_of(s, "A") == {"west": (5, 0, 5), "mid": (2, 0, 2)}  # type: ignore[arg-type]
        samples = scrape(s.metrics_port)
        assert samples["router_rejections_total", (("outcome", "backordered"),)] == 1


def test_split_rules_count_what_already_ships(served: Running):
    """The split rules count the shipments the reservation still makes.

    A ship-complete order at mid: mid rejects only the B, so mid still ships the A and the
    order allows no second shipment: the B is backordered, not sent from east.
    """
    msg = router_pb2.RouteOrderRequest(
        request_id="r1", order=order_to_proto(order(("A", 2), ("B", 1)))
    )
    msg.order.ship_complete = True
    held = served.routing.RouteOrder(msg, timeout=30).reservation
    assert units(held) == [("mid", "A", 2), ("mid", "B", 1)]
    answer = served.routing.RejectShipment(
        reject("x1", held.reservation_id, "mid", ("B", 1)), timeout=30
    )
    assert answer.outcome == router_pb2.ROUTE_OUTCOME_NOTHING_TO_RESERVE
    assert "allows 1 shipment" in answer.detail
    assert units(answer.reservation) == [("mid", "A", 2)]


def test_retry_replays_and_errors_name_their_field(served: Running):
    """A retry gets the stored answer with no second effect; refusals name their field.

    Another payload with the id is ALREADY_EXISTS; more than held names ``lines``; a node
    holding nothing names ``node_id``; a settled reservation is FAILED_PRECONDITION; an
    unknown one NOT_FOUND.
    """
    held = served.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=30).reservation
    rid = held.reservation_id
    first = served.routing.RejectShipment(reject("x1", rid, "mid", ("B", 1)), timeout=30)
    again = served.routing.RejectShipment(reject("x1", rid, "mid", ("B", 1)), timeout=30)
    assert again.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert stock_of(served, "B") == {"mid": (3, 0, 3), "east": (10, 1, 9)}  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as other:
        served.routing.RejectShipment(reject("x1", rid, "mid", ("A", 1)), timeout=30)
    assert other.value.code() is grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as too_many:
        served.routing.RejectShipment(reject("x2", rid, "mid", ("A", 3)), timeout=30)
    assert "lines" in bad_request_fields(too_many.value)
    with pytest.raises(grpc.RpcError) as elsewhere:
        served.routing.RejectShipment(reject("x3", rid, "west"), timeout=30)
    assert "node_id" in bad_request_fields(elsewhere.value)
    with pytest.raises(grpc.RpcError) as unknown:
        served.routing.RejectShipment(reject("x4", "R-none", "mid"), timeout=30)
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    served.routing.ConfirmReservation(
        router_pb2.ConfirmReservationRequest(request_id="c1", reservation_id=rid), timeout=30
    )
    with pytest.raises(grpc.RpcError) as settled:
        served.routing.RejectShipment(reject("x5", rid, "mid"), timeout=30)
    assert settled.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def _race(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` in threads released together; each one's answer or RpcError."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except grpc.RpcError as error:
            results[i] = error

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture(params=["sqlite", "postgres"])
def durable(
    request: pytest.FixtureRequest, tmp_path: Path, small_scenario: Scenario
) -> Iterator[Running]:
    """A server on a SQLite file or a PostgreSQL schema of its own."""
    url = (
        f"sqlite://{tmp_path / 'ledger.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    yield from run(small_scenario, ledger_url=url, max_workers=4)


def _balanced(s: Running) -> None:
    """Reserved units per position are exactly what HELD reservations hold there."""
    page = s.routing.ListReservations(
        router_pb2.ListReservationsRequest(status=router_pb2.RESERVATION_STATUS_HELD), timeout=10
    )
    held: dict[tuple[str, str], int] = {}
    for r in page.reservations:
        for x in r.lines:
            held[x.node_id, x.sku] = held.get((x.node_id, x.sku), 0) + x.quantity
    reserved = {
        (node, sku): r
        for sku in ("A", "B")
        for node, (_, r, _) in stock_of(s, sku).items()  # type: ignore[arg-type]
        if r
    }
    assert reserved == held


def test_rejection_racing_a_confirm_has_one_winner(durable: Running):
    """Threads, real ledger: a rejection of mid and a confirm of one reservation at once.

    Exactly one takes effect first: the confirm ships mid's units (the rejection then is
    FAILED_PRECONDITION), or the rejection re-routes them and the confirm ships west's and
    east's. Either way 3 units left on hand, and nothing stays reserved.
    """
    s = durable
    held = s.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=60).reservation
    rid = held.reservation_id
    confirm = router_pb2.ConfirmReservationRequest(request_id="c1", reservation_id=rid)
    results = _race(
        lambda: s.routing.RejectShipment(reject("x1", rid, "mid"), timeout=60),
        lambda: s.routing.ConfirmReservation(confirm, timeout=60),
    )
    errors = [r for r in results if isinstance(r, grpc.RpcError)]
    assert [e.code() for e in errors] in ([], [grpc.StatusCode.FAILED_PRECONDITION])
    final = s.routing.GetReservation(
        router_pb2.GetReservationRequest(reservation_id=rid), timeout=10
    ).reservation
    assert final.status == router_pb2.RESERVATION_STATUS_CONFIRMED
    shipped_from = {x.node_id for x in final.lines}
    assert shipped_from == ({"mid"} if errors else {"west", "east"})
    levels = [stock_of(s, sku) for sku in ("A", "B")]  # type: ignore[arg-type]
    on_hand = sum(o for level in levels for o, _, _ in level.values())
    assert on_hand == 20 - 3
    _balanced(s)


def test_two_rejections_of_one_node_have_one_effect(durable: Running):
    """Two request ids reject mid at once: one re-routes, the other is refused.

    The loser finds mid holding nothing (at once, or after the winner's rejection came
    between its plan and its write and it planned again). One rejection counted, the
    units released and held once.
    """
    s = durable
    held = s.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=60).reservation
    rid = held.reservation_id
    results = _race(
        lambda: s.routing.RejectShipment(reject("x1", rid, "mid"), timeout=60),
        lambda: s.routing.RejectShipment(reject("x2", rid, "mid"), timeout=60),
    )
    answers = [r for r in results if isinstance(r, router_pb2.RejectShipmentResponse)]
    assert len(answers) == 1 and answers[0].rejections == 1
    [error] = [r for r in results if isinstance(r, grpc.RpcError)]
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert units(answers[0].reservation) == [("east", "B", 1), ("west", "A", 2)]
    assert stock_of(s, "A") == {"west": (5, 2, 3), "mid": (2, 0, 2)}  # type: ignore[arg-type]
    _balanced(s)


def test_repeated_rejections_under_load_never_loop_back(durable: Running):
    """Four orders of 1 A routed, then each rejected at every node holding it, in threads.

    Each re-route avoids every node that rejected the order before (no node is rejected
    twice for one order); once the nodes with A left to it are gone (mid and west hold A;
    mid's 2 may be taken by the others) the unit is backordered and the reservation
    RELEASED; balances hold throughout.
    """
    s = durable
    rids = [
        s.routing.RouteOrder(
            route(f"r{i}", ("A", 1), order_id=f"o{i}"), timeout=60
        ).reservation.reservation_id
        for i in range(4)
    ]

    def chase(i: int) -> list[str]:
        seen: list[str] = []
        for step in range(3):
            r = s.routing.GetReservation(
                router_pb2.GetReservationRequest(reservation_id=rids[i]), timeout=30
            ).reservation
            if r.status != router_pb2.RESERVATION_STATUS_HELD:
                break
            node = r.lines[0].node_id
            assert node not in seen, f"looped back to {node}"
            seen.append(node)
            s.routing.RejectShipment(reject(f"x{i}-{step}", rids[i], node), timeout=60)
        return seen

    results = _race(*[lambda i=i: chase(i) for i in range(4)])
    assert all(isinstance(r, list) and set(r) <= {"mid", "west"} for r in results), results
    for rid in rids:
        final = s.routing.GetReservation(
            router_pb2.GetReservationRequest(reservation_id=rid), timeout=10
        ).reservation
        assert final.status == router_pb2.RESERVATION_STATUS_RELEASED
    _balanced(s)
