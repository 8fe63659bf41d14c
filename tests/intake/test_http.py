"""The intake gateway over real sockets: a ``router serve`` process behind ``router intake``."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.intake.conftest import MAX_BODY_BYTES, tiny_orders


def order(order_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """The tiny scenario's O-1 (ships from DC-EAST) under a fresh id, with ``changes``."""
    raw = copy.deepcopy(tiny_orders()[0])
    raw["order_id"] = order_id or f"O-{uuid.uuid4().hex[:8]}"
    raw.update(changes)
    return raw


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def error_of(response: httpx.Response, http: int, status: str) -> dict[str, Any]:
    """The response's ``error`` after checking it has the google.rpc.Status shape."""
    assert response.status_code == http, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "status", "details"}
    assert error["code"] == http and error["status"] == status
    return dict(error)


def fields(error: dict[str, Any]) -> dict[str, str]:
    """Field path → description of every BadRequest violation of ``error``."""
    found: dict[str, str] = {}
    for detail in error["details"]:
        if detail["@type"] == "type.googleapis.com/google.rpc.BadRequest":
            found.update({fv["field"]: fv["description"] for fv in detail["fieldViolations"]})
    return found


def test_plan_answers_the_plan_in_camel_case_for_either_spelling(client: httpx.Client):
    """PlanOrder through HTTP: original or lowerCamelCase names in, lowerCamelCase out."""
    snake = client.post("/v1/orders:plan", json={"order": order("P-1")})
    assert snake.status_code == 200, snake.text
    plan = snake.json()["plan"]
    assert plan["orderId"] == "P-1" and plan["status"] == "SOLVE_STATUS_OPTIMAL"
    assert plan["shipments"][0]["nodeId"] == "DC-EAST"
    camel = order("P-1")
    camel["shipTo"] = camel.pop("ship_to")
    camel["createdAt"] = camel.pop("created_at")
    camel["lines"] = [{"lineId": x["line_id"], "sku": x["sku"], "quantity": x["quantity"]}
                      for x in camel["lines"]]  # fmt: skip
    again = client.post("/v1/orders:plan", json={"order": camel, "topK": 1})
    assert again.status_code == 200, again.text
    assert again.json()["plan"]["shipments"] == plan["shipments"]


def test_route_then_confirm_and_retries_are_safe(client: httpx.Client):
    """RouteOrder holds a reservation; confirming it ships; both replay on a retried key."""
    k = key()
    routed = client.post(
        "/v1/orders:route", json={"order": order()}, headers={"Idempotency-Key": k}
    )
    assert routed.status_code == 200, routed.text
    reservation = routed.json()["reservation"]
    assert reservation["status"] == "RESERVATION_STATUS_HELD"
    same = {"order": order(reservation["orderId"])}
    retried = client.post("/v1/orders:route", json=same, headers={"Idempotency-Key": k})
    assert retried.status_code == 200 and retried.content == routed.content
    url = f"/v1/reservations/{reservation['reservationId']}:confirm"
    confirm_key = key()
    confirmed = client.post(url, headers={"Idempotency-Key": confirm_key})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["reservation"]["status"] == "RESERVATION_STATUS_CONFIRMED"
    again = client.post(url, json={}, headers={"Idempotency-Key": confirm_key})
    assert again.content == confirmed.content
    release = client.post(
        f"/v1/reservations/{reservation['reservationId']}:release",
        headers={"Idempotency-Key": key()},
    )
    error_of(release, 400, "FAILED_PRECONDITION")  # no longer HELD


def test_release_gives_the_units_back(client: httpx.Client):
    """Releasing a held reservation answers it RELEASED."""
    routed = client.post(
        "/v1/orders:route", json={"order": order()}, headers={"Idempotency-Key": key()}
    )
    reservation_id = routed.json()["reservation"]["reservationId"]
    released = client.post(
        f"/v1/reservations/{reservation_id}:release", headers={"Idempotency-Key": key()}
    )
    assert released.status_code == 200, released.text
    assert released.json()["reservation"]["status"] == "RESERVATION_STATUS_RELEASED"


