"""The rule language's validation: every problem at once, each at its path; and its algebra."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import InvalidArgumentError, Violations
from models.order import OrderLine
from models.rules import Condition, Fallback, FallbackAction, Policy, RuleSet, SlaMode
from router.rules.document import canonical_text, load_rules
from tests.engine.conftest import order
from tests.engine.test_route import net

BAD = """
name: broken
groups:
  west: [FAR, NOWHERE]
defaults:
  weights: {split_penalty: -1}
strategies:
  - name: a
    when: {channel: [], order_value: {min: -1, most: 3}}
  - name: a
    fallback: {then: later, reason: because}
  - name: c
    filters: {max_distance_km: 0, node_types: [warehouse], blocked: [{node_id: FAR}]}
    constraints: {max_shipments: 1001}
    fallback: {relax_sla: {step_days: 3, max_days: 2}}
  - nmae: typo
"""


def test_every_violation_is_reported_at_once_with_its_path() -> None:
    """One bad document gives every problem, in document order, each with its full path."""
    with pytest.raises(InvalidArgumentError) as caught:
        load_rules(BAD, "rules.yaml", net())
    assert [str(v) for v in caught.value.violations] == [
        "rules.yaml:groups.west: unknown node 'NOWHERE'",
        "rules.yaml:defaults.weights.split_penalty: must be >= 0, got -1",
        "rules.yaml:strategies[0].when.channel: must be a name or a non-empty list of names",
        "rules.yaml:strategies[0].when.order_value.most: is not a known key (known: min, max)",
        "rules.yaml:strategies[0].when.order_value.min: must be >= 0, got -1",
        "rules.yaml:strategies[1].fallback.then: must be next, backorder or reject, got 'later'",
        "rules.yaml:strategies[1].fallback.reason: is only used when the fallback rejects"
        " (then: reject)",
        "rules.yaml:strategies[2].filters.node_types: must be one of"
        " dc|store|dark_store|3pl|dropship, got 'warehouse'",
        "rules.yaml:strategies[2].filters.max_distance_km: must be > 0, got 0",
        "rules.yaml:strategies[2].filters.blocked[0].sku: is required",
        "rules.yaml:strategies[2].constraints.max_shipments: must be <= 1000, got 1001",
        "rules.yaml:strategies[2].fallback.relax_sla.max_days: must be >= step_days (3), got 2",
        "rules.yaml:strategies[3].nmae: is not a known key (known: name, description, when,"
        " weights, filters, constraints, fallback)",
        "rules.yaml:strategies[3].name: is required",
    ]


def test_duplicate_strategy_names_are_refused() -> None:
    """Plans name the strategy that made them, so names must be unique."""
    text = "name: t\nstrategies:\n  - name: a\n  - name: a\n"
    with pytest.raises(InvalidArgumentError) as caught:
        load_rules(text)
    assert [v.field for v in caught.value.violations] == ["rules:strategies[1].name"]


def test_a_full_document_parses_to_its_elements() -> None:
    """Every section sets what it names; defaults fill what a strategy leaves out."""
    text = """
name: full
groups: {inner: [NEAR, STORE]}
defaults:
  weights: {split_penalty: 2}
  constraints: {sla: hard}
strategies:
  - name: hazmat
    when: {sku_attribute: hazmat, country: [us], order_value: {min: 10, max: 100}}
    filters: {nodes: [inner], capabilities: [hazmat], min_buffer_by_node_type: {store: 2}}
    weights: {unit_penalty_by_node_type: {store: 1.5}, distance_cost_per_km: 0.002}
    constraints: {max_shipments: 2, no_split_below_value: 25}
    fallback: {relax_sla: {step_days: 1, max_days: 2}, then: next}
  - name: rest
    constraints: {sla: soft}
    fallback: {then: reject, reason: no DC can take it}
