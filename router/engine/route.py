"""Route one order under a rule set: pick the strategy, solve its model, run its fallbacks.

The first strategy whose condition the order meets is tried. Its plan is taken when it is
proven optimal and ships every unit, or when the solve was cut short (the budget is spent;
its status says so). Otherwise the fallback runs: each SLA relaxation step in turn, then
``backorder`` (take the last plan), ``reject`` (ship nothing, with the reason) or ``next``
(the next strategy whose condition holds). Every step solves the canonical model exactly,
and the plan records the strategy and step that made it and what became of every strategy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from models.capacity import CapacityUsed
from models.lookahead import StockPrices
from models.network import Network, Stock
from models.order import Order
from models.plan import (
    Exclusion,
    ExplainedModel,
    LineTerms,
    Plan,
    SolveStatus,
    StrategyOutcome,
    StrategyTrial,
    Unfulfilled,
    UnfulfilledReason,
)
from models.rules import FallbackAction, RuleSet, Strategy
from router.engine.solve import DEFAULT_TIME_LIMIT_S, FAST, plan_order, with_counterfactuals
from router.engine.stop import Stop

PRIMARY = "primary"
"""The step name of a strategy's plan as written."""


def route_order(
    order: Order,
    network: Network,
    stock: Stock,
    rules: RuleSet,
    *,
    capacity_used: CapacityUsed | None = None,
    stop: Stop | None = None,
    engine: str = FAST,
    alternatives: int = 0,
    counterfactual_nodes: Sequence[str] = (),
    prices: StockPrices | None = None,
) -> Plan:
    """The plan ``rules`` make for ``order`` against ``stock``; no side effects.

    ``prices`` are the look-ahead stock prices (docs/lookahead.md): every step of a
    strategy whose ``opportunity_cost`` is above 0 solves its priced model, and the plan's
    ``price_version`` names them when such a step made it. One time budget covers every
    step. ``alternatives`` and ``counterfactual_nodes`` are those of the step that makes
    the plan (see :func:`~router.engine.solve.plan_order`).
    """
    started = time.perf_counter()
    stop = stop or Stop(DEFAULT_TIME_LIMIT_S)
    unmet = [s.when.unmet(order, network) for s in rules.strategies]
    trials = [
        StrategyTrial(s.name, StrategyOutcome.CONDITION_NOT_MET, "; ".join(why)) if why else None
        for s, why in zip(rules.strategies, unmet, strict=True)
    ]

    def attempt(strategy: Strategy, relax: int) -> Plan:
        return plan_order(
            order,
            network,
            stock,
            strategy.policy,
            capacity_used=capacity_used,
            stop=stop,
            engine=engine,
            alternatives=alternatives,
            relax_sla_days=relax,
            prices=prices,
        )

    made, last = _run_strategies(order, rules, unmet, trials, attempt)
    if made is None:
        plan, strategy_name, step = _rejected_by_all(order, rules, engine, last), "", "reject"
    else:
        plan, chosen, step, detail = made
        strategy_name = rules.strategies[chosen].name
        trials[chosen] = StrategyTrial(strategy_name, StrategyOutcome.APPLIED, detail)
        for i in range(chosen + 1, len(trials)):
            if trials[i] is None:
                why = f"an earlier strategy, {strategy_name!r}, made the plan"
                trials[i] = StrategyTrial(
                    rules.strategies[i].name, StrategyOutcome.NOT_REACHED, why
                )
        if plan.status is not SolveStatus.REJECTED:
            plan = with_counterfactuals(plan, counterfactual_nodes, stop)
    return replace(
        plan,
        rule_version=rules.label,
        strategy=strategy_name,
        step=step,
        trials=tuple(t for t in trials if t is not None),
        solve_seconds=time.perf_counter() - started,
    )


_Made = tuple[Plan, int, str, str]
"""A plan that ends the search, its strategy's index, its step and the trial's detail."""


