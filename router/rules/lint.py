"""Lint a valid rule set: problems that validation cannot see, found before it goes live.

Errors (publishing is refused):

- ``missing-final-fallback``: the last strategy is conditional, or falls back to ``next``
  with nothing after it, so some orders would be rejected by no decision of the planner's.
- ``unreachable-strategy``: an earlier strategy applies to every order this one applies to
  and never falls back to ``next``, so this one never runs.
- ``unsatisfiable-condition``: no order can meet the condition (an empty order-value range;
  with a network: only services the rate card lacks, only SKU attributes no SKU has).
- ``contradictory-constraints``: hard constraints that cannot hold together, or that let
  nothing ship (``max_shipments: 0``, with or without ``ship_complete``).
- ``excludes-every-node``: the node filters (with ``same_country``, for the countries the
  condition names) leave no node that ships.

Warnings (published, and stored with the version):

- ``weight-changes-nothing``: on the given orders, setting the weight to zero changes no
  plan (which node ships which units, what is left). A weight a strategy sets is judged
  on the orders that reach it; an inherited one on the orders of every strategy that
  inherits it. Checked only when orders are given; ``backorder_cost_per_unit`` is not
  (zero always changes plans: it is the price of leaving units), and neither is
  ``opportunity_cost``: it scales look-ahead stock prices, which come from the live
  forecast and stock when the service routes (docs/lookahead.md), not from the rule set,
  so on a lint's orders without prices it would always look idle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from models.errors import quoted
from models.network import Network, Stock
from models.order import Order
from models.plan import Plan, StrategyOutcome
from models.rules import FallbackAction, Policy, RuleSet, Strategy
from router.engine.arrays import network_arrays, node_filter
from router.engine.route import route_order


class Severity(StrEnum):
    """How serious a finding is: errors refuse a publish, warnings are stored with it."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint problem: its code (module docstring), severity, path and what is wrong."""

    code: str
    severity: Severity
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"


CHECKED_WEIGHTS: tuple[str, ...] = (
    "split_penalty",
    "lateness_penalty_per_day",
    "unit_penalty_by_node_type",
    "priority_bonus",
    "distance_cost_per_km",
)
"""The weights ``weight-changes-nothing`` checks, each against zero."""


