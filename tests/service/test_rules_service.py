"""Done when: rule sets are published, activated and rolled back through RulesService.

Routing follows the active version on every replica, on real gRPC and real ledgers. The
small scenario (tests/service/conftest.py) has DC ``west`` (5 A), store ``mid`` (2 A, 3 B)
and DC ``east`` (10 B); its rules are the defaults, named ``default``. Every server here
starts on a ledger of its own (a SQLite file or a fresh PostgreSQL schema), so the startup
bootstrap makes version 1, the scenario's rules, active.
"""

from __future__ import annotations

import ast
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from models.errors import FieldViolation, InvalidArgumentError
from models.rule_versions import RuleActivation, RuleVersion
from models.scenario import Scenario
from router.ledger import open_ledger
from router.ledger.memory import MemoryLedger
from router.rules import publish
from router.rules.document import canonical_text
from router.service.config import ServerConfig
from router.service.convert import order_to_proto
from router.service.server import SERVE_ACTOR, bootstrap_rules, create_server
from router.v1 import router_pb2
from tests.ledger.conftest import ledger_url, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.rules.test_document import DEEP, billion_laughs
from tests.service.conftest import Running, order, run

pytestmark = pytest.mark.timeout(120)

WHO = {"actor": "ana", "reason": "ticket 42"}

HEAVIER_SPLITS = """\
# planners' comments and layout are kept as published
name: default
strategies:
  - name: default
    weights:
      split_penalty:   9.5
"""

UNREACHABLE = """\
name: default
strategies:
  - name: everything
    fallback: backorder
  - name: never
"""


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return ledger_url(backend, tmp_path, request)


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, small_scenario: Scenario
) -> Iterator[Running]:
    """A server for the small scenario on a fresh ledger of each durable backend."""
    yield from run(small_scenario, ledger_url=_url(str(request.param), tmp_path, request))


@pytest.fixture
def sqlite_served(tmp_path: Path, small_scenario: Scenario) -> Iterator[Running]:
    """A server for the small scenario on a fresh SQLite file."""
    yield from run(small_scenario, ledger_url=f"sqlite://{tmp_path / 'ledger.db'}")


def plan_label(running: Running) -> str:
    """The rule_version of a PlanOrder for the scenario's order through ``running``."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(order(("A", 2), ("B", 1))))
    return running.routing.PlanOrder(request, timeout=30).plan.rule_version


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, list[object]]:
    """The code of a failed call and its unpacked BadRequest / PreconditionFailure details."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    details: list[object] = []
    for packed in status.details if status is not None else ():
        for kind in (error_details_pb2.BadRequest, error_details_pb2.PreconditionFailure):
            detail = kind()
            if packed.Unpack(detail):
                details.append(detail)
    return error.code(), details


def bad_fields(error: grpc.RpcError) -> dict[str, str]:
    """The BadRequest field violations of an INVALID_ARGUMENT call, by field."""
    code, details = status_of(error)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    [bad] = details
    assert isinstance(bad, error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad.field_violations}


def versions(running: Running) -> router_pb2.ListRuleVersionsResponse:
    return running.rules.ListRuleVersions(router_pb2.ListRuleVersionsRequest(), timeout=30)


