"""The RulesService servicer: rule sets checked, driven, published, activated, compared.

It validates, lints, tests and test-drives rule-set documents; publishes, activates and
rolls back versions in the ledger; lists, shows and diffs them. The checks themselves are
pure (router/rules/publish.py, shared with ``router serve`` and ``router rules``); this
module adds the wire: requests in, :func:`validate_response`, :func:`lint_response` and
:func:`test_response` out (the command line prints the same answers for local files).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import grpc

from models.engines import DEFAULT_TIME_LIMIT_S
from models.errors import FieldViolation, InvalidArgumentError, Violations
from models.network import Network, Stock
from models.order import Order
from models.rule_versions import RuleVersion
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.candidates import ship_window
from router.engine.solve import ENGINES, FAST
from router.ledger import Ledger
from router.rules.document import canonical_text, diff_rules, load_rules
from router.rules.drive import drive_order
from router.rules.golden import CaseResult, parse_suite, run_suite
from router.rules.lint import Finding, lint_rules
from router.rules.publish import lint_text, parse_document, publish_checks, suite_skus
from router.service.access import audited_actor
from router.service.convert import (
    explain_level_from_proto,
    golden_result_to_proto,
    lint_finding_to_proto,
    order_from_proto,
    plan_to_proto,
    rule_activation_to_proto,
    rule_version_to_proto,
    stock_from_proto,
)
from router.service.errors import abort_on_error
from router.service.network import LiveNetwork
from router.service.routing import RuleSets, request_stop
from router.v1 import router_pb2, router_pb2_grpc

GOLDEN = "golden"
"""The request field holding a golden-order suite; its violations read ``golden:cases[0]…``."""

_PROTO_FIELDS = {"by": "actor", "to": "to_version", "name": "document", "lint": "document"}
"""The ledger's argument names that differ from the request fields they come from (the
rule set's name, and the lint findings stored with it, come from its document)."""


# --- the answers, shared with the command line --------------------------------------------


def validate_response(rules: RuleSet) -> router_pb2.ValidateRulesResponse:
    """What ValidateRules answers for a valid rule set."""
    return router_pb2.ValidateRulesResponse(
        name=rules.name,
        strategies=[s.name for s in rules.strategies],
        canonical_document=canonical_text(rules),
    )


def lint_response(findings: Sequence[Finding]) -> router_pb2.LintRulesResponse:
    """What LintRules answers: every finding, errors first (as lint orders them)."""
    return router_pb2.LintRulesResponse(findings=[lint_finding_to_proto(f) for f in findings])


def test_response(results: Sequence[CaseResult]) -> router_pb2.TestRulesResponse:
    """What TestRules answers: one result per case, and whether all passed."""
    return router_pb2.TestRulesResponse(
        results=[golden_result_to_proto(r) for r in results],
        passed=all(r.passed for r in results),
    )


def required_text(value: str, field: str, v: Violations) -> None:
    """Record a violation on ``field`` when ``value`` is blank."""
    if not value.strip():
        v.add(field, "must not be empty")


def check_version_field(value: int, field: str, v: Violations) -> None:
    """Record a violation on ``field`` when the version number ``value`` is below 1."""
    if value < 1:
        v.add(field, f"must be >= 1, got {value}")


def check_change(actor: str, reason: str, v: Violations) -> None:
    """A publish, activation or rollback names who (``actor``) and why (``reason``)."""
    required_text(actor, "actor", v)
    required_text(reason, "reason", v)


@contextmanager
def request_fields() -> Iterator[None]:
    """Re-name the ledger's argument violations after the request fields (``by`` → ``actor``).

    The servicer checks its requests itself, with the proto's field names, before it calls
    the ledger; should the ledger still refuse an argument, the client is told the field
    it sent, not the ledger's parameter.
    """
    try:
        yield
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(
            FieldViolation(_PROTO_FIELDS.get(x.field, x.field), x.description)
            for x in exc.violations
        ) from exc


# --- the servicer ----------------------------------------------------------------------


