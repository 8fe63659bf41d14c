"""Done when: an OMS confirms part of a reservation, or cancels part of it, over gRPC.

One unit of two found at the store: confirm that one, the rest goes back. A line cancelled
before picking: release it, the rest stays held. Bad lines are INVALID_ARGUMENT naming them.
"""

from __future__ import annotations

import grpc
import pytest

from models.scenario import Scenario
from router.v1 import router_pb2
from tests.service.conftest import bad_request_fields
from tests.service.test_observability import scraped
from tests.service.test_reservations import route, stock_of

pytestmark = pytest.mark.timeout(120)


def _units(reservation: router_pb2.Reservation) -> dict[tuple[str, str], int]:
    units: dict[tuple[str, str], int] = {}
    for line in reservation.lines:
        units[line.node_id, line.sku] = units.get((line.node_id, line.sku), 0) + line.quantity
    return units


def test_confirm_part_and_release_part_of_reservations(small_scenario: Scenario):
    """Partial confirm ships what it names; partial release keeps the rest held."""
    with scraped(small_scenario) as s:
        held = s.routing.RouteOrder(route("r1", ("A", 2), ("B", 1)), timeout=30).reservation
        (a_node,) = {x.node_id for x in held.lines if x.sku == "A"}
        before = sum(on_hand for on_hand, _, _ in stock_of(s, "A").values())  # type: ignore[arg-type]
        one = router_pb2.ReservationLine(node_id=a_node, sku="A", quantity=1)
        done = s.routing.ConfirmReservation(
            router_pb2.ConfirmReservationRequest(
                request_id="c1", reservation_id=held.reservation_id, lines=[one]
            ),
            timeout=20,
        ).reservation
        assert done.status == router_pb2.RESERVATION_STATUS_CONFIRMED
        assert _units(done) == {(a_node, "A"): 1}
        after = stock_of(s, "A")  # type: ignore[arg-type]
        assert sum(on_hand for on_hand, _, _ in after.values()) == before - 1
        assert sum(reserved for _, reserved, _ in after.values()) == 0
        assert all(reserved == 0 for _, reserved, _ in stock_of(s, "B").values())  # type: ignore[arg-type]

        other = s.routing.RouteOrder(route("r2", ("A", 2), ("B", 1)), timeout=30).reservation
        (b_node,) = {x.node_id for x in other.lines if x.sku == "B"}
        cancel = router_pb2.ReservationLine(node_id=b_node, sku="B", quantity=1)
        kept = s.routing.ReleaseReservation(
            router_pb2.ReleaseReservationRequest(
                request_id="x1", reservation_id=other.reservation_id, lines=[cancel]
            ),
            timeout=20,
        ).reservation
        assert kept.status == router_pb2.RESERVATION_STATUS_HELD
        assert ("B" not in {sku for _, sku in _units(kept)}) and sum(_units(kept).values()) == 2

        too_many = router_pb2.ReservationLine(node_id=b_node, sku="A", quantity=99)
        with pytest.raises(grpc.RpcError) as bad:
            s.routing.ConfirmReservation(
                router_pb2.ConfirmReservationRequest(
                    request_id="c2", reservation_id=other.reservation_id, lines=[too_many]
                ),
                timeout=20,
            )
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "lines" in bad_request_fields(bad.value)
