"""Done when: reservations are looked up by id and by filter, each caller seeing its own.

Real servers over real sockets: one with authentication and TLS (tokens per role, as in
test_security.py), where an oms sees only the reservations it made and an analyst or admin
sees all with their owners; one in open mode for the status timers and their metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import duration_pb2

from models.errors import LedgerUnavailableError
from models.scenario import Scenario
from router.ledger.memory import MemoryLedger
from router.v1 import router_pb2, router_pb2_grpc
from tests.service.test_observability import scraped
from tests.service.test_reservations import route
from tests.service.test_security import Pki, Secured, _route, pki  # noqa: F401  (fixture)
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def made(small_scenario: Scenario, pki: Pki) -> Iterator[tuple[Secured, dict[str, str]]]:  # noqa: F811
    """A secured server where oms-1 made two reservations and oms-2 one: id → owner."""
    served = Secured(small_scenario, pki)
    owners = {}
    for principal, request_id, order_id in (
        ("oms-1", "l1", "ORD-1"),
        ("oms-1", "l2", "ORD-2"),
        ("oms-2", "l3", "ORD-1"),
    ):
        with served.as_(principal) as channel:
            owners[_route(channel, request_id, order_id)] = principal
    yield served, owners
    served.close()


def _list(channel: grpc.Channel, **fields: object) -> router_pb2.ListReservationsResponse:
    stub = router_pb2_grpc.RoutingServiceStub(channel)
    return stub.ListReservations(router_pb2.ListReservationsRequest(**fields), timeout=20)


def test_an_oms_lists_only_its_own_and_an_analyst_all_with_owners(made):
    """oms-1 sees its two; oms-2 its one (also when filtering by a shared order); analyst 3."""
    served, owners = made
    mine = {rid for rid, owner in owners.items() if owner == "oms-1"}
    with served.as_("oms-1") as channel:
        assert {r.reservation_id for r in _list(channel).reservations} == mine
    with served.as_("oms-2") as channel:
        shared = _list(channel, order_id="ORD-1").reservations
        assert [r.owner for r in shared] == ["oms-2"]
    for reader in ("analyst-1", "admin-1"):
        with served.as_(reader) as channel:
            listed = _list(channel).reservations
            assert {r.reservation_id: r.owner for r in listed} == owners
            assert all(r.status == router_pb2.RESERVATION_STATUS_HELD for r in listed)
            assert all(r.slots and r.created_at.seconds > 0 for r in listed)


def test_get_reservation_hides_another_principals_as_not_found(made):
    """oms-2 asking for oms-1's reservation gets NOT_FOUND, as for an unknown id."""
    served, owners = made
    theirs = next(rid for rid, owner in owners.items() if owner == "oms-1")
    request = router_pb2.GetReservationRequest(reservation_id=theirs)
    with served.as_("oms-2") as channel:
        with pytest.raises(grpc.RpcError) as hidden:
            router_pb2_grpc.RoutingServiceStub(channel).GetReservation(request, timeout=20)
        assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    for reader in ("oms-1", "analyst-1"):
        with served.as_(reader) as channel:
            got = router_pb2_grpc.RoutingServiceStub(channel).GetReservation(request, timeout=20)
            assert got.reservation.reservation_id == theirs
            assert got.reservation.owner == "oms-1"
    with served.as_("feed-1") as channel:
        with pytest.raises(grpc.RpcError) as denied:
            router_pb2_grpc.RoutingServiceStub(channel).GetReservation(request, timeout=20)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_pages_follow_next_page_tokens_and_bad_ones_are_named(made):
    """Page size 1: three pages, then no token; a forged token or size is INVALID_ARGUMENT."""
    served, owners = made
    with served.as_("analyst-1") as channel:
        seen, token = [], ""
        for _ in range(5):
            page = _list(channel, page_size=1, page_token=token)
            seen += [r.reservation_id for r in page.reservations]
            token = page.next_page_token
            if not token:
                break
        assert sorted(seen) == sorted(owners) and len(seen) == 3
        for fields, field in (
            ({"page_token": "not-a-token"}, "page_token"),
            ({"page_size": 5000}, "page_size"),
            ({"expiring_within": duration_pb2.Duration(seconds=-5)}, "expiring_within"),
        ):
            with pytest.raises(grpc.RpcError) as bad:
                _list(channel, **fields)
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field in (bad.value.details() or "")


