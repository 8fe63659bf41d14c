"""The gRPC surface under fuzz: a real ``router serve`` process, its ledger, the properties.

:class:`ServerProcess` runs the server in a child process (:mod:`benchmarks.fuzz.serve`)
on a SQLite ledger, with the sweeper off, so that nothing but the fuzzer's calls changes
the ledger. Memory is measured as the child's resident set (``VmHWM``, its peak, from
``/proc``): it counts what a request costs the whole server — Python objects, protobuf's
and gRPC's C allocations, the solver — without slowing the server down; tracemalloc would
see Python's allocations only and slow every one of them.

:func:`fuzz_rpc` sends one RPC many requests (:func:`benchmarks.fuzz.strategies.request_bytes`,
all as raw bytes) and checks after each one (:meth:`Target.check`):

- the status is one the API answers for a request (OK, INVALID_ARGUMENT, NOT_FOUND,
  FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED; RESOURCE_EXHAUSTED only for a message over
  the server's receive limit): never INTERNAL or UNKNOWN, never DEADLINE_EXCEEDED (every
  call has a deadline of :data:`CALL_TIMEOUT_S`), never UNAVAILABLE;
- an INVALID_ARGUMENT carries a ``google.rpc.BadRequest`` naming at least one field;
- a refused call, and any call of a read-only RPC, leaves the ledger (every table, row by
  row) as it was;

and at the end that the server's peak memory grew by at most ``memory_bound_mb``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from benchmarks.fuzz import processes
from benchmarks.fuzz.found import Found
from benchmarks.fuzz.strategies import Vocabulary, request_bytes
from router.scenario import read_scenario
from router.service.limits import MAX_RECEIVE_MESSAGE_BYTES
from router.v1 import router_pb2, router_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny"
"""The default scenario: three nodes, three SKUs; every call is quick."""
CALL_TIMEOUT_S = 20.0
"""Every call's deadline; a call that reaches it fails the run (DEADLINE_EXCEEDED)."""
_C = grpc.StatusCode
ANSWERS = frozenset(
    {
        _C.OK,
        _C.INVALID_ARGUMENT,
        _C.NOT_FOUND,
        _C.FAILED_PRECONDITION,
        _C.ALREADY_EXISTS,
        _C.ABORTED,
    }
)
"""The statuses the API answers requests with (docs/api.md, Errors)."""
ACTOR, REASON = "fuzzer", "fuzzing"
"""Who makes the rule-set changes of the valid requests, and why."""
READ_ONLY = frozenset(
    {
        "PlanOrder",
        "PlanWave",
        "GetStock",
        "ListCalendars",
        "ValidateRules",
        "LintRules",
        "TestRules",
        "TestDrive",
        "ListRuleVersions",
        "GetRuleVersion",
        "DiffRuleVersions",
        "GetReservation",
        "ListReservations",
        "GetDecision",
        "ListDecisions",
        "ReplayDecision",
    }
)
"""RPCs that never change the ledger, whatever they answer (PlanOrder asked to record
logs its plan: the decision log's tables aside)."""
DECISION_LOG = frozenset({"decisions", "decision_nodes", "decision_calendars"})
"""The decision log's tables."""


@dataclass(frozen=True)
class Rpc:
    """One method of a router.v1 service."""

    service: str
    name: str
    request: Descriptor
    streaming: bool = False
    """Whether the server answers with a stream of messages (PlanWave)."""

    @property
    def path(self) -> str:
        """The method's path on the wire, ``/router.v1.RoutingService/PlanOrder``."""
        return f"/{self.service}/{self.name}"


