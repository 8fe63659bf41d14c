"""The fast exact engine: the canonical model solved by pruning, bounds and enumeration.

For a fixed set S of shipping nodes the rest of the canonical model is easy: each SKU's
units come from the nodes of S in order of unit cost (a greedy fill is optimal for one
demand with linear costs), and what is left, or dearer than a backorder, is backordered.
So the model is a search over node sets, and this module does that search exactly:

1. **Pruning.** A candidate j goes when another node i covers the whole demand of every
   SKU j holds, at no higher unit cost, with a lower shipment cost (or an equal one and
   an earlier place in the tie order): any plan using j is matched by one using i.
2. **Bounds.** Every plan of k shipments costs at least the k smallest shipment costs +
   (k − 1) split penalties + the cheapest way to supply the units from all candidates
   at once (``units_bound``). A level k whose bound exceeds the best plan found is
   skipped, and so is every set whose own bound does.
3. **Enumeration** of the sets of each size k = 0, 1, 2, … that survive, evaluated in
   batches with numpy. One line or one node covering the whole order are the first two
   levels, so their closed forms fall out.
4. **CP-SAT** on the pruned model, warm-started from the best plan found, when a level
   has too many sets to enumerate.

Ties are broken as documented (docs/cost-model.md): cost, then fewer shipments, then the
smaller sum of the nodes' ranks in the tie order (priority high to low, then node id),
then the sorted ranks compared in turn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.plan import ExplainedModel, SolveStatus
from router.engine.cpsat import Solution, solve_model
from router.engine.stop import Stop
from router.engine.terms import BuiltModel

MAX_SETS_PER_LEVEL = 400_000
"""Largest number of node sets enumerated at one level before CP-SAT takes over."""

CHUNK_ELEMENTS = 400_000
"""Node sets evaluated in one batch hold about this many (set, node, SKU) cells."""

MAX_ENUMERATED_SHIPMENTS = 12
"""Plans of more shipments than this are left to CP-SAT (rare: the bounds usually stop
the search at one or two shipments). Fewer when the tie key would not fit in int64."""


Int = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FastResult:
    """The best plan (and, on request, the next best ones) with status and bound."""

    best: Solution
    alternatives: tuple[Solution, ...]


@dataclass(frozen=True, slots=True)
class _Problem:
    """The canonical model per SKU group (lines of one SKU share stock and costs)."""

    shipment: Int  # F_j, shape (J,)
    unit: Int  # c_jg, shape (J, G)
    available: Int  # min(a_jg, q_g), shape (J, G)
    quantity: Int  # q_g, shape (G,)
    backorder: Int  # b_g, shape (G,)
    partial: NDArray[np.bool_]  # shape (G,)
    rank: Int  # place of each candidate in the tie order, shape (J,)
    lines_of_group: tuple[tuple[int, ...], ...]


def tie_order(built: BuiltModel) -> list[int]:
    """Each candidate's rank in the tie order: priority high to low, then node id."""
    m = built.matrices
    order = np.lexsort((m.id_rank, -m.priority))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ranks: list[int] = rank.tolist()
    return ranks


def _grouped(built: BuiltModel) -> _Problem | None:
    """The model per SKU group, or None when lines of one SKU differ in their terms."""
    groups: dict[str, list[int]] = {}
    for line, terms in enumerate(built.lines):
        groups.setdefault(terms.sku, []).append(line)
    lines_of_group = tuple(tuple(ls) for ls in groups.values())
    first = [ls[0] for ls in lines_of_group]
    m = built.matrices
    for ls in lines_of_group:
        head = built.lines[ls[0]]
        for line in ls[1:]:
            terms = built.lines[line]
            if (terms.backorder_cost, terms.allow_partial) != (
                head.backorder_cost,
                head.allow_partial,
            ) or not np.array_equal(m.unit[:, line], m.unit[:, ls[0]]):
                return None
    quantity = np.array(
        [sum(built.lines[line].quantity for line in ls) for ls in lines_of_group], dtype=np.int64
    )
    return _Problem(
        shipment=m.shipment,
        unit=m.unit[:, first],
        available=np.minimum(m.available[:, first], quantity),
        quantity=quantity,
        backorder=np.array([built.lines[line].backorder_cost for line in first], dtype=np.int64),
        partial=np.array([built.lines[line].allow_partial for line in first], dtype=np.bool_),
        rank=np.array(tie_order(built), dtype=np.int64),
        lines_of_group=lines_of_group,
    )


