"""The OR-Tools adapter: the canonical model of one order as a CP-SAT model, solved exactly.

This is the only module that imports OR-Tools. :func:`build_cp_model` maps an
:class:`ExplainedModel` to CP-SAT variables by index; :func:`solve_model` builds and solves
it and maps the answer back to an assignment by (candidate, line) index; external ids
never reach the solver.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from models.plan import ExplainedModel, SolveStatus
from router.engine.stop import Stop
from router.engine.terms import Solution


@dataclass(frozen=True, slots=True)
class CpModel:
    """A CP-SAT model of the canonical model and what maps its answer back.

    ``x[(j, l)]`` are the unit variables, ``cost`` the objective as an expression in
    solver units, and ``scale`` how much the minimised objective multiplies it by (more
    than 1 when the tie order is in the objective).
    """

    cp: cp_model.CpModel
    x: dict[tuple[int, int], cp_model.IntVar]
    cost: cp_model.LinearExprT
    scale: int


def build_cp_model(
    model: ExplainedModel,
    *,
    exclude: Sequence[frozenset[int]] = (),
    force: int | None = None,
    tie_order: Sequence[int] | None = None,
) -> CpModel:
    """The canonical model (docs/cost-model.md) as CP-SAT variables and constraints.

    ``exclude`` lists sets of shipping candidates that the plan must not use exactly (to
    find the next best plans); ``force`` names a candidate that must ship (to price a
    counterfactual); ``tie_order`` (each candidate's rank) puts the documented tie-break
    among optimal plans into the objective.
    """
    cp = cp_model.CpModel()
    # y[j] = 1 when candidate j ships part of this order.
    y = [cp.new_bool_var(f"y{j}") for j in range(len(model.candidates))]
    # x[j, l] = units of line l shipped from candidate j (only where j has stock of l's sku).
    x = _unit_variables(cp, model, y)
    # u[l] = units of line l left unfulfilled (backordered); fixed to 0 when not allowed.
    u = [
        cp.new_int_var(0, terms.quantity if terms.allow_partial else 0, f"u{line}")
        for line, terms in enumerate(model.lines)
    ]
    # e = extra shipments beyond the first, each charged the split penalty.
    e = cp.new_int_var(0, max(0, len(y) - 1), "e")

    by_line: dict[int, list[cp_model.IntVar]] = defaultdict(list)
    for (_, line), var in x.items():
        by_line[line].append(var)
    for line, terms in enumerate(model.lines):
        cp.add(sum(by_line[line]) + u[line] == terms.quantity)
    # Lines that order the same sku share each node's stock of it.
    lines_of_sku: dict[str, list[int]] = defaultdict(list)
    for line, terms in enumerate(model.lines):
        lines_of_sku[terms.sku].append(line)
    for shared in (ls for ls in lines_of_sku.values() if len(ls) > 1):
        for j, cand in enumerate(model.candidates):
            cp.add(
                sum(x[j, line] for line in shared if (j, line) in x) <= cand.available[shared[0]]
            )
    cp.add(e >= sum(y) - 1)
    for nodes in exclude:  # no-good: not exactly this set of shipping nodes
        cp.add(
            sum(y[j] for j in nodes) - sum(v for j, v in enumerate(y) if j not in nodes)
            <= len(nodes) - 1
        )
    if force is not None:
        cp.add(y[force] == 1)
    if model.max_shipments is not None:
        cp.add(sum(y) <= model.max_shipments)
    if model.ship_complete:
        cp.add(sum(y) <= 1)

    cost = (
        model.offset
        + sum(c.shipment_cost * y[j] for j, c in enumerate(model.candidates))
        + model.split_penalty * e
        + sum(model.candidates[j].unit_costs[line] * v for (j, line), v in x.items())
        + sum(t.backorder_cost * u[line] for line, t in enumerate(model.lines))
    )
    # With a tie order, one objective ranks plans as documented: cost first, then fewer
    # shipments, then the smaller sum of the nodes' places in the tie order. Shipments
    # weigh n² and places at most n − 1 each, so a shipment more always outweighs places;
    # the cost is scaled past the largest tie term. Skipped if it could overflow int64.
    n = len(y)
    scale = 1
    if tie_order is not None and _cost_bound(model) * (n**3 + n**2 + 1) < 2**62:
        scale = n**3 + n**2 + 1
        cp.minimize(scale * cost + sum(y[j] * (n * n + r) for j, r in enumerate(tie_order)))
    else:
        cp.minimize(cost)
    return CpModel(cp, x, cost, scale)


def _unit_variables(
    cp: cp_model.CpModel, model: ExplainedModel, y: list[cp_model.IntVar]
) -> dict[tuple[int, int], cp_model.IntVar]:
    """x[j, l] for each (candidate, line) that may ship, linked to y[j] both ways."""
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for j, cand in enumerate(model.candidates):
        shipped_from_j = []
        for line, terms in enumerate(model.lines):
            cap = min(terms.quantity, cand.available[line])
            if terms.allow_partial and cand.unit_costs[line] >= terms.backorder_cost:
                cap = 0  # a unit that costs at least its backorder never helps a plan
            if cap > 0:
                x[j, line] = cp.new_int_var(0, cap, f"x{j}_{line}")
                cp.add(x[j, line] <= cap * y[j])
                shipped_from_j.append(x[j, line])
        # A node counts as a shipment only when it ships a unit, so y and x agree.
        cp.add(y[j] <= sum(shipped_from_j))
    return x


def solve_model(
    model: ExplainedModel,
    stop: Stop,
    *,
    exclude: Sequence[frozenset[int]] = (),
    force: int | None = None,
    tie_order: Sequence[int] | None = None,
) -> Solution:
    """Solve the canonical model with CP-SAT until ``stop`` is set or its deadline passes.

    See :func:`build_cp_model` for ``exclude``, ``force`` and ``tie_order``. One worker
    and a fixed seed make the search, and so the plan, repeatable.
    """
    built = build_cp_model(model, exclude=exclude, force=force, tie_order=tie_order)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_time_in_seconds = max(stop.remaining_s(), 1e-3)
    unregister = stop.on_stop(solver.stop_search)
    try:
        # A stop that came before the solver started would be lost: check it once more.
        status = cp_model.UNKNOWN if stop.is_set() else solver.solve(built.cp)
    finally:
        unregister()
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT rejected the model: {built.cp.validate()}")
    if status == cp_model.INFEASIBLE:
        return Solution(SolveStatus.INFEASIBLE, {}, None, None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Solution(SolveStatus.NO_SOLUTION, {}, None, None)
    assignment = {key: int(solver.value(v)) for key, v in built.x.items() if solver.value(v) > 0}
    objective = int(solver.value(built.cost))
    if status == cp_model.OPTIMAL:
        return Solution(SolveStatus.OPTIMAL, assignment, objective, objective)
    # The objective is integral, so the bound rounds up (less a hair for float noise); with
    # the tie terms in the objective, the scaled bound rounds down to whole solver units.
    if built.scale == 1:
        bound = math.ceil(solver.best_objective_bound - 1e-6)
    else:
        bound = math.floor(solver.best_objective_bound / built.scale)
    return Solution(SolveStatus.FEASIBLE, assignment, objective, bound)


def _cost_bound(model: ExplainedModel) -> int:
    """An upper bound on the magnitude of any plan's cost (every term at its largest)."""
    total = abs(model.offset) + model.split_penalty * len(model.candidates)
    for c in model.candidates:
        total += c.shipment_cost
        total += sum(
            u * min(a, t.quantity)
            for u, a, t in zip(c.unit_costs, c.available, model.lines, strict=True)
        )
    total += sum(t.backorder_cost * t.quantity for t in model.lines)
    return total
