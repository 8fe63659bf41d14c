"""Golden-order suites: parsing with pathed violations, running, comparing, reporting.

The network lies on the equator (one degree of longitude is 111.195 km), the orders go to
(0°, 0°) by ground (up to 500 km: 5 + 1/kg, 1 day; up to 1,500 km: 8 + 2/kg, 3 days):

* ``ST-NEAR``, a store at 0.5° (56 km), holds B;
* ``DC-NEAR``, a DC at 1° (111 km), holds A;
* ``DC-FAR``, a DC at 10° (1,112 km), holds A, B and the hazmat SKU H.

SKU C is stocked nowhere. A shipment costs 1 (handling) + the band's base + per kg, so
one unit ships from a near node for 7 (A) or 8 (B) and from DC-FAR for 11 (A, H) or 13
(B); a second shipment adds a split penalty of 4 and a backorder costs 60 a unit. Every
plan below can be read off these numbers without the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from models.errors import InvalidArgumentError, Violations
from models.network import Network, NodeType, Sku
from models.plan import SolveStatus
from models.rules import (
    Condition,
    Fallback,
    FallbackAction,
    Policy,
    RuleSet,
    SlaMode,
    Strategy,
)
from router.rules.golden import (
    CaseResult,
    Expectation,
    GoldenCase,
    GoldenSuite,
    load_suite,
    parse_suite,
    run_suite,
)
from router.rules.strict_yaml import CanonicalDumper
from router.scenario import read_scenario
from tests.engine.conftest import RATES, SKUS, node, stock

NETWORK = Network(
    (
        node("ST-NEAR", 0.5, type=NodeType.STORE),
        node("DC-NEAR", 1.0),
        node("DC-FAR", 10.0),
    ),
    {**SKUS, "H": Sku("H", 1.0, hazmat=True)},
    RATES,
)
STOCK = stock(
    ("ST-NEAR", "B", 5),
    ("DC-NEAR", "A", 5),
    ("DC-FAR", "A", 5),
    ("DC-FAR", "B", 5),
    ("DC-FAR", "H", 5),
)
HAZMAT_RULES = RuleSet(
    name="golden",
    strategies=(
        Strategy(
            "hazmat",
            when=Condition(sku_attributes=frozenset({"hazmat"})),
            policy=Policy(node_types=frozenset({NodeType.DC})),
        ),
        Strategy("default"),
    ),
)
REJECT_RULES = RuleSet(
    strategies=(
        Strategy("strict", fallback=Fallback(FallbackAction.REJECT, reason="out of stock")),
    )
)
DC_ONLY = RuleSet.single(Policy(node_types=frozenset({NodeType.DC})))
TINY = Path(__file__).parent.parent / "data" / "tiny"


def raw_order(*lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    """An order to (0°, 0°) by ground of (sku, quantity) lines with ids "1", "2", …."""
    return {
        "order_id": "g1",
        "created_at": "2026-11-20T12:00:00Z",
        "ship_to": {"latitude": 0.0, "longitude": 0.0, "country": "US"},
        "service": "ground",
        "lines": [
            {"line_id": str(i + 1), "sku": sku, "quantity": q} for i, (sku, q) in enumerate(lines)
        ],
        **extra,
    }


def text_of(*cases: dict[str, Any], stock: list[dict[str, Any]] | None = None) -> str:
    """A suite document of ``cases`` (and ``stock`` when given), each value written out.

    The dumper writes a value given twice twice, never as an alias (which suites refuse).
    """
    document: dict[str, Any] = {} if stock is None else {"stock": stock}
    document["cases"] = list(cases)
    return yaml.dump(document, Dumper=CanonicalDumper, sort_keys=False)


def run_one(
    lines: list[tuple[str, int]],
    expect: dict[str, Any],
    rules: RuleSet | None = None,
    stock: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> CaseResult:
    """Parse a one-case suite (with ``stock`` when given) and run it against STOCK."""
    case = {"name": "case", "order": raw_order(*lines, **extra), "expect": expect}
    suite = load_suite(text_of(case, stock=stock), "golden.yaml", NETWORK)
    (result,) = run_suite(suite, rules or RuleSet(), NETWORK, STOCK)
    return result


def violations(text: str) -> list[str]:
    """Every violation ``load_suite`` reports for ``text``, as ``field: description``."""
    with pytest.raises(InvalidArgumentError) as raised:
        load_suite(text, "golden.yaml", NETWORK)
    return [str(v) for v in raised.value.violations]


# --- running -----------------------------------------------------------------------------


def test_a_suite_whose_plans_meet_every_expectation_passes():
    """A suite of cases whose plans are obvious passes case by case, with no failures."""
    text = text_of(
        {
            "name": "hazmat ships from the only DC that holds it",
            "order": raw_order(("H", 1)),
            "expect": {
                "status": "optimal",
                "strategy": "hazmat",
                "step": "primary",
                "lines": {"1": "DC-FAR"},
                "not_from_node_types": ["store"],
                "max_shipments": 1,
                "fulfilled": True,
            },
        },
        {
            "name": "B ships from the near store",
            "order": raw_order(("B", 2)),
            "expect": {"strategy": "default", "lines": {"1": "ST-NEAR"}, "fulfilled": True},
        },
    )
    suite = load_suite(text, "golden.yaml", NETWORK)
    results = run_suite(suite, HAZMAT_RULES, NETWORK, STOCK)
    assert [(r.name, r.passed, r.failures) for r in results] == [
        ("hazmat ships from the only DC that holds it", True, ()),
        ("B ships from the near store", True, ()),
    ]
    assert results[0].plan.strategy == "hazmat"


def test_lines_expectation_holds_only_for_the_node_that_ships_the_whole_line():
    """``lines`` passes for the cheapest node (DC-NEAR) and fails naming where it shipped."""
    assert run_one([("A", 2)], {"lines": {"1": "DC-NEAR"}}).passed
    failed = run_one([("A", 2)], {"lines": {"1": "DC-FAR"}})
    assert not failed.passed
    assert failed.failures == ("lines.1: shipped from DC-NEAR, expected DC-FAR",)


def test_lines_expectation_fails_when_the_line_does_not_ship_in_full():
    """A line of 7 A with 5 at each DC cannot ship whole from DC-NEAR: it is split."""
    result = run_one([("A", 7)], {"lines": {"1": "DC-NEAR"}})
    assert not result.passed
    (failure,) = result.failures
    assert failure.startswith("lines.1: shipped from ")
    assert "DC-NEAR (" in failure and "DC-FAR (" in failure
    assert failure.endswith("expected DC-NEAR")


def test_lines_expectation_fails_when_the_line_does_not_ship_at_all():
    """C is stocked nowhere, so its line is reported as not shipped, with the reason."""
    result = run_one([("C", 1)], {"lines": {"1": "DC-NEAR"}})
    assert result.failures == ("lines.1: 1 unit(s) not shipped (NO_STOCK), expected DC-NEAR",)


def test_not_from_node_types_fails_when_a_store_ships():
    """B is cheapest from the near store: "not from store" fails, unless rules allow only DCs."""
    failed = run_one([("B", 1)], {"not_from_node_types": ["store"]})
    assert failed.failures == ("not_from_node_types: shipped from ST-NEAR (store)",)
    assert run_one([("B", 1)], {"not_from_node_types": ["store"]}, DC_ONLY).passed
    assert run_one([("B", 1)], {"not_from_node_types": "dark_store"}).passed


def test_not_from_nodes_fails_when_a_named_node_ships():
    """B ships from ST-NEAR by default, so naming it fails; filtered to DCs, it passes."""
    failed = run_one([("B", 1)], {"not_from_nodes": ["ST-NEAR", "DC-NEAR"]})
    assert failed.failures == ("not_from_nodes: shipped from ST-NEAR",)
    assert run_one([("B", 1)], {"not_from_nodes": "ST-NEAR"}, DC_ONLY).passed


NEAR_ONLY = [
    {"node_id": "DC-NEAR", "sku": "A", "on_hand": 5},
    {"node_id": "ST-NEAR", "sku": "B", "on_hand": 5},
]
"""Suite stock with A only at DC-NEAR and B only at ST-NEAR: A and B need two shipments."""


def test_max_shipments_fails_when_the_plan_has_more():
    """``max_shipments`` fails when A and B, held at two nodes, ship in two parcels.

    Two parcels cost 7 + 8 + 4 = 19 against 120 for backordering both. From STOCK, where
    DC-FAR holds both, one parcel (1 + 8 + 2 + 4 = 15) beats those two, and it passes.
    """
    failed = run_one([("A", 1), ("B", 1)], {"max_shipments": 1}, stock=NEAR_ONLY)
    (failure,) = failed.failures
    assert failure.startswith("max_shipments: 2 shipments (")
    assert "DC-NEAR" in failure and "ST-NEAR" in failure
    assert failure.endswith("expected at most 1")
    assert run_one([("A", 1), ("B", 1)], {"max_shipments": 2}, stock=NEAR_ONLY).passed
    one = run_one([("A", 1), ("B", 1)], {"max_shipments": 1, "lines": {"1": "DC-FAR"}})
    assert one.passed


def test_fulfilled_true_and_false():
    """``fulfilled: true`` fails when a unit does not ship; ``false`` fails when all ship."""
    assert run_one([("A", 1)], {"fulfilled": True}).passed
    assert run_one([("A", 1), ("C", 2)], {"fulfilled": False}).passed
    missing = run_one([("A", 1), ("C", 2)], {"fulfilled": True})
    assert missing.failures == (
        "fulfilled: 2 unit(s) do not ship (line 2: 2 NO_STOCK), expected every unit to",
    )
    complete = run_one([("A", 1)], {"fulfilled": False})
    assert complete.failures == ("fulfilled: every unit ships, expected some unit not to",)


def test_status_expectation():
    """A rule that rejects what it cannot fulfil rejects an order of C; not an order of A."""
    assert run_one([("C", 1)], {"status": "REJECTED", "step": "reject"}, REJECT_RULES).passed
    assert run_one([("A", 1)], {"status": "Optimal"}, REJECT_RULES).passed
    failed = run_one([("C", 1)], {"status": "optimal"}, REJECT_RULES)
    assert failed.failures == ("status: REJECTED (out of stock), expected OPTIMAL",)
    assert failed.plan.status is SolveStatus.REJECTED


def test_strategy_expectation():
    """The hazmat strategy makes the plan of a hazmat order, the default one of any other."""
    assert run_one([("B", 1)], {"strategy": "default"}, HAZMAT_RULES).passed
    failed = run_one([("H", 1)], {"strategy": "default"}, HAZMAT_RULES)
    assert failed.failures == ("strategy: made by 'hazmat', expected 'default'",)
    typo = run_one([("H", 1)], {"strategy": "hazmt"}, HAZMAT_RULES)
    assert typo.failures == (
        "strategy: made by 'hazmat', expected 'hazmt' (the rule set has no strategy 'hazmt')",
    )


def test_step_expectation():
    """Unstocked C is backordered by the default fallback; A ships at the primary step."""
    assert run_one([("A", 1)], {"step": "primary"}).passed
    assert run_one([("C", 1)], {"step": "backorder"}).passed
    failed = run_one([("C", 1)], {"step": "primary"})
    assert failed.failures == ("step: 'backorder', expected 'primary'",)


def test_step_names_the_sla_relaxation_that_made_the_plan():
    """``step`` names the SLA relaxation that made the plan.

    Due the day of creation, nothing arrives in time (1 day at best) under a hard SLA;
    relaxing by one day lets DC-NEAR deliver, so the plan is made at ``relax_sla+1d``.
    Without a relaxation, the default fallback backorders the unit.
    """
    rules = RuleSet.single(Policy(sla=SlaMode.HARD))
    relaxing = RuleSet(
        strategies=(
            Strategy(
                "relaxing",
                policy=Policy(sla=SlaMode.HARD),
                fallback=Fallback(relax_sla_step_days=1, relax_sla_max_days=2),
            ),
        )
    )
    expect = {"step": "relax_sla+1d", "lines": {"1": "DC-NEAR"}, "fulfilled": True}
    assert run_one([("A", 1)], expect, relaxing, deliver_by="2026-11-20").passed
    strict = run_one([("A", 1)], expect, rules, deliver_by="2026-11-20")
    assert "step: 'backorder', expected 'relax_sla+1d'" in strict.failures


def test_every_missed_expectation_is_reported_in_expectation_order():
    """A case that misses several expectations lists each of them, not only the first."""
    result = run_one(
        [("A", 1), ("B", 1)],
        {
            "strategy": "default",
            "max_shipments": 1,
            "not_from_nodes": ["ST-NEAR"],
            "lines": {"1": "DC-FAR"},
        },
        stock=NEAR_ONLY,
    )
    assert [f.split(":")[0] for f in result.failures] == [
        "lines.1",
        "not_from_nodes",
        "max_shipments",
    ]


def test_suite_stock_replaces_the_given_stock():
    """Positions in the suite replace the given stock entirely, not merge with it.

    With A only at DC-FAR in the suite, A ships from DC-FAR although the given stock has A
    at DC-NEAR; and B, which the suite does not stock, does not ship although the given
    stock has it. Without suite stock, both cases fail against the given stock.
    """
    case_a = {"name": "A", "order": raw_order(("A", 1)), "expect": {"lines": {"1": "DC-FAR"}}}
    case_b = {"name": "B", "order": raw_order(("B", 1)), "expect": {"fulfilled": False}}
    without = load_suite(text_of(case_a, case_b), "golden.yaml", NETWORK)
    assert without.stock is None
    assert [r.passed for r in run_suite(without, RuleSet(), NETWORK, STOCK)] == [False, False]
    with_stock = load_suite(
        text_of(case_a, case_b, stock=[{"node_id": "DC-FAR", "sku": "A", "on_hand": 3}]),
        "golden.yaml",
        NETWORK,
    )
    assert with_stock.stock is not None
    assert with_stock.stock.available("DC-FAR", "A") == 3
    results = run_suite(with_stock, RuleSet(), NETWORK, STOCK)
    assert [(r.passed, r.failures) for r in results] == [(True, ()), (True, ())]


def test_an_empty_suite_stock_means_no_stock_at_all():
    """``stock: []`` is a stock of nothing, not "use the given stock"."""
    case = {"name": "A", "order": raw_order(("A", 1)), "expect": {"fulfilled": False}}
    suite = load_suite(text_of(case, stock=[]), "golden.yaml", NETWORK)
    (result,) = run_suite(suite, RuleSet(), NETWORK, STOCK)
    assert result.passed


def test_built_suites_run_without_yaml():
    """A suite built in code runs the same way; an expectation's unset fields check nothing."""
    parsed = load_suite(
        text_of({"name": "x", "order": raw_order(("A", 1)), "expect": {"fulfilled": True}}),
        "golden.yaml",
        NETWORK,
    )
    order_a = parsed.cases[0].order
    suite = GoldenSuite(
        (
            GoldenCase("anything", order_a, Expectation()),
            GoldenCase("near", order_a, Expectation(lines={"1": "DC-NEAR"}, max_shipments=1)),
        ),
        None,
    )
    assert [r.passed for r in run_suite(suite, RuleSet(), NETWORK, STOCK)] == [True, True]


