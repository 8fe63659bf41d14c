"""Golden-order suites: orders with the plan each must get, run against a rule set.

Planners keep a YAML file of cases; ``router rules test`` runs it and a publish is refused
when a case fails. This module is pure: it takes the suite's text, validates it against
the network, routes each case's order with :func:`router.engine.route.route_order` and
compares the plan with the case's expectations. The format::

    stock:                     # optional: these positions replace the stock entirely
      - {node_id: DC-EAST, sku: SKU-1, on_hand: 5, safety_stock: 0}
    cases:                     # required, non-empty; case names are unique
      - name: hazmat ships from a DC
        order: {order_id: G1, created_at: "2026-11-20T14:05:00Z",
                ship_to: {latitude: 40.7, longitude: -74.0, country: US},
                service: ground, lines: [{line_id: "1", sku: SKU-3, quantity: 1}]}
        expect:                # required: at least one of these
          status: optimal                # a plan status, any case: OPTIMAL, REJECTED, …
          strategy: hazmat               # the strategy that made the plan
          step: primary                  # primary, relax_sla+<n>d, backorder or reject
          lines: {"1": DC-EAST}          # line id -> the one node that ships ALL its units
          not_from_node_types: [store]   # no shipment from a node of these types
          not_from_nodes: [ST-CHI]       # no shipment from these nodes
          max_shipments: 1               # at most this many shipments
          fulfilled: true                # true: every unit ships; false: some unit does not

An order is written as in ``orders.jsonl`` (see :meth:`models.order.Order.from_raw`); a
stock row as in ``stock.csv`` (``node_id, sku, on_hand, safety_stock, reserved``).
``not_from_node_types`` and ``not_from_nodes`` take a name or a list of names. Unquoted
dates and timestamps stay text, so ``deliver_by: 2026-11-24`` reads as written.

Every problem is reported at once with its path under the file's name, as elsewhere:
``golden.yaml:cases[2].expect.lines.1: unknown line id '1'``,
``golden.yaml:cases[0].order.lines[0].quantity: must be >= 1, got 0``,
``golden.yaml:stock[1].on_hand: is required``, or ``golden.yaml:7`` for a YAML syntax
error. Unknown keys are errors (in the order, its ship-to and lines too), so a typo
cannot pass as an expectation that checks nothing. Node ids, node types and SKUs must
exist in the network; every line id in ``lines`` must be on the case's order.

A failed expectation reads like ``lines.1: shipped from ST-CHI, expected DC-EAST``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from models import fields as f
from models.errors import Violations, quoted
from models.network import Network, NodeType, Stock, StockPosition
from models.order import Order, OrderLine, ShipTo
from models.plan import Plan, SolveStatus
from models.rules import RuleSet
from router.engine.route import route_order
from router.rules.document import NOT_READ, read_yaml


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a case's plan must be; ``None`` (or empty) checks nothing.

    ``lines`` maps a line id to the one node that must ship all its units;
    ``fulfilled`` True asks that every unit ships, False that some unit does not.
    """

    status: SolveStatus | None = None
    strategy: str | None = None
    step: str | None = None
    lines: Mapping[str, str] = field(default_factory=dict)
    not_from_node_types: frozenset[NodeType] = frozenset()
    not_from_nodes: frozenset[str] = frozenset()
    max_shipments: int | None = None
    fulfilled: bool | None = None


@dataclass(frozen=True, slots=True)
class GoldenCase:
    """One named order and what its plan must be."""

    name: str
    order: Order
    expect: Expectation


@dataclass(frozen=True, slots=True)
class GoldenSuite:
    """The cases of a suite; ``stock``, when given, replaces the stock entirely."""

    cases: tuple[GoldenCase, ...]
    stock: Stock | None


@dataclass(frozen=True, slots=True)
class CaseResult:
    """How one case went: whether it passed, each missed expectation in words, the plan."""

    name: str
    passed: bool
    failures: tuple[str, ...]
    plan: Plan


# ---------------------------------------------------------------------------------------
# Reading


