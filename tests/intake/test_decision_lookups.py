"""Done when: the gateway and ``router decisions`` read, filter, page and replay the decision log.

Against the session's real gateway and service (tests/intake/conftest.py). The service is
shared with the other tests, so each test reads only the decisions of its own orders.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from router.cli import main
from tests.intake.conftest import ROUTER
from tests.intake.test_http import error_of, fields, key, order


def _route(client: httpx.Client, raw: dict[str, Any]) -> dict[str, Any]:
    routed = client.post(
        "/v1/orders:route", json={"order": raw}, headers={"Idempotency-Key": key()}
    )
    assert routed.status_code == 200, routed.text
    assert routed.json()["decisionId"], routed.text
    return dict(routed.json())


def _decisions(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    listed = client.get("/v1/decisions", params=params)
    assert listed.status_code == 200, listed.text
    return list(listed.json().get("decisions", []))


@pytest.fixture(scope="module")
def logged(client: httpx.Client) -> dict[str, Any]:
    """One order routed, then planned with ``record`` (so logged twice), newest last."""
    raw = order()
    routed = _route(client, raw)
    planned = client.post("/v1/orders:plan", json={"order": raw, "record": True})
    assert planned.status_code == 200, planned.text
    assert planned.json()["decisionId"], planned.text
    return {
        "order_id": raw["order_id"],
        "route": routed["decisionId"],
        "plan": planned.json()["decisionId"],
        "reservation": routed["reservation"]["reservationId"],
    }


def test_a_decision_is_read_by_id_with_its_inputs(client: httpx.Client, logged: dict[str, Any]):
    """GET /v1/decisions/{id}: the routed plan, its reservation and what it was planned from."""
    got = client.get(f"/v1/decisions/{logged['route']}")
    assert got.status_code == 200, got.text
    decision = got.json()["decision"]
    assert decision["decisionId"] == logged["route"]
    assert decision["kind"] == "DECISION_KIND_ROUTE"
    assert decision["orderId"] == logged["order_id"]
    assert decision["reservationId"] == logged["reservation"]
    assert decision["outcome"] == "ROUTE_OUTCOME_RESERVED"
    assert decision["nodeIds"] == ["DC-EAST"]
    assert decision["inputs"]["order"]["orderId"] == logged["order_id"]
    assert decision["inputs"]["stock"] and decision["inputs"]["engine"]
    error_of(client.get("/v1/decisions/D-no-such"), 404, "NOT_FOUND")


def test_a_plan_is_logged_only_when_asked_to_record(client: httpx.Client):
    """``record`` on POST /v1/orders:plan logs the plan; without it nothing is logged."""
    raw = order()
    unrecorded = client.post("/v1/orders:plan", json={"order": raw})
    assert unrecorded.status_code == 200, unrecorded.text
    assert "decisionId" not in unrecorded.json()
    assert _decisions(client, order_id=raw["order_id"]) == []
    recorded = client.post("/v1/orders:plan", json={"order": raw, "record": True})
    assert recorded.status_code == 200, recorded.text
    [decision] = _decisions(client, order_id=raw["order_id"])
    assert decision["decisionId"] == recorded.json()["decisionId"]
    assert decision["kind"] == "DECISION_KIND_PLAN" and "inputs" not in decision


def test_decisions_are_listed_newest_first_by_every_filter(
    client: httpx.Client, logged: dict[str, Any]
):
    """Order, reservation, node, status, kind and time filters each select as documented."""
    mine = {"order_id": logged["order_id"]}
    both = [logged["plan"], logged["route"]]  # newest first
    assert [d["decisionId"] for d in _decisions(client, **mine)] == both
    by_kind = _decisions(client, **mine, kind="route")
    assert [d["decisionId"] for d in by_kind] == [logged["route"]]
    by_reservation = _decisions(client, reservation_id=logged["reservation"])
    assert [d["decisionId"] for d in by_reservation] == [logged["route"]]
    assert [d["decisionId"] for d in _decisions(client, **mine, node_id="DC-EAST")] == both
    assert _decisions(client, **mine, node_id="DC-WEST") == []
    assert [d["decisionId"] for d in _decisions(client, **mine, status="optimal")] == both
    assert _decisions(client, **mine, status="infeasible") == []
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _decisions(client, **mine, decided_from=later) == []
    before = _decisions(client, **mine, decided_before=later, decided_from="2000-01-01T00:00:00Z")
    assert [d["decisionId"] for d in before] == both
    offset = _decisions(client, **mine, decided_before="2000-01-01T01:00:00+01:00")
    assert offset == []


def test_pages_follow_each_other_without_gaps_or_repeats(
    client: httpx.Client, logged: dict[str, Any]
):
    """page_size=1 gives one decision a page; next_page_token leads to the next, then ends."""
    seen, token = [], ""
    for _ in range(3):
        params = {"order_id": logged["order_id"], "page_size": 1, "page_token": token}
        page = client.get("/v1/decisions", params=params)
        assert page.status_code == 200, page.text
        seen += [d["decisionId"] for d in page.json()["decisions"]]
        token = page.json().get("nextPageToken", "")
        if not token:
            break
    assert seen == [logged["plan"], logged["route"]]
    assert not token


def test_bad_filters_are_400_naming_the_parameter(client: httpx.Client):
    """A status or kind that is none, a bad instant, size or forged token: 400 each."""
    for params, name in (
        ({"status": "lost"}, "status"),
        ({"kind": "guess"}, "kind"),
        ({"decided_from": "yesterday"}, "decided_from"),
        ({"decided_before": "2026-11-20 15:00:00"}, "decided_before"),
        ({"decided_from": "2026-13-40T25:00:00Z"}, "decided_from"),
        ({"reservation_id": "R" * 129}, "reservation_id"),
        ({"page_size": "5000"}, "page_size"),
        ({"page_token": "forged"}, "page_token"),
    ):
        answer = client.get("/v1/decisions", params=params)
        assert name in fields(error_of(answer, 400, "INVALID_ARGUMENT")), (name, answer.text)


def test_a_decision_replays_to_the_logged_plan(client: httpx.Client, logged: dict[str, Any]):
    """POST …:replay: identical; with compare_now (query or body) also the plan now and why."""
    url = f"/v1/decisions/{logged['route']}:replay"
    replayed = client.post(url)
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["identical"] is True and "differences" not in body
    assert body["decision"]["decisionId"] == logged["route"]
    assert "inputs" not in body["decision"] and "now" not in body
    assert [s["nodeId"] for s in body["replayed"]["shipments"]] == ["DC-EAST"]
    for asked in (client.post(url, params={"compare_now": "true"}),
                  client.post(url, json={"compareNow": True})):  # fmt: skip
        assert asked.status_code == 200, asked.text
        now = asked.json()
        assert now["identical"] is True
        assert now["now"]["status"] == "SOLVE_STATUS_OPTIMAL"
        assert "cost" in now["explanation"] and "inputs that moved" in now["explanation"]
    error_of(client.post("/v1/decisions/D-no-such:replay"), 404, "NOT_FOUND")
    other = client.post(url, json={"decisionId": "D-other"})
    assert "decision_id" in fields(error_of(other, 400, "INVALID_ARGUMENT"))
    clash = client.post(url, params={"compare_now": "false"}, json={"compare_now": True})
    assert "compare_now" in fields(error_of(clash, 400, "INVALID_ARGUMENT"))
    bad = client.post(url, json={"compareNow": "yes"})
    assert "compare_now" in fields(error_of(bad, 400, "INVALID_ARGUMENT"))


def test_the_cli_gets_lists_and_replays(
    grpc_target: str, logged: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    """``router decisions get|list|replay``: a line each by default, proto3 JSON with --json."""
    target = ("--target", grpc_target)
    assert main(["decisions", "get", logged["route"], *target]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{logged['route']} ROUTE order={logged['order_id']} OPTIMAL")
    assert f"reservation={logged['reservation']} outcome=RESERVED" in out[0]
    assert out[1].startswith("  inputs: engine=")
    assert main(["decisions", "list", "--order", logged["order_id"], *target]) == 0
    listed = capsys.readouterr()
    assert [line.split()[0] for line in listed.out.splitlines()] == [
        logged["plan"],
        logged["route"],
    ]
    assert listed.err.strip() == "2 decision(s)"
    args = ["decisions", "list", "--order", logged["order_id"], "--kind", "route", "--json"]
    assert main([*args, "--page-size", "1", "--decided-from", "2000-01-01", *target]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["decisionId"] == logged["route"]
    args = ["decisions", "list", "--order", logged["order_id"], "--page-size", "1"]
    assert main([*args, "--limit", "1", *target]) == 0
    stopped = capsys.readouterr()
    assert stopped.out.split()[0] == logged["plan"]
    assert "stopped at --limit 1" in stopped.err
    assert main(["decisions", "replay", logged["route"], "--compare-now", *target]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("replayed: identical (OPTIMAL cost=")
    assert out[2].startswith("now: OPTIMAL") and "inputs that moved" in out[3]
    assert main(["decisions", "replay", logged["route"], "--json", *target]) == 0
    assert json.loads(capsys.readouterr().out)["identical"] is True


def test_the_cli_says_what_is_wrong(grpc_target: str, capsys: pytest.CaptureFixture[str]):
    """An unknown id exits 1 with NOT_FOUND, a refused filter 2 naming it, a bad instant 2."""
    assert main(["decisions", "get", "D-no-such", "--target", grpc_target]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    listing = ["decisions", "list", "--order", "x", "--target", grpc_target]
    assert main([*listing, "--page-size", "5000"]) == 2  # the service's INVALID_ARGUMENT
    assert "page_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["decisions", "list", "--decided-from", "yesterday"])
    assert "not an instant" in capsys.readouterr().err


def test_the_installed_command_replays(grpc_target: str, logged: dict[str, Any]):
    """``router decisions replay`` is wired into the installed ``router`` command."""
    done = subprocess.run(
        [str(ROUTER), "decisions", "replay", logged["plan"], "--target", grpc_target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{logged['plan']} PLAN order={logged['order_id']} OPTIMAL")
    assert "replayed: identical" in done.stdout
