"""Property-based fuzz of every RPC of every router.v1 service, on a real server.

A ``router serve`` process for the tiny scenario (SQLite ledger in a temporary directory,
sweeper off) gets :data:`EXAMPLES` requests per RPC, derandomized (the same on every run):
messages drawn from the proto descriptors, valid requests with fields drawn anew, random
bytes and mutated serialisations, all sent as raw bytes (:mod:`benchmarks.fuzz`). After
every call: no INTERNAL, UNKNOWN, UNAVAILABLE or DEADLINE_EXCEEDED (each call has a 20 s
deadline), an INVALID_ARGUMENT names its fields, and a refused call (or any call of a
read-only RPC) left every table of the ledger as it was; per RPC, the server's peak memory
grew by at most :data:`MEMORY_BOUND_MB` over its peak after start-up. The server runs in
its own process so that its resident set is its own: it counts protobuf's, gRPC's and the
solver's allocations too, which tracemalloc would not see.

``python -m benchmarks.fuzz --surface grpc --examples 10000`` is the long run
(docs/security.md, Fuzzing).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz import service
from benchmarks.fuzz.service import Rpc, Target
from router.v1 import router_pb2

EXAMPLES = 40
"""Requests per RPC."""
MEMORY_BOUND_MB = 256.0
"""The most the server's peak resident set may grow over its peak after start-up."""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A fuzz target: a fresh server on a fresh ledger, two of the scenario's orders held."""
    with service.running(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def baseline_mb(target: Target) -> float:
    """The server's peak resident set after start-up and the two reservations."""
    return target.server.memory_mb()[1]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("rpc", service.rpcs(), ids=lambda rpc: rpc.name)
def test_no_request_breaks_a_property(target: Target, baseline_mb: float, rpc: Rpc) -> None:
    """Every request to the RPC keeps every property; the server's memory stays bounded."""
    statuses = service.fuzz_rpc(target, rpc, EXAMPLES)
    assert sum(statuses.values()) >= EXAMPLES // 2, statuses  # Hypothesis ran the examples
    assert target.server.alive()
    grown = target.server.memory_mb()[1] - baseline_mb
    assert grown <= MEMORY_BOUND_MB, f"peak RSS grew by {grown:.0f} MB"


def test_the_fuzzer_reaches_past_validation(target: Target) -> None:
    """Some of the generated PlanOrder and RouteOrder requests are answered OK.

    Without it the properties would hold trivially: every request refused at the door.
    """
    answered = {rpc.name: service.fuzz_rpc(target, rpc, EXAMPLES) for rpc in service.rpcs()[:2]}
    assert all(statuses["OK"] for statuses in answered.values()), answered


def test_a_refused_call_that_changed_the_ledger_fails_the_check(target: Target) -> None:
    """The state property can fail: a call whose ledger changed yet answered an error fails.

    A valid snapshot is applied (OK, the ledger changes); the check is then told the same
    call answered INVALID_ARGUMENT.
    """
    [snapshot] = [rpc for rpc in service.rpcs() if rpc.name == "ApplyStockSnapshot"]
    target.state = service.ledger_state(target.server.ledger)
    request = router_pb2.ApplyStockSnapshotRequest(
        feed="fuzz-check", sequence=1, node_id="DC-EAST", positions=[{"sku": "SKU-1"}]
    )
    data = request.SerializeToString()
    assert target.call(snapshot, data).code is grpc.StatusCode.OK
    refused = service.Outcome(grpc.StatusCode.NOT_FOUND, "pretend", len(data))
    with pytest.raises(AssertionError, match="changed the ledger"):
        target.check(snapshot, data, refused)


def nested(depth: int) -> str:
    """A YAML document of ``depth`` nested flow sequences."""
    return "name: " + "[" * depth + "]" * depth + "\n"


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],  # no shrinking: each failing call takes seconds
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(depth=st.integers(3000, 20_000))
def test_deeply_nested_rule_documents_are_refused(target: Target, depth: int) -> None:
    """A rule document nested thousands deep is INVALID_ARGUMENT, not INTERNAL."""
    [validate] = [rpc for rpc in service.rpcs() if rpc.name == "ValidateRules"]
    data = router_pb2.ValidateRulesRequest(document=nested(depth)).SerializeToString()
    outcome = target.call(validate, data)
    target.state = service.ledger_state(target.server.ledger)
    target.check(validate, data, outcome)


def test_a_delta_far_below_zero_is_answered(target: Target) -> None:
    """Found by the long run: two deltas of -2**31 on one position are both answered.

    The first takes on hand down to the reserved units; the second would remove 2**31
    more, all clamped, and the count of clamped units does not fit the reply's int32.
    """
    [delta] = [rpc for rpc in service.rpcs() if rpc.name == "ApplyStockDelta"]
    target.state = service.ledger_state(target.server.ledger)
    for sequence in (1, 2):
        request = router_pb2.ApplyStockDeltaRequest(
            feed="fuzz-int32",
            sequence=sequence,
            node_id="DC-WEST",
            deltas=[router_pb2.StockDelta(sku="SKU-3", on_hand_change=-(2**31))],
        )
        data = request.SerializeToString()
        target.check(delta, data, target.call(delta, data))