def _dominated(p: _Problem) -> NDArray[np.bool_]:
    """Candidates that another candidate dominates (see the module docstring).

    Only nodes covering the whole demand of every SKU are considered as dominators: the
    merge argument needs their stock to absorb the dominated node's. A dominator that is
    itself dominated is replaced by its own dominator, which also covers everything at no
    higher cost, so removing all dominated nodes at once is safe.
    """
    coverers = np.flatnonzero((p.available >= p.quantity).all(axis=1))
    if not len(coverers):
        return np.zeros(len(p.shipment), dtype=np.bool_)
    holds = p.available > 0  # (J, G)
    # dominates[d, j]: coverer d is no dearer than j on every SKU j holds, and on F.
    cheaper_units = ((p.unit[coverers][:, None, :] <= p.unit[None]) | ~holds[None]).all(axis=2)
    f_i, f_j = p.shipment[coverers][:, None], p.shipment[None]
    cheaper_shipment = (f_i < f_j) | ((f_i == f_j) & (p.rank[coverers][:, None] < p.rank[None]))
    dominates = cheaper_units & cheaper_shipment
    dominates[np.arange(len(coverers)), coverers] = False
    gone: NDArray[np.bool_] = dominates.any(axis=0)
    return gone


def _units_bound(p: _Problem) -> tuple[int, bool]:
    """Least unit and backorder cost of the order using every candidate at once.

    Returns the bound and whether the order can be supplied at all (a group that allows no
    partial fulfilment needs enough stock among the candidates).
    """
    total = 0
    for g in range(len(p.quantity)):
        order = np.argsort(p.unit[:, g], kind="stable")
        remaining = int(p.quantity[g])
        for j in order:
            cost = int(p.unit[j, g])
            if remaining == 0 or (p.partial[g] and cost >= p.backorder[g]):
                break
            take = min(remaining, int(p.available[j, g]))
            total += take * cost
            remaining -= take
        if remaining and not p.partial[g]:
            return 0, False
        total += remaining * int(p.backorder[g])
    return total, True


def _evaluate(p: _Problem, sets: Int) -> tuple[Int, NDArray[np.bool_], Int]:
    """Cost of each node set (rows of ``sets``, shape (M, k)) and whether it is a plan.

    A set is a plan when every group that allows no partial fulfilment is covered and every
    node of the set ships at least one unit (a set with an idle node is its own subset at
    a higher cost). Also returns the units each node ships per group, shape (M, k, G).
    """
    m, k = sets.shape
    n_groups = len(p.quantity)
    if k == 1:  # one node: the closed form, without the sorting
        node = sets[:, 0]
        c, a = p.unit[node], p.available[node]
        units = np.where(~p.partial | (c < p.backorder), np.minimum(p.quantity, a), 0)
        left = p.quantity - units
        cost = p.shipment[node] + (units * c + left * p.backorder).sum(axis=1)
        covered = ((left == 0) | p.partial).all(axis=1)
        return cost, covered & (units.sum(axis=1) > 0), units[:, None, :]
    unit = p.unit[sets]  # (M, k, G)
    available = p.available[sets]
    # Fill each group from the set's nodes in order of unit cost, then tie order.
    key = unit * (len(p.rank) + 1) + p.rank[sets][:, :, None]
    order = np.argsort(key, axis=1, kind="stable")
    remaining = np.broadcast_to(p.quantity, (m, n_groups)).copy()
    take = np.zeros_like(unit)
    cost = p.shipment[sets].sum(axis=1)
    for t in range(k):
        node = order[:, t, :]  # (M, G): which member of the set is t-th cheapest per group
        c = np.take_along_axis(unit, node[:, None, :], axis=1)[:, 0, :]
        a = np.take_along_axis(available, node[:, None, :], axis=1)[:, 0, :]
        worth = ~p.partial | (c < p.backorder)
        units = np.where(worth, np.minimum(remaining, a), 0)
        np.put_along_axis(take, node[:, None, :], units[:, None, :], axis=1)
        cost += (units * c).sum(axis=1)
        remaining -= units
    cost += (remaining * p.backorder).sum(axis=1)
    covered = ((remaining == 0) | p.partial).all(axis=1)
    busy = (take.sum(axis=2) > 0).all(axis=1)
    return cost, covered & busy, take


