"""The intake gateway over real sockets: a ``router serve`` process behind ``router intake``."""

from __future__ import annotations

import copy
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.intake.conftest import MAX_BODY_BYTES, ROUTER, TRAP, tiny_orders


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
    """A multipart ``file`` upload routes each order under its own request_id; retry replays."""
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
    # a single-order call under "<key>:<order_id>" is another request, not a collision
    single = client.post(
        "/v1/orders:route",
        json={"order": order(result["orderId"])},
        headers={"Idempotency-Key": f"{k}:{result['orderId']}"},
    )
    assert single.status_code == 200, single.text


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
        "BatchResponse", "ErrorResponse", "GetDecisionResponse", "ListDecisionsResponse",
        "ReplayDecisionRequest", "ReplayDecisionResponse",
    }  # fmt: skip
    assert named <= set(components)
    assert "shipTo" in components["Order"]["properties"]


def jsonl(*orders: dict[str, Any]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in orders).encode()


NDJSON = {"Content-Type": "application/x-ndjson"}


def test_deeply_nested_json_is_400_not_500(client: httpx.Client):
    """JSON nested past the parser's recursion limit is 400 "nested too deeply", never 500."""
    deep = b"[" * 30000 + b"]" * 30000
    error = error_of(client.post("/v1/orders:plan", content=deep), 400, "INVALID_ARGUMENT")
    assert error["message"] == "body: nested too deeply"
    lines = jsonl(order("D-1")) + deep + b"\n"
    response = client.post("/v1/orders:batch", content=lines, headers=NDJSON)
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["httpStatus"] == 200 and second["httpStatus"] == 400
    assert "orders[1]" in fields(second["error"])


def test_a_csv_cell_over_the_field_limit_is_400_naming_the_line(roomy_gateway: str):
    """A CSV cell longer than the csv module's field limit is 400 ``file.csv:LINE``."""
    text = "order_id,sku,quantity\nC-1,SKU-1,1\nC-2," + "x" * 200_000 + ",1\n"
    with httpx.Client(base_url=roomy_gateway, timeout=30) as http:
        response = http.post("/v1/orders:batch", content=text, headers={"Content-Type": "text/csv"})
    error = error_of(response, 400, "INVALID_ARGUMENT")
    assert list(fields(error)) == ["file.csv:3"], error


def test_a_body_trickling_past_the_deadline_is_504_and_frees_the_slot(tight_gateway: str):
    """A body still arriving when X-Request-Timeout runs out is 504 and frees its slot then.

    With --max-in-flight 1, a client trickling its body for 4 s under a 0.5 s timeout would
    hold the only slot (every other request 429) if reading the body ignored the deadline.
    """
    answers: list[httpx.Response | Exception] = []

    def trickle() -> Iterator[bytes]:
        yield b'{"order": '
        for _ in range(40):
            time.sleep(0.1)
            yield b" "
        yield b"{}}"

    def send() -> None:
        with httpx.Client(base_url=tight_gateway, timeout=30) as http:
            try:
                answers.append(
                    http.post(
                        "/v1/orders:plan", content=trickle(), headers={"X-Request-Timeout": "0.5"}
                    )
                )
            except httpx.HTTPError as error:  # the server may close before the body is sent
                answers.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        time.sleep(1.5)  # past the 0.5 s deadline, still trickling
        with httpx.Client(base_url=tight_gateway, timeout=10) as http:
            # The one slot is free again long before the 4 s trickle ends (polled, so a
            # loaded machine's slower timer does not fail the test).
            give_up = time.monotonic() + 2.0
            while (status := http.get("/v1/stock").status_code) == 429:
                assert time.monotonic() < give_up, "the slot stayed taken"
                time.sleep(0.05)
            assert status == 200
    finally:
        sender.join(30)
    [answer] = answers
    if isinstance(answer, httpx.Response):
        error_of(answer, 504, "DEADLINE_EXCEEDED")


