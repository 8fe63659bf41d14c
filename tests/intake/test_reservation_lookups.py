"""Done when: the gateway looks reservations up by id and by filter, and names bad filters.

Against the session's real gateway and service (tests/intake/conftest.py).
"""

from __future__ import annotations

import subprocess

import httpx

from tests.intake.conftest import ROUTER
from tests.intake.test_http import error_of, fields, key, order


def test_get_and_list_reservations_of_a_routed_order(client: httpx.Client, grpc_target: str):
    """A routed order's reservation by id, by order (and by the CLI); unknown id is 404."""
    routed = client.post(
        "/v1/orders:route", json={"order": order()}, headers={"Idempotency-Key": key()}
    )
    assert routed.status_code == 200, routed.text
    held = routed.json()["reservation"]
    got = client.get(f"/v1/reservations/{held['reservationId']}")
    assert got.status_code == 200, got.text
    assert got.json()["reservation"]["lines"] == held["lines"]
    assert got.json()["reservation"]["slots"]
    listed = client.get("/v1/reservations", params={"order_id": held["orderId"], "status": "held"})
    assert listed.status_code == 200, listed.text
    ids = [r["reservationId"] for r in listed.json()["reservations"]]
    assert held["reservationId"] in ids
    assert all(r["orderId"] == held["orderId"] for r in listed.json()["reservations"])
    error_of(client.get("/v1/reservations/R-no-such"), 404, "NOT_FOUND")
    cli = subprocess.run(
        [str(ROUTER), "reservations", "get", held["reservationId"], "--target", grpc_target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith(f"{held['reservationId']} order={held['orderId']} HELD")


def test_bad_filters_are_400_naming_the_parameter(client: httpx.Client):
    """A status that is none, a window beyond 7 days, a forged page token: 400 each."""
    for params, name in (
        ({"status": "lost"}, "status"),
        ({"expiring_within_s": "1e20"}, "expiring_within_s"),
        ({"page_size": "5000"}, "page_size"),
        ({"page_token": "forged"}, "page_token"),
    ):
        answer = client.get("/v1/reservations", params=params)
        assert name in fields(error_of(answer, 400, "INVALID_ARGUMENT")), (name, answer.text)


def test_the_cli_lists_with_the_status_timers(client: httpx.Client, grpc_target: str):
    """``router reservations list --expiring-within`` prints the holds about to lapse."""
    routed = client.post(
        "/v1/orders:route",
        json={"order": order(), "ttl": "60s"},
        headers={"Idempotency-Key": key()},
    )
    assert routed.status_code == 200, routed.text
    rid = routed.json()["reservation"]["reservationId"]
    command = [str(ROUTER), "reservations", "list", "--target", grpc_target, "--json"]
    soon = subprocess.run(
        [*command, "--expiring-within", "120"], capture_output=True, text=True, timeout=60
    )
    assert soon.returncode == 0, soon.stderr
    assert rid in soon.stdout


def test_part_of_a_reservation_is_confirmed_over_http(client: httpx.Client):
    """A confirm body with lines ships those units only; the answer's lines are them."""
    two = order(lines=[{"lineId": "1", "sku": "SKU-1", "quantity": 2}])
    routed = client.post(
        "/v1/orders:route", json={"order": two}, headers={"Idempotency-Key": key()}
    )
    assert routed.status_code == 200, routed.text
    held = routed.json()["reservation"]
    first = held["lines"][0]
    line = {"nodeId": first["nodeId"], "sku": first["sku"], "quantity": 1}
    url = f"/v1/reservations/{held['reservationId']}:confirm"
    done = client.post(url, json={"lines": [line]}, headers={"Idempotency-Key": key()})
    assert done.status_code == 200, done.text
    assert done.json()["reservation"]["status"] == "RESERVATION_STATUS_CONFIRMED"
    assert done.json()["reservation"]["lines"] == [line]


def test_a_rejection_over_http_and_the_cli_keeps_the_reservation(
    client: httpx.Client, grpc_target: str
):
    """``:reject`` releases the node's units and answers with the same reservation id.

    The tiny network may or may not hold the SKU elsewhere: either the units are held at
    another node or they are backordered, never again at the rejecting node. A retry with
    the key replays the answer; the CLI's ``reject`` of a node holding nothing is refused.
    """
    routed = client.post(
        "/v1/orders:route", json={"order": order()}, headers={"Idempotency-Key": key()}
    )
    assert routed.status_code == 200, routed.text
    held = routed.json()["reservation"]
    node = held["lines"][0]["nodeId"]
    url = f"/v1/reservations/{held['reservationId']}:reject"
    body = {"nodeId": node, "reason": "not on the shelf"}
    reject_key = key()
    answer = client.post(url, json=body, headers={"Idempotency-Key": reject_key})
    assert answer.status_code == 200, answer.text
    rejected = answer.json()
    assert rejected["reservation"]["reservationId"] == held["reservationId"]
    assert rejected["rejections"] == 1
    assert node not in {x["nodeId"] for x in rejected["reservation"].get("lines", [])}
    again = client.post(url, json=body, headers={"Idempotency-Key": reject_key})
    assert again.json() == rejected
    error_of(
        client.post(url, json={"reason": "no node"}, headers={"Idempotency-Key": key()}),
        400,
        "INVALID_ARGUMENT",
    )
    cli = subprocess.run(
        [str(ROUTER), "reservations", "reject", held["reservationId"], "--node", node,
         "--request-id", key(), "--target", grpc_target],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert cli.returncode != 0