def _run_strategies(
    order: Order,
    rules: RuleSet,
    unmet: Sequence[Sequence[str]],
    trials: list[StrategyTrial | None],
    attempt: Callable[[Strategy, int], Plan],
) -> tuple[_Made | None, Plan | None]:
    """Try the strategies whose condition holds, in order, each step of each, and fall back.

    Returns the plan made (None when every strategy fell back or none applies) and the
    last plan tried. A strategy that falls back to the next is recorded in ``trials``.
    """

    def next_matching(after: int) -> int | None:
        return next((i for i in range(after + 1, len(unmet)) if not unmet[i]), None)

    index = next_matching(-1)
    last: Plan | None = None
    while index is not None:
        strategy = rules.strategies[index]
        days = strategy.fallback.relax_days if order.deliver_by is not None else ()
        steps = ((PRIMARY, 0), *((f"relax_sla+{d}d", d) for d in days))
        for step, relax in steps:
            last = attempt(strategy, relax)
            if _final(last):
                return (last, index, step, _outcome(last, step)), last
        assert last is not None
        then = strategy.fallback.then
        left = _units_left(last)
        if then is FallbackAction.BACKORDER:
            return (last, index, "backorder", f"{left} unit(s) backordered after {step}"), last
        if then is FallbackAction.REJECT:
            reason = strategy.fallback.reason or f"strategy {strategy.name!r} cannot fulfil it"
            return (_rejected(last, reason), index, "reject", f"rejected: {reason}"), last
        detail = f"{left} unit(s) unfulfilled after {step} ({last.status}); fell back to next"
        trials[index] = StrategyTrial(strategy.name, StrategyOutcome.FELL_BACK, detail)
        index = next_matching(index)
    return None, last


def _rejected_by_all(order: Order, rules: RuleSet, engine: str, last: Plan | None) -> Plan:
    """The plan when no strategy made one: REJECTED, with the last plan's model if any.

    No strategy made it, so no prices did either.
    """
    if last is None:
        reason = "no strategy's condition holds for the order"
    else:
        reason = "every strategy whose condition holds fell back; none is left"
    return replace(
        _rejected(last or _empty(order, rules, engine), reason),
        price_version="",
        prices_computed_at=None,
    )


def _final(plan: Plan) -> bool:
    """Whether the plan ends the search: it ships everything, or the budget is spent."""
    if plan.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION):
        return True
    return plan.status is SolveStatus.OPTIMAL and not plan.unfulfilled


def _outcome(plan: Plan, step: str) -> str:
    if plan.status is not SolveStatus.OPTIMAL:
        return f"{step}: {plan.detail}"
    return "its plan ships every unit" if step == PRIMARY else f"{step} ships every unit"


def _units_left(plan: Plan) -> int:
    return sum(u.quantity for u in plan.unfulfilled)


def _rejected(plan: Plan, reason: str) -> Plan:
    """Nothing ships: every unit of the order is unfulfilled, rejected by the rules."""
    model = plan.model
    return replace(
        plan,
        status=SolveStatus.REJECTED,
        objective=None,
        bound=None,
        shipments=(),
        unfulfilled=tuple(
            Unfulfilled(line.line_id, line.sku, line.quantity, UnfulfilledReason.REJECTED_BY_RULE)
            for line in model.lines
        ),
        detail=reason,
        alternatives=(),
        counterfactuals=(),
    )


class _NoModel:
    """The explanation of an order no strategy applies to: its lines, no candidates."""

    def __init__(self, model: ExplainedModel) -> None:
        self.model = model
        self.excluded: tuple[Exclusion, ...] = ()


def _empty(order: Order, rules: RuleSet, engine: str) -> Plan:
    """A plan with no model: the lines, no candidates (``_rejected`` fills in the rest)."""
    lines = tuple(LineTerms(x.line_id, x.sku, x.quantity, 0, True) for x in order.lines)
    model = ExplainedModel(0, 0, (), lines, None, False)
    return Plan(
        order_id=order.order_id,
        status=SolveStatus.REJECTED,
        objective=None,
        bound=None,
        shipments=(),
        unfulfilled=(),
        explanation=_NoModel(model),
        rule_version=rules.label,
        engine=engine,
        solve_seconds=0.0,
    )