def test_publish_activate_rollback_switch_the_rules_plans_are_made_with(
    served: Running,
) -> None:
    """Plans name the active version, whichever call changed it last.

    v1 at start, still v1 after a publish, v2 once it is activated, v1 again after a
    rollback; the history records who, why and what was active before.
    """
    assert plan_label(served) == "default@v1"
    published = served.rules.PublishRules(
        router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, **WHO), timeout=30
    ).version
    assert (published.version, published.name, published.published_by) == (2, "default", "ana")
    assert plan_label(served) == "default@v1"  # publishing does not activate

    activated = served.rules.ActivateRules(
        router_pb2.ActivateRulesRequest(version=2, **WHO), timeout=30
    ).activation
    assert (activated.version, activated.action, activated.previous) == (2, "activate", 1)
    assert plan_label(served) == "default@v2"

    rolled = served.rules.RollbackRules(
        router_pb2.RollbackRulesRequest(**WHO), timeout=30
    ).activation
    assert (rolled.version, rolled.action, rolled.previous, rolled.by) == (1, "rollback", 2, "ana")
    assert plan_label(served) == "default@v1"

    listed = versions(served)
    assert listed.active_version == 1
    assert [v.version for v in listed.versions] == [1, 2]
    assert all(v.document == "" for v in listed.versions)  # listings carry no documents
    assert [(a.seq, a.version, a.action) for a in listed.activations] == [
        (1, 1, "activate"),
        (2, 2, "activate"),
        (3, 1, "rollback"),
    ]
    # Activating the active version, or rolling back to it, is refused.
    with pytest.raises(grpc.RpcError) as caught:
        served.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=1, **WHO), timeout=30)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        served.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=7, **WHO), timeout=30)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_an_activation_through_one_replica_routes_the_next_order_on_the_other(
    pg_url: str,  # noqa: F811
    small_scenario: Scenario,
) -> None:
    """An activation through one replica routes the other's very next order.

    Two servers on one PostgreSQL schema: the second plans with a version the first
    activated, although it had planned (and cached) v1 before; and the other way round.
    """
    first = run(small_scenario, ledger_url=pg_url)
    second = run(small_scenario, ledger_url=pg_url)
    a, b = next(first), next(second)
    try:
        assert plan_label(a) == plan_label(b) == "default@v1"
        a.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, **WHO), timeout=30
        )
        a.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=2, **WHO), timeout=30)
        assert plan_label(b) == "default@v2"
        b.rules.RollbackRules(router_pb2.RollbackRulesRequest(**WHO), timeout=30)
        assert plan_label(a) == "default@v1"
        route = router_pb2.RouteOrderRequest(
            request_id="r-1", order=order_to_proto(order(("A", 1), order_id="o-r1"))
        )
        assert b.routing.RouteOrder(route, timeout=30).plan.rule_version == "default@v1"
    finally:
        for gen in (first, second):
            gen.close()
    with open_ledger(pg_url) as ledger:  # both replicas bootstrapped one version, once
        assert [a.version for a in ledger.rule_activations()] == [1, 2, 1]


def test_publish_is_refused_on_a_lint_error_and_nothing_is_stored(
    sqlite_served: Running,
) -> None:
    """A lint error refuses a publish: FAILED_PRECONDITION, nothing stored.

    A strategy after an unconditional one that backorders is unreachable: the
    PreconditionFailure has a LINT violation naming its path; no version is added.
    """
    before = versions(sqlite_served)
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=UNREACHABLE, **WHO), timeout=30
        )
    code, details = status_of(caught.value)
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    [failure] = details
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    found = {(v.type, v.subject) for v in failure.violations}
    assert ("LINT", "strategies[1]") in found
    assert all(v.description for v in failure.violations)
    assert versions(sqlite_served) == before


GOLDEN = """\
cases:
  - name: A ships from mid
    order: {order_id: g1, created_at: "2026-11-20T12:00:00Z", ship_to: {latitude: 0.0,
            longitude: 1.0, country: US}, service: ground, lines: [{line_id: l1, sku: A,
            quantity: 2}]}
    expect: {lines: {l1: mid}, strategy: default, fulfilled: true}
"""
GOLDEN_WRONG = (
    GOLDEN
    + """\
  - name: A ships from east
    order: {order_id: g2, created_at: "2026-11-20T12:00:00Z", ship_to: {latitude: 0.0,
            longitude: 1.0, country: US}, service: ground, lines: [{line_id: l1, sku: A,
            quantity: 2}]}
    expect: {lines: {l1: east}}
"""
)
GOLDEN_OWN_STOCK = (
    """\
stock:
  - {node_id: east, sku: A, on_hand: 4}
"""
    + GOLDEN_WRONG
)


def test_publish_is_refused_when_a_golden_case_fails_and_nothing_is_stored(
    sqlite_served: Running,
) -> None:
    """A failing golden case refuses a publish: FAILED_PRECONDITION, nothing stored.

    The case that expects A from east (which holds none) is one GOLDEN violation naming the
    case and what it missed. With every case passing the same document publishes, and the
    results come back.
    """
    before = versions(sqlite_served)
    request = router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, golden=GOLDEN_WRONG, **WHO)
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.PublishRules(request, timeout=30)
    code, details = status_of(caught.value)
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    [failure] = details
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    [violation] = failure.violations
    assert (violation.type, violation.subject) == ("GOLDEN", "A ships from east")
    assert "east" in violation.description
    assert versions(sqlite_served) == before

    ok = sqlite_served.rules.PublishRules(
        router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, golden=GOLDEN, **WHO), timeout=30
    )
    assert ok.version.version == 2
    assert [(r.name, r.passed) for r in ok.results] == [("A ships from mid", True)]


