"""The example rules and golden orders in docs/examples work on the sample network.

They are what docs/rules.md and the README show, so they must stay true: the rules lint
clean on the sample's 1,000 orders, every golden case passes, and each case guards the
rule it is named after (removing that rule fails it, and only it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.scenario import Scenario
from router.rules.document import load_rules
from router.rules.golden import load_suite, run_suite
from router.rules.lint import lint_rules
from router.sample import sample_scenario

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
RULES = (EXAMPLES / "rules.yaml").read_text()
GOLDEN = (EXAMPLES / "golden.yaml").read_text()


@pytest.fixture(scope="module")
def sample() -> Scenario:
    return sample_scenario()


def failing(sample: Scenario, rules_text: str) -> list[str]:
    rules = load_rules(rules_text, "rules.yaml", sample.network)
    suite = load_suite(GOLDEN, "golden.yaml", sample.network)
    return [r.name for r in run_suite(suite, rules, sample.network, sample.stock) if not r.passed]


def test_example_rules_lint_clean_on_the_sample_orders(sample: Scenario) -> None:
    """No error and no warning, the weight check on all sample orders included."""
    rules = load_rules(RULES, "rules.yaml", sample.network)
    assert lint_rules(rules, sample.network, sample.stock, sample.orders) == ()


def test_every_golden_case_passes(sample: Scenario) -> None:
    """The suite passes against the rules as written."""
    assert failing(sample, RULES) == []


@pytest.mark.parametrize(
    ("rule", "replacement", "case"),
    [
        (
            "min_buffer_by_node_type: {store: 1}",
            "min_buffer_by_node_type: {store: 0}",
            "a store's last unit is not sold online",
        ),
        (
            "filters: {node_types: [dc]}",
            "filters: {}",
            "hazardous goods beyond the DCs' stock are rejected",
        ),
        (
            "no_split_below_value: 25",
            "no_split_below_value: 0",
            "a small order ships in one parcel",
        ),
        (
            "constraints: {sla: hard}",
            "constraints: {sla: soft}",
            "a member's promise nobody can keep moves by a day, not more",
        ),
    ],
)
def test_each_case_guards_its_rule(
    sample: Scenario, rule: str, replacement: str, case: str
) -> None:
    """Without the rule a case is named after, that case, and only it, fails."""
    assert rule in RULES
    assert failing(sample, RULES.replace(rule, replacement)) == [case]