_SUITE_KEYS = ("stock", "cases")
_CASE_KEYS = ("name", "order", "expect")
_EXPECT_KEYS = tuple(fld.name for fld in fields(Expectation))
_ORDER_KEYS = tuple(fld.name for fld in fields(Order))
_SHIP_TO_KEYS = tuple(fld.name for fld in fields(ShipTo))
_LINE_KEYS = tuple(fld.name for fld in fields(OrderLine))
_STOCK_KEYS = tuple(fld.name for fld in fields(StockPosition))
_STEP = re.compile(r"primary|backorder|reject|relax_sla\+[1-9][0-9]*d")


def parse_suite(text: str, where: str, v: Violations, network: Network) -> GoldenSuite | None:
    """The suite in YAML ``text``; violations go to ``v`` prefixed by ``where``.

    ``where`` names the source (``golden.yaml``); a YAML syntax error is reported with
    its line (``golden.yaml:7``). Returns ``None`` after any violation.
    """
    document = read_yaml(text, where, v)
    if document is NOT_READ:
        return None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        v.add(where, "must be a mapping with cases (and optionally stock)")
        return None
    found = Violations(f"{where}:")
    f.unknown_keys(document, _SUITE_KEYS, found)
    stock = _stock(document.get("stock"), found, network)
    cases = _cases(document.get("cases"), found, network)
    v.extend(found.items)
    if found:
        return None
    return GoldenSuite(tuple(cases), stock)


def load_suite(text: str, where: str, network: Network) -> GoldenSuite:
    """The suite in YAML ``text``; raises InvalidArgumentError with every violation."""
    v = Violations()
    suite = parse_suite(text, where, v, network)
    v.raise_if_any()
    assert suite is not None
    return suite


def _stock(raw: object, v: Violations, network: Network) -> Stock | None:
    """The suite's stock positions, ``None`` when the suite gives none."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        v.add("stock", "must be a list of {node_id, sku, on_hand, safety_stock, reserved}")
        return None
    rows = Violations(v.path("stock"))
    for i, row in enumerate(raw):
        if isinstance(row, dict):
            typos = Violations(rows.path(f"[{i}]"))
            f.unknown_keys(row, _STOCK_KEYS, typos)
            rows.extend(typos.items)
    stock = Stock.from_rows(raw, rows, network)
    v.extend(rows.items)
    return None if rows else stock


def _cases(raw: object, v: Violations, network: Network) -> list[GoldenCase]:
    if not isinstance(raw, list) or not raw:
        v.add("cases", "must be a non-empty list of {name, order, expect}")
        return []
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        sub = Violations(v.path(f"cases[{i}]"))
        name, case = _case(item, sub, network)
        v.extend(sub.items)
        if name is not None:
            if name in seen:
                v.add(f"cases[{i}].name", f"duplicates an earlier case {quoted(name)}")
            seen.add(name)
        if case is not None:
            cases.append(case)
    return cases


def _case(item: object, v: Violations, network: Network) -> tuple[str | None, GoldenCase | None]:
    """The case's name (when readable) and the case (``None`` after violations)."""
    if not isinstance(item, dict):
        v.add("", "must be a mapping {name, order, expect}")
        return None, None
    f.unknown_keys(item, _CASE_KEYS, v)
    name = f.text(item, "name", v)
    raw_order = item.get("order")
    order = _order(raw_order, v, network)
    line_ids = _line_ids(raw_order) if order is None else {x.line_id for x in order.lines}
    expect = _expectation(item.get("expect"), v, line_ids, network)
    if v or name is None or order is None or expect is None:
        return name, None
    return name, GoldenCase(name, order, expect)


def _order(raw: object, v: Violations, network: Network) -> Order | None:
    """The case's order, checked for unknown keys (down to its ship-to and lines) too."""
    if not isinstance(raw, dict):
        v.add("order", "must be a mapping, as a line of orders.jsonl")
        return None
    sub = Violations(v.path("order"))
    f.unknown_keys(raw, _ORDER_KEYS, sub)
    ship_to = raw.get("ship_to")
    if isinstance(ship_to, dict):
        nested = Violations(sub.path("ship_to"))
        f.unknown_keys(ship_to, _SHIP_TO_KEYS, nested)
        sub.extend(nested.items)
    lines = raw.get("lines")
    if isinstance(lines, list):
        for i, line in enumerate(lines):
            if isinstance(line, dict):
                nested = Violations(sub.path(f"lines[{i}]"))
                f.unknown_keys(line, _LINE_KEYS, nested)
                sub.extend(nested.items)
    order = Order.from_raw({str(k): x for k, x in raw.items()}, sub, network)
    v.extend(sub.items)
    return None if sub else order


