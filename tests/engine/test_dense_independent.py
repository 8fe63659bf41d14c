"""The fast engine against an independent solver on random dense models with many lines.

Dense ship-from-store models: each SKU held at 30–60% of the candidates, orders of up to 50
lines with SKUs shared by several lines, small integer costs (so ties are everywhere),
short stock, partial fulfilment or not, shipment caps and ship-complete. HiGHS (through
scipy's ``milp``, :mod:`router.engine.highs`) solves the same canonical model; both must
agree on the status and the optimum, and the fast engine's plan must cost what it claims.
A second test lowers the level size below which the cheap bound suffices, so that the
Lagrangian bounds and the windowed enumeration do the work on every level (models large
enough to make levels crowded by themselves take HiGHS minutes).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.plan import CandidateTerms, ExplainedModel, LineTerms, SolveStatus
from router.engine.fast import solve_fast
from router.engine.highs import solve_highs
from router.engine.stop import Stop
from router.engine.terms import BuiltModel

DAY = date(2026, 11, 20)


@st.composite
def dense_models(draw: st.DrawFn, nodes: tuple[int, int], lines: tuple[int, int]) -> ExplainedModel:
    """A dense canonical model as the engine builds them (per-SKU terms shared by lines)."""
    n = draw(st.integers(*nodes))
    n_lines = draw(st.integers(*lines))
    n_skus = draw(st.integers(max(1, n_lines // 2), n_lines))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sku_of_line = rng.integers(0, n_skus, n_lines)
    share = rng.uniform(0.3, 0.6, n_skus)
    held = rng.random((n, n_skus)) < share
    stock = np.where(held, rng.integers(1, 5, (n, n_skus)), 0)
    unit = rng.integers(1, draw(st.sampled_from([3, 10, 40])), (n, n_skus))
    shipment = rng.integers(5, draw(st.sampled_from([8, 20, 60])), n)
    backorder = draw(st.sampled_from([0, 5, 60, 600]))
    partial = draw(st.booleans())
    model_lines = tuple(
        LineTerms(f"l{i}", f"S{s}", int(rng.integers(1, 4)), backorder, partial)
        for i, s in enumerate(sku_of_line.tolist())
    )
    candidates = tuple(
        CandidateTerms(
            node_id=f"n{j:02d}",
            distance_km=0.0,
            service="ground",
            ship_date=DAY,
            delivery_date=DAY,
            days_late=0,
            handling_cost=int(shipment[j]),
            shipping_cost=0,
            lateness_cost=0,
            node_penalty=0,
            unit_costs=tuple(int(unit[j, s]) for s in sku_of_line),
            available=tuple(int(stock[j, s]) for s in sku_of_line),
            priority=int(rng.integers(0, 2)),
        )
        for j in range(n)
    )
    return ExplainedModel(
        offset=0,
        split_penalty=draw(st.sampled_from([0, 4, 15])),
        candidates=candidates,
        lines=model_lines,
        max_shipments=draw(st.none() | st.integers(1, 5)),
        ship_complete=draw(st.booleans()) and draw(st.booleans()),
    )


def check_against_highs(model: ExplainedModel) -> None:
    """Same status and optimum as HiGHS; the plan is valid and costs what it claims."""
    built = BuiltModel.of(model)
    fast = solve_fast(built, Stop(60.0)).best
    independent = solve_highs(built, Stop(60.0))
    assert independent.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE)
    assert fast.status == independent.status
    assert fast.objective == independent.objective
    if fast.objective is None:
        return
    assert model.objective(fast.assignment) == fast.objective
    shipped = [0] * len(model.lines)
    for (j, line), q in fast.assignment.items():
        assert 0 < q <= model.candidates[j].available[line]
        shipped[line] += q
    held: dict[tuple[int, str], int] = {}
    for (j, line), q in fast.assignment.items():
        key = (j, model.lines[line].sku)
        held[key] = held.get(key, 0) + q
        assert held[key] <= model.candidates[j].available[line]
    for line, terms in enumerate(model.lines):
        assert shipped[line] <= terms.quantity
        assert terms.allow_partial or shipped[line] == terms.quantity
    nodes = {j for (j, _), q in fast.assignment.items() if q}
    if model.ship_complete:
        assert len(nodes) <= 1
    if model.max_shipments is not None:
        assert len(nodes) <= model.max_shipments


@pytest.mark.timeout(300)
@settings(max_examples=2500, deadline=None)
@given(dense_models(nodes=(1, 12), lines=(1, 50)))
def test_small_dense_models_match_highs(model: ExplainedModel):
    """Thousands of dense models of up to 12 candidates and 50 lines: the optimum of HiGHS."""
    check_against_highs(model)


@pytest.mark.timeout(300)
@settings(max_examples=150, deadline=None)
@given(dense_models(nodes=(12, 24), lines=(10, 50)))
def test_lagrangian_levels_on_dense_models_match_highs(model: ExplainedModel):
    """With Lagrangian bounds on every crowded level, still the optimum of HiGHS.

    A level counts as crowded from 50 sets here, so nearly every level of two or more
    shipments is bounded by the Lagrangian relaxation and enumerated in windows.
    """
    import router.engine.fast as fast

    saved, fast.SMALL_LEVEL = fast.SMALL_LEVEL, 50
    try:
        check_against_highs(model)
    finally:
        fast.SMALL_LEVEL = saved
