"""The fast engine against the straightforward full model: same optimum, every time."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from models.plan import CandidateTerms, ExplainedModel, LineTerms, SolveStatus
from router.engine.cpsat import solve_model
from router.engine.fast import solve_fast
from router.engine.stop import Stop

DAY = date(2026, 11, 20)


@st.composite
def models(draw: st.DrawFn) -> ExplainedModel:
    """Random canonical models as the engine builds them: a unit cost per node and SKU.

    Small cost ranges make ties common; stock is often zero or short; flags vary.
    """
    n_lines = draw(st.integers(1, 5))
    skus = [draw(st.sampled_from("ABCD")) for _ in range(n_lines)]
    backorder = draw(st.integers(0, 12))
    partial = draw(st.booleans())
    lines = tuple(
        LineTerms(f"l{i}", skus[i], draw(st.integers(1, 5)), backorder, partial)
        for i in range(n_lines)
    )
    candidates = []
    for j in range(draw(st.integers(0, 7))):
        cost = {s: draw(st.integers(0, 6)) for s in "ABCD"}
        stock = {s: draw(st.sampled_from([0, 0, 1, 2, 3, 5, 9])) for s in "ABCD"}
        candidates.append(
            CandidateTerms(
                node_id=f"n{j}",
                distance_km=0.0,
                service="ground",
                ship_date=DAY,
                delivery_date=DAY,
                days_late=0,
                handling_cost=draw(st.integers(0, 8)),
                shipping_cost=draw(st.integers(0, 8)),
                lateness_cost=draw(st.sampled_from([0, 0, 3])),
                node_penalty=0,
                unit_costs=tuple(cost[s] for s in skus),
                available=tuple(stock[s] for s in skus),
                priority=draw(st.integers(0, 2)),
            )
        )
    return ExplainedModel(
        offset=0,
        split_penalty=draw(st.integers(0, 6)),
        candidates=tuple(candidates),
        lines=lines,
        max_shipments=draw(st.none() | st.integers(1, 3)),
        ship_complete=draw(st.booleans()),
    )


@settings(max_examples=3000, deadline=None)
@given(models())
def test_fast_and_full_models_reach_the_same_optimum(model: ExplainedModel):
    """The fast engine and the full CP-SAT model agree on status and objective.

    Thousands of small models with ties, zero stock, ship-complete, partial fulfilment and
    shipment caps; the fast engine's plan must also cost what it claims and be valid.
    """
    fast = solve_fast(model, Stop(), 10.0).best
    full = solve_model(model, Stop(), 10.0)
    assert fast.status == full.status
    assert fast.objective == full.objective
    if fast.objective is not None:
        assert model.objective(fast.assignment) == fast.objective
        shipped = {line: 0 for line in range(len(model.lines))}
        for (j, line), q in fast.assignment.items():
            assert 0 < q <= model.candidates[j].available[line]
            shipped[line] += q
        for line, terms in enumerate(model.lines):
            assert shipped[line] <= terms.quantity
            assert terms.allow_partial or shipped[line] == terms.quantity


@settings(max_examples=300, deadline=None)
@given(models())
def test_alternatives_are_the_next_best_distinct_plans(model: ExplainedModel):
    """Alternatives cost no less than the best plan, in order, each a distinct node set."""
    result = solve_fast(model, Stop(), 10.0, alternatives=2)
    plans = [result.best, *result.alternatives]
    costs = [p.objective for p in plans if p.objective is not None]
    assert costs == sorted(costs)
    sets = [frozenset(j for (j, _), q in p.assignment.items() if q) for p in plans]
    assert len(set(sets)) == len(sets)
    for plan in plans[1:]:
        assert model.objective(plan.assignment) == plan.objective
    if result.best.status is SolveStatus.OPTIMAL and len(plans) > 1:
        # The runner-up is the best plan over every other set: check with CP-SAT.
        other = solve_model(model, Stop(), 10.0, exclude=[sets[0]])
        assert other.objective == plans[1].objective


@settings(max_examples=300, deadline=None)
@given(models())
def test_cpsat_fallback_reaches_the_same_optimum(model: ExplainedModel):
    """When enumeration hands over to CP-SAT (forced here at one shipment), the answer holds."""
    import router.engine.fast as fast

    saved = fast.MAX_ENUMERATED_SHIPMENTS
    fast.MAX_ENUMERATED_SHIPMENTS = 1
    try:
        result = fast.solve_fast(model, Stop(), 10.0)
    finally:
        fast.MAX_ENUMERATED_SHIPMENTS = saved
    full = solve_model(model, Stop(), 10.0)
    assert (result.best.status, result.best.objective) == (full.status, full.objective)
