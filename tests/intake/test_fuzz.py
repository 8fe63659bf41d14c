"""Property-based fuzz of the HTTP intake from its own OpenAPI document (schemathesis).

Every operation of the running gateway's ``/openapi.json`` gets a bounded number of valid
(positive) and invalid (negative) requests; none may answer 5xx, and none may hang. The
gateway is the real ``router intake`` process in front of a real ``router serve`` (the
``gateway`` fixture of conftest.py).

Random schema-valid orders almost never name the scenario's SKUs, so half of the positive
PlanOrder requests are repaired into orders the router can plan (known SKUs and services,
a valid date and a ship-to by coordinates or US postal code), keeping the generated flags,
ids and counts; those reach the solver. RouteOrder bodies are left as generated: the
ledger is shared with the other tests, and the fuzz must not reserve its stock.

The operations are driven with schemathesis' Python API (``operation.as_strategy``) under
Hypothesis rather than ``schemathesis.pytest.from_fixture``: that lazy loader does not run
under pytest 9 (``'Function' object has no attribute '_nodeid'``), and the schema is only
known once the processes run.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

Case = schemathesis.Case[Any]

MAX_EXAMPLES = 30
"""Generated requests per operation and generation mode."""

REQUEST_TIMEOUT_S = 15.0
"""No single call may take longer (the gateway's own deadline is 5 s by default)."""

FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure quickly
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)

IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_TIMEOUT = "X-Request-Timeout"
CLIENT_DEADLINE_S = "5"
"""A valid X-Request-Timeout is replaced by this: a deadline the client chose too short
(``5e-324``) is rightly answered 504, which is not what this test looks for."""

SKUS = ("SKU-1", "SKU-2", "SKU-3")
NODES = ("DC-EAST", "DC-WEST", "ST-CHI")
SERVICES = ("ground", "next_day")
SHIP_TOS = (
    {"country": "US", "postalCode": "10001"},
    {"country": "us", "postalCode": "60601-1234", "region": "IL"},
    {"latitude": 36.1699, "longitude": -115.1398, "country": "US"},
)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: object) -> bytes:
    """JSON lines are sent as they are generated (a string), lone surrogates and all."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def api_schema(gateway: str) -> schemathesis.BaseSchema:
    """The gateway's OpenAPI document, as it serves it."""
    config = schemathesis.Config.from_dict({"seed": 1, "request-timeout": REQUEST_TIMEOUT_S})
    return schemathesis.openapi.from_url(f"{gateway}/openapi.json", config=config)


def declares_idempotency_key(operation: Any) -> bool:
    return any(
        p.location.value == "header" and p.name.lower() == IDEMPOTENCY_KEY.lower()
        for p in operation.iter_parameters()
    )


def takes(operation: Any, message: str) -> bool:
    """Whether the operation's JSON body is the router.v1 ``message``."""
    body = json.dumps(operation.definition.raw.get("requestBody", {}))
    return f'"#/components/schemas/{message}"' in body


def takes_batch(operation: Any) -> bool:
    """Whether the operation takes a batch of orders as JSON lines."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    return "application/x-ndjson" in content


def positive_number(value: object) -> bool:
    try:
        number = float(str(value))
    except ValueError:
        return False
    return number > 0


def whole(value: object, low: int, high: int) -> int:
    """A generated number folded into ``low..high``."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return low + abs(number) % (high - low + 1)


def plannable_order(raw: object, seed: int) -> dict[str, Any]:
    """A generated Order (proto3 JSON) made valid for the tiny scenario, flags kept."""
    order: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    raw_lines = order.get("lines")
    generated = [x for x in raw_lines if isinstance(x, dict)] if isinstance(raw_lines, list) else []
    lines = [
        {
            "lineId": str(i + 1),
            "sku": SKUS[(seed + i) % len(SKUS)],
            "quantity": whole(line.get("quantity"), 1, 5),
            "unitPrice": whole(line.get("unitPrice"), 0, 500),
        }
        for i, line in enumerate((generated or [{}])[:5])
    ]
    order.update(
        orderId=order.get("orderId") or f"FUZZ-{seed}",
        createdAt="2026-11-20T15:00:00Z",
        service=SERVICES[seed % len(SERVICES)],
        shipTo=SHIP_TOS[seed % len(SHIP_TOS)],
        lines=lines,
    )
    order.pop("pickupNodeId", None)
    if order.get("deliverBy"):
        order["deliverBy"] = "2026-11-24"
    if "maxShipments" in order:
        order["maxShipments"] = whole(order["maxShipments"], 1, 3)
    return order


