"""The HTTP gateway under fuzz: schemathesis from its own OpenAPI document.

Every operation of the running gateway's ``/openapi.json`` gets valid (positive) and
invalid (negative) requests, driven with schemathesis' Python API
(``operation.as_strategy``) under Hypothesis. What must hold (:func:`fuzz_operation`):

- no request answers 5xx, and none hangs (each has :data:`REQUEST_TIMEOUT_S`);
- a negative request, one that breaks the schema (a string over its ``maxLength``, a list
  over its ``maxItems``, a ``topK`` of 11, a ``timeLimit`` of ``"0s"``), is refused with
  a 4xx: what the schema states, the gateway and the service enforce. (A batch body is
  JSON lines, any text: a line that is not an Order is that order's 400 in a 200 answer,
  by design, so a batch's body is not held to this; its parameters are.) A request whose
  line and headers exceed the gateway's :data:`~router.intake.config.MAX_HEAD_BYTES` is
  refused before it is read (400, the connection closed, often before the client reads
  the answer): counted as refused, under :data:`HEAD_REFUSED`;
- a positive PlanOrder request repaired into an order the tiny scenario can plan (known
  SKUs, service and ship-to) is answered 200, whatever its other fields hold within the
  schema (``topK``, ``timeLimit``, ``maxShipments``, ``explainLevel``...): what the
  schema allows, the service accepts.

Random schema-valid orders almost never name the scenario's SKUs, hence the repair,
applied to half of the positive PlanOrder requests and to batches; RouteOrder bodies are
left as generated, so that the fuzz reserves no stock. A valid X-Request-Timeout is set
to 5 s: a deadline the client chose too short is rightly answered 504.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from benchmarks.fuzz import processes
from benchmarks.fuzz.found import Found
from router.intake.config import MAX_HEAD_BYTES

Case = schemathesis.Case[Any]

TINY = Path(__file__).resolve().parents[2] / "tests" / "data" / "tiny"
"""The scenario the gateway's service runs (the repairs name its SKUs and nodes)."""

REQUEST_TIMEOUT_S = 15.0
"""No single call may take longer (the gateway's own deadline is 5 s by default)."""
IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_TIMEOUT = "X-Request-Timeout"
CLIENT_DEADLINE_S = "5"
"""A valid X-Request-Timeout is replaced by this (``5e-324`` is rightly a 504)."""
REPAIRED = "x-fuzz-repaired"
"""Marks a case repaired into a plannable order (a header the gateway ignores)."""
HEAD_REFUSED = 431
"""Counts the requests refused for their head's size (the gateway answers 400 and closes)."""

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


def load(base_url: str, seed: int = 1) -> schemathesis.BaseSchema:
    """The gateway's OpenAPI document, as it serves it."""
    config = schemathesis.Config.from_dict({"seed": seed, "request-timeout": REQUEST_TIMEOUT_S})
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def declares_idempotency_key(operation: Any) -> bool:
    """Whether the operation takes an Idempotency-Key header."""
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
    """Whether ``value`` reads as a number above 0."""
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
    """A generated Order (proto3 JSON) made valid for the tiny scenario.

    Its id, lines, service, ship-to and dates are replaced (the scenario's SKUs, at most
    5 lines of 1 to 5 units: the schema cannot state that the units of all lines are at
    most 1,000,000 together); its flags and ``maxShipments`` are kept as generated.
    """
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
        orderId=f"FUZZ-{seed}",
        createdAt="2026-11-20T15:00:00Z",
        service=SERVICES[seed % len(SERVICES)],
        shipTo=SHIP_TOS[seed % len(SHIP_TOS)],
        lines=lines,
    )
    order.pop("pickupNodeId", None)
    if order.get("deliverBy"):
        order["deliverBy"] = "2026-11-24"
    return order


def plannable(case: Case) -> Case:
    """The case with its PlanOrderRequest body made valid for the tiny scenario.

    The order is repaired (:func:`plannable_order`) and so are the rules the schema cannot
    state: counterfactual nodes are nodes of the scenario, and ``explain: true`` goes with
    an ``explainLevel`` other than NONE. ``topK``, ``timeLimit`` and the rest stay.
    """
    body = dict(case.body) if isinstance(case.body, dict) else {}
    seed = len(json.dumps(body, default=str))
    body["order"] = plannable_order(body.get("order"), seed)
    nodes = body.get("counterfactualNodeIds")
    if isinstance(nodes, list):
        body["counterfactualNodeIds"] = [NODES[i % len(NODES)] for i in range(len(nodes))]
    if body.get("explainLevel") == "EXPLAIN_LEVEL_NONE" and body.get("explain"):
        body["explain"] = False
    case.body = body
    # A copy: the generated headers may be an object other cases share, and the mark must
    # reach this case only (a shared one marked cases of other operations as repaired).
    case.headers = type(case.headers)(case.headers)
    case.headers[REPAIRED] = "1"
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