"""
    rules = load_rules(text, "rules.yaml", net())
    first, rest = rules.strategies
    assert first.when == Condition(
        countries=frozenset({"US"}),
        sku_attributes=frozenset({"hazmat"}),
        min_order_value=10,
        max_order_value=100,
    )
    assert first.policy.nodes == {"NEAR", "STORE"}
    assert first.policy.split_penalty == 2 and first.policy.sla is SlaMode.HARD
    assert first.policy.max_shipments == 2 and first.policy.no_split_below_value == 25
    assert first.fallback == Fallback(FallbackAction.NEXT, 1, 2)
    assert first.fallback.relax_days == (1, 2)
    assert rest.policy == Policy(split_penalty=2)
    assert rest.fallback == Fallback(FallbackAction.REJECT, reason="no DC can take it")


def test_canonical_text_reads_back_as_the_same_rules() -> None:
    """Formatting and comments do not matter: the canonical form is the rules themselves."""
    a = load_rules("# comment\nname: t\nstrategies: [{name: s, weights: {split_penalty: 2.0}}]")
    b = load_rules("name: t\nstrategies:\n  - weights:\n      split_penalty: 2\n    name: s\n")
    assert canonical_text(a) == canonical_text(b)
    assert load_rules(canonical_text(a)) == a


@pytest.mark.parametrize(
    ("wide", "narrow", "covers"),
    [
        (Condition(), Condition(channels=frozenset({"web"})), True),
        (Condition(channels=frozenset({"web"})), Condition(), False),
        (
            Condition(channels=frozenset({"web", "app"})),
            Condition(channels=frozenset({"web"})),
            True,
        ),
        (
            Condition(channels=frozenset({"web"})),
            Condition(channels=frozenset({"web", "app"})),
            False,
        ),
        (Condition(min_order_value=10), Condition(min_order_value=20, max_order_value=30), True),
        (Condition(min_order_value=10), Condition(min_order_value=5), False),
        (Condition(max_order_value=100), Condition(max_order_value=50), True),
        (Condition(max_order_value=100), Condition(min_order_value=50), False),
        (
            Condition(postal_code_prefixes=frozenset({"9"})),
            Condition(postal_code_prefixes=frozenset({"94"})),
            True,
        ),
        (
            Condition(postal_code_prefixes=frozenset({"94"})),
            Condition(postal_code_prefixes=frozenset({"9"})),
            False,
        ),
        (
            Condition(sku_attributes=frozenset({"hazmat", "oversize"})),
            Condition(sku_attributes=frozenset({"hazmat"})),
            True,
        ),
    ],
)
def test_covers_means_every_order_of_the_narrow_meets_the_wide(
    wide: Condition, narrow: Condition, covers: bool
) -> None:
    """``covers`` is the implication lint relies on to find shadowed strategies."""
    assert wide.covers(narrow) is covers


def test_empty_document_is_the_default_rule_set() -> None:
    """An empty rules file means the defaults: one unconditional strategy that backorders."""
    assert load_rules("") == RuleSet()
    assert RuleSet().strategies[0].when.unconditional
    assert RuleSet().label == "default@draft"


def test_from_raw_without_a_network_skips_references() -> None:
    """Node ids are checked only when a network is given."""
    v = Violations()
    raw = {"name": "t", "strategies": [{"name": "s", "filters": {"nodes": ["ANY"]}}]}
    rules = RuleSet.from_raw(raw, v)
    assert not v and rules is not None
    assert rules.strategies[0].policy.nodes == {"ANY"}


def test_yaml_reads_country_and_region_codes_as_names() -> None:
    """NO (Norway) and ON (Ontario) are codes, not YAML 1.1 booleans; true is a boolean."""
    text = (
        "name: t\nstrategies:\n  - name: s\n    when: {country: [NO, SE], region: [ON, y]}\n"
        "    filters: {same_country: true}\n"
    )
    strategy = load_rules(text).strategies[0]
    assert strategy.when.countries == {"NO", "SE"}
    assert strategy.when.regions == {"ON", "Y"}
    assert strategy.policy.same_country is True


_NAMES = st.sampled_from(["a", "b", "c"])
_SETS = st.none() | st.frozensets(_NAMES, min_size=1)
_BOUND = st.none() | st.sampled_from([0.0, 10.0, 20.0, 30.0])
_CONDITIONS = st.builds(
    Condition,
    channels=_SETS,
    segments=_SETS,
    regions=_SETS,
    postal_code_prefixes=st.none() | st.frozensets(st.sampled_from(["1", "12", "2"]), min_size=1),
    sku_attributes=st.none() | st.frozensets(st.sampled_from(["hazmat", "x"]), min_size=1),
    min_order_value=_BOUND,
    max_order_value=_BOUND,
)
_ORDERS = st.builds(
    dict,
    channel=_NAMES,
    segment=_NAMES,
    region=_NAMES,
    postal=st.sampled_from(["123", "129", "200", "300"]),
    sku=st.sampled_from(["A", "H"]),
    price=st.sampled_from([0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]),
)


@settings(max_examples=400, deadline=None)
@given(wide=_CONDITIONS, narrow=_CONDITIONS, raw=_ORDERS)
def test_covers_is_sound(wide: Condition, narrow: Condition, raw: dict[str, object]) -> None:
    """Whenever ``wide.covers(narrow)``, every order meeting ``narrow`` meets ``wide``.

    Lint's unreachable-strategy check rests on this: it must never call a reachable
    strategy unreachable.
    """
    base = order((str(raw["sku"]), 1))
    o = dataclasses.replace(
        base,
        channel=str(raw["channel"]),
        segment=str(raw["segment"]),
        ship_to=dataclasses.replace(
            base.ship_to, region=str(raw["region"]), postal_code=str(raw["postal"])
        ),
        lines=(OrderLine("l1", str(raw["sku"]), 1, float(raw["price"])),),  # type: ignore[arg-type]
    )
    network = net()
    if wide.covers(narrow) and not narrow.unmet(o, network):
        assert not wide.unmet(o, network)
