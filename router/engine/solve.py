"""Plan one order exactly: build the canonical model, solve it, map the answer to a plan."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from models.capacity import CapacityUsed
from models.engines import DEFAULT_TIME_LIMIT_S as DEFAULT_TIME_LIMIT_S
from models.engines import ENGINES as ENGINES
from models.engines import FAST as FAST
from models.engines import FULL_MODEL as FULL_MODEL
from models.engines import HIGHS_FULL as HIGHS_FULL
from models.lookahead import StockPrices
from models.network import Network, Stock
from models.order import Order
from models.plan import (
    Alternative,
    Counterfactual,
    Plan,
    Shipment,
    ShipmentLine,
    SolveStatus,
    Unfulfilled,
    UnfulfilledReason,
)
from models.rules import Policy
from router.engine.candidates import build_model
from router.engine.cpsat import solve_model
from router.engine.fast import solve_fast
from router.engine.highs import solve_highs
from router.engine.problem import tie_ranks
from router.engine.stop import Stop
from router.engine.terms import BuiltModel, Solution


def plan_order(
    order: Order,
    network: Network,
    stock: Stock,
    policy: Policy,
    *,
    capacity_used: CapacityUsed | None = None,
    stop: Stop | None = None,
    engine: str = FAST,
    alternatives: int = 0,
    counterfactual_nodes: Sequence[str] = (),
    relax_sla_days: int = 0,
    prices: StockPrices | None = None,
) -> Plan:
    """The optimal plan for ``order`` against ``stock`` under one strategy's ``policy``.

    No side effects. :func:`router.engine.route.route_order` picks the strategy of a rule
    set and runs its fallbacks; this solves one canonical model. ``order`` must have been
    validated against ``network`` (``Order.from_raw`` with it).
    The solve ends when ``stop`` is set or its deadline passes (by default
    :data:`~models.engines.DEFAULT_TIME_LIMIT_S` from now); the
    plan's status says whether it is proven optimal, feasible within a gap, infeasible,
    or unsolved. ``alternatives`` asks for that many next best plans over other node sets
    (the first is the runner-up); ``counterfactual_nodes`` for the best plan that ships
    from each named node and its cost over the optimum. With ``prices`` and a
    ``policy.opportunity_cost`` above 0 the model is the priced one (docs/lookahead.md):
    the plan is exact for it, its objective includes the prices, and ``price_version``
    names them.
    """
    started = time.perf_counter()
    stop = stop or Stop(DEFAULT_TIME_LIMIT_S)  # one budget: plan, alternatives, counterfactuals
    built = build_model(
        order,
        network,
        stock,
        policy,
        capacity_used,
        relax_sla_days=relax_sla_days,
        prices=prices,
    )
    priced = prices is not None and policy.opportunity_cost > 0
    if engine == FAST:
        result = solve_fast(built, stop, alternatives=alternatives)
        solution, others = result.best, result.alternatives
    elif engine in (FULL_MODEL, HIGHS_FULL):
        if engine == FULL_MODEL:
            solution = solve_model(built.model, stop)
        else:
            solution = solve_highs(built, stop)
        others = ()
        if alternatives:
            # Ranked by the fast engine, less the plan's own node set when ties differ.
            ranked = solve_fast(built, stop, alternatives=alternatives)
            own = solution.nodes
            others = tuple(s for s in (ranked.best, *ranked.alternatives) if s.nodes != own)[
                :alternatives
            ]
    else:
        raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    made = plan_of(
        order.order_id, built, solution, engine=engine, seconds=time.perf_counter() - started
    )
    plan = replace(
        made,
        alternatives=tuple(
            Alternative(s.objective, _shipments(built, s), _unfulfilled(built, s))
            for s in others[:alternatives]
            if s.objective is not None
        ),
        price_version=prices.label if priced and prices is not None else "",
        prices_computed_at=prices.computed_at if priced and prices is not None else None,
    )
    return with_counterfactuals(plan, counterfactual_nodes, stop)


def plan_of(
    order_id: str,
    built: BuiltModel,
    solution: Solution,
    *,
    engine: str,
    seconds: float,
    detail: str = "",
) -> Plan:
    """The plan ``solution`` makes of ``built``: its shipments and unfulfilled units.

    For callers that solve a model themselves (the wave engine): the same shipments,
    reasons and explanation as :func:`plan_order` gives, without alternatives.
    """
    return Plan(
        order_id=order_id,
        status=solution.status,
        objective=solution.objective,
        bound=solution.bound,
        shipments=_shipments(built, solution),
        unfulfilled=_unfulfilled(built, solution),
        explanation=built,
        rule_version="",
        engine=engine,
        solve_seconds=seconds,
        detail=detail or _detail(solution.status),
    )


def with_counterfactuals(plan: Plan, node_ids: Sequence[str], stop: Stop) -> Plan:
    """``plan`` with, for each of ``node_ids``, the best plan that ships from that node.

    Solved by the plan's own engine on the plan's model; a node the plan already ships
    from costs nothing to price when the plan is proven optimal (delta 0).
    """
    if not node_ids:
        return plan
    built = plan.explanation
    assert isinstance(built, BuiltModel), "the plan must come from plan_order"
    started = time.perf_counter()
    found = tuple(_counterfactual(plan, built, node_id, stop) for node_id in node_ids)
    took = plan.solve_seconds + time.perf_counter() - started
    return replace(plan, counterfactuals=found, solve_seconds=took)


def _counterfactual(plan: Plan, built: BuiltModel, node_id: str, stop: Stop) -> Counterfactual:
    """The best plan that ships from ``node_id``, or why there is none."""
    ids = built.matrices.node_ids
    if node_id not in ids:
        why = next((e for e in built.excluded if e.node_id == node_id), None)
        detail = "not in the network" if why is None else f"excluded: {why.reason}: {why.detail}"
        return Counterfactual(node_id, SolveStatus.INFEASIBLE, None, None, detail)
    if plan.status is SolveStatus.OPTIMAL and any(s.node_id == node_id for s in plan.shipments):
        return Counterfactual(
            node_id,
            SolveStatus.OPTIMAL,
            plan.objective,
            0,
            "ships in the optimal plan",
            plan.shipments,
            plan.unfulfilled,
            plan.objective,
        )
    j = ids.index(node_id)
    if plan.engine == FULL_MODEL:
        forced = solve_model(built.model, stop, force=j, tie_order=tie_ranks(built).tolist())
    else:
        forced = solve_fast(built, stop, forced=j).best
    if forced.objective is None:
        detail = (
            "no plan ships from it under the order's constraints"
            if forced.status is SolveStatus.INFEASIBLE
            else "stopped by the time limit before a plan through it was found"
        )
        return Counterfactual(node_id, forced.status, None, None, detail, bound=forced.bound)
    delta = None if plan.objective is None else forced.objective - plan.objective
    return Counterfactual(
        node_id,
        forced.status,
        forced.objective,
        delta,
        _detail(forced.status),
        _shipments(built, forced),
        _unfulfilled(built, forced),
        forced.bound,
    )


def _shipments(built: BuiltModel, solution: Solution) -> tuple[Shipment, ...]:
    carried: dict[int, list[tuple[int, int]]] = {}
    for (j, line), q in sorted(solution.assignment.items()):
        carried.setdefault(j, []).append((line, q))
    shipments = []
    for j, units in carried.items():
        cand = built.matrices.terms(j)
        cost = cand.shipment_cost + sum(cand.unit_costs[line] * q for line, q in units)
        lines = tuple(
            ShipmentLine(built.lines[line].line_id, built.lines[line].sku, q) for line, q in units
        )
        shipments.append(
            Shipment(
                node_id=cand.node_id,
                service=cand.service,
                distance_km=cand.distance_km,
                ship_date=cand.ship_date,
                delivery_date=cand.delivery_date,
                days_late=cand.days_late,
                cost=cost,
                lines=lines,
            )
        )
    return tuple(shipments)


_REASON_WHEN_STOCK_EXISTS = {
    SolveStatus.OPTIMAL: UnfulfilledReason.BACKORDER_CHEAPER,
    SolveStatus.FEASIBLE: UnfulfilledReason.STOPPED_EARLY,
    SolveStatus.INFEASIBLE: UnfulfilledReason.ORDER_INFEASIBLE,
    SolveStatus.NO_SOLUTION: UnfulfilledReason.NO_SOLUTION,
}


def _unfulfilled(built: BuiltModel, solution: Solution) -> tuple[Unfulfilled, ...]:
    """Units no shipment carries, split by reason.

    Per SKU, the units that the candidates' stock cannot cover at all are short (no stock
    anywhere, none at an eligible node, or too little); the rest were left by the solve,
    for the reason its status gives. Lines of one SKU share the stock, so the shortfall is
    counted per SKU and charged to its lines in order.
    """
    eligible_per_line = built.matrices.available.sum(axis=0).tolist()
    shipped = [0] * len(built.lines)
    for (_, line), q in solution.assignment.items():
        shipped[line] += q
    lines_of_sku: dict[str, list[int]] = {}
    for line, terms in enumerate(built.lines):
        lines_of_sku.setdefault(terms.sku, []).append(line)
    short: dict[str, int] = {}
    for sku, lines in lines_of_sku.items():
        ordered = sum(built.lines[line].quantity for line in lines)
        short[sku] = max(0, ordered - eligible_per_line[lines[0]])
    out = []
    for line, terms in enumerate(built.lines):
        missing = terms.quantity - shipped[line]
        lacking = min(missing, short[terms.sku])
        short[terms.sku] -= lacking
        if lacking:
            if built.stock_anywhere[line] == 0:
                reason = UnfulfilledReason.NO_STOCK
            elif eligible_per_line[line] == 0:
                reason = UnfulfilledReason.NO_ELIGIBLE_STOCK
            else:
                reason = UnfulfilledReason.INSUFFICIENT_STOCK
            out.append(Unfulfilled(terms.line_id, terms.sku, lacking, reason))
        if missing > lacking:
            reason = _REASON_WHEN_STOCK_EXISTS[solution.status]
            out.append(Unfulfilled(terms.line_id, terms.sku, missing - lacking, reason))
    return tuple(out)


def _detail(status: SolveStatus) -> str:
    return {
        SolveStatus.OPTIMAL: "proven optimal",
        SolveStatus.FEASIBLE: "stopped by the time limit; see bound and gap",
        SolveStatus.INFEASIBLE: "no plan meets the order's hard constraints",
        SolveStatus.NO_SOLUTION: "stopped by the time limit before any plan was found",
    }[status]
