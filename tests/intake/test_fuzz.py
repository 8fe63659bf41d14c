"""Property-based fuzz of the HTTP intake from its own OpenAPI document (schemathesis).

Every operation of the running gateway's ``/openapi.json`` gets a bounded number of valid
(positive) and invalid (negative) requests (:mod:`benchmarks.fuzz.gateway`): none may
answer 5xx or hang, every negative one must be refused with a 4xx (the schema states the
wire's limits, and the gateway and the service enforce them), and every positive PlanOrder
repaired into an order the scenario can plan must be answered 200. The gateway is the real
``router intake`` process in front of a real ``router serve`` (the ``gateway`` fixture of
conftest.py). ``python -m benchmarks.fuzz --surface http`` is the long run.

The operations are driven with schemathesis' Python API (``operation.as_strategy``) under
Hypothesis rather than ``schemathesis.pytest.from_fixture``: that lazy loader does not run
under pytest 9 (``'Function' object has no attribute '_nodeid'``), and the schema is only
known once the processes run.
"""

from __future__ import annotations

import json
import time

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

from benchmarks.fuzz.gateway import describe, fuzz_operation, load, takes, takes_batch

MAX_EXAMPLES = 30
"""Generated requests per operation and generation mode."""


@pytest.fixture(scope="module")
def api_schema(gateway: str) -> schemathesis.BaseSchema:
    """The gateway's OpenAPI document, as it serves it."""
    return load(gateway)


@pytest.mark.timeout(300)
def test_no_operation_answers_a_server_error_or_hangs(
    api_schema: schemathesis.BaseSchema, gateway: str
) -> None:
    """Requests to every operation: never 5xx, never a hang, the schema's limits enforced.

    Every negative request is refused with a 4xx; every plannable positive PlanOrder is
    answered 200.
    """
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
            seen = statuses.setdefault(label, {})
            try:
                fuzz_operation(operation, mode, gateway, seen, MAX_EXAMPLES)
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