def test_status_timers_list_and_count_reservations_about_to_lapse(small_scenario: Scenario):
    """A 100 s hold is listed as expiring within 200 s, not within 50 s, and counted.

    Holds whose ship date passed are listed and counted until they are confirmed.
    """
    with scraped(small_scenario, sweep_interval_s=0.1) as s:
        held = s.routing.RouteOrder(route("t1", ("A", 1), ttl_s=100), timeout=30).reservation
        s.routing.RouteOrder(route("t2", ("B", 1), ttl_s=3000), timeout=30)
        within = router_pb2.ListReservationsRequest()
        within.expiring_within.FromSeconds(200)
        listed = s.routing.ListReservations(within, timeout=20).reservations
        assert [r.reservation_id for r in listed] == [held.reservation_id]
        within.expiring_within.FromSeconds(50)
        assert not s.routing.ListReservations(within, timeout=20).reservations
        # The test orders were made 2026-11-20 and ship that day: long past, unconfirmed.
        late = router_pb2.ListReservationsRequest(past_ship_date=True)
        overdue = s.routing.ListReservations(late, timeout=20).reservations
        assert {slot.ship_date for r in overdue for slot in r.slots} == {"2026-11-20"}
        assert len(overdue) == 2
        eventually(lambda: _is(s.value("router_reservations_expiring"), 1))  # within 900 s
        assert s.value("router_reservations_past_ship_date") == 2
        s.routing.ConfirmReservation(
            router_pb2.ConfirmReservationRequest(
                request_id="c", reservation_id=held.reservation_id
            ),
            timeout=20,
        )
        assert len(s.routing.ListReservations(late, timeout=20).reservations) == 1


def _is(value: float, expected: float) -> None:
    assert value == expected, value


def test_order_lookup_finds_every_reservation_of_an_order(small_scenario: Scenario):
    """Two reservations of one order and one of another: the order's two, by expiry."""
    with scraped(small_scenario) as s:
        for request_id, order_id, ttl in (("a", "O-1", 500), ("b", "O-2", 400), ("c", "O-1", 300)):
            request = route(request_id, ("A", 1), order_id=order_id, ttl_s=ttl)
            s.routing.RouteOrder(request, timeout=30)
        listed = s.routing.ListReservations(
            router_pb2.ListReservationsRequest(order_id="O-1"), timeout=20
        ).reservations
        assert [r.order_id for r in listed] == ["O-1", "O-1"]
        assert listed[0].expires_at.ToDatetime() < listed[1].expires_at.ToDatetime()


def test_forged_tokens_and_windows_at_the_ends_of_time_are_invalid_arguments(
    small_scenario: Scenario,
):
    """Tokens naming years 1 or 9999, a window of 10^15 s: INVALID_ARGUMENT, not INTERNAL.

    Failed before the fix on SQLite (the instant overflowed converting to UTC, and the
    window overflowed a timedelta before its range check).
    """
    import base64

    with scraped(small_scenario, ledger_url="sqlite://:memory:") as s:
        for instant in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
            token = base64.urlsafe_b64encode(f"{instant}|R-x".encode()).decode()
            with pytest.raises(grpc.RpcError) as bad:
                _list_on(s, page_token=token)
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as huge:
            _list_on(s, expiring_within=duration_pb2.Duration(seconds=10**15))
        assert huge.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def _list_on(s, **fields: object) -> router_pb2.ListReservationsResponse:
    return s.routing.ListReservations(router_pb2.ListReservationsRequest(**fields), timeout=20)


class TimersFail(MemoryLedger):
    """A memory ledger whose status-timer count fails (a statement timeout, say)."""

    def held_timers(self, expires_before, ships_before):  # type: ignore[no-untyped-def]
        raise LedgerUnavailableError("the timers' count timed out")


def test_a_failing_timers_count_does_not_fail_the_sweep(small_scenario: Scenario):
    """Reservations still expire and the sweep counts as good when the timers' count fails."""
    ledger = TimersFail()
    with scraped(small_scenario, ledger, sweep_interval_s=0.1) as s:
        s.routing.RouteOrder(route("short", ("A", 1), ttl_s=0.2), timeout=30)
        eventually(lambda: _is(s.value("router_reservations_total", outcome="expired"), 1))
        assert s.value("router_sweeps_total", result="ok") >= 1
        assert s.value("router_sweeps_total", result="failed") == 0
        assert s.value("router_sweeper_last_success_timestamp_seconds") > 0