def test_golden_suites_run_against_live_stock_or_their_own(sqlite_served: Running) -> None:
    """TestRules runs a suite against the live stock, or against the suite's own stock.

    With its own stock east holds A; every case is reported; nothing is stored.
    """
    live = sqlite_served.rules.TestRules(
        router_pb2.TestRulesRequest(document=HEAVIER_SPLITS, golden=GOLDEN_WRONG), timeout=30
    )
    assert [(r.name, r.passed) for r in live.results] == [
        ("A ships from mid", True),
        ("A ships from east", False),
    ]
    assert not live.passed
    assert live.results[1].failures and live.results[0].plan.rule_version == "default@draft"
    own = sqlite_served.rules.TestRules(
        router_pb2.TestRulesRequest(document=HEAVIER_SPLITS, golden=GOLDEN_OWN_STOCK), timeout=30
    )
    assert [r.passed for r in own.results] == [False, True]
    assert [v.version for v in versions(sqlite_served).versions] == [1]


def test_invalid_documents_and_requests_name_every_bad_field(sqlite_served: Running) -> None:
    """Bad documents and fields are INVALID_ARGUMENT with a BadRequest naming each.

    Paths are those inside the document (a YAML syntax error names its line); a blank actor
    and reason are named too, in the same answer.
    """
    bad = "name: default\nstrategies:\n  - name: a\n    filters: {max_distance_km: -3}\n"
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.ValidateRules(router_pb2.ValidateRulesRequest(document=bad), timeout=30)
    assert "strategies[0].filters.max_distance_km" in bad_fields(caught.value)

    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.ValidateRules(
            router_pb2.ValidateRulesRequest(document="name: [unclosed\n"), timeout=30
        )
    assert any(f.startswith("document:") for f in bad_fields(caught.value))

    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=bad, actor=" ", reason=""), timeout=30
        )
    fields = bad_fields(caught.value)
    assert {"actor", "reason", "strategies[0].filters.max_distance_km"} <= fields.keys()

    for call, request in (
        (
            sqlite_served.rules.ActivateRules,
            router_pb2.ActivateRulesRequest(version=1, actor="", reason="r"),
        ),
        (sqlite_served.rules.RollbackRules, router_pb2.RollbackRulesRequest(actor="", reason="r")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=30)  # type: ignore[operator]
        assert set(bad_fields(caught.value)) == {"actor"}

    valid = sqlite_served.rules.ValidateRules(
        router_pb2.ValidateRulesRequest(document=HEAVIER_SPLITS), timeout=30
    )
    assert (valid.name, list(valid.strategies)) == ("default", ["default"])
    assert "split_penalty: 9.5" in valid.canonical_document
    assert versions(sqlite_served).active_version == 1


@pytest.mark.parametrize(
    ("document", "field", "says"),
    [
        pytest.param(billion_laughs(9), "document:1", "anchors (&a0) are not allowed", id="laughs"),
        pytest.param(DEEP, "document:2", "nests deeper than", id="deep"),
    ],
)
@pytest.mark.parametrize("rpc", ["ValidateRules", "LintRules"])
def test_hostile_documents_are_invalid_argument_and_log_nothing(
    server: Running,
    caplog: pytest.LogCaptureFixture,
    rpc: str,
    document: str,
    field: str,
    says: str,
) -> None:
    """A billion-laughs or 5,000-deep document is INVALID_ARGUMENT, not INTERNAL, and quiet.

    Before the fix the first grew the server past 13 GB, and the second answered INTERNAL
    and logged a RecursionError's traceback.
    """
    request_type = getattr(router_pb2, f"{rpc}Request")
    with pytest.raises(grpc.RpcError) as caught:
        getattr(server.rules, rpc)(request_type(document=document), timeout=30)
    [(path, description)] = bad_fields(caught.value).items()
    assert path == field and says in description
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_lint_reports_errors_first_with_paths(sqlite_served: Running) -> None:
    """LintRules returns the unreachable strategy as an error, at its path."""
    answer = sqlite_served.rules.LintRules(
        router_pb2.LintRulesRequest(document=UNREACHABLE, orders=[order_to_proto(order(("A", 1)))]),
        timeout=60,
    )
    severities = [f.severity for f in answer.findings]
    assert severities == sorted(severities)  # errors (1) before warnings (2)
    assert any(
        f.code == "unreachable-strategy"
        and f.path == "strategies[1]"
        and f.severity == router_pb2.LINT_SEVERITY_ERROR
        for f in answer.findings
    )


def test_test_drive_has_no_side_effects_and_reports_every_trial(sqlite_served: Running) -> None:
    """TestDrive returns the strategy, step and trials and leaves the ledger as it was.

    With given stock (east holds A) A ships from east; with a published version the plan
    names it; GetStock is the same before and after.
    """
    stock_before = sqlite_served.inventory.GetStock(router_pb2.GetStockRequest(), timeout=30)
    msg = order_to_proto(order(("A", 2)))
    given = [router_pb2.StockPosition(node_id="east", sku="A", on_hand=4)]
    driven = sqlite_served.rules.TestDrive(
        router_pb2.TestDriveRequest(document=UNREACHABLE, order=msg, stock=given, explain=True),
        timeout=30,
    ).plan
    assert driven.rule_version == "default@draft"
    assert [s.node_id for s in driven.shipments] == ["east"]
    assert (driven.strategy, driven.step) == ("everything", "primary")
    assert [(t.strategy, t.outcome) for t in driven.trials] == [
        ("everything", router_pb2.STRATEGY_OUTCOME_APPLIED),
        ("never", router_pb2.STRATEGY_OUTCOME_NOT_REACHED),
    ]
    assert driven.HasField("explain")

    by_version = sqlite_served.rules.TestDrive(
        router_pb2.TestDriveRequest(version=1, order=msg), timeout=30
    ).plan
    assert by_version.rule_version == "default@v1"
    assert {s.node_id for s in by_version.shipments} == {"mid"}  # the live stock
    assert not by_version.HasField("explain")
    after = sqlite_served.inventory.GetStock(router_pb2.GetStockRequest(), timeout=30)
    assert after == stock_before

    bad_order = router_pb2.Order()
    bad_order.CopyFrom(msg)
    bad_order.lines[0].quantity = 0
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.TestDrive(
            router_pb2.TestDriveRequest(
                version=1,
                order=bad_order,
                stock=[router_pb2.StockPosition(node_id="nowhere", sku="A", on_hand=-1)],
            ),
            timeout=30,
        )
    assert {"order.lines[0].quantity", "stock[0].node_id", "stock[0].on_hand"} <= set(
        bad_fields(caught.value)
    )
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.TestDrive(router_pb2.TestDriveRequest(version=9, order=msg), timeout=30)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_diff_shows_the_changed_weight_and_get_returns_the_document_as_published(
    sqlite_served: Running,
) -> None:
    """Get returns the document byte for byte; the diff shows the changed weight.

    The diff of v1 and v2 is of canonical forms; a version against itself is empty; a
    publish of the same text again returns the same version.
    """
    request = router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, **WHO)
    assert sqlite_served.rules.PublishRules(request, timeout=30).version.version == 2
    again = router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, actor="bo", reason="again")
    assert sqlite_served.rules.PublishRules(again, timeout=30).version.version == 2
    got = sqlite_served.rules.GetRuleVersion(
        router_pb2.GetRuleVersionRequest(version=2), timeout=30
    ).version
    assert got.document == HEAVIER_SPLITS
    assert got.published_at.seconds > 0 and got.reason == "ticket 42"
    diff = sqlite_served.rules.DiffRuleVersions(
        router_pb2.DiffRuleVersionsRequest(from_version=1, to_version=2), timeout=30
    ).diff
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "+  weights:\n+    split_penalty: 9.5" in diff
    same = sqlite_served.rules.DiffRuleVersions(
        router_pb2.DiffRuleVersionsRequest(from_version=2, to_version=2), timeout=30
    ).diff
    assert same == ""
    with pytest.raises(grpc.RpcError) as caught:
        sqlite_served.rules.GetRuleVersion(router_pb2.GetRuleVersionRequest(version=5), timeout=30)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_fresh_server_activates_the_scenarios_rules_once(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """A fresh server has v1, the scenario's rules, active; a restart adds nothing.

    The document is the canonical form of the scenario's rules, published by router serve.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for _ in range(2):
        for running in run(small_scenario, ledger_url=url):
            listed = versions(running)
            assert listed.active_version == 1
            assert [(v.version, v.published_by) for v in listed.versions] == [(1, SERVE_ACTOR)]
            assert len(listed.activations) == 1
            document = running.rules.GetRuleVersion(
                router_pb2.GetRuleVersionRequest(version=1), timeout=30
            ).version.document
            assert document == canonical_text(small_scenario.rules)


def test_serve_with_a_rules_file_publishes_and_activates_it_once(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """``router serve --rules`` publishes the file as written and activates it, once.

    On a ledger with v1 the file becomes v2 and active; a restart with it changes nothing.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for running in run(small_scenario, ledger_url=url):  # v1: the scenario's rules
        assert plan_label(running) == "default@v1"
    path = tmp_path / "rules.yaml"
    path.write_text(HEAVIER_SPLITS)
    for _ in range(2):
        for running in run(small_scenario, ledger_url=url, rules_file=path):
            listed = versions(running)
            assert listed.active_version == 2
            assert len(listed.versions) == 2 and len(listed.activations) == 2
            assert plan_label(running) == "default@v2"
            got = running.rules.GetRuleVersion(
                router_pb2.GetRuleVersionRequest(version=2), timeout=30
            ).version
            assert got.document == HEAVIER_SPLITS


def test_replicas_bootstrapping_together_publish_and_activate_once(
    pg_url: str,  # noqa: F811
    small_scenario: Scenario,
) -> None:
    """Four replicas starting at once on an empty schema: one version, one activation."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            with open_ledger(pg_url) as ledger:
                barrier.wait(timeout=30)
                bootstrap_rules(ledger, small_scenario)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with open_ledger(pg_url) as ledger:
        assert [v.version for v in ledger.rule_versions()] == [1]
        assert [a.version for a in ledger.rule_activations()] == [1]


# --- review fixes -----------------------------------------------------------------------

NOWHERE = "name: default\nstrategies:\n  - name: a\n    filters: {nodes: [nowhere]}\n"
"""Valid YAML rules naming a node the small scenario's network lacks."""


def test_activate_and_rollback_refuse_a_version_that_does_not_load_here(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """A version naming a node this network lacks is never made active through the API.

    Stored by another server (another network) on the shared ledger: ActivateRules,
    RollbackRules to it, and a rollback whose previous version it is are each
    FAILED_PRECONDITION naming the version and the unknown node; nothing is recorded and
    plans keep the active version.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    with open_ledger(url) as other:
        for running in run(small_scenario, ledger_url=url):
            other.publish_rules("default", NOWHERE, "elsewhere", "", "", datetime.now(UTC))
            requests: list[tuple[Any, Any]] = [
                (running.rules.ActivateRules, router_pb2.ActivateRulesRequest(version=2, **WHO)),
                (running.rules.RollbackRules, router_pb2.RollbackRulesRequest(to_version=2, **WHO)),
            ]
            for call, request in requests:
                with pytest.raises(grpc.RpcError) as caught:
                    call(request, timeout=30)
                assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
                assert "version 2 does not load" in str(caught.value.details())
                assert "unknown node 'nowhere'" in str(caught.value.details())
            assert len(versions(running).activations) == 1
            # Activated behind the API's back, then replaced: rolling back would return to it.
            other.activate_rules(2, "elsewhere", "other network", datetime.now(UTC))
            running.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=1, **WHO))
            with pytest.raises(grpc.RpcError) as caught:
                running.rules.RollbackRules(router_pb2.RollbackRulesRequest(**WHO), timeout=30)
            assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "version 2 does not load" in str(caught.value.details())
            assert versions(running).active_version == 1
            assert plan_label(running) == "default@v1"


class _Counting(MemoryLedger):
    """A memory ledger that counts the rule-set reads routing makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def active_rules(self) -> RuleVersion | None:
        self.calls["active_rules"] += 1
        return super().active_rules()

    def active_rule_version(self) -> int | None:
        self.calls["active_rule_version"] += 1
        return super().active_rule_version()

    def rule_version(self, version: int) -> RuleVersion:
        self.calls["rule_version"] += 1
        return super().rule_version(version)


def test_routing_reads_the_active_number_and_fetches_a_document_once(
    small_scenario: Scenario,
) -> None:
    """Each routed order reads only the active version's number; documents come on a miss.

    Three plans fetch v1's document once; after v2 is activated (parsed by the activation's
    check) plans fetch nothing more; ``active_rules`` (with its document) is never read.
    """
    ledger = _Counting()
    server, port = create_server(ServerConfig(port=0), small_scenario, ledger)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            running = Running(port, channel)
            ledger.calls.clear()
            assert [plan_label(running) for _ in range(3)] == ["default@v1"] * 3
            assert ledger.calls == Counter(active_rule_version=3, rule_version=1)
            running.rules.PublishRules(
                router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, **WHO), timeout=30
            )
            running.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=2, **WHO))
            ledger.calls.clear()
            assert [plan_label(running) for _ in range(2)] == ["default@v2"] * 2
            assert ledger.calls == Counter(active_rule_version=2)
    finally:
        server.stop(0).wait()