def lint_rules(
    rules: RuleSet,
    network: Network,
    stock: Stock | None = None,
    orders: Sequence[Order] = (),
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[Finding, ...]:
    """Every finding on ``rules``, errors first, each in document order.

    ``orders`` (validated against ``network``) and ``stock`` enable the weight check;
    ``progress`` is called with the number of orders planned after each one.
    """
    findings = [*_final_fallback(rules), *_unreachable(rules)]
    for i, strategy in enumerate(rules.strategies):
        where = f"strategies[{i}]"
        findings += _unsatisfiable(strategy, where, network)
        findings += _contradictions(strategy.policy, where)
        findings += _excludes_every_node(strategy, where, network)
    if orders and stock is not None:
        findings += _idle_weights(rules, network, stock, orders, progress)
    return tuple(sorted(findings, key=lambda f: f.severity is not Severity.ERROR))


def errors(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The findings that refuse a publish."""
    return tuple(f for f in findings if f.severity is Severity.ERROR)


def _error(code: str, path: str, message: str) -> Finding:
    return Finding(code, Severity.ERROR, path, message)


def _final_fallback(rules: RuleSet) -> list[Finding]:
    last = len(rules.strategies) - 1
    strategy = rules.strategies[last]
    where = f"strategies[{last}]"
    out = []
    if not strategy.when.unconditional:
        out.append(
            _error(
                "missing-final-fallback",
                f"{where}.when",
                f"the last strategy {quoted(strategy.name)} is conditional: orders that meet no "
                "condition are rejected; end with a strategy without 'when'",
            )
        )
    if strategy.fallback.then is FallbackAction.NEXT:
        out.append(
            _error(
                "missing-final-fallback",
                f"{where}.fallback",
                f"the last strategy {quoted(strategy.name)} falls back to next, but no strategy "
                "follows; end with backorder or reject",
            )
        )
    return out


def _unreachable(rules: RuleSet) -> list[Finding]:
    """Strategies shadowed by an earlier one that covers them and never falls back to next.

    Every order meeting the later condition meets the earlier one; the chain of strategies
    tried for it ends at the earlier one at the latest, so the later one never runs.
    """
    out = []
    for k, later in enumerate(rules.strategies):
        for j, earlier in enumerate(rules.strategies[:k]):
            if earlier.fallback.then is not FallbackAction.NEXT and earlier.when.covers(later.when):
                how = (
                    "applies to every order"
                    if earlier.when.unconditional
                    else "applies to every order it applies to"
                )
                out.append(
                    _error(
                        "unreachable-strategy",
                        f"strategies[{k}]",
                        f"strategy {quoted(later.name)} is never reached: strategies[{j}] "
                        f"{quoted(earlier.name)} {how} and falls back to "
                        f"{earlier.fallback.then}, not next",
                    )
                )
                break
    return out


def _unsatisfiable(strategy: Strategy, where: str, network: Network) -> list[Finding]:
    when = strategy.when
    out = []

    def never(key: str, why: str) -> None:
        message = f"no order can meet it: {why}"
        out.append(_error("unsatisfiable-condition", f"{where}.when.{key}", message))

    low, high = when.min_order_value, when.max_order_value
    if low is not None and high is not None and low >= high:
        never("order_value", f"min {low:g} is not below max {high:g}")
    if when.services is not None and not when.services & set(network.rates.bands):
        never("service", f"the rate card has none of {sorted(when.services)}")
    if when.sku_attributes is not None:
        held = set().union(*(s.attributes for s in network.skus.values()))
        if not when.sku_attributes & held:
            never(
                "sku_attribute", f"no SKU of the catalogue has any of {sorted(when.sku_attributes)}"
            )
    return out


def _contradictions(policy: Policy, where: str) -> list[Finding]:
    if policy.max_shipments != 0:
        return []
    if policy.ship_complete:
        why = "ship_complete asks for the whole order in one shipment, max_shipments 0 allows none"
    else:
        why = "max_shipments 0 lets nothing ship; reject the orders instead (fallback: reject)"
    return [_error("contradictory-constraints", f"{where}.constraints.max_shipments", why)]


def _excludes_every_node(strategy: Strategy, where: str, network: Network) -> list[Finding]:
    policy = strategy.policy
    arrays = network_arrays(network)
    kept = arrays.ships & node_filter(policy, network).allowed
    if policy.same_country and strategy.when.countries is not None:
        kept &= np.isin(arrays.country, sorted(strategy.when.countries))
    if kept.any():
        return []
    if policy.same_country and strategy.when.countries is not None:
        scope = f"in {sorted(strategy.when.countries)} (same_country)"
    else:
        scope = "of the network"
    return [
        _error(
            "excludes-every-node",
            f"{where}.filters",
            f"the filters of {quoted(strategy.name)} leave no node {scope} that ships",
        )
    ]


def _idle_weights(
    rules: RuleSet,
    network: Network,
    stock: Stock,
    orders: Sequence[Order],
    progress: Callable[[int], None] | None,
) -> list[Finding]:
    """``weight-changes-nothing``: route each order with the weight as set and at zero.

    Orders are routed under the whole rule set, so a weight that matters only at a
    relaxation step or after a fallback counts. A strategy is judged on the orders that
    reach it (their routing tries it: zeroing its weights cannot change any other order).
    A weight it sets itself is judged on its own, at ``strategies[i].weights.<w>``; a
    weight it inherits (from ``defaults`` or the built-in defaults) once, zeroed in every
    strategy that inherits it, at ``defaults.weights.<w>``: it is idle only when it changes
    no plan of any of their orders.
    """
    index = {s.name: i for i, s in enumerate(rules.strategies)}
    reached: list[set[int]] = [set() for _ in rules.strategies]
    decisions = []
    for k, order in enumerate(orders):
        plan = route_order(order, network, stock, rules)
        decisions.append(_decision(plan))
        for trial in plan.trials:
            if trial.outcome in (StrategyOutcome.APPLIED, StrategyOutcome.FELL_BACK):
                reached[index[trial.strategy]].add(k)
    planned = len(orders)

    def changes(zeroed: Sequence[int], weight: str) -> bool:
        """Whether zeroing ``weight`` in the strategies ``zeroed`` changes any plan."""
        nonlocal planned
        zero: object = {} if weight == "unit_penalty_by_node_type" else 0.0
        variant = replace(
            rules,
            strategies=tuple(
                replace(s, policy=replace(s.policy, **{weight: zero}))  # type: ignore[arg-type]
                if i in zeroed
                else s
                for i, s in enumerate(rules.strategies)
            ),
        )
        for k in sorted(set().union(*(reached[i] for i in zeroed))):
            planned += 1
            if progress is not None:
                progress(planned)
            if _decision(route_order(orders[k], network, stock, variant)) != decisions[k]:
                return True
        return False

    out = []
    for weight in CHECKED_WEIGHTS:
        heirs = []
        for i, strategy in enumerate(rules.strategies):
            if not getattr(strategy.policy, weight) or not reached[i]:
                continue
            if weight not in strategy.overrides:
                heirs.append(i)
            elif not changes([i], weight):
                out.append(
                    _idle(f"strategies[{i}].weights.{weight}", len(reached[i]), repr(strategy.name))
                )
        if heirs and not changes(heirs, weight):
            n = len(set().union(*(reached[i] for i in heirs)))
            names = ", ".join(repr(rules.strategies[i].name) for i in heirs)
            out.append(_idle(f"defaults.weights.{weight}", n, names))
    return sorted(out, key=lambda f: f.path)


def _idle(path: str, n_orders: int, strategies: str) -> Finding:
    message = f"changes no plan of the {n_orders} given order(s) that reach {strategies}"
    return Finding("weight-changes-nothing", Severity.WARNING, path, f"{message} (compared with 0)")


def _decision(plan: Plan) -> tuple[object, ...]:
    """What a plan decides: strategy, step, which node ships which units, what is left."""
    shipped = sorted((s.node_id, x.line_id, x.quantity) for s in plan.shipments for x in s.lines)
    left = sorted((u.line_id, u.quantity) for u in plan.unfulfilled)
    return (plan.strategy, plan.step, plan.status, tuple(shipped), tuple(left))
