"""Lint finds each problem it lists in a rule set made to contain it, and nothing on defaults.

The fixtures use the three-node network of tests/engine/test_route.py (STORE, NEAR, FAR).
"""

from __future__ import annotations

import dataclasses

import pytest

from models.rules import RuleSet
from router.engine import route_order
from router.rules.document import load_rules
from router.rules.lint import Finding, Severity, errors, lint_rules
from router.sample import sample_scenario
from tests.engine.conftest import CREATED, order, stock
from tests.engine.test_route import everywhere, net, sla_net


def lint(text: str, **kwargs: object) -> list[tuple[str, str]]:
    """(code, path) of every finding on the rule set in ``text``."""
    found = lint_rules(load_rules(text, "rules.yaml", net()), net(), **kwargs)  # type: ignore[arg-type]
    return [(f.code, f.path) for f in found]


FIXTURES = [
    (
        "unreachable-strategy",
        """
name: t
strategies:
  - name: everything
  - name: catch-all
""",
        ("unreachable-strategy", "strategies[1]"),
    ),
    (
        "shadowed by a wider condition",
        """
name: t
strategies:
  - name: web-or-app
    when: {channel: [web, app], order_value: {min: 10}}
    fallback: reject
  - name: web-big
    when: {channel: [web], order_value: {min: 100, max: 500}}
  - name: rest
""",
        ("unreachable-strategy", "strategies[1]"),
    ),
    (
        "empty order-value range",
        """
name: t
strategies:
  - name: odd
    when: {order_value: {min: 100, max: 50}}
  - name: rest
""",
        ("unsatisfiable-condition", "strategies[0].when.order_value"),
    ),
    (
        "unknown service",
        """
name: t
strategies:
  - name: air
    when: {service: [air_freight]}
  - name: rest
""",
        ("unsatisfiable-condition", "strategies[0].when.service"),
    ),
    (
        "attribute no SKU has",
        """
name: t
strategies:
  - name: frozen
    when: {sku_attribute: [frozen]}
  - name: rest
""",
        ("unsatisfiable-condition", "strategies[0].when.sku_attribute"),
    ),
    (
        "ship-complete with max shipments 0",
        """
name: t
strategies:
  - name: s
    constraints: {ship_complete: true, max_shipments: 0}
""",
        ("contradictory-constraints", "strategies[0].constraints.max_shipments"),
    ),
    (
        "filters exclude every node",
        """
name: t
strategies:
  - name: s
    filters: {node_types: [dropship]}
""",
        ("excludes-every-node", "strategies[0].filters"),
    ),
    (
        "tags and exclusions cancel out",
        """
name: t
strategies:
  - name: s
    filters: {node_tags: [urban], exclude_nodes: [STORE]}
""",
        ("excludes-every-node", "strategies[0].filters"),
    ),
    (
        "same country where no node is",
        """
name: t
strategies:
  - name: canada
    when: {country: [CA]}
    filters: {same_country: true}
  - name: rest
""",
        ("excludes-every-node", "strategies[0].filters"),
    ),
    (
        "last strategy conditional",
        """
name: t
strategies:
  - name: web
    when: {channel: [web]}
""",
        ("missing-final-fallback", "strategies[0].when"),
    ),
    (
        "last strategy falls back to next",
        """
name: t
strategies:
  - name: s
    fallback: next
""",
        ("missing-final-fallback", "strategies[0].fallback"),
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_each_problem_is_found_as_an_error(name: str, text: str, expected: tuple[str, str]) -> None:
    """The fixture's problem, and only it, is reported, as an error at its path."""
    found = lint_rules(load_rules(text, "rules.yaml", net()), net())
    assert [(f.code, f.path) for f in found] == [expected]
    assert errors(found) == found


def test_a_next_fallback_keeps_later_strategies_reachable() -> None:
    """An unconditional strategy that falls back to next does not shadow the ones after."""
    text = "name: t\nstrategies:\n  - name: a\n    fallback: next\n  - name: b\n"
    assert lint(text) == []


def test_a_narrower_earlier_condition_does_not_shadow() -> None:
    """web-only first does not hide a later web-or-app strategy (app orders reach it)."""
    text = (
        "name: t\nstrategies:\n  - name: web\n    when: {channel: [web]}\n    fallback: reject\n"
        "  - name: web-or-app\n    when: {channel: [web, app]}\n  - name: rest\n"
    )
    assert lint(text) == []


IDLE = """
name: t
strategies:
  - name: s
    weights: {split_penalty: 4, distance_cost_per_km: 0.01, priority_bonus: 0.001}
"""


def test_weights_that_change_no_plan_are_warnings() -> None:
    """Weights that cannot change a plan on the given orders are reported as warnings.

    On a one-line order without a deliver-by date the split and (inherited) lateness
    penalties never apply, and a 0.001 priority bonus (at most 0.01 a shipment) is too
    small to matter; the distance weight does matter (it moves the order from FAR to NEAR).
    """
    found = lint_rules(
        load_rules(IDLE, "rules.yaml", net()), net(), everywhere("A"), [order(("A", 1))]
    )
    assert [(f.path, f.severity) for f in found] == [
        ("defaults.weights.lateness_penalty_per_day", Severity.WARNING),
        ("strategies[0].weights.priority_bonus", Severity.WARNING),
        ("strategies[0].weights.split_penalty", Severity.WARNING),
    ]
    assert {f.code for f in found} == {"weight-changes-nothing"}
    assert errors(found) == ()


def test_an_inherited_weight_counts_if_any_heir_needs_it() -> None:
    """A defaults weight idle in one strategy but decisive in another is not reported.

    'stores' ships only from STORE, so a distance weight changes nothing there; in 'rest'
    it moves the order from FAR to NEAR.
    """
    text = (
        "name: t\ndefaults: {weights: {distance_cost_per_km: 0.01}}\nstrategies:\n"
        "  - name: stores\n    when: {channel: [web]}\n    filters: {node_types: [store]}\n"
        "  - name: rest\n"
    )
    web = dataclasses.replace(order(("A", 1)), channel="web")
    found = lint_rules(
        load_rules(text, "rules.yaml", net()), net(), everywhere("A"), [web, order(("A", 1))]
    )
    assert "defaults.weights.distance_cost_per_km" not in [f.path for f in found]
    alone = lint_rules(load_rules(text, "rules.yaml", net()), net(), everywhere("A"), [web])
    assert "defaults.weights.distance_cost_per_km" in [f.path for f in alone]


def test_a_weight_that_matters_only_after_relaxing_the_sla_is_not_idle() -> None:
    """Lint routes orders through fallbacks, so a weight deciding at a relax step counts.

    Due the day it is created, both nodes are late and a hard SLA excludes them; relaxed
    by 3 days both are on time, and only the distance weight makes QUICK (11 + 1.11) beat
    SLOW (10 + 6.67).
    """
    text = (
        "name: t\nstrategies:\n  - name: s\n"
        "    weights: {distance_cost_per_km: 0.01, lateness_penalty_per_day: 0}\n"
        "    constraints: {sla: hard}\n"
        "    fallback: {relax_sla: {step_days: 3, max_days: 3}}\n"
    )
    due_today = order(("A", 1), deliver_by=CREATED.date())
    both = stock(("QUICK", "A", 5), ("SLOW", "A", 5))
    ruled = load_rules(text, "rules.yaml", sla_net())
    plan = route_order(due_today, sla_net(), both, ruled)
    assert (plan.step, [x.node_id for x in plan.shipments]) == ("relax_sla+3d", ["QUICK"])
    found = lint_rules(ruled, sla_net(), both, [due_today])
    assert "strategies[0].weights.distance_cost_per_km" not in [f.path for f in found]


def test_weight_check_needs_orders() -> None:
    """Without orders the weights are not judged."""
    assert lint(IDLE) == []


def test_findings_read_as_a_line() -> None:
    """A finding prints as severity, path, message and code."""
    finding = Finding("unreachable-strategy", Severity.ERROR, "strategies[1]", "never reached")
    assert str(finding) == "error: strategies[1]: never reached [unreachable-strategy]"


def test_default_rules_are_clean_on_the_sample_network_and_orders() -> None:
    """The default rules lint clean on the sample, the weight check included.

    Both default weights change some of the 1,000 sample orders' plans.
    """
    scenario = sample_scenario()
    assert scenario.rules == RuleSet()
    found = lint_rules(scenario.rules, scenario.network, scenario.stock, scenario.orders)
    assert found == ()