def test_same_key_with_another_body_is_409_with_details(client: httpx.Client):
    """The service's ALREADY_EXISTS is 409, its BadRequest on request_id kept."""
    k = key()
    first = client.post(
        "/v1/orders:route", json={"order": order("R-A")}, headers={"Idempotency-Key": k}
    )
    assert first.status_code == 200, first.text
    other = client.post(
        "/v1/orders:route", json={"order": order("R-B")}, headers={"Idempotency-Key": k}
    )
    error = error_of(other, 409, "ALREADY_EXISTS")
    assert "request_id" in fields(error)


def test_route_needs_the_key_and_a_body_request_id_must_match_it(client: httpx.Client):
    """No Idempotency-Key, or a body request_id other than it: 400 naming the field."""
    missing = client.post("/v1/orders:route", json={"order": order()})
    assert "Idempotency-Key" in fields(error_of(missing, 400, "INVALID_ARGUMENT"))
    body = {"requestId": "other", "order": order()}
    differs = client.post("/v1/orders:route", json=body, headers={"Idempotency-Key": key()})
    assert "request_id" in fields(error_of(differs, 400, "INVALID_ARGUMENT"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order": order("B-1", lines=[{"line_id": "1", "sku": "SKU-1", "quantity": "x"}])},
         "order.lines[0].quantity"),
        ({"order": order("B-2", ship_to={"latitude": "north", "longitude": 1.0})},
         "order.ship_to.latitude"),
        ({"order": order("B-3", colour="red")}, "order.colour"),
        ({"order": 5}, "order"),
        ({"topK": 1.5}, "top_k"),
        ({"order": order("B-4", ship_to={"latitude": 95.0, "longitude": 1.0, "country": "US"})},
         "order.ship_to.latitude"),
    ],
)  # fmt: skip
def test_bad_fields_are_400_naming_the_field(client: httpx.Client, body: dict, field: str):
    """A wrong type, unknown field or out-of-range value: 400 with the field's path."""
    response = client.post("/v1/orders:plan", json=body)
    assert field in fields(error_of(response, 400, "INVALID_ARGUMENT"))


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]"])
def test_missing_or_malformed_bodies_are_400_not_422(client: httpx.Client, content: bytes):
    """No body, bad JSON or a non-object: 400 naming ``body`` in the one error shape."""
    response = client.post("/v1/orders:plan", content=content)
    assert "body" in fields(error_of(response, 400, "INVALID_ARGUMENT"))


def test_bad_headers_and_query_values_are_400(client: httpx.Client):
    """FastAPI's own validation answers in the error shape, 400 naming the parameter."""
    slow = client.post(
        "/v1/orders:plan", json={"order": order()}, headers={"X-Request-Timeout": "x"}
    )
    assert "X-Request-Timeout" in fields(error_of(slow, 400, "INVALID_ARGUMENT"))
    mode = client.post("/v1/orders:batch?mode=ship", content=b"{}")
    assert "mode" in fields(error_of(mode, 400, "INVALID_ARGUMENT"))


def test_unknown_paths_and_methods_use_the_error_shape(client: httpx.Client):
    """Starlette's 404 and 405 become the same JSON error body."""
    error_of(client.get("/v1/nothing"), 404, "NOT_FOUND")
    assert client.get("/v1/orders:plan").json()["error"]["code"] == 405


def test_unknown_sku_is_the_services_400(client: httpx.Client):
    """The service's INVALID_ARGUMENT and its field path come through unchanged."""
    body = {"order": order(lines=[{"line_id": "1", "sku": "NOPE", "quantity": 1}])}
    response = client.post("/v1/orders:plan", json=body)
    assert "order.lines[0].sku" in fields(error_of(response, 400, "INVALID_ARGUMENT"))


def test_bodies_over_the_limit_are_413(client: httpx.Client):
    """Too large by Content-Length, or counted while a chunked body is read: 413."""
    big = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    error_of(client.post("/v1/orders:plan", content=big), 413, "INVALID_ARGUMENT")

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    error_of(client.post("/v1/orders:plan", content=chunks()), 413, "INVALID_ARGUMENT")