def _line_ids(raw: object) -> set[str] | None:
    """The line ids of an order that did not validate, when they can be read at all."""
    if not isinstance(raw, dict) or not isinstance(raw.get("lines"), list):
        return None
    ids = set()
    for line in raw["lines"]:
        if isinstance(line, dict):
            line_id = f.text(line, "line_id", Violations())
            if line_id is not None:
                ids.add(line_id)
    return ids


def _expectation(
    raw: object, v: Violations, line_ids: set[str] | None, network: Network
) -> Expectation | None:
    """The case's expectations; ``line_ids`` are the order's (``None``: unknown)."""
    if not isinstance(raw, dict) or not raw:
        v.add("expect", f"must be a mapping that sets at least one of {', '.join(_EXPECT_KEYS)}")
        return None
    sub = Violations(v.path("expect"))
    f.unknown_keys(raw, _EXPECT_KEYS, sub)
    for key in _EXPECT_KEYS:
        if key in raw and raw[key] is None:
            sub.add(key, "has no value (leave the key out to check nothing)")
    raw = {str(k): x for k, x in raw.items() if x is not None}
    status = _status(raw, sub)
    strategy = f.text(raw, "strategy", sub, required=False)
    step = f.text(raw, "step", sub, required=False)
    if step is not None and not _STEP.fullmatch(step):
        sub.add("step", f"must be primary, relax_sla+<n>d, backorder or reject, got {quoted(step)}")
    lines = _expected_lines(raw, sub, line_ids, network)
    node_types = {
        NodeType.parse(name, path, sub)
        for path, name in f.names(raw, "not_from_node_types", sub) or ()
    }
    nodes = set()
    for path, node_id in f.names(raw, "not_from_nodes", sub) or ():
        if network.node(node_id) is None:
            sub.add(path, f"unknown node {quoted(node_id)}")
        nodes.add(node_id)
    max_shipments = f.integer(
        raw, "max_shipments", sub, required=False, minimum=0, maximum=1000, strict=True
    )
    fulfilled = f.boolean(raw, "fulfilled", sub, strict=True) if "fulfilled" in raw else None
    v.extend(sub.items)
    if sub:
        return None
    return Expectation(
        status=status,
        strategy=strategy,
        step=step,
        lines=lines,
        not_from_node_types=frozenset(t for t in node_types if t is not None),
        not_from_nodes=frozenset(nodes),
        max_shipments=max_shipments,
        fulfilled=fulfilled,
    )


def _status(raw: Mapping[str, object], v: Violations) -> SolveStatus | None:
    text = f.text(raw, "status", v, required=False)
    if text is None:
        return None
    try:
        return SolveStatus(text.upper())
    except ValueError:
        v.add("status", f"must be one of {'|'.join(SolveStatus)}, got {quoted(text)}")
        return None


def _expected_lines(
    raw: Mapping[str, object], v: Violations, line_ids: set[str] | None, network: Network
) -> dict[str, str]:
    value = raw.get("lines")
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        v.add("lines", "must map line ids to the node that ships all their units")
        return {}
    out = {}
    sub = Violations(v.path("lines"))
    for key, node in value.items():
        line_id = str(key).strip()
        if line_ids is not None and line_id not in line_ids:
            sub.add(line_id, f"unknown line id {quoted(line_id)}")
        node_id = f.text(value, key, Violations())
        if node_id is None or isinstance(node, list | dict):
            sub.add(line_id, f"must be a node id, got {quoted(node)}")
            continue
        if network.node(node_id) is None:
            sub.add(line_id, f"unknown node {quoted(node_id)}")
        out[line_id] = node_id
    v.extend(sub.items)
    return out


# ---------------------------------------------------------------------------------------
# Running