def test_tiny_scenario_hazmat_case():
    """The format's example passes on the tiny scenario read from tests/data/tiny.

    SKU-3 (hazmat) to New York ships from DC-EAST (80 km away) rather than ST-CHI
    (1,150 km) when the suite stocks both, and never from DC-WEST, which holds SKU-3 in
    the scenario's stock but not in the suite's.
    """
    scenario = read_scenario(TINY)
    text = """
stock:
  - {node_id: DC-EAST, sku: SKU-3, on_hand: 5, safety_stock: 0}
  - {node_id: ST-CHI, sku: SKU-3, on_hand: 5}
cases:
  - name: hazmat ships from a DC
    order: {order_id: G1, created_at: "2026-11-20T14:05:00Z",
            ship_to: {latitude: 40.7, longitude: -74.0, country: US}, service: ground,
            lines: [{line_id: "1", sku: SKU-3, quantity: 1}]}
    expect:
      strategy: default
      lines: {"1": DC-EAST}
      not_from_node_types: [store]
      not_from_nodes: DC-WEST
      max_shipments: 1
      fulfilled: true
"""
    suite = load_suite(text, "golden.yaml", scenario.network)
    (result,) = run_suite(suite, scenario.rules, scenario.network, scenario.stock)
    assert result.passed, result.failures