def test_get_stock_filters_by_sku_and_node(client: httpx.Client):
    """GET /v1/stock?sku=…&node_id=… is GetStock with those filters."""
    response = client.get("/v1/stock", params=[("sku", "SKU-1"), ("sku", "SKU-3")])
    assert response.status_code == 200, response.text
    positions = response.json()["positions"]
    assert {p["sku"] for p in positions} == {"SKU-1", "SKU-3"}
    one = client.get("/v1/stock", params={"sku": "SKU-1", "node_id": "DC-WEST"}).json()
    assert [(p["nodeId"], p["onHand"]) for p in one["positions"]] == [("DC-WEST", 50)]


def test_postal_code_without_coordinates_resolves(client: httpx.Client):
    """A US ship-to with only a postal code gets coordinates offline; a bad code is 400."""
    ship_to = {"country": "US", "postal_code": "10001"}
    response = client.post("/v1/orders:plan", json={"order": order(ship_to=ship_to)})
    assert response.status_code == 200, response.text
    given = client.post("/v1/orders:plan", json={"order": order()}).json()
    shipped = response.json()["plan"]["shipments"][0]
    assert shipped["nodeId"] == "DC-EAST"
    assert abs(shipped["distanceKm"] - given["plan"]["shipments"][0]["distanceKm"]) < 5
    bad = {"country": "US", "postalCode": "00000"}
    camel = order(shipTo=bad)
    del camel["ship_to"]
    failed = client.post("/v1/orders:plan", json={"order": camel})
    assert "order.ship_to.postal_code" in fields(error_of(failed, 400, "INVALID_ARGUMENT"))


def test_batch_jsonl_answers_each_order_with_its_own_status(client: httpx.Client):
    """One bad order gets its error with ``orders[i].…`` paths; the others are planned."""
    good, bad, unknown = order("J-1"), order("J-2"), order("J-3")
    bad["lines"][0]["quantity"] = "two"
    unknown["lines"][0]["sku"] = "NOPE"
    import json

    body = "\n".join(json.dumps(o) for o in (good, bad, unknown)) + "\n{oops\n"
    response = client.post(
        "/v1/orders:batch?mode=plan",
        content=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["orderId"] for r in results] == ["J-1", "J-2", "J-3", ""]
    assert [r["httpStatus"] for r in results] == [200, 400, 400, 400]
    assert results[0]["plan"]["status"] == "SOLVE_STATUS_OPTIMAL"
    assert "orders[1].lines[0].quantity" in fields(results[1]["error"])
    assert "orders[2].lines[0].sku" in fields(results[2]["error"])
    assert "orders[3]" in fields(results[3]["error"])


HEADER = "order_id,created_at,service,latitude,longitude,country,postal_code,region,"
CSV = (
    HEADER
    + """sku,quantity,line_id,unit_price
C-1,2026-11-20T14:05:00Z,ground,40.7128,-74.006,US,10001,NY,SKU-1,2,1,9.5
C-1,2026-11-20T14:05:00Z,ground,40.7128,-74.006,US,10001,NY,SKU-2,1,2,
C-2,2026-11-20T14:05:00Z,ground,,,US,10001,,SKU-1,x,1,
C-3,2026-11-20T14:05:00Z,ground,,,US,60601,,NOPE,1,1,
"""
)


def test_batch_csv_groups_rows_by_order_and_names_file_lines(client: httpx.Client):
    """CSV rows of one order_id form one order; errors name ``file.csv:LINE:column``."""
    response = client.post(
        "/v1/orders:batch", content=CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["orderId"], r["httpStatus"]) for r in results] == [
        ("C-1", 200),
        ("C-2", 400),
        ("C-3", 400),
    ]
    assert len(results[0]["plan"]["shipments"][0]["lines"]) == 2
    assert "file.csv:4:quantity" in fields(results[1]["error"])
    assert "file.csv:5:sku" in fields(results[2]["error"])


