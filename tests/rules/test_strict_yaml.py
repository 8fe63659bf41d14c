"""The strict reader: the YAML 1.2 core schema, its limits, and a dumper it reads back."""

from __future__ import annotations

import math

import pytest
import yaml

from models.errors import Violations
from models.rules import RuleSet, Strategy
from router.rules.document import NOT_READ, canonical_text, load_rules, read_yaml
from router.rules.golden import parse_suite
from router.rules.strict_yaml import MAX_DEPTH, MAX_DOCUMENT_BYTES, CanonicalDumper, load
from tests.engine.test_route import net


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("yes", "yes"),
        ("No", "No"),
        ("on", "on"),
        ("y", "y"),
        ("~", None),
        ("null", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("012", 12),
        ("0o14", 12),
        ("0xC", 12),
        ("0b11", "0b11"),
        ("1_000", "1_000"),
        ("1:30", "1:30"),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.5E-1", -0.05),
        ("5.", 5.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("2026-11-24", "2026-11-24"),
        ('"5"', "5"),
        ("'true'", "true"),
        ("=", "="),
        ("<<", "<<"),
        ("!!str 5", "5"),
        ("!!int 7", 7),
    ],
)
def test_scalars_resolve_as_the_yaml_1_2_core_schema_says(scalar: str, value: object) -> None:
    """Each plain scalar gets the core schema's type; all else, quoted or not, is text."""
    read = load(f"key: {scalar}\n")
    assert read == {"key": value}
    assert type(read["key"]) is type(value)  # type: ignore[index]


def test_nan_is_a_float() -> None:
    """``.nan`` is the core schema's not-a-number (equal to nothing, so tested apart)."""
    assert math.isnan(load("x: .nan\n")["x"])  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        "x: !!set {a, b}\n",
        "x: !!binary aGVsbG8=\n",
        "x: !!timestamp 2026-11-24\n",
        "x: !!python/object:os.system ls\n",
        "x: !custom 1\n",
        "x: !!bool yes\n",
        "x: !!int 1_000\n",
        "x: !!float 1:30\n",
        "? [a, b]\n: 1\n",
    ],
)
def test_tags_and_keys_outside_the_core_schema_are_refused(text: str) -> None:
    """Other tags, a misspelt value under a core tag and a collection as a key are errors."""
    v = Violations()
    assert read_yaml(text, "document", v) is NOT_READ
    [violation] = v.items
    assert violation.field.startswith("document:")
    assert "(line " in violation.description


def _opening(depth: int) -> str:
    """The openings of ``depth`` collections nested in one another, mappings and lists in turn."""
    return "".join("{a: " if i % 2 == 0 else "[" for i in range(depth))


def _nested(depth: int) -> str:
    """A document of ``depth`` collections nested in one another around the number 1."""
    closing = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return f"{_opening(depth)}1{closing}\n"


def test_nesting_is_read_up_to_the_limit_and_refused_past_it() -> None:
    """MAX_DEPTH nested collections are read; one more is refused at its column."""
    assert read_yaml(_nested(MAX_DEPTH), "document", Violations()) is not NOT_READ
    v = Violations()
    assert read_yaml(_nested(MAX_DEPTH + 1), "document", v) is NOT_READ
    [violation] = v.items
    assert violation.field == "document:1"
    column = len(_opening(MAX_DEPTH)) + 1  # where the one too many opens
    assert violation.description == (
        f"is not valid YAML: nests deeper than {MAX_DEPTH} levels (line 1, column {column})"
    )


def test_size_is_counted_in_utf8_bytes_before_reading() -> None:
    """A document of MAX_DOCUMENT_BYTES bytes is read; one byte more is refused unread.

    ``é`` is two bytes, so a document of half as many characters is already too large,
    and the refusal comes before the parser could object to anything in it.
    """
    comment = "#" + "x" * (MAX_DOCUMENT_BYTES - len("#\nname: x\n")) + "\nname: x\n"
    assert len(comment.encode()) == MAX_DOCUMENT_BYTES
    assert read_yaml(comment, "document", Violations()) == {"name": "x"}
    v = Violations()
    too_big = "[" + "é" * (MAX_DOCUMENT_BYTES // 2)  # not even valid YAML
    assert read_yaml(too_big, "document", v) is NOT_READ
    assert [str(x) for x in v.items] == [
        f"document: is {MAX_DOCUMENT_BYTES + 1} bytes, more than the {MAX_DOCUMENT_BYTES} allowed"
    ]


def test_golden_suites_are_read_as_strictly_as_rule_documents() -> None:
    """A golden suite with an anchor is refused at the anchor's line."""
    v = Violations()
    text = "cases:\n  - &case {name: a}\n  - *case\n"
    assert parse_suite(text, "golden.yaml", v, net()) is None
    assert [x.field for x in v.items] == ["golden.yaml:2"]
    assert "anchors (&case) are not allowed" in v.items[0].description


@pytest.mark.parametrize("name", ["1e3", "0o7", "0x1F", "yes", "No", "on", "~", "2026-11-24"])
def test_canonical_text_quotes_names_either_yaml_would_read_as_other_values(name: str) -> None:
    """A strategy named like a number, a boolean or a date reads back with the same name."""
    rules = RuleSet(name=name, strategies=(Strategy(name),))
    text = canonical_text(rules)
    assert load_rules(text).to_raw() == rules.to_raw()
    assert yaml.safe_load(text)["name"] == name  # YAML 1.1 tools read the same


def test_the_canonical_dumper_writes_a_value_used_twice_twice() -> None:
    """No anchors or aliases: what the dumper writes, the strict reader reads back."""
    shared = {"nodes": ["A", "B"]}
    text = yaml.dump({"a": shared, "b": shared}, Dumper=CanonicalDumper)
    assert "&" not in text and "*" not in text
    assert load(text) == {"a": shared, "b": shared}