def _tie_key_fits(n: int, k: int) -> bool:
    """Whether :func:`_tie_key` of k-sets over n candidates fits in int64."""
    return bool((n + 1) ** k * (k * n + 1) < 2**62)


def _tie_key(p: _Problem, sets: Int) -> Int:
    """The tie order of each k-set as one number.

    The sum of its nodes' ranks first, then its sorted ranks compared in turn (as digits
    in base J + 1).
    """
    ranks = np.sort(p.rank[sets], axis=1)
    base = len(p.rank) + 1
    k = sets.shape[1]
    weights = base ** np.arange(k - 1, -1, -1, dtype=np.int64)
    key: Int = ranks.sum(axis=1) * base**k + (ranks * weights).sum(axis=1)
    return key


def _level_sets(keep: Int, k: int, budget: int) -> Int | None:
    """All k-subsets of ``keep`` (candidate indices), or None when more than ``budget``."""
    if math.comb(len(keep), k) > budget:
        return None
    if k == 2:
        first, second = np.triu_indices(len(keep), 1)
        pairs: Int = np.stack([keep[first], keep[second]], axis=1)
        return pairs
    combos = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(keep.tolist(), k)),
        dtype=np.int64,
    )
    return combos.reshape(-1, k)


def _assignment(
    p: _Problem, built: BuiltModel, nodes: Int, take: Int
) -> dict[tuple[int, int], int]:
    """Units per (candidate, line) of one set: a group's units fill its lines in order."""
    room = [terms.quantity for terms in built.lines]
    assignment: dict[tuple[int, int], int] = {}
    for member, j in enumerate(nodes.tolist()):
        for g, lines in enumerate(p.lines_of_group):
            units = int(take[member, g])
            for line in lines:
                give = min(units, room[line])
                if give:
                    assignment[j, line] = give
                    room[line] -= give
                    units -= give
    return assignment