def test_batch_multipart_upload_and_route_mode(client: httpx.Client):
    """A multipart ``file`` upload routes each order under ``<key>:<order_id>``; retry replays."""
    rows = CSV.splitlines()[:3]
    text = "\n".join(rows).replace("C-1", f"M-{uuid.uuid4().hex[:6]}") + "\n"
    missing = client.post("/v1/orders:batch?mode=route", files={"file": ("up.csv", text)})
    assert "Idempotency-Key" in fields(error_of(missing, 400, "INVALID_ARGUMENT"))
    k = key()
    headers = {"Idempotency-Key": k}
    routed = client.post(
        "/v1/orders:batch?mode=route", files={"file": ("up.csv", text)}, headers=headers
    )
    assert routed.status_code == 200, routed.text
    [result] = routed.json()["results"]
    assert result["httpStatus"] == 200
    assert result["reservation"]["status"] == "RESERVATION_STATUS_HELD"
    again = client.post(
        "/v1/orders:batch?mode=route", files={"file": ("up.csv", text)}, headers=headers
    )
    assert again.json() == routed.json()
    # the same request_id through the single-order endpoint replays it too
    single = client.post(
        "/v1/orders:route",
        json={"order": order(result["orderId"])},
        headers={"Idempotency-Key": f"{k}:{result['orderId']}"},
    )
    error_of(single, 409, "ALREADY_EXISTS")


def test_batch_with_an_unsupported_content_type_is_415(client: httpx.Client):
    """Only JSON lines, CSV or a multipart file are batches."""
    response = client.post("/v1/orders:batch", json={"orders": []})
    assert "Content-Type" in fields(error_of(response, 415, "INVALID_ARGUMENT"))


def test_service_down_is_503_quickly(down_gateway: str):
    """With the gRPC service unreachable the gateway answers 503 UNAVAILABLE within 2 s."""
    with httpx.Client(base_url=down_gateway, timeout=10) as http:
        for _ in range(2):  # the first call and one after the channel has failed
            started = time.monotonic()
            response = http.post("/v1/orders:plan", json={"order": order()})
            assert time.monotonic() - started < 2.0
            error_of(response, 503, "UNAVAILABLE")


def test_deadline_is_504(client: httpx.Client):
    """A tiny X-Request-Timeout becomes the gRPC deadline; running out of it is 504."""
    response = client.post(
        "/v1/orders:plan", json={"order": order()}, headers={"X-Request-Timeout": "0.0005"}
    )
    error_of(response, 504, "DEADLINE_EXCEEDED")


def test_in_flight_limit_is_429_with_retry_after(tight_gateway: str):
    """With --max-in-flight 1 and one request still sending its body, the next is 429."""
    release, sending = threading.Event(), threading.Event()
    answers: list[httpx.Response] = []
    rest = httpx.Request("POST", "http://x/", json=order()).content + b"}"

    def slow_body() -> Iterator[bytes]:
        yield b'{"order": '
        sending.set()
        release.wait(10)
        yield rest

    def send() -> None:
        with httpx.Client(base_url=tight_gateway, timeout=30) as http:
            answers.append(http.post("/v1/orders:plan", content=slow_body()))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert sending.wait(10)
        time.sleep(0.3)  # the headers are sent: the gateway has let the request in
        with httpx.Client(base_url=tight_gateway, timeout=10) as http:
            deadline = time.monotonic() + 10
            while True:
                busy = http.get("/v1/stock", params={"sku": "SKU-1"})
                if busy.status_code == 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            error_of(busy, 429, "RESOURCE_EXHAUSTED")
            assert busy.headers["Retry-After"] == "1"
    finally:
        release.set()
        sender.join(30)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    with httpx.Client(base_url=tight_gateway, timeout=10) as http:
        assert http.get("/v1/stock").status_code == 200  # the slot is free again


def test_openapi_documents_every_body_in_the_proto_vocabulary(client: httpx.Client):
    """/openapi.json refers every request and response body to a component that exists."""
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components
    refs = []
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert "422" not in operation["responses"], path
            for content in operation.get("requestBody", {}).get("content", {}).values():
                refs.append(content["schema"].get("$ref"))
            for response in operation["responses"].values():
                refs.extend(c["schema"].get("$ref") for c in response.get("content", {}).values())
    named = {r.rsplit("/", 1)[1] for r in refs if r}
    assert named >= {
        "PlanOrderRequest", "PlanOrderResponse", "RouteOrderRequest", "RouteOrderResponse",
        "ConfirmReservationRequest", "ReleaseReservationResponse", "GetStockResponse",
        "BatchResponse", "ErrorResponse",
    }  # fmt: skip
    assert named <= set(components)
    assert "shipTo" in components["Order"]["properties"]