# --- validation --------------------------------------------------------------------------

GOOD_CASE = {"name": "ok", "order": raw_order(("A", 1)), "expect": {"fulfilled": True}}


def with_expect(**expect: Any) -> str:
    """A one-case suite whose case expects ``expect``."""
    return text_of({**GOOD_CASE, "expect": expect})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "cases:\n  - name: x\n    order: {order_id: [}\n", "golden.yaml:3: ", id="yaml-syntax"
        ),
        pytest.param("- a list\n", "golden.yaml: must be a mapping", id="not-a-mapping"),
        pytest.param(text_of(), "golden.yaml:cases: must be a non-empty list", id="empty-cases"),
        pytest.param("", "golden.yaml:cases: must be a non-empty list", id="empty-document"),
        pytest.param(
            text_of(GOOD_CASE) + "case: []\n", "golden.yaml:case: is not a known key", id="top-key"
        ),
        pytest.param(
            text_of({**GOOD_CASE, "expected": {}}),
            "golden.yaml:cases[0].expected: is not a known key",
            id="case-key",
        ),
        pytest.param(
            with_expect(fullfilled=True),
            "golden.yaml:cases[0].expect.fullfilled: is not a known key",
            id="expect-key",
        ),
        pytest.param(
            text_of({"name": "ok", "order": raw_order(("A", 1))}),
            "golden.yaml:cases[0].expect: must be a mapping that sets at least one",
            id="no-expect",
        ),
        pytest.param(
            with_expect(lines={"9": "DC-NEAR"}),
            "golden.yaml:cases[0].expect.lines.9: unknown line id '9'",
            id="unknown-line-id",
        ),
        pytest.param(
            with_expect(lines={"1": "DC-NOPE"}),
            "golden.yaml:cases[0].expect.lines.1: unknown node 'DC-NOPE'",
            id="unknown-node-in-lines",
        ),
        pytest.param(
            with_expect(not_from_nodes=["DC-NEAR", "DC-NOPE"]),
            "golden.yaml:cases[0].expect.not_from_nodes[1]: unknown node 'DC-NOPE'",
            id="unknown-node-in-not-from-nodes",
        ),
        pytest.param(
            with_expect(not_from_node_types=["store", "shop"]),
            "golden.yaml:cases[0].expect.not_from_node_types[1]: must be one of dc|store",
            id="unknown-node-type",
        ),
        pytest.param(
            with_expect(status="great"),
            "golden.yaml:cases[0].expect.status: must be one of OPTIMAL|",
            id="bad-status",
        ),
        pytest.param(
            with_expect(step="relax"),
            "golden.yaml:cases[0].expect.step: must be primary, relax_sla+<n>d",
            id="bad-step",
        ),
        pytest.param(
            with_expect(max_shipments=-1),
            "golden.yaml:cases[0].expect.max_shipments: must be >= 0",
            id="bad-max-shipments",
        ),
        pytest.param(
            with_expect(fulfilled="maybe"),
            "golden.yaml:cases[0].expect.fulfilled: must be true or false",
            id="bad-fulfilled",
        ),
        pytest.param(
            with_expect(fulfilled=None),
            "golden.yaml:cases[0].expect.fulfilled: has no value",
            id="null-expectation",
        ),
        pytest.param(
            text_of(GOOD_CASE, GOOD_CASE),
            "golden.yaml:cases[1].name: duplicates an earlier case 'ok'",
            id="duplicate-case-name",
        ),
        pytest.param(
            text_of({**GOOD_CASE, "order": raw_order(("A", 0))}),
            "golden.yaml:cases[0].order.lines[0].quantity: must be >= 1",
            id="order-quantity",
        ),
        pytest.param(
            text_of({**GOOD_CASE, "order": raw_order(("Z", 1))}),
            "golden.yaml:cases[0].order.lines[0].sku: unknown sku 'Z'",
            id="order-sku",
        ),
        pytest.param(
            text_of({**GOOD_CASE, "order": raw_order(("A", 1), ship_complet=True)}),
            "golden.yaml:cases[0].order.ship_complet: is not a known key",
            id="order-key",
        ),
        pytest.param(
            text_of({**GOOD_CASE, "order": "g1"}),
            "golden.yaml:cases[0].order: must be a mapping",
            id="order-not-a-mapping",
        ),
        pytest.param(
            text_of(
                GOOD_CASE,
                stock=[
                    {"node_id": "DC-NEAR", "sku": "A", "on_hand": 1},
                    {"node_id": "DC-NEAR", "sku": "B"},
                ],
            ),
            "golden.yaml:stock[1].on_hand: is required",
            id="stock-on-hand",
        ),
        pytest.param(
            text_of(GOOD_CASE, stock=[{"node_id": "DC-NOPE", "sku": "A", "on_hand": 1}]),
            "golden.yaml:stock[0].node_id: unknown node 'DC-NOPE'",
            id="stock-unknown-node",
        ),
        pytest.param(
            text_of(
                GOOD_CASE, stock=[{"node_id": "DC-NEAR", "sku": "A", "on_hand": 1, "onhand": 2}]
            ),
            "golden.yaml:stock[0].onhand: is not a known key",
            id="stock-key",
        ),
        pytest.param(
            text_of(
                GOOD_CASE,
                stock=[{"node_id": "DC-NEAR", "sku": "A", "on_hand": 1}] * 2,
            ),
            "golden.yaml:stock[1]: duplicates an earlier position DC-NEAR/A",
            id="stock-duplicate",
        ),
    ],
)
def test_each_problem_is_reported_with_its_path(text, expected):
    """Each kind of bad suite is refused with a violation pathed under the file's name."""
    found = violations(text)
    assert any(v.startswith(expected) for v in found), found


