"""Random canonical models re-solved by an independent solver (HiGHS through scipy.milp)."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from models.plan import CandidateTerms, ExplainedModel, LineTerms, SolveStatus
from router.engine.cpsat import solve_model
from router.engine.stop import Stop

DAY = date(2026, 11, 20)


@st.composite
def models(draw: st.DrawFn) -> ExplainedModel:
    n_lines = draw(st.integers(1, 4))
    skus = [draw(st.sampled_from("ABC")) for _ in range(n_lines)]
    allow_partial = draw(st.booleans())
    lines = tuple(
        LineTerms(
            f"l{i}", skus[i], draw(st.integers(1, 6)), draw(st.integers(0, 90_000)), allow_partial
        )
        for i in range(n_lines)
    )
    candidates = []
    for j in range(draw(st.integers(0, 5))):
        stock = {s: draw(st.integers(0, 6)) for s in "ABC"}
        candidates.append(
            CandidateTerms(
                node_id=f"n{j}",
                distance_km=0.0,
                service="ground",
                ship_date=DAY,
                delivery_date=DAY,
                days_late=0,
                handling_cost=draw(st.integers(0, 40_000)),
                shipping_cost=draw(st.integers(0, 90_000)),
                lateness_cost=draw(st.integers(0, 30_000)),
                node_penalty=0,
                unit_costs=tuple(draw(st.integers(0, 50_000)) for _ in range(n_lines)),
                available=tuple(stock[s] for s in skus),
            )
        )
    return ExplainedModel(
        offset=draw(st.integers(-1000, 1000)),
        split_penalty=draw(st.integers(0, 60_000)),
        candidates=tuple(candidates),
        lines=lines,
        max_shipments=draw(st.none() | st.integers(1, 3)),
        ship_complete=draw(st.booleans()),
    )


def highs_optimum(model: ExplainedModel) -> float | None:
    """Solve the documented model with HiGHS; None when infeasible.

    Variables: y_j (J), x_lj (J·L, row-major by j), u_l (L), e (1).
    """
    n_c, n_l = len(model.candidates), len(model.lines)
    n = n_c + n_c * n_l + n_l + 1
    xi = lambda j, line: n_c + j * n_l + line  # noqa: E731
    ui = lambda line: n_c + n_c * n_l + line  # noqa: E731
    ei = n - 1
    cost = np.zeros(n)
    lower, upper = np.zeros(n), np.zeros(n)
    for j, c in enumerate(model.candidates):
        cost[j], upper[j] = c.shipment_cost, 1
        for line, t in enumerate(model.lines):
            cost[xi(j, line)] = c.unit_costs[line]
            upper[xi(j, line)] = min(t.quantity, c.available[line])
    for line, t in enumerate(model.lines):
        cost[ui(line)] = t.backorder_cost
        upper[ui(line)] = t.quantity if t.allow_partial else 0
    cost[ei], upper[ei] = model.split_penalty, max(n_c, 1)
    rows, lo, hi = [], [], []

    def row(coefs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(n)
        for k, v in coefs.items():
            r[k] += v
        rows.append(r)
        lo.append(low)
        hi.append(high)

    for line, t in enumerate(model.lines):  # Σ_j x_lj + u_l = q_l
        row({**{xi(j, line): 1 for j in range(n_c)}, ui(line): 1}, t.quantity, t.quantity)
    for j, c in enumerate(model.candidates):  # x_lj ≤ min(q_l, a_lj)·y_j
        for line, t in enumerate(model.lines):
            row({xi(j, line): 1, j: -min(t.quantity, c.available[line])}, -np.inf, 0)
        for s in {t.sku for t in model.lines}:  # lines of one sku share the node's stock
            same = [line for line, t in enumerate(model.lines) if t.sku == s]
            row({xi(j, line): 1 for line in same}, -np.inf, c.available[same[0]])
    if n_c:
        row({**dict.fromkeys(range(n_c), 1), ei: -1}, -np.inf, 1)  # e ≥ Σ y − 1
        cap = min(
            x
            for x in (model.max_shipments, 1 if model.ship_complete else None, n_c)
            if x is not None
        )
        row(dict.fromkeys(range(n_c), 1), 0, cap)
    result = milp(
        cost,
        constraints=[LinearConstraint(np.array(rows), lo, hi)] if rows else None,
        integrality=np.ones(n),
        bounds=Bounds(lower, upper),
    )
    if result.status == 2:
        return None
    assert result.success, result.message
    return float(result.fun) + model.offset


@settings(max_examples=150, deadline=None)
@given(models())
def test_cpsat_and_highs_agree_on_the_optimum(model: ExplainedModel):
    """CP-SAT and HiGHS agree on the optimum (or on infeasibility) of random models.

    The objective CP-SAT reports also equals the model evaluated at its assignment.
    """
    solution = solve_model(model, Stop(10.0))
    reference = highs_optimum(model)
    if reference is None:
        assert solution.status is SolveStatus.INFEASIBLE
        return
    assert solution.status is SolveStatus.OPTIMAL
    assert solution.objective == round(reference)
    assert solution.objective == model.objective(solution.assignment)