def test_batch_deadline_marks_the_rest_504_in_order(client: httpx.Client):
    """Orders still waiting when the batch's deadline passes are 504 each, none sent after."""
    body = jsonl(*(order(f"B-{i}") for i in range(150)))
    assert len(body) < MAX_BODY_BYTES
    started = time.monotonic()
    response = client.post(
        "/v1/orders:batch", content=body, headers={**NDJSON, "X-Request-Timeout": "0.05"}
    )
    assert time.monotonic() - started < 10.0
    assert response.status_code == 200, response.text
    statuses = [r["httpStatus"] for r in response.json()["results"]]
    assert len(statuses) == 150 and statuses[-1] == 504
    first_late = statuses.index(504)
    assert set(statuses[first_late:]) == {504} and set(statuses[:first_late]) <= {200}


def test_batches_over_max_batch_orders_are_413(roomy_gateway: str):
    """More orders than --max-batch-orders is 413 saying so; exactly the limit is fine."""
    with httpx.Client(base_url=roomy_gateway, timeout=30) as http:
        ok = http.post("/v1/orders:batch", content=jsonl(*(order() for _ in range(3))),
                       headers=NDJSON)  # fmt: skip
        assert ok.status_code == 200, ok.text
        over = http.post("/v1/orders:batch", content=jsonl(*(order() for _ in range(4))),
                         headers=NDJSON)  # fmt: skip
    error = error_of(over, 413, "INVALID_ARGUMENT")
    assert "--max-batch-orders 3" in error["message"]


def test_batch_request_ids_are_unambiguous(client: httpx.Client):
    """Key ``K:b`` with order ``c`` and key ``K`` with order ``b:c`` are different requests."""
    k, tail = key(), uuid.uuid4().hex[:6]
    first = client.post("/v1/orders:batch?mode=route", content=jsonl(order(tail)),
                        headers={**NDJSON, "Idempotency-Key": f"{k}:b"})  # fmt: skip
    second = client.post("/v1/orders:batch?mode=route", content=jsonl(order(f"b:{tail}")),
                         headers={**NDJSON, "Idempotency-Key": k})  # fmt: skip
    for response in (first, second):
        [result] = response.json()["results"]
        assert result["httpStatus"] == 200, result
        assert result["reservation"]["status"] == "RESERVATION_STATUS_HELD"


def test_error_bodies_list_at_most_100_violations(client: httpx.Client):
    """An error lists the first 100 violations and one "… and N more"; the message is capped."""
    text = "order_id,sku,quantity\n" + ",SKU-1,1\n" * 150
    response = client.post("/v1/orders:batch", content=text, headers={"Content-Type": "text/csv"})
    error = error_of(response, 400, "INVALID_ARGUMENT")
    [detail] = error["details"]
    violations = detail["fieldViolations"]
    assert len(violations) == 101
    assert violations[-1] == {"field": "…", "description": "and 50 more"}
    assert len(error["message"]) <= 2000


