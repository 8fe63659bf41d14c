"""What a rule set must pass to be published or activated; pure, no wire types.

``RulesService`` (router/service/rules.py), the start-up bootstrap of ``router serve``
(router/service/server.py) and ``router rules`` (router/cli.py) all run these, so a
document is held to the same checks however it reaches the ledger:

- :func:`parse_document` validates a request's document against the network, with paths
  inside the document;
- :func:`publish_checks` lints it and runs the golden suite when one is given; lint
  errors and failing cases refuse (:class:`RulesRefusedError`, one refusal each);
- :func:`version_rules` parses a stored version against this server's network before it
  is activated or rolled back to (:class:`RuleVersionStateError` when it does not load).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from models.errors import (
    FieldViolation,
    InvalidArgumentError,
    Refusal,
    RulesRefusedError,
    RuleVersionStateError,
    Violations,
)
from models.network import Network, Stock
from models.rule_versions import RuleVersion
from models.rules import RuleSet
from router.rules.document import load_rules, parse_rules
from router.rules.golden import CaseResult, GoldenSuite, run_suite
from router.rules.lint import Finding, Severity, lint_rules

DOCUMENT = "document"
"""The request field holding a rule-set document; its YAML syntax errors read ``document:7``."""

LINT = "LINT"
"""Refusal kind of a lint error (subject: its path in the document)."""
GOLDEN_CASE = "GOLDEN"
"""Refusal kind of a failing golden case (subject: the case's name)."""


def parse_document(text: str, v: Violations, network: Network | None) -> RuleSet | None:
    """The rule set of a request's ``document``; every violation recorded in ``v``.

    Paths are those inside the document (``strategies[2].filters.max_distance_km``); a YAML
    syntax error names its line (``document:7``), an empty document ``document``.
    """
    if not text.strip():
        v.add(DOCUMENT, "must not be empty")
        return None
    found = Violations()
    rules = parse_rules(text, DOCUMENT, found, network)
    prefix = f"{DOCUMENT}:"
    for item in found.items:
        inner = item.field.removeprefix(prefix)
        keep = inner == item.field or not inner or inner.isdigit()
        v.extend([item if keep else FieldViolation(inner, item.description)])
    return rules


def suite_skus(suite: GoldenSuite) -> set[str]:
    """The SKUs the suite's orders ask for (the live stock a run needs)."""
    return {line.sku for case in suite.cases for line in case.order.lines}


def refusals(findings: Sequence[Finding], results: Sequence[CaseResult]) -> list[Refusal]:
    """Why a publish is refused: each lint error and each failing golden case."""
    out = [
        Refusal(LINT, f.path, f"{f.message} [{f.code}]")
        for f in findings
        if f.severity is Severity.ERROR
    ]
    out += [Refusal(GOLDEN_CASE, r.name, "; ".join(r.failures)) for r in results if not r.passed]
    return out


def publish_checks(
    rules: RuleSet, network: Network, suite: GoldenSuite | None = None, live: Stock | None = None
) -> tuple[tuple[Finding, ...], tuple[CaseResult, ...]]:
    """Lint ``rules`` and run ``suite`` (when given); the warnings and the results.

    The suite runs as :func:`router.rules.golden.run_suite` runs it (on its own stock when
    it has some, else on ``live``), and its orders on that stock are the orders lint judges
    the weights on. Without a suite lint sees no orders. Raises :class:`RulesRefusedError`
    naming every lint error and every failing case; both checks run first, so one refusal
    lists every problem.
    """
    results: tuple[CaseResult, ...] = ()
    if suite is None:
        findings = lint_rules(rules, network)
    else:
        stock = live if live is not None else Stock.of(())
        results = run_suite(suite, rules, network, stock)
        # Lint plans the suite's orders on the stock their cases ran on.
        seen = suite.stock if suite.stock is not None else stock
        findings = lint_rules(rules, network, seen, [case.order for case in suite.cases])
    refused = refusals(findings, results)
    if refused:
        raise RulesRefusedError(refused)
    return tuple(f for f in findings if f.severity is Severity.WARNING), results


def lint_text(warnings: Sequence[Finding]) -> str:
    """Lint warnings as stored with a version: one per line."""
    return "\n".join(str(w) for w in warnings)


def version_rules(version: RuleVersion, network: Network) -> RuleSet:
    """The rule set of a stored ``version`` on ``network``, labelled ``name@vN``.

    Raises :class:`RuleVersionStateError` naming every problem when the document does not
    load on this network (e.g. it names a node the network lacks): such a version must not
    become active here, or every plan would fail.
    """
    where = f"v{version.version}"
    try:
        rules = load_rules(version.document, where, network)
    except InvalidArgumentError as exc:
        problems = "; ".join(str(x) for x in exc.violations)
        raise RuleVersionStateError(
            f"version {version.version} does not load on this server's network: {problems}"
        ) from exc
    return replace(rules, version=version.version)
