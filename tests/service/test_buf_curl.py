"""A client not written for this project (buf curl, via reflection) can use the service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from models.scenario import Scenario
from router.service.convert import order_to_proto
from tests.service.conftest import Running

BUF = Path(sys.executable).parent / "buf"


def buf_curl(server: Running, *args: str) -> str:
    """Run ``buf curl`` over plain-text HTTP/2 gRPC against ``server``; return its stdout."""
    result = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _url(server: Running, path: str = "") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def test_buf_curl_lists_services(server: Running) -> None:
    """Reflection lets buf curl list the routing, health and reflection services."""
    services = buf_curl(server, "--list-services", _url(server)).split()
    assert "router.v1.RoutingService" in services
    assert "grpc.health.v1.Health" in services


def test_buf_curl_checks_health(server: Running) -> None:
    """The buf curl client calls grpc.health.v1.Health/Check and reads SERVING."""
    out = buf_curl(server, _url(server, "/grpc.health.v1.Health/Check"))
    assert json.loads(out) == {"status": "SERVING"}


def test_buf_curl_plans_an_order(server: Running, small_scenario: Scenario) -> None:
    """The buf curl client sends an order as proto3 JSON (proto field names), gets a plan."""
    order = json_format.MessageToDict(
        order_to_proto(small_scenario.orders[0]), preserving_proto_field_name=True
    )
    out = buf_curl(
        server,
        "-d",
        json.dumps({"order": order}),
        _url(server, "/router.v1.RoutingService/PlanOrder"),
    )
    plan: dict[str, Any] = json.loads(out)["plan"]
    assert plan["orderId"] == "o1"
    assert plan["status"] == "SOLVE_STATUS_OPTIMAL"
    assert plan["objective"] > 0
    assert sum(len(s["lines"]) for s in plan["shipments"]) == 2


def test_buf_curl_sets_and_lists_calendars(server: Running) -> None:
    """SetCalendar and ListCalendars in proto3 JSON, as docs/calendars.md shows them.

    The calendar comes back normalised (weekdays first, upper case); it is cleared after.
    """
    calendar = {"node_id": "mid", "closed_days": ["2026-12-25", "sun"]}
    out = buf_curl(
        server,
        "-d",
        json.dumps({"calendar": calendar}),
        _url(server, "/router.v1.NetworkService/SetCalendar"),
    )
    assert json.loads(out)["calendar"] == {"nodeId": "mid", "closedDays": ["SUN", "2026-12-25"]}
    listed = json.loads(buf_curl(server, _url(server, "/router.v1.NetworkService/ListCalendars")))
    assert listed["calendars"] == [{"nodeId": "mid", "closedDays": ["SUN", "2026-12-25"]}]
    clear = json.dumps({"calendar": {"node_id": "mid"}})
    buf_curl(server, "-d", clear, _url(server, "/router.v1.NetworkService/SetCalendar"))