def plannable(case: Case) -> Case:
    """The case with its PlanOrderRequest body made valid for the tiny scenario."""
    body = dict(case.body) if isinstance(case.body, dict) else {}
    seed = len(json.dumps(body, default=str))
    body["order"] = plannable_order(body.get("order"), seed)
    if "topK" in body:
        body["topK"] = whole(body["topK"], 0, 10)
    if "timeLimit" in body:
        body["timeLimit"] = "0.5s"
    if "counterfactualNodeIds" in body:
        body["counterfactualNodeIds"] = list(NODES[: whole(seed, 0, len(NODES))])
    case.body = body
    return case


def plannable_batch(case: Case) -> Case:
    """The case as a JSON-lines batch of 1 to 3 valid orders to plan (never to route)."""
    seed = len(str(case.body))
    orders = [
        plannable_order({"orderId": f"FUZZ-{seed}-{i}"}, seed + i) for i in range(1 + seed % 3)
    ]
    case.media_type = "application/x-ndjson"
    case.body = "\n".join(json.dumps(order) for order in orders) + "\n"
    case.query = {**(case.query or {}), "mode": "plan"}
    return case


def fuzz(operation: Any, mode: GenerationMode, base_url: str, seen: dict[int, int]) -> None:
    """Call ``operation`` with up to MAX_EXAMPLES requests of ``mode``; raise at a failure."""
    key = declares_idempotency_key(operation)
    cases = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE and takes(operation, "PlanOrderRequest"):
        cases = st.one_of(cases, cases.map(plannable))
    if mode is GenerationMode.POSITIVE and takes_batch(operation):
        cases = st.one_of(cases, cases.map(plannable_batch))

    @FUZZ
    @given(case=cases)
    def run(case: Case) -> None:
        headers = case.headers  # case-insensitive
        if key and (mode is GenerationMode.POSITIVE or IDEMPOTENCY_KEY not in headers):
            # A fresh request_id per call: a valid key, never a replay with another body.
            headers[IDEMPOTENCY_KEY] = uuid.uuid4().hex
        if positive_number(headers.get(REQUEST_TIMEOUT)):
            headers[REQUEST_TIMEOUT] = CLIENT_DEADLINE_S
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code == 200 and takes_batch(operation):
            # A batch answers 200 with a status per order: none of them may be 5xx either.
            inner = [r.get("httpStatus") for r in response.json().get("results", [])]
            assert all(isinstance(s, int) and s < 500 for s in inner), response.text[:2000]

    run()


def describe(error: BaseException) -> str:
    """The failure, its sub-failures and Hypothesis' notes (the falsifying request)."""
    text = str(error) + "".join(f"\n  {note}" for note in getattr(error, "__notes__", []))
    if isinstance(error, BaseExceptionGroup):
        text += "".join(f"\n  {type(e).__name__}: {e}" for e in error.exceptions)
    return text[:4000]


@pytest.mark.timeout(300)
def test_no_operation_answers_a_server_error_or_hangs(
    api_schema: schemathesis.BaseSchema, gateway: str
) -> None:
    """Positive and negative requests to every operation: never 5xx, never a hang."""
    operations = []
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"the gateway's OpenAPI document is broken: {result.err()}")
        operations.append(result.ok())
    assert operations, "the gateway's OpenAPI document lists no operations"
    statuses: dict[str, dict[int, int]] = {}
    failures: dict[str, str] = {}
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            try:
                fuzz(operation, mode, gateway, statuses.setdefault(label, {}))
            except (Exception, FailureGroup) as error:  # a 5xx, a timeout, a broken schema
                failures[label] = f"{type(error).__name__}: {describe(error)}"
    elapsed = time.monotonic() - started
    summary = json.dumps(statuses, indent=1, sort_keys=True)
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    assert all(statuses.values()), f"an operation was never called:\n{summary}"
    print(f"fuzzed {len(operations)} operations in {elapsed:.1f} s:\n{summary}")
    planned = [
        label
        for operation in operations
        if takes(operation, "PlanOrderRequest") or takes_batch(operation)
        for label in [f"{operation.label} (positive)"]
        if statuses[label].get(200)
    ]
    assert len(planned) == 2, f"repaired orders did not reach the router:\n{summary}"