def test_a_bad_geocoder_exits_2_before_listening():
    """``router intake --geocoder nosuch`` says why and exits 2, never printing its address."""
    done = subprocess.run(
        [str(ROUTER), "intake", "--geocoder", "nosuch", "--port", "0", "--metrics-port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert "listening on" not in done.stdout and "nosuch" in done.stderr


def test_openapi_parameters_are_never_null_and_keys_are_bounded(client: httpx.Client):
    """Header and query parameters have no null branch; Idempotency-Key is as enforced."""
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert "null" not in json.dumps(parameter["schema"]), (path, parameter)
                if parameter["name"] == "Idempotency-Key":
                    schema = parameter["schema"]
                    assert schema["maxLength"] == 200 and schema["pattern"] == r"\S"


def test_405_is_unimplemented_and_503_is_generic_with_retry_after(down_gateway: str):
    """405 uses the table's UNIMPLEMENTED; a 503 names no backend address and says retry."""
    with httpx.Client(base_url=down_gateway, timeout=10) as http:
        error_of(http.get("/v1/orders:plan"), 405, "UNIMPLEMENTED")
        response = http.post("/v1/orders:plan", json={"order": order()})
    error = error_of(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == "1"
    assert "127.0.0.1" not in response.text and error["details"] == []


def test_jsonl_lines_split_only_on_newline(client: httpx.Client):
    """A U+2028 inside a JSON string does not split the line: one order, planned."""
    raw = order("U-1")
    raw["ship_to"] = {**raw["ship_to"], "region": "a\u2028b"}
    response = client.post("/v1/orders:batch", content=jsonl(raw), headers=NDJSON)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["httpStatus"] == 200, result


def _cut_short(order_id: str) -> dict[str, Any]:
    """The trap scenario's order (tests/data/trap/README.md) solved for 1 ns.

    A stop already set leaves the engine its greedy plan, HUB alone, FEASIBLE with gap
    0.4935; the optimum ships from WEST and EAST.
    """
    raw = json.loads((TRAP / "orders.jsonl").read_text().splitlines()[0])
    return {"order": {**raw, "order_id": order_id}, "timeLimit": "0.000000001s"}


def test_route_does_not_reserve_a_plan_cut_short_unless_accepted(trap_client: httpx.Client):
    """Through the gateway as over gRPC: CUT_SHORT holds nothing; accept ANY reserves it.

    The first call is not stored, so the same key with a wider acceptance is a new call
    (not 409) and reserves the same plan; the test gives the units back.
    """
    client = trap_client
    k, body = key(), _cut_short(f"CS-{uuid.uuid4().hex[:6]}")
    first = client.post("/v1/orders:route", json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["plan"]["status"] == "SOLVE_STATUS_FEASIBLE"
    assert [s["nodeId"] for s in answer["plan"]["shipments"]] == ["HUB"]
    assert answer["outcome"] == "ROUTE_OUTCOME_CUT_SHORT" and "reservation" not in answer
    assert "accepts proven plans only" in answer["detail"]
    accepted = client.post(
        "/v1/orders:route",
        json={**body, "accept": "PLAN_ACCEPTANCE_ANY"},
        headers={"Idempotency-Key": k},
    )
    assert accepted.status_code == 200, accepted.text
    held = accepted.json()
    assert held["outcome"] == "ROUTE_OUTCOME_RESERVED"
    assert held["plan"]["shipments"] == answer["plan"]["shipments"]
    released = client.post(
        f"/v1/reservations/{held['reservation']['reservationId']}:release",
        headers={"Idempotency-Key": key()},
    )
    assert released.status_code == 200, released.text


def test_plan_explains_with_the_summary_unless_full_is_asked(client: httpx.Client):
    """explain: true is the summary (no model); explainLevel EXPLAIN_LEVEL_FULL adds it."""
    summary = client.post("/v1/orders:plan", json={"order": order(), "explain": True})
    assert summary.status_code == 200, summary.text
    explain = summary.json()["plan"]["explain"]
    assert set(explain) == {"summary"}
    assert [c["nodeId"] for c in explain["summary"]["chosen"]] == ["DC-EAST"]
    full = client.post(
        "/v1/orders:plan", json={"order": order(), "explainLevel": "EXPLAIN_LEVEL_FULL"}
    )
    assert full.status_code == 200, full.text
    assert {"summary", "model", "excluded"} <= set(full.json()["plan"]["explain"])


def test_batch_takes_the_explain_level_and_what_a_route_accepts(client: httpx.Client):
    """Batch query parameters explain_level, accept and max_gap reach every order's request.

    The service checks them: a max_gap with an accept other than within_gap is each
    order's 400 at ``max_gap``. accept or max_gap without mode=route is the batch's 400
    naming the parameter (and so is a max_gap below 0, which the schema refuses).
    """
    body = json.dumps(order()).encode()
    ndjson = {"Content-Type": "application/x-ndjson"}
    planned = client.post("/v1/orders:batch?explain_level=full", content=body, headers=ndjson)
    assert planned.status_code == 200, planned.text
    assert "model" in planned.json()["results"][0]["plan"]["explain"]
    refused = client.post("/v1/orders:batch?accept=any", content=body, headers=ndjson)
    assert "accept" in fields(error_of(refused, 400, "INVALID_ARGUMENT"))
    routed = client.post(
        "/v1/orders:batch?mode=route&accept=any&max_gap=0.5",
        content=body,
        headers={**ndjson, "Idempotency-Key": key()},
    )
    assert routed.status_code == 200, routed.text
    [result] = routed.json()["results"]
    assert result["httpStatus"] == 400 and "max_gap" in fields(result["error"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"topK": "2"}, "top_k"),
        ({"explainLevel": 2}, "explain_level"),
        ({"timeLimit": " 5s"}, "time_limit"),
        ({"timeLimit": "1_0s"}, "time_limit"),
        ({"timeLimit": "5.s"}, "time_limit"),
        ({"order": order(created_at="2026-11-20T14:5:00Z")}, "order.created_at"),
        ({"order": order(lines=[{"line_id": "1", "sku": "SKU-1", "quantity": "2"}])},
         "order.lines[0].quantity"),
    ],
)  # fmt: skip
def test_spellings_the_schema_refuses_are_400(client: httpx.Client, changes: dict, field: str):
    """What proto3 JSON parsers read but the schema refuses is refused too, at its path.

    Quoted numbers, enums by number, Durations with blanks, underscores or a bare point,
    Timestamps without two-digit fields: before, the gateway planned them (200).
    """
    response = client.post("/v1/orders:plan", json={"order": order(), **changes})
    assert field in fields(error_of(response, 400, "INVALID_ARGUMENT"))


def test_nan_and_infinity_are_not_json(client: httpx.Client):
    """``NaN`` in a body is 400 at ``body`` (not JSON), as the schema's numbers are finite."""
    text = json.dumps({"order": order()}).replace('"quantity": 2', '"quantity": NaN')
    assert "NaN" in text
    response = client.post("/v1/orders:plan", content=text.encode())
    assert "body" in fields(error_of(response, 400, "INVALID_ARGUMENT"))


def test_batch_parameters_the_schema_refuses_are_400_for_the_whole_batch(client: httpx.Client):
    """Parameters the schema refuses are 400 for the batch, not 200 with an error per order.

    A blank Idempotency-Key (even with mode=plan, which does not use it), a max_gap below
    0, infinite or NaN, an infinite X-Request-Timeout.
    """
    body, plain = jsonl(order()), {**NDJSON, "Idempotency-Key": key()}
    blank = client.post("/v1/orders:batch", content=body, headers={**NDJSON, "Idempotency-Key": ""})
    assert "Idempotency-Key" in fields(error_of(blank, 400, "INVALID_ARGUMENT"))
    for gap in ("-1", "inf", "nan"):
        url = f"/v1/orders:batch?mode=route&accept=within_gap&max_gap={gap}"
        response = client.post(url, content=body, headers=plain)
        assert "max_gap" in fields(error_of(response, 400, "INVALID_ARGUMENT")), gap
    slow = client.post(
        "/v1/orders:batch", content=body, headers={**NDJSON, "X-Request-Timeout": "inf"}
    )
    assert "X-Request-Timeout" in fields(error_of(slow, 400, "INVALID_ARGUMENT"))


def test_limits_of_the_schema_are_the_services(client: httpx.Client):
    """The schema's maxLength of an id and maxItems of a list are where the service refuses."""
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    longest = spec["OrderLine"]["properties"]["sku"]["maxLength"]
    most = spec["PlanOrderRequest"]["properties"]["counterfactualNodeIds"]["maxItems"]
    lines = [{"line_id": "1", "sku": "S" * (longest + 1), "quantity": 1}]
    response = client.post("/v1/orders:plan", json={"order": order(lines=lines)})
    assert "order.lines[0].sku" in fields(error_of(response, 400, "INVALID_ARGUMENT"))
    nodes = {"order": order(), "counterfactualNodeIds": ["DC-EAST"] * (most + 1)}
    response = client.post("/v1/orders:plan", json=nodes)
    assert "counterfactual_node_ids" in fields(error_of(response, 400, "INVALID_ARGUMENT"))
    nodes["counterfactualNodeIds"] = ["DC-EAST"] * most
    assert client.post("/v1/orders:plan", json=nodes).status_code == 200
