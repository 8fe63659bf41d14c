"""Calendars over the API: NetworkService sets and lists them, every replica plans with them.

The small scenario (tests/service/conftest.py): the order is created on Fri 2026-11-20 at
12:00 UTC; ``west`` (0°, 111 km from the customer, UTC, cutoff 23:59) ships it that day and
ground (1 transit day in the first band) delivers on Sat 21.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from models.calendar import Calendar, CalendarKind, Calendars
from models.scenario import Scenario
from router.service.convert import order_to_proto
from router.v1 import router_pb2, router_pb2_grpc
from tests.service.conftest import Running, bad_request_fields, order, run

pytestmark = pytest.mark.timeout(60)


def network_stub(served: Running) -> router_pb2_grpc.NetworkServiceStub:
    """A NetworkService client on the server's channel."""
    return router_pb2_grpc.NetworkServiceStub(served.channel)


def west_dates(served: Running) -> tuple[str, str]:
    """(ship date, delivery date) of ``west`` for one unit of A, through PlanOrder."""
    request = router_pb2.PlanOrderRequest(
        order=order_to_proto(order(("A", 1))), explain_level=router_pb2.EXPLAIN_LEVEL_FULL
    )
    plan = served.routing.PlanOrder(request, timeout=10).plan
    [west] = [c for c in plan.explain.model.candidates if c.node_id == "west"]
    return west.ship_date, west.delivery_date


def set_calendar(served: Running, **calendar: object) -> router_pb2.SetCalendarResponse:
    """SetCalendar with a calendar of these fields."""
    message = router_pb2.Calendar(**calendar)  # type: ignore[arg-type]
    request = router_pb2.SetCalendarRequest(calendar=message)
    return network_stub(served).SetCalendar(request, timeout=10)


@pytest.fixture
def served(small_scenario: Scenario) -> Iterator[Running]:
    """A server for the small scenario over a fresh memory ledger."""
    yield from run(small_scenario)


def test_set_calendar_moves_the_next_plans_dates(served: Running):
    """A calendar set over the API is used from the next request on, and listed.

    ``west`` closed on Fridays: it ships Sat 21, delivered Sun 22. Ground not running on
    Sundays: delivered Mon 23. Both cleared: back to Fri 20 and Sat 21.
    """
    assert west_dates(served) == ("2026-11-20", "2026-11-21")
    answer = set_calendar(served, node_id="west", closed_days=["fri", "2026-12-25", "FRI"])
    assert list(answer.calendar.closed_days) == ["FRI", "2026-12-25"]  # normalised, once
    assert answer.revision == 1
    assert west_dates(served) == ("2026-11-21", "2026-11-22")
    set_calendar(served, service="ground", closed_days=["SUN"])
    assert west_dates(served) == ("2026-11-21", "2026-11-23")
    listed = network_stub(served).ListCalendars(router_pb2.ListCalendarsRequest(), timeout=10)
    assert listed.revision == 2
    assert [(c.WhichOneof("owner"), list(c.closed_days)) for c in listed.calendars] == [
        ("node_id", ["FRI", "2026-12-25"]),
        ("service", ["SUN"]),
    ]
    set_calendar(served, node_id="west")  # no closed days: open every day
    set_calendar(served, service="ground")
    assert west_dates(served) == ("2026-11-20", "2026-11-21")
    listed = network_stub(served).ListCalendars(router_pb2.ListCalendarsRequest(), timeout=10)
    assert (list(listed.calendars), listed.revision) == ([], 4)


def test_a_calendar_set_through_one_replica_is_used_by_another(
    small_scenario: Scenario, tmp_path: Path
):
    """Two servers on one SQLite ledger: a calendar set through one moves the other's plans."""
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for first in run(small_scenario, ledger_url=url):
        for second in run(small_scenario, ledger_url=url):
            assert west_dates(second) == ("2026-11-20", "2026-11-21")
            set_calendar(first, node_id="west", closed_days=["FRI"])
            assert west_dates(second) == ("2026-11-21", "2026-11-22")


def test_the_scenario_calendars_seed_the_ledger(small_scenario: Scenario):
    """A scenario with calendars seeds an empty ledger with them: listed and planned with."""
    calendars = Calendars.of([(CalendarKind.NODE, "west", Calendar(frozenset({4})))])
    scenario = replace(small_scenario, network=replace(small_scenario.network, calendars=calendars))
    for served in run(scenario):
        listed = network_stub(served).ListCalendars(router_pb2.ListCalendarsRequest(), timeout=10)
        assert [(c.node_id, list(c.closed_days)) for c in listed.calendars] == [("west", ["FRI"])]
        assert west_dates(served) == ("2026-11-21", "2026-11-22")


@pytest.mark.parametrize(
    ("calendar", "fields"),
    [
        ({"closed_days": ["SUN"]}, ["calendar"]),
        ({"node_id": "nowhere", "closed_days": ["SUN"]}, ["calendar.node_id"]),
        ({"service": "teleport"}, ["calendar.service"]),
        ({"node_id": "west", "closed_days": ["SUN", "Sunday", "2026-02-30"]},
         ["calendar.closed_days[1]", "calendar.closed_days[2]"]),
        ({"node_id": "west", "closed_days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]},
         ["calendar.closed_days"]),
    ],
)  # fmt: skip
def test_bad_calendar_is_invalid_argument_naming_the_field(
    served: Running, calendar: dict[str, object], fields: list[str]
):
    """A bad calendar is INVALID_ARGUMENT naming each bad field; nothing is stored."""
    with pytest.raises(grpc.RpcError) as caught:
        set_calendar(served, **calendar)
    assert bad_request_fields(caught.value) == fields
    listed = network_stub(served).ListCalendars(router_pb2.ListCalendarsRequest(), timeout=10)
    assert listed.revision == 0


def test_a_ledger_in_use_keeps_its_calendars_and_says_so(
    small_scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """A ledger in use keeps its calendars when the scenario's differ, with a warning.

    Restarted with a scenario whose calendars differ, the server plans with the ledger's
    (set over the API) and logs where calendars are changed.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for first in run(small_scenario, ledger_url=url):
        set_calendar(first, node_id="west", closed_days=["FRI"])
    calendars = Calendars.of([(CalendarKind.NODE, "east", Calendar(frozenset({6})))])
    scenario = replace(small_scenario, network=replace(small_scenario.network, calendars=calendars))
    for served in run(scenario, ledger_url=url):
        assert west_dates(served) == ("2026-11-21", "2026-11-22")
    assert "the ledger's calendars differ from the scenario's" in caplog.text