class RulesServicer(router_pb2_grpc.RulesServiceServicer):
    """Rule sets on ``scenario``'s network, versions in ``ledger``.

    ``rule_sets`` is the parsed-version cache shared with routing; ``engine`` and
    ``default_time_limit_s`` plan test drives and golden cases as routing plans orders,
    on the same network (``network``: the scenario's with the ledger's calendars).
    """

    def __init__(
        self,
        scenario: Scenario,
        ledger: Ledger,
        rule_sets: RuleSets,
        *,
        default_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        engine: str = FAST,
        network: LiveNetwork | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
        self._live_network = network or LiveNetwork(ledger, scenario.network)
        self._ledger = ledger
        self._rule_sets = rule_sets
        self._default_time_limit_s = default_time_limit_s
        self._engine = engine

    @property
    def _network(self) -> Network:
        """The network as routing plans on it now (calendars from the ledger)."""
        return self._live_network.current()

    def _rules(self, document: str) -> RuleSet:
        v = Violations()
        rules = parse_document(document, v, self._network)
        v.raise_if_any()
        assert rules is not None
        return rules

    def _live(self, skus: set[str]) -> Stock:
        return self._ledger.stock(skus)

    def _loads(self, version: RuleVersion) -> None:
        """Refuse (RuleVersionStateError) a version that does not load on this network.

        Called by the ledger with the version about to become active; a version that
        loads is parsed into the cache routing reads, ready for the next request.
        """
        self._rule_sets.of(version)

    def ValidateRules(
        self, request: router_pb2.ValidateRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.ValidateRulesResponse:
        """The document's name, strategies and canonical form; INVALID_ARGUMENT if bad."""
        with abort_on_error(context):
            return validate_response(self._rules(request.document))

    def LintRules(
        self, request: router_pb2.LintRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.LintRulesResponse:
        """Every lint finding; the weight check runs on the given orders and live stock."""
        with abort_on_error(context):
            v = Violations()
            rules = parse_document(request.document, v, self._network)
            orders = []
            for i, msg in enumerate(request.orders):
                try:
                    orders.append(order_from_proto(msg, self._network))
                except InvalidArgumentError as exc:  # re-pathed from order… to orders[i]…
                    v.extend(
                        FieldViolation(f"orders[{i}]{x.field.removeprefix('order')}", x.description)
                        for x in exc.violations
                    )
            v.raise_if_any()
            assert rules is not None
            stock = self._live({line.sku for o in orders for line in o.lines}) if orders else None
            return lint_response(lint_rules(rules, self._network, stock, orders))

    def TestRules(
        self, request: router_pb2.TestRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.TestRulesResponse:
        """Run the golden suite under the document; its own stock, else the live stock."""
        with abort_on_error(context):
            v = Violations()
            rules = parse_document(request.document, v, self._network)
            suite = parse_suite(request.golden, GOLDEN, v, self._network)
            v.raise_if_any()
            assert rules is not None and suite is not None
            results = run_suite(suite, rules, self._network, self._live(suite_skus(suite)))
            return test_response(results)

    def TestDrive(
        self, request: router_pb2.TestDriveRequest, context: grpc.ServicerContext
    ) -> router_pb2.TestDriveResponse:
        """Plan one order under a document or a published version; no side effects."""
        with abort_on_error(context):
            v = Violations()
            which = request.WhichOneof("rules")
            rules: RuleSet | None = None
            if which == "document":
                rules = parse_document(request.document, v, self._network)
            elif which == "version":
                check_version_field(request.version, "version", v)
            else:
                v.add("rules", "set document or version")
            order: Order | None = None
            try:
                order = order_from_proto(request.order, self._network)
            except InvalidArgumentError as exc:
                v.extend(exc.violations)
            explain = explain_level_from_proto(request.explain, request.explain_level, v)
            given: Stock | None = None
            if request.stock:
                try:
                    given = stock_from_proto(request.stock, self._network)
                except InvalidArgumentError as exc:
                    v.extend(exc.violations)
            v.raise_if_any()
            assert order is not None
            if which == "version":
                rules = self._rule_sets.of(self._ledger.rule_version(request.version))
            assert rules is not None
            stock = given if given is not None else self._live({ln.sku for ln in order.lines})
            network = self._network
            used = self._ledger.capacity_used(*ship_window(order, network))
            stop = request_stop(None, self._default_time_limit_s, context)
            plan = drive_order(
                order, network, stock, rules, explain,
                capacity_used=used, stop=stop, engine=self._engine,
            )  # fmt: skip
            return router_pb2.TestDriveResponse(plan=plan_to_proto(plan, explain=explain))

    def PublishRules(
        self, request: router_pb2.PublishRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.PublishRulesResponse:
        """Validate, lint, test, then store the next version (idempotent by digest)."""
        with abort_on_error(context):
            v = Violations()
            actor = audited_actor(request.actor)
            check_change(actor, request.reason, v)
            rules = parse_document(request.document, v, self._network)
            suite = None
            if request.golden.strip():
                suite = parse_suite(request.golden, GOLDEN, v, self._network)
            v.raise_if_any()
            assert rules is not None
            live = self._live(suite_skus(suite)) if suite is not None else Stock.of(())
            warnings, results = publish_checks(rules, self._network, suite, live)
            # The reply is built before the version is stored, so that nothing can fail
            # after the commit; the ledger checks that the version's own fields can be
            # stored (and so sent).
            response = router_pb2.PublishRulesResponse(
                findings=[lint_finding_to_proto(w) for w in warnings],
                results=[golden_result_to_proto(r) for r in results],
            )
            with request_fields():
                stored = self._ledger.publish_rules(
                    rules.name,
                    request.document,
                    actor.strip(),
                    request.reason.strip(),
                    lint_text(warnings),
                    datetime.now(UTC),
                ).version
            response.version.CopyFrom(rule_version_to_proto(stored, document=True))
            return response

    def ActivateRules(
        self, request: router_pb2.ActivateRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.ActivateRulesResponse:
        """Make a published version active; recorded with who, when and why.

        The version must load on this server's network (FAILED_PRECONDITION otherwise).
        """
        with abort_on_error(context):
            v = Violations()
            check_version_field(request.version, "version", v)
            actor = audited_actor(request.actor)
            check_change(actor, request.reason, v)
            v.raise_if_any()
            with request_fields():
                activation = self._ledger.activate_rules(
                    request.version,
                    actor.strip(),
                    request.reason.strip(),
                    datetime.now(UTC),
                    check=self._loads,
                )
            assert activation is not None, "an unconditional activation records one"
            return router_pb2.ActivateRulesResponse(activation=rule_activation_to_proto(activation))

    def RollbackRules(
        self, request: router_pb2.RollbackRulesRequest, context: grpc.ServicerContext
    ) -> router_pb2.RollbackRulesResponse:
        """Go back to the version active before the current one, or to ``to_version``.

        The target must load on this server's network (FAILED_PRECONDITION otherwise).
        """
        with abort_on_error(context):
            v = Violations()
            to = request.to_version if request.HasField("to_version") else None
            if to is not None:
                check_version_field(to, "to_version", v)
            actor = audited_actor(request.actor)
            check_change(actor, request.reason, v)
            v.raise_if_any()
            with request_fields():
                activation = self._ledger.rollback_rules(
                    actor.strip(),
                    request.reason.strip(),
                    datetime.now(UTC),
                    to,
                    check=self._loads,
                )
            return router_pb2.RollbackRulesResponse(activation=rule_activation_to_proto(activation))

    def ListRuleVersions(
        self, request: router_pb2.ListRuleVersionsRequest, context: grpc.ServicerContext
    ) -> router_pb2.ListRuleVersionsResponse:
        """Every version (no documents), the activation history and the active version."""
        with abort_on_error(context):
            activations = self._ledger.rule_activations()
            return router_pb2.ListRuleVersionsResponse(
                versions=[
                    rule_version_to_proto(rv, document=False) for rv in self._ledger.rule_versions()
                ],
                activations=[rule_activation_to_proto(a) for a in activations],
                active_version=activations[-1].version if activations else 0,
            )

    def GetRuleVersion(
        self, request: router_pb2.GetRuleVersionRequest, context: grpc.ServicerContext
    ) -> router_pb2.GetRuleVersionResponse:
        """One version with its document as published; NOT_FOUND when there is none."""
        with abort_on_error(context):
            v = Violations()
            check_version_field(request.version, "version", v)
            v.raise_if_any()
            stored = self._ledger.rule_version(request.version)
            return router_pb2.GetRuleVersionResponse(
                version=rule_version_to_proto(stored, document=True)
            )

    def DiffRuleVersions(
        self, request: router_pb2.DiffRuleVersionsRequest, context: grpc.ServicerContext
    ) -> router_pb2.DiffRuleVersionsResponse:
        """A unified diff of two versions' canonical documents, labelled ``vA`` and ``vB``."""
        with abort_on_error(context):
            v = Violations()
            check_version_field(request.from_version, "from_version", v)
            check_version_field(request.to_version, "to_version", v)
            v.raise_if_any()
            old = self._ledger.rule_version(request.from_version)
            new = self._ledger.rule_version(request.to_version)
            # Parsed without the network: a diff is about the text, not about this network.
            diff = diff_rules(
                load_rules(old.document, f"v{old.version}"),
                load_rules(new.document, f"v{new.version}"),
                f"v{old.version}",
                f"v{new.version}",
            )
            return router_pb2.DiffRuleVersionsResponse(diff=diff)