def solve_fast(
    model: ExplainedModel | BuiltModel,
    stop: Stop,
    time_limit_s: float,
    *,
    alternatives: int = 0,
) -> FastResult:
    """Solve the canonical model exactly; also the next ``alternatives`` best node sets.

    Alternatives are the best plans of other sets of shipping nodes in which every node is
    needed, in tie-break order.
    """
    built = model if isinstance(model, BuiltModel) else BuiltModel.of(model)
    p = _grouped(built)
    if p is None:  # lines of one SKU with different terms: not worth a special case
        return _by_cpsat(built, None, stop, time_limit_s, alternatives)
    offset = built.offset
    units_bound, suppliable = _units_bound(p)
    if not suppliable:
        return FastResult(Solution(SolveStatus.INFEASIBLE, {}, None, None), ())
    # Pruning pays only once pairs are enumerated; it waits for level 2.
    gone = np.zeros(len(p.shipment), dtype=np.bool_)
    keep = np.arange(len(p.shipment))
    cap = len(keep)
    if built.max_shipments is not None:
        cap = min(cap, built.max_shipments)
    if built.ship_complete:
        cap = min(cap, 1)
    wanted = 1 + alternatives

    found_cost: list[Int] = []
    found_k: list[Int] = []
    found_tie: list[Int] = []
    found_sets: list[Int] = []
    found_take: list[Int] = []

    def threshold() -> float:
        if not found_cost:
            return math.inf
        costs = np.sort(np.concatenate(found_cost))
        return float(costs[wanted - 1]) if len(costs) >= wanted else math.inf

    if bool(p.partial.all()):  # k = 0: everything backordered
        found_cost.append(np.array([offset + int((p.quantity * p.backorder).sum())]))
        found_k.append(np.array([0]))
        found_tie.append(np.array([0]))
        found_sets.append(np.zeros((1, 0), dtype=np.int64))
        found_take.append(np.zeros((1, 0, len(p.quantity)), dtype=np.int64))

    smallest = np.concatenate([[0], np.cumsum(np.sort(p.shipment))])
    complete = True
    level_bound = offset + units_bound
    for k in itertools.count(1):
        if k == 2 and alternatives == 0:
            gone = _dominated(p)
            keep = np.flatnonzero(~gone)
            smallest = np.concatenate([[0], np.cumsum(np.sort(p.shipment[keep]))])
        if k > min(cap, len(keep)):
            break
        # Every k-set costs at least base + the shipment costs of its own nodes.
        base = offset + built.split_penalty * (k - 1) + units_bound
        level_bound = base + int(smallest[k])
        if level_bound > threshold():
            break
        if stop.is_set() and k > 1:  # one node is a closed form: always worth a fallback plan
            complete = False
            break
        members = keep[p.shipment[keep] <= threshold() - base - int(smallest[k - 1])]
        sets = _level_sets(members, k, MAX_SETS_PER_LEVEL)
        if sets is None or k > MAX_ENUMERATED_SHIPMENTS or not _tie_key_fits(len(p.rank), k):
            if stop.is_set():  # building a CP-SAT model is not worth it any more
                complete = False
                break
            if not sum(len(c) for c in found_cost):
                return _by_cpsat(built, p, stop, time_limit_s, alternatives)
            # Every set of k or more nodes that can beat the wanted-th best plan so far lies
            # in ``members`` (the bound above only grows with k); smaller sets are all
            # evaluated, and the best of them join, so CP-SAT on these candidates finds the
            # optimum and the next best plans.
            order = np.lexsort(
                (np.concatenate(found_tie), np.concatenate(found_k), np.concatenate(found_cost))
            )
            top = [_row_take(found_sets, found_take, r)[0] for r in order[:wanted].tolist()]
            rows = np.union1d(members, np.concatenate(top))
            sub = built.restrict(rows)
            position = {int(j): i for i, j in enumerate(rows.tolist())}
            best_so_far = _row_take(found_sets, found_take, int(order[0]))
            incumbent = _assignment(p, built, *best_so_far)
            handed = _by_cpsat(
                sub,
                _grouped(sub),
                stop,
                time_limit_s,
                alternatives,
                ranks=p.rank[rows].tolist(),
                hint={(position[j], line): q for (j, line), q in incumbent.items()},
            )
            found = handed.best

            def back(solution: Solution, bound: int | None, rows: Int = rows) -> Solution:
                moved = {(int(rows[j]), line): q for (j, line), q in solution.assignment.items()}
                return Solution(solution.status, moved, solution.objective, bound)

            if found.status is SolveStatus.OPTIMAL:
                others = tuple(back(s, s.bound) for s in handed.alternatives)
                return FastResult(back(found, found.bound), others)
            # Stopped: plans of k or more shipments that could win are in the sub-model, so
            # none beats the larger of the level's bound and CP-SAT's; smaller ones are known.
            best_small = int(np.concatenate(found_cost).min())
            if found.bound is not None:
                level_bound = max(level_bound, found.bound)
            if found.objective is not None and found.objective < best_small:
                bound = min(best_small, level_bound)
                return FastResult(back(found, bound), ())
            # Stopped with nothing better: the best plan so far stands, unproven.
            complete = False
            break
        sets = sets[base + p.shipment[sets].sum(axis=1) <= threshold()]
        chunk_size = max(1, CHUNK_ELEMENTS // (k * len(p.quantity)))
        for start in range(0, len(sets), chunk_size):  # in chunks: memory, stops, threshold
            if stop.is_set() and k > 1:
                complete = False
                break
            chunk = sets[start : start + chunk_size]
            chunk = chunk[base + p.shipment[chunk].sum(axis=1) <= threshold()]
            cost, valid, take = _evaluate(p, chunk)
            cost = cost + offset + built.split_penalty * (k - 1)
            found_cost.append(cost[valid])
            found_k.append(np.full(int(valid.sum()), k))
            found_tie.append(_tie_key(p, chunk[valid]))
            found_sets.append(chunk[valid])
            found_take.append(take[valid])
        if not complete:
            break

    if not found_cost or not sum(len(c) for c in found_cost):
        status = SolveStatus.INFEASIBLE if complete else SolveStatus.NO_SOLUTION
        return FastResult(Solution(status, {}, None, None), ())

    costs = np.concatenate(found_cost)
    ks = np.concatenate(found_k)
    ties = np.concatenate(found_tie)
    best_first = np.lexsort((ties, ks, costs))[:wanted]
    solutions = []
    for row in best_first.tolist():
        sets, take = _row_take(found_sets, found_take, row)
        objective = int(costs[row])
        solutions.append(
            Solution(SolveStatus.OPTIMAL, _assignment(p, built, sets, take), objective, objective)
        )
    if not complete:  # nothing is proven, the alternatives' ranks included
        bound = min(solutions[0].objective or 0, level_bound)
        solutions = [
            Solution(SolveStatus.FEASIBLE, s.assignment, s.objective, bound) for s in solutions
        ]
    return FastResult(solutions[0], tuple(solutions[1:]))


def _by_cpsat(
    built: BuiltModel,
    p: _Problem | None,
    stop: Stop,
    time_limit_s: float,
    alternatives: int,
    *,
    ranks: Sequence[int] | None = None,
    hint: Mapping[tuple[int, int], int] | None = None,
) -> FastResult:
    """Hand the search to CP-SAT, with the tie-break, and find alternatives by no-goods.

    ``ranks`` are the candidates' places in the whole model's tie order (a restricted
    model must not renumber them); ``hint`` is a plan to start from. An alternative whose
    set has a node that could be dropped at no cost (the greedy fill leaves it idle) is
    not a plan of its own, as in the enumeration: it is skipped.
    """
    model = built.model
    ranks = tie_order(built) if ranks is None else ranks
    best = solve_model(model, stop, time_limit_s, tie_order=ranks, hint=hint)
    if best.status is not SolveStatus.OPTIMAL:
        return FastResult(best, ())

    def key(solution: Solution) -> tuple[int, int, int, list[int]]:
        places = sorted(ranks[j] for j in solution.nodes)
        return (solution.objective or 0, len(places), sum(places), places)

    # CP-SAT's objective orders plans by the first three parts of the key; the last (sorted
    # ranks) and the alternatives come from no-good solves, in that order, until the plans
    # wanted are settled: the newest plan ranks after the last one wanted.
    plans, seen, last = [best], [best.nodes], best
    tries = 10 * (alternatives + 1)  # sets with an idle node are skipped, within reason
    while tries > 0 and not stop.is_set():
        tries -= 1
        ranked = sorted(plans, key=key)
        if len(ranked) > alternatives and key(last)[:3] > key(ranked[alternatives])[:3]:
            break
        last = solve_model(model, stop, time_limit_s, exclude=seen, tie_order=ranks)
        if last.status is not SolveStatus.OPTIMAL:
            break
        nodes = last.nodes
        seen.append(nodes)
        if p is not None and len(nodes):
            _, valid, _ = _evaluate(p, np.array([sorted(nodes)], dtype=np.int64))
            if not valid[0]:
                continue
        plans.append(last)
    ranked = sorted(plans, key=key)[: alternatives + 1]
    if p is not None:
        ranked = [_canonical(p, built, s) for s in ranked]
    return FastResult(ranked[0], tuple(ranked[1:]))


def _canonical(p: _Problem, built: BuiltModel, solution: Solution) -> Solution:
    """The solution's node set with the greedy fill's units, as the enumeration gives them.

    CP-SAT may split equal-cost units between a set's nodes or lines differently; the fill
    makes the plan for a set the same whichever path found it (its cost is the same).
    """
    nodes = sorted(solution.nodes)
    if not nodes:
        return solution
    sets = np.array([nodes], dtype=np.int64)
    cost, valid, take = _evaluate(p, sets)
    total = int(cost[0]) + built.offset + built.split_penalty * (len(nodes) - 1)
    if not valid[0] or total != solution.objective:
        return solution
    assignment = _assignment(p, built, sets[0], take[0])
    return Solution(solution.status, assignment, solution.objective, solution.bound)


def _row_take(found_sets: list[Int], found_take: list[Int], row: int) -> tuple[Int, Int]:
    """The node set and units of the ``row``-th set over all levels."""
    for sets, take in zip(found_sets, found_take, strict=True):
        if row < len(sets):
            return sets[row], take[row]
        row -= len(sets)
    raise IndexError(row)