class _Strict(MemoryLedger):
    """A ledger stricter than the API about who may change rules (``by``) and ``to``."""

    def activate_rules(self, version: int, by: str, *args: Any, **kw: Any) -> RuleActivation | None:
        if by == "robot":
            raise InvalidArgumentError([FieldViolation("by", "robots may not activate")])
        return super().activate_rules(version, by, *args, **kw)

    def rollback_rules(self, by: str, reason: str, *args: Any, **kw: Any) -> RuleActivation:
        raise InvalidArgumentError(
            [FieldViolation("by", "no rollbacks"), FieldViolation("to", "no rollbacks")]
        )


def test_clients_see_the_request_fields_never_the_ledgers_argument_names(
    small_scenario: Scenario,
) -> None:
    """Errors name the request's fields (actor, reason, version, to_version), never ``by``.

    Blank or bad fields are named as in the proto; should the ledger refuse ``by`` or
    ``to``, the client still reads ``actor`` and ``to_version``.
    """
    for running in run(small_scenario):
        cases: list[tuple[Any, Any, set[str]]] = [
            (running.rules.ActivateRules, router_pb2.ActivateRulesRequest(version=0),
             {"version", "actor", "reason"}),
            (running.rules.RollbackRules, router_pb2.RollbackRulesRequest(to_version=0),
             {"to_version", "actor", "reason"}),
            (running.rules.PublishRules,
             router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, actor=" ", reason="\n"),
             {"actor", "reason"}),
        ]  # fmt: skip
        for call, request, fields in cases:
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=30)
            assert set(bad_fields(caught.value)) == fields
    ledger = _Strict()
    server, port = create_server(ServerConfig(port=0), small_scenario, ledger)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            running = Running(port, channel)
            request = router_pb2.ActivateRulesRequest(version=1, actor="robot", reason="r")
            with pytest.raises(grpc.RpcError) as caught:
                running.rules.ActivateRules(request, timeout=30)
            assert bad_fields(caught.value) == {"actor": "robots may not activate"}
            rollback = router_pb2.RollbackRulesRequest(to_version=1, actor="ana", reason="r")
            with pytest.raises(grpc.RpcError) as caught:
                running.rules.RollbackRules(rollback, timeout=30)
            assert set(bad_fields(caught.value)) == {"actor", "to_version"}
    finally:
        server.stop(0).wait()


def test_publish_logic_is_pure_and_the_servicer_only_wires_it() -> None:
    """The publish checks live in router/rules/publish.py, which imports no wire types.

    The servicer re-implements none of them (no run_golden, no drive wrapper): what it
    uses comes from router.rules.publish, router.rules.golden and router.engine.
    """
    import router.service.rules as servicer

    path = Path(publish.__file__)
    tree = ast.parse(path.read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else str(node.module)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    wire = ("grpc", "google", "router.v1", "router.service")
    assert not {m for m in imported if m.split(".")[0] in wire or m.startswith(wire)}
    for name in ("publish_checks", "refusals", "parse_document", "lint_text", "suite_skus"):
        assert getattr(servicer, name, None) in (None, getattr(publish, name)), name
    for gone in ("drive", "run_golden"):
        assert not hasattr(servicer, gone), gone