def test_every_problem_is_reported_at_once():
    """One pass over a suite reports every problem in every case and the stock."""
    text = text_of(
        {
            "name": "a",
            "order": raw_order(("A", 0)),
            "expect": {"lines": {"7": "DC-NOPE"}, "status": "nope"},
        },
        {"name": "a", "order": raw_order(("A", 1)), "expect": {"not_from_node_types": "shop"}},
        stock=[{"node_id": "DC-NEAR", "sku": "A", "on_hand": -1}],
    )
    fields = {v.split(": ")[0] for v in violations(text)}
    assert fields == {
        "golden.yaml:stock[0].on_hand",
        "golden.yaml:cases[0].order.lines[0].quantity",
        "golden.yaml:cases[0].expect.lines.7",
        "golden.yaml:cases[0].expect.status",
        "golden.yaml:cases[1].expect.not_from_node_types",
        "golden.yaml:cases[1].name",
    }


def test_parse_suite_adds_to_the_callers_violations_and_returns_none():
    """``parse_suite`` records into the given collector instead of raising."""
    v = Violations()
    assert parse_suite(with_expect(status="great"), "g.yaml", v, NETWORK) is None
    assert [x.field for x in v.items] == ["g.yaml:cases[0].expect.status"]
    fine = Violations()
    suite = parse_suite(
        with_expect(status="feasible", step="relax_sla+2d"), "g.yaml", fine, NETWORK
    )
    assert not fine
    assert suite is not None
    assert suite.cases[0].expect.status is SolveStatus.FEASIBLE
    assert suite.cases[0].expect.step == "relax_sla+2d"


