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
    fast = solve_fast(model, Stop(10.0)).best
    full = solve_model(model, Stop(10.0))
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


def ranked_plans(model: ExplainedModel) -> list[tuple[int, int, list[int]]]:
    """Every plan in which each shipping node is needed, best first, by brute force.

    For each allowed set of nodes, a plain-Python greedy fill per SKU (cheapest unit cost
    first, then tie order) decides the units; a set whose fill leaves a node idle is not a
    plan of its own (its subset is as good or better). Sorted by (cost, shipments, the
    nodes' tie order).
    """
    from itertools import combinations

    n = len(model.candidates)
    tie = sorted(
        range(n), key=lambda j: (-model.candidates[j].priority, model.candidates[j].node_id)
    )
    rank = {j: r for r, j in enumerate(tie)}
    cap = min(
        x for x in (model.max_shipments, 1 if model.ship_complete else None, n) if x is not None
    )
    groups: dict[str, list[int]] = {}
    for line, terms in enumerate(model.lines):
        groups.setdefault(terms.sku, []).append(line)
    plans = []
    for k in range(cap + 1):
        for nodes in combinations(range(n), k):
            cost = sum(model.candidates[j].shipment_cost for j in nodes)
            cost += model.split_penalty * max(0, k - 1)
            used, feasible = set(), True
            for lines in groups.values():
                first = model.lines[lines[0]]
                left = sum(model.lines[line].quantity for line in lines)
                for j in sorted(
                    nodes, key=lambda j: (model.candidates[j].unit_costs[lines[0]], rank[j])
                ):
                    unit = model.candidates[j].unit_costs[lines[0]]
                    if first.allow_partial and unit >= first.backorder_cost:
                        break
                    take = min(left, model.candidates[j].available[lines[0]])
                    if take:
                        used.add(j)
                    cost += take * unit
                    left -= take
                feasible &= first.allow_partial or left == 0
                cost += left * first.backorder_cost
            if feasible and used == set(nodes):
                ranks = sorted(rank[j] for j in nodes)
                plans.append((cost + model.offset, k, sum(ranks), ranks))
    return sorted(plans)


@settings(max_examples=400, deadline=None)
@given(models())
def test_best_plan_and_alternatives_match_a_brute_force_ranking(model: ExplainedModel):
    """The plan and its alternatives are the brute-force ranking's first three, in order.

    This also pins the documented tie-break: cost, then fewer shipments, then the sum of
    the nodes' ranks in the tie order (priority high to low, then node id), then their
    sorted ranks in turn.
    """
    result = solve_fast(model, Stop(10.0), alternatives=2)
    ranking = ranked_plans(model)
    alone = solve_fast(model, Stop(10.0)).best  # with dominance pruning on
    assert alone.assignment == result.best.assignment
    assert (alone.objective is None) == (not ranking)
    plans = [p for p in (result.best, *result.alternatives) if p.objective is not None]
    assert [p.objective for p in plans] == [cost for cost, _, _, _ in ranking[:3]]
    tie = sorted(model.candidates, key=lambda c: (-c.priority, c.node_id))
    for plan, (_, k, _, ranks) in zip(plans, ranking, strict=False):
        nodes = {model.candidates[j].node_id for (j, _), q in plan.assignment.items() if q}
        assert sorted(tie.index(next(c for c in tie if c.node_id == n)) for n in nodes) == ranks
        assert len(nodes) == k
        assert model.objective(plan.assignment) == plan.objective


@settings(max_examples=400, deadline=None)
@given(models())
def test_lagrangian_bounds_rank_plans_as_the_brute_force(model: ExplainedModel):
    """With every level bounded by the Lagrangian relaxation, the ranking is unchanged.

    The cheap bound suffices for models this small, so the Lagrangian levels are forced on
    every level: they must prune no plan that ranks among the first three.
    """
    import router.engine.fast as fast

    saved, fast.SMALL_LEVEL = fast.SMALL_LEVEL, -1
    try:
        result = fast.solve_fast(model, Stop(10.0), alternatives=2)
    finally:
        fast.SMALL_LEVEL = saved
    ranking = ranked_plans(model)
    plans = [p for p in (result.best, *result.alternatives) if p.objective is not None]
    assert [p.objective for p in plans] == [cost for cost, _, _, _ in ranking[:3]]
    assert result.best.assignment == solve_fast(model, Stop(10.0)).best.assignment


@settings(max_examples=600, deadline=None)
@given(models(), st.integers(0, 6))
def test_a_forced_node_gets_the_best_plan_through_it(model: ExplainedModel, node: int):
    """A counterfactual's plan is the brute force's best plan that ships from the node.

    When no plan ships from it, the answer is INFEASIBLE (proven), never a plan.
    """
    if node >= len(model.candidates):
        return
    forced = solve_fast(model, Stop(10.0), forced=node).best
    through = [
        plan for plan in ranked_plans(model) if plan[1] and _ranks_of(model, node) in plan[3]
    ]
    if not through:
        assert forced.status is SolveStatus.INFEASIBLE
        return
    assert forced.status is SolveStatus.OPTIMAL
    assert forced.objective == through[0][0]
    assert any(j == node for (j, _), q in forced.assignment.items() if q)
    assert model.objective(forced.assignment) == forced.objective


def _ranks_of(model: ExplainedModel, node: int) -> int:
    tie = sorted(
        range(len(model.candidates)),
        key=lambda j: (-model.candidates[j].priority, model.candidates[j].node_id),
    )
    return tie.index(node)


def test_lines_of_one_sku_with_different_terms_go_to_cpsat():
    """Lines of one SKU that differ in backorder cost cannot be grouped; CP-SAT solves them.

    Node n0 (F = 5) holds 2 units of A at 1 each, shared by both lines. Line l0 (A ×1)
    backorders at 10 a unit, l1 (A ×2) at 2. Nothing shipped: 10 + 2·2 = 14; l0 only:
    5 + 1 + 2·2 = 10; l0 and one unit of l1 (the stock is 2): 5 + 1 + 1 + 2 = 9, the
    optimum.
    """
    candidate = CandidateTerms(
        node_id="n0",
        distance_km=0.0,
        service="ground",
        ship_date=DAY,
        delivery_date=DAY,
        days_late=0,
        handling_cost=5,
        shipping_cost=0,
        lateness_cost=0,
        node_penalty=0,
        unit_costs=(1, 1),
        available=(2, 2),
    )
    lines = (LineTerms("l0", "A", 1, 10, True), LineTerms("l1", "A", 2, 2, True))
    model = ExplainedModel(0, 0, (candidate,), lines, None, False)
    result = solve_fast(model, Stop(10.0)).best
    assert (result.status, result.objective) == (SolveStatus.OPTIMAL, 9)
    assert result.assignment == {(0, 0): 1, (0, 1): 1}