def run_suite(
    suite: GoldenSuite, rules: RuleSet, network: Network, stock: Stock
) -> tuple[CaseResult, ...]:
    """Route every case's order under ``rules`` and compare its plan with the expectations.

    Cases run against the suite's stock when it gives one, else against ``stock``; each
    case sees the same stock (nothing is reserved between cases). No side effects.
    """
    on_hand = stock if suite.stock is None else suite.stock
    results = []
    for case in suite.cases:
        plan = route_order(case.order, network, on_hand, rules)
        failures = _check(case.expect, case.order, plan, network, rules)
        results.append(CaseResult(case.name, not failures, failures, plan))
    return tuple(results)


def _check(
    expect: Expectation, order: Order, plan: Plan, network: Network, rules: RuleSet
) -> tuple[str, ...]:
    """Each expectation ``plan`` misses, in words, in the order of :class:`Expectation`."""
    out: list[str] = []
    if expect.status is not None and plan.status is not expect.status:
        why = f" ({plan.detail})" if plan.detail else ""
        out.append(f"status: {plan.status}{why}, expected {expect.status}")
    if expect.strategy is not None and plan.strategy != expect.strategy:
        made = f"made by {quoted(plan.strategy)}" if plan.strategy else "no strategy made the plan"
        if plan.strategy == "" and plan.detail:
            made += f" ({plan.detail})"
        known = (
            ""
            if any(s.name == expect.strategy for s in rules.strategies)
            else (f" (the rule set has no strategy {quoted(expect.strategy)})")
        )
        out.append(f"strategy: {made}, expected {quoted(expect.strategy)}{known}")
    if expect.step is not None and plan.step != expect.step:
        out.append(f"step: {quoted(plan.step)}, expected {quoted(expect.step)}")
    for line_id, node_id in expect.lines.items():
        failure = _line_failure(line_id, node_id, order, plan)
        if failure:
            out.append(failure)
    if expect.not_from_node_types:
        bad = []
        for shipment in plan.shipments:
            node = network.node(shipment.node_id)
            if node is not None and node.type in expect.not_from_node_types:
                bad.append(f"{shipment.node_id} ({node.type})")
        if bad:
            out.append(f"not_from_node_types: shipped from {', '.join(bad)}")
    if expect.not_from_nodes:
        bad = [s.node_id for s in plan.shipments if s.node_id in expect.not_from_nodes]
        if bad:
            out.append(f"not_from_nodes: shipped from {', '.join(bad)}")
    if expect.max_shipments is not None and len(plan.shipments) > expect.max_shipments:
        nodes = ", ".join(s.node_id for s in plan.shipments)
        out.append(
            f"max_shipments: {len(plan.shipments)} shipments ({nodes}), "
            f"expected at most {expect.max_shipments}"
        )
    if expect.fulfilled is not None:
        left = sum(u.quantity for u in plan.unfulfilled)
        if expect.fulfilled and left:
            parts = ", ".join(
                f"line {u.line_id}: {u.quantity} {u.reason}" for u in plan.unfulfilled
            )
            out.append(f"fulfilled: {left} unit(s) do not ship ({parts}), expected every unit to")
        elif not expect.fulfilled and not left:
            out.append("fulfilled: every unit ships, expected some unit not to")
    return tuple(out)


def _line_failure(line_id: str, expected: str, order: Order, plan: Plan) -> str | None:
    """Why line ``line_id`` is not shipped whole from ``expected``; ``None`` when it is."""
    if all(line.line_id != line_id for line in order.lines):
        return f"lines.{line_id}: the order has no line {quoted(line_id)}"
    shipped: dict[str, int] = {}
    for shipment in plan.shipments:
        for line in shipment.lines:
            if line.line_id == line_id and line.quantity:
                shipped[shipment.node_id] = shipped.get(shipment.node_id, 0) + line.quantity
    left = [u for u in plan.unfulfilled if u.line_id == line_id and u.quantity]
    if set(shipped) == {expected} and not left:
        return None
    if len(shipped) == 1 and not left:
        said = f"shipped from {next(iter(shipped))}"
    else:
        parts = []
        if shipped:
            parts.append("shipped from " + ", ".join(f"{n} ({q})" for n, q in shipped.items()))
        if left:
            units = sum(u.quantity for u in left)
            reasons = ", ".join(sorted({str(u.reason) for u in left}))
            parts.append(f"{units} unit(s) not shipped ({reasons})")
        said = "; ".join(parts)
    return f"lines.{line_id}: {said}, expected {expected}"
