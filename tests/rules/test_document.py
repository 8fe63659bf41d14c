"""Hostile and careless rule documents are refused as violations, quickly and in little memory.

Each test here failed before rule documents were read strictly (issue 16): a document of a
few hundred bytes could stand for billions of values, deep nesting raised RecursionError,
a key given twice silently won, and ``"5"`` or ``yes`` passed as a number or a boolean.
"""

from __future__ import annotations

import tracemalloc

import pytest
import yaml

from models.errors import InvalidArgumentError, Violations
from router.rules.document import NOT_READ, load_rules, parse_rules, read_yaml
from tests.engine.test_route import net

pytestmark = pytest.mark.timeout(60)


def billion_laughs(levels: int) -> str:
    """The "billion laughs" rule document: ``9 ** levels`` strings in a few hundred bytes.

    Each anchor ``a<i>`` is a list of nine aliases of the one before; the last is the
    value of a number the validator must refuse (and, before the fix, quoted whole).
    """
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    lines += [
        "name: laughs",
        "strategies:",
        f"  - {{name: s, weights: {{split_penalty: *a{levels - 1}}}}}",
    ]
    return "\n".join(lines) + "\n"


DEEP = "name: deep\nstrategies: " + "[" * 5_000 + "]" * 5_000 + "\n"
"""A rule document nested 5,000 lists deep: 10 KB."""


def violations(text: str) -> list[str]:
    """The violations of rule document ``text``, as ``field: description``."""
    v = Violations()
    parse_rules(text, "rules.yaml", v)
    return [str(x) for x in v.items]


def test_billion_laughs_is_refused_at_its_first_anchor_in_little_memory() -> None:
    """Nine levels of aliases (387 million strings) are refused, peaking under 2 MB.

    Before the fix the server grew past 13 GB building the message for split_penalty.
    """
    text = billion_laughs(9)
    assert len(text.encode()) < 600
    tracemalloc.start()
    try:
        found = violations(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    assert found == [
        "rules.yaml:1: is not valid YAML: anchors (&a0) are not allowed in rule documents: "
        "write the value out where it is used (line 1, column 5)"
    ]


def test_an_alias_is_refused_with_its_line_and_column() -> None:
    """An alias is refused where it stands, even when it names no anchor."""
    text = "name: x\nstrategies:\n  - name: s\n    weights: *shared\n"
    assert violations(text) == [
        "rules.yaml:4: is not valid YAML: aliases (*shared) are not allowed in rule documents: "
        "write the value out (line 4, column 14)"
    ]


def test_deep_nesting_is_a_violation_not_a_recursion_error() -> None:
    """5,000 nested lists are refused at the level past the limit, on the line they start."""
    [found] = violations(DEEP)
    assert found.startswith("rules.yaml:2: is not valid YAML: nests deeper than ")


def test_any_failure_while_reading_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the parser itself fail (here a RecursionError), the document is refused."""

    def fail(self: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(yaml.SafeLoader, "get_single_data", fail)
    v = Violations()
    assert read_yaml("name: x\n", "document", v) is NOT_READ
    assert [str(x) for x in v.items] == ["document: cannot be read as YAML (RecursionError)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: first\nstrategies:\n  - name: s\nname: second\n",
            "rules.yaml:4: is not valid YAML: the key 'name' is given twice in this mapping "
            "(first on line 1) (line 4, column 1)",
            id="top-level",
        ),
        pytest.param(
            "name: x\nstrategies:\n  - name: s\n    weights:\n      split_penalty: 1\n"
            "      split_penalty: 2\n",
            "rules.yaml:6: is not valid YAML: the key 'split_penalty' is given twice in this "
            "mapping (first on line 5) (line 6, column 7)",
            id="nested",
        ),
        pytest.param(
            "name: x\nstrategies: [{name: s, name: t}]\n",
            "rules.yaml:2: is not valid YAML: the key 'name' is given twice in this mapping "
            "(first on line 2) (line 2, column 24)",
            id="flow",
        ),
    ],
)
def test_a_key_given_twice_is_refused_with_its_line(text: str, expected: str) -> None:
    """A key given twice in one mapping is an error at the second, naming the first's line."""
    assert violations(text) == [expected]


def _strategy(section: str, key: str, value: str) -> str:
    return f"name: x\nstrategies:\n  - name: s\n    {section}:\n      {key}: {value}\n"


@pytest.mark.parametrize(
    ("section", "key", "value", "description"),
    [
        ("weights", "split_penalty", '"5"', "must be a finite number, got '5', which is text"),
        ("weights", "distance_cost_per_km", "'0.5'", "must be a finite number, got '0.5'"),
        ("constraints", "max_shipments", '"2"', "must be an integer, got '2', which is text"),
        ("filters", "max_distance_km", "1_000", "must be a finite number, got '1_000'"),
        ("filters", "same_country", "yes", "must be true or false, got 'yes'"),
        ("filters", "same_country", "no", "must be true or false, got 'no'"),
        ("constraints", "ship_complete", "on", "must be true or false, got 'on'"),
        ("constraints", "ship_complete", "Off", "must be true or false, got 'Off'"),
        ("constraints", "ship_complete", "1", "must be true or false, got 1"),
        ("constraints", "ship_complete", '"true"', "must be true or false, got 'true'"),
    ],
)
def test_quoted_numbers_and_yaml_1_1_booleans_are_refused(
    section: str, key: str, value: str, description: str
) -> None:
    """Only a YAML 1.2 number is a number, and only true/false are booleans."""
    [found] = violations(_strategy(section, key, value))
    assert found.startswith(f"rules.yaml:strategies[0].{section}.{key}: {description}")


@pytest.mark.parametrize(
    ("section", "key", "value", "read"),
    [
        ("weights", "split_penalty", "5", 5.0),
        ("weights", "split_penalty", "1e3", 1000.0),
        ("weights", "distance_cost_per_km", ".5", 0.5),
        ("constraints", "max_shipments", "0x2", 2),
        ("filters", "same_country", "True", True),
        ("constraints", "ship_complete", "FALSE", False),
    ],
)
def test_yaml_1_2_numbers_and_booleans_are_read(
    section: str, key: str, value: str, read: object
) -> None:
    """Plain core-schema numbers and true/false in any of their spellings are read as such."""
    strategy = load_rules(_strategy(section, key, value)).strategies[0]
    assert getattr(strategy.policy, key) == read


def test_a_long_value_is_quoted_as_a_bounded_prefix() -> None:
    """An unknown node id of 100,000 characters is quoted as 80 of them and its length."""
    text = f"name: x\nstrategies:\n  - name: s\n    filters: {{nodes: [{'N' * 100_000}]}}\n"
    with pytest.raises(InvalidArgumentError) as caught:
        load_rules(text, "rules.yaml", net())
    [violation] = caught.value.violations
    assert violation.field == "rules.yaml:strategies[0].filters.nodes"
    assert violation.description == f"unknown node {'N' * 80!r}… (100000 chars)"


def test_a_long_key_is_named_by_a_bounded_prefix() -> None:
    """An unknown key of 1,000 characters is named by 80 of them and its length."""
    [found] = violations(f"name: x\n{'k' * 1_000}: 1\nstrategies: [{{name: s}}]\n")
    assert found.startswith(f"rules.yaml:{'k' * 80}… (1000 chars): is not a known key")
    assert len(found) < 300