Seen = dict[int, int]
Progress = Callable[[int], None]


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    seen: Seen,
    examples: int,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    found: Found | None = None,
) -> None:
    """Call ``operation`` with ``examples`` requests of ``mode``; raise at a failure.

    ``seen`` counts the answers by HTTP status. Without ``seed`` the requests are the same
    on every run. With ``found`` each failure is counted there and the run goes on.
    """
    key = declares_idempotency_key(operation)
    cases = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE and takes(operation, "PlanOrderRequest"):
        cases = st.one_of(cases, cases.map(plannable))
    if mode is GenerationMode.POSITIVE and takes_batch(operation):
        cases = st.one_of(cases, cases.map(plannable_batch))

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=seed is None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=cases)
    def run(case: Case) -> None:
        headers = case.headers  # case-insensitive
        repaired = headers.pop(REPAIRED, None) is not None  # valid throughout: headers too
        if key and (repaired or mode is GenerationMode.POSITIVE or IDEMPOTENCY_KEY not in headers):
            # A fresh request_id per call: a valid key, never a replay with another body.
            headers[IDEMPOTENCY_KEY] = uuid.uuid4().hex
        if REQUEST_TIMEOUT in headers and (repaired or positive_number(headers[REQUEST_TIMEOUT])):
            headers[REQUEST_TIMEOUT] = CLIENT_DEADLINE_S
        try:
            response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as error:
            if _head_size(case, base_url) > MAX_HEAD_BYTES:
                seen[HEAD_REFUSED] = seen.get(HEAD_REFUSED, 0) + 1
                return
            if found is None:
                raise
            summary = f"{operation.label} ({mode.value}): no answer, {type(error).__name__}"
            found.add(summary, describe(error))
            return
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        try:
            _check(operation, mode, case, response, repaired)
        except (AssertionError, FailureGroup) as failure:
            if found is None:
                raise
            summary = f"{operation.label} ({mode.value}) answered {response.status_code}"
            found.add(summary, describe(failure))
        if progress is not None:
            progress(sum(seen.values()))

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    run()


def _check(operation: Any, mode: GenerationMode, case: Case, response: Any, repaired: bool) -> None:
    """Raise when the answer to ``case`` breaks a property (see the module's docstring)."""
    case.validate_response(response, checks=_checks(operation, mode, case))
    if repaired:
        assert response.status_code == 200, (
            f"a plannable order within the schema was refused:\n"
            f"{json.dumps(case.body)[:2000]}\n{response.text[:2000]}"
        )
    if response.status_code == 200 and takes_batch(operation):
        # A batch answers 200 with a status per order: none of them may be 5xx either.
        inner = [r.get("httpStatus") for r in response.json().get("results", [])]
        assert all(isinstance(s, int) and s < 500 for s in inner), response.text[:2000]


def _head_size(case: Case, base_url: str) -> int:
    """Bytes of the request line and headers ``case`` is sent with (about)."""
    prepared = requests.Request(**case.as_transport_kwargs(base_url)).prepare()
    return len(prepared.url or "") + sum(len(k) + len(v) + 4 for k, v in prepared.headers.items())


def _checks(operation: Any, mode: GenerationMode, case: Case) -> list[Any]:
    """No 5xx ever; a negative request refused, unless only a batch's body is negated."""
    if mode is not GenerationMode.NEGATIVE:
        return [not_a_server_error]
    if takes_batch(operation) and _only_body_negated(case):
        return [not_a_server_error]
    return [not_a_server_error, negative_data_rejection]


def _only_body_negated(case: Case) -> bool:
    """Whether the case breaks the schema only in its body, or by extra query parameters.

    The gateway ignores query parameters it does not know, as schemathesis allows.
    """
    data = case.meta.phase.data if case.meta is not None else None
    if data is None:
        return False
    mutations = getattr(data, "mutations", ())
    if not mutations:
        return data.parameter_location is ParameterLocation.BODY
    return all(
        m.parameter_location is ParameterLocation.BODY
        or (
            m.parameter_location is ParameterLocation.QUERY and "additionalProperties" in m.keywords
        )
        for m in mutations
    )


def describe(error: BaseException) -> str:
    """The failure, its sub-failures and Hypothesis' notes (the falsifying request)."""
    text = str(error) + "".join(f"\n  {note}" for note in getattr(error, "__notes__", []))
    if isinstance(error, BaseExceptionGroup):
        text += "".join(f"\n  {type(e).__name__}: {e}" for e in error.exceptions)
    return text[:4000]


@contextmanager
def running(workdir: Path, scenario_dir: Path = TINY) -> Iterator[str]:
    """``router serve`` (SQLite ledger in ``workdir``) and a gateway before it; its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("gateway-ledger.db*"):
        stale.unlink()
    router = str(Path(sys.executable).parent / "router")
    ledger = f"sqlite://{workdir / 'gateway-ledger.db'}"
    serve = [router, "serve", "--scenario", str(scenario_dir), "--ledger", ledger, "--port", "0"]
    serve += ["--metrics-port", "0"]
    with processes.running(serve, workdir / "gateway-serve.log") as target:
        intake = [router, "intake", "--port", "0", "--target", target, "--metrics-port", "0"]
        with processes.running(intake, workdir / "gateway-intake.log") as address:
            yield f"http://{address}"
