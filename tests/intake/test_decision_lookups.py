"""Done when: the gateway reads, filters, pages and replays the decision log.

Against the session's real gateway and service (tests/intake/conftest.py). The service is
shared with the other tests, so each test reads only the decisions of its own orders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

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