def test_parsed_expectation_holds_every_field():
    """Every expectation key reads into its :class:`Expectation` field."""
    suite = load_suite(
        with_expect(
            status="rejected",
            strategy="hazmat",
            step="reject",
            lines={1: "DC-NEAR"},
            not_from_node_types=["STORE", "dark_store"],
            not_from_nodes="ST-NEAR",
            max_shipments=0,
            fulfilled=False,
        ),
        "golden.yaml",
        NETWORK,
    )
    assert suite.cases[0].expect == Expectation(
        status=SolveStatus.REJECTED,
        strategy="hazmat",
        step="reject",
        lines={"1": "DC-NEAR"},
        not_from_node_types=frozenset({NodeType.STORE, NodeType.DARK_STORE}),
        not_from_nodes=frozenset({"ST-NEAR"}),
        max_shipments=0,
        fulfilled=False,
    )


def test_unquoted_dates_read_as_written():
    """Unquoted dates, timestamps and numeric line ids read as they would from JSON.

    YAML would turn an unquoted ``deliver_by: 2026-11-24`` into a date; the suite keeps
    the text, so the order reads it as it would from orders.jsonl.
    """
    text = """
cases:
  - name: dated
    order: {order_id: g1, created_at: 2026-11-20T12:00:00Z, deliver_by: 2026-11-24,
            ship_to: {latitude: 0, longitude: 0, country: US}, service: ground,
            lines: [{line_id: 1, sku: A, quantity: 1}]}
    expect: {lines: {1: DC-NEAR}}
"""
    suite = load_suite(text, "golden.yaml", NETWORK)
    assert str(suite.cases[0].order.deliver_by) == "2026-11-24"
    assert suite.cases[0].expect.lines == {"1": "DC-NEAR"}