def rpcs() -> list[Rpc]:
    """Every method of every router.v1 service, in the proto's order."""
    return [
        Rpc(service.full_name, method.name, method.input_type, method.server_streaming)
        for service in router_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


class ServerProcess:
    """``router serve`` in a child process on ``scenario`` and a SQLite ledger at ``ledger``."""

    def __init__(self, scenario: Path, ledger: Path, log: Path) -> None:
        self.ledger = ledger
        self.log = log
        command = [sys.executable, "-m", "benchmarks.fuzz.serve", "--scenario", str(scenario)]
        command += ["--ledger", f"sqlite://{ledger}"]
        self.process, self.address = processes.start(command, log, cwd=ROOT)

    def memory_mb(self) -> tuple[float, float]:
        """The server's resident set now and at its peak, in MB (``VmRSS``, ``VmHWM``)."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s)."""
        processes.stop(self.process)


def ledger_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the SQLite ledger at ``path``, its rows sorted."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"'), key=repr) for t in sorted(tables)}


@dataclass
class Outcome:
    """What one call answered."""

    code: grpc.StatusCode
    details: str
    size: int
    """Bytes of the request."""
    error: grpc.RpcError | None = None


@dataclass
class Target:
    """A running server, a channel to it, the words and valid requests to fuzz it with."""

    server: ServerProcess
    channel: grpc.Channel
    vocabulary: Vocabulary
    seeds: Mapping[str, Sequence[Message]]
    state: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def call(self, rpc: Rpc, data: bytes) -> Outcome:
        """Send ``data`` as the request of ``rpc``, raw (no serializer), with the deadline.

        A streaming answer is read to its end: its status is the call's.
        """
        try:
            if rpc.streaming:
                stream = self.channel.unary_stream(
                    rpc.path, request_serializer=None, response_deserializer=None
                )
                for _ in stream(data, timeout=CALL_TIMEOUT_S):
                    pass
            else:
                method = self.channel.unary_unary(
                    rpc.path, request_serializer=None, response_deserializer=None
                )
                method(data, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            call = cast(grpc.Call, error)
            return Outcome(call.code(), call.details() or "", len(data), error)
        return Outcome(_C.OK, "", len(data))

    def check(self, rpc: Rpc, data: bytes, outcome: Outcome) -> None:
        """Raise :class:`PropertyFailure` when a property of the call does not hold.

        The properties are the module's; the ledger read after the call becomes the state
        the next call is compared with.
        """
        code = outcome.code
        problems = []
        oversize = outcome.size > MAX_RECEIVE_MESSAGE_BYTES
        if code not in ANSWERS | ({_C.RESOURCE_EXHAUSTED} if oversize else set()):
            problems.append(f"answered {code.name}: {outcome.details[:300]}")
        if code is _C.INVALID_ARGUMENT and not bad_request_fields(outcome.error):
            problems.append(f"INVALID_ARGUMENT without a BadRequest: {outcome.details[:300]}")
        before, self.state = self.state, ledger_state(self.server.ledger)
        if code is not _C.OK or rpc.name in READ_ONLY:
            changed = [t for t in self.state if self.state[t] != before.get(t)]
            if code is _C.OK and rpc.name == "PlanOrder" and _records(data):
                changed = [t for t in changed if t not in DECISION_LOG]
            if changed:
                problems.append(f"answered {code.name} and changed the ledger: {changed}")
        if problems:
            raise PropertyFailure(rpc, data, "; ".join(problems))


class PropertyFailure(AssertionError):
    """A call that broke a property: ``summary`` says which, without the request's bytes."""

    def __init__(self, rpc: Rpc, data: bytes, summary: str) -> None:
        self.summary = f"{rpc.name} {summary}"
        super().__init__(f"{rpc.name} ({len(data)} bytes: {data[:200]!r}) {summary}")


def bad_request_fields(error: grpc.RpcError | None) -> list[str]:
    """The field paths of the BadRequest details of ``error`` (empty when it has none)."""
    if error is None:
        return []
    status = rpc_status.from_call(cast(grpc.Call, error))
    fields: list[str] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


Progress = Callable[[Rpc, int, Counter[str]], None]


def fuzz_rpc(
    target: Target,
    rpc: Rpc,
    examples: int,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    statuses: Counter[str] | None = None,
    found: Found | None = None,
) -> Counter[str]:
    """Call ``rpc`` with ``examples`` generated requests, checking each; the statuses seen.

    Without ``seed`` the inputs are derandomized (the same on every run). A failing input
    is shrunk and raised with Hypothesis' report, unless ``found`` is given: then each
    failure is counted there and the run goes on (the long run). ``statuses`` counts the
    answers by code as they come, also when the run ends in a failure.
    """
    strategy = request_bytes(rpc.request, target.vocabulary, target.seeds.get(rpc.name, ()))
    statuses = Counter() if statuses is None else statuses
    target.state = ledger_state(target.server.ledger)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=seed is None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(data=strategy)
    def run(data: bytes) -> None:
        outcome = target.call(rpc, data)
        statuses[outcome.code.name] += 1
        try:
            target.check(rpc, data, outcome)
        except PropertyFailure as failure:
            if found is None:
                raise
            found.add(failure.summary, str(failure))
        if progress is not None:
            progress(rpc, sum(statuses.values()), statuses)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    run()
    return statuses


# --- the words and valid requests of a scenario ------------------------------------------


def vocabulary(scenario_dir: Path, reservation_ids: Sequence[str] = ()) -> Vocabulary:
    """Ids of the scenario (and some it lacks), its rule set and a golden suite on it."""
    scenario = read_scenario(scenario_dir)
    network = scenario.network
    rules = (scenario_dir / "rules.yaml").read_text()
    golden = golden_suite(scenario_dir)
    nodes = [n.node_id for n in network.nodes] + ["NO-SUCH-NODE", ""]
    skus = [*sorted(network.skus), "NO-SUCH-SKU", " "]
    words: dict[str, list[str]] = {
        "sku": skus,
        "skus": skus,
        "node_id": nodes,
        "node_ids": nodes,
        "pickup_node_id": nodes,
        "counterfactual_node_ids": nodes,
        "service": [*network.rates.services, "teleport"],
        "country": ["US", "us", "CA", ""],
        "postal_code": ["10001", "60601", "", "ZZZZZ"],
        "region": ["NY", "IL", ""],
        "deliver_by": ["2026-11-24", "2026-02-30", "2999-12-31", "tomorrow"],
        "closed_days": ["MON", "SAT", "SUN", "2026-12-25", "2026-13-01", "FUNDAY"],
        "order_id": ["O-1", "O-2", "FUZZ-1"],
        "line_id": ["1", "2", "1"],
        "channel": ["web", "app"],
        "segment": ["member", "business"],
        "request_id": ["fuzz-1", "fuzz-2", "fuzz-3", ""],
        "reservation_id": [*reservation_ids, "no-such-reservation"],
        "feed": ["fuzz", "erp"],
        "actor": ["fuzzer", " "],
        "reason": ["fuzzing", ""],
        "document": [rules, "", "name: x\nstrategies: []\n", "{", "- 1"],
        "golden": [golden, "", "cases: []\n"],
    }
    return Vocabulary(words=words, documents=(rules, golden))


def _records(data: bytes) -> bool:
    """Whether a PlanOrder request (as sent) asks to log its plan."""
    try:
        return router_pb2.PlanOrderRequest.FromString(data).record
    except DecodeError:
        return False


def golden_suite(scenario_dir: Path) -> str:
    """A one-case golden suite on the scenario's first order: every unit ships."""
    first = json.loads((scenario_dir / "orders.jsonl").read_text().splitlines()[0])
    case = {"name": "first order ships", "order": first, "expect": {"fulfilled": True}}
    return json.dumps({"cases": [case]}, indent=1) + "\n"  # JSON is YAML


def seeds(scenario_dir: Path, reservation_ids: Sequence[str]) -> dict[str, list[Message]]:
    """Valid requests of every RPC on the scenario, for mutation (by RPC name)."""
    v1 = router_pb2
    orders = [
        json_format.ParseDict(json.loads(line), v1.Order())
        for line in (scenario_dir / "orders.jsonl").read_text().splitlines()
        if line.strip()
    ]
    rules = (scenario_dir / "rules.yaml").read_text()
    golden = golden_suite(scenario_dir)
    position = v1.SnapshotPosition(sku=orders[0].lines[0].sku, on_hand=50, safety_stock=1)
    node = orders[0].pickup_node_id or "DC-EAST"
    reservation = reservation_ids[0] if reservation_ids else "r"
    return {
        "PlanOrder": [v1.PlanOrderRequest(order=o, top_k=2, explain=True) for o in orders],
        "PlanWave": [
            v1.PlanWaveRequest(orders=orders),
            v1.PlanWaveRequest(orders=orders[:2], explain_level=v1.EXPLAIN_LEVEL_SUMMARY),
        ],
        "RouteOrder": [v1.RouteOrderRequest(request_id="fuzz-1", order=orders[0])],
        "ConfirmReservation": [
            v1.ConfirmReservationRequest(request_id="fuzz-c", reservation_id=reservation)
        ],
        "ReleaseReservation": [
            v1.ReleaseReservationRequest(request_id="fuzz-r", reservation_id=reservation)
        ],
        "RejectShipment": [
            v1.RejectShipmentRequest(
                request_id="fuzz-x",
                reservation_id=reservation,
                node_id=node,
                lines=[v1.ReservationLine(sku=position.sku, quantity=1)],
                reason="not on the shelf",
                corrected_on_hand=0,
            )
        ],
        "GetStock": [v1.GetStockRequest(), v1.GetStockRequest(skus=[position.sku])],
        "ApplyStockSnapshot": [
            v1.ApplyStockSnapshotRequest(
                feed="fuzz", sequence=1, node_id=node, positions=[position]
            )
        ],
        "ApplyStockDelta": [
            v1.ApplyStockDeltaRequest(
                feed="fuzz",
                sequence=2,
                node_id=node,
                deltas=[v1.StockDelta(sku=position.sku, on_hand_change=-1)],
            )
        ],
        "ListCalendars": [v1.ListCalendarsRequest()],
        "SetCalendar": [
            v1.SetCalendarRequest(calendar=v1.Calendar(node_id=node, closed_days=["SUN"]))
        ],
        "ValidateRules": [v1.ValidateRulesRequest(document=rules)],
        "LintRules": [v1.LintRulesRequest(document=rules, orders=orders)],
        "TestRules": [v1.TestRulesRequest(document=rules, golden=golden)],
        "TestDrive": [
            v1.TestDriveRequest(document=rules, order=orders[0]),
            v1.TestDriveRequest(version=1, order=orders[0], explain=True),
        ],
        "PublishRules": [
            v1.PublishRulesRequest(document=rules, golden=golden, actor=ACTOR, reason=REASON)
        ],
        "ActivateRules": [v1.ActivateRulesRequest(version=1, actor=ACTOR, reason=REASON)],
        "RollbackRules": [v1.RollbackRulesRequest(actor=ACTOR, reason=REASON)],
        "ListRuleVersions": [v1.ListRuleVersionsRequest()],
        "GetRuleVersion": [v1.GetRuleVersionRequest(version=1)],
        "DiffRuleVersions": [v1.DiffRuleVersionsRequest(from_version=1, to_version=1)],
        "ListDecisions": [v1.ListDecisionsRequest(), v1.ListDecisionsRequest(node_id=node)],
        "GetDecision": [v1.GetDecisionRequest(decision_id="D-0")],
        "ReplayDecision": [v1.ReplayDecisionRequest(decision_id="D-0", compare_now=True)],
    }


def reserve(channel: grpc.Channel, scenario_dir: Path, count: int = 2) -> list[str]:
    """Route the scenario's first orders for real; the ids of the reservations they hold."""
    routing = router_pb2_grpc.RoutingServiceStub(channel)
    ids = []
    for i, line in enumerate((scenario_dir / "orders.jsonl").read_text().splitlines()[:count]):
        order = json_format.ParseDict(json.loads(line), router_pb2.Order())
        request = router_pb2.RouteOrderRequest(request_id=f"fuzz-setup-{i}", order=order)
        request.ttl.FromSeconds(7 * 24 * 3600)
        answer = routing.RouteOrder(request, timeout=CALL_TIMEOUT_S)
        if answer.reservation.reservation_id:
            ids.append(answer.reservation.reservation_id)
    return ids


@contextmanager
def running(workdir: Path, scenario_dir: Path = TINY) -> Iterator[Target]:
    """A fuzz target: a fresh server on a fresh ledger in ``workdir``, two orders reserved."""
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.db"
    for stale in workdir.glob("ledger.db*"):
        os.remove(stale)
    server = ServerProcess(scenario_dir, ledger, workdir / "serve.log")
    try:
        with grpc.insecure_channel(server.address) as channel:
            held = reserve(channel, scenario_dir)
            yield Target(server, channel, vocabulary(scenario_dir, held), seeds(scenario_dir, held))
    finally:
        server.stop()
