"""Plan one order exactly: build the canonical model, solve it, map the answer to a plan."""

from __future__ import annotations

import time
from collections.abc import Mapping

from models.network import Network, Stock
from models.order import Order
from models.plan import (
    ExplainedModel,
    Plan,
    Shipment,
    ShipmentLine,
    SolveStatus,
    Unfulfilled,
    UnfulfilledReason,
)
from models.rules import RuleSet
from router.engine.candidates import build_model
from router.engine.cpsat import Solution, solve_model
from router.engine.stop import Stop

FULL_MODEL = "cpsat-full"
"""Name of the straightforward engine: the whole canonical model in CP-SAT, no pruning.

Later engines must reach the same optimum; this one stays as the baseline they are
measured against.
"""

DEFAULT_TIME_LIMIT_S = 10.0


def plan_order(
    order: Order,
    network: Network,
    stock: Stock,
    rules: RuleSet,
    *,
    capacity_used: Mapping[str, int] | None = None,
    stop: Stop | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> Plan:
    """The optimal plan for ``order`` against ``stock``; no side effects.

    ``order`` must have been validated against ``network`` (``Order.from_raw`` with it).
    The solve ends at ``time_limit_s`` or when ``stop`` is set, whichever is first; the
    plan's status says whether it is proven optimal, feasible within a gap, infeasible,
    or unsolved.
    """
    started = time.perf_counter()
    built = build_model(order, network, stock, rules, capacity_used)
    solution = solve_model(built.model, stop or Stop(), time_limit_s)
    return Plan(
        order_id=order.order_id,
        status=solution.status,
        objective=solution.objective,
        bound=solution.bound,
        shipments=_shipments(built.model, solution),
        unfulfilled=_unfulfilled(built.model, solution),
        excluded=built.excluded,
        model=built.model,
        rule_version=rules.version,
        engine=FULL_MODEL,
        solve_seconds=time.perf_counter() - started,
        detail=_detail(solution.status),
    )


def _shipments(model: ExplainedModel, solution: Solution) -> tuple[Shipment, ...]:
    shipments = []
    for j, cand in enumerate(model.candidates):
        carried = [(line, q) for (jj, line), q in sorted(solution.assignment.items()) if jj == j]
        if not carried:
            continue
        cost = cand.shipment_cost + sum(cand.unit_costs[line] * q for line, q in carried)
        lines = tuple(
            ShipmentLine(model.lines[line].line_id, model.lines[line].sku, q) for line, q in carried
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


def _unfulfilled(model: ExplainedModel, solution: Solution) -> tuple[Unfulfilled, ...]:
    """Units no shipment carries, each with the first reason that explains them."""
    shipped = [0] * len(model.lines)
    for (_, line), q in solution.assignment.items():
        shipped[line] += q
    out = []
    for line, terms in enumerate(model.lines):
        missing = terms.quantity - shipped[line]
        if missing <= 0:
            continue
        stock = sum(c.available[line] for c in model.candidates)
        if stock == 0:
            reason = UnfulfilledReason.NO_STOCK
        elif stock < terms.quantity:
            reason = UnfulfilledReason.INSUFFICIENT_STOCK
        elif solution.status is SolveStatus.INFEASIBLE:
            reason = UnfulfilledReason.ORDER_INFEASIBLE
        elif solution.status is SolveStatus.NO_SOLUTION:
            reason = UnfulfilledReason.NO_SOLUTION
        else:
            reason = UnfulfilledReason.BACKORDER_CHEAPER
        out.append(Unfulfilled(terms.line_id, terms.sku, missing, reason))
    return tuple(out)


def _detail(status: SolveStatus) -> str:
    return {
        SolveStatus.OPTIMAL: "proven optimal",
        SolveStatus.FEASIBLE: "stopped by the time limit; see bound and gap",
        SolveStatus.INFEASIBLE: "no plan meets the order's hard constraints",
        SolveStatus.NO_SOLUTION: "stopped by the time limit before any plan was found",
    }[status]
