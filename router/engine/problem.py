"""The canonical model of one order per SKU group: what the exact search works on.

Lines that order the same SKU share every node's stock of it and (in models the engine
builds) every cost term, so they form one *group* with their quantities summed. For a
fixed set S of shipping nodes the rest of the canonical model is a greedy fill: each
group's units come from the nodes of S in order of unit cost (ties by the tie order), a
unit dearer than its backorder stays backordered, and what S cannot supply is backordered
(or makes S infeasible when the group may not be backordered). :meth:`Problem.evaluate`
does that fill for many sets at once, so a plan is a node set and its cost is exact.

Every reduction here returns the map back to the caller's indices with the reduced
problem (:class:`Subproblem`), so no caller rebuilds index maps by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from router.engine.terms import BuiltModel

Int = NDArray[np.int64]
Bool = NDArray[np.bool_]

INFINITE = np.iinfo(np.int64).max // 8
"""A cost no plan reaches (sums of a few of them still fit in int64)."""


@dataclass(frozen=True, slots=True)
class Evaluated:
    """Node sets (rows of ``sets``) with their exact cost, whether each is a plan, its units.

    ``cost`` includes the offset and the split penalties; ``take[m, i, g]`` is what the
    i-th node of set m ships of group g. A set is a plan when every group that may not be
    backordered is fully supplied and every node ships at least one unit (a set with an
    idle node is its own subset at a higher cost).
    """

    sets: Int
    cost: Int
    valid: Bool
    take: Int


@dataclass(frozen=True, slots=True)
class Problem:
    """The canonical model per SKU group, in solver units.

    ``shipment[j]`` is ``F_j``; ``unit[j, g]`` and ``available[j, g]`` are the unit cost
    and the units node j can ship of group g: its stock, at most the group's quantity, and
    0 where shipping a unit costs at least its backorder (never worth it). ``rank[j]`` is
    the node's place in the tie order. ``cap`` is the most shipments a plan may have (the
    order's and the rules' limits, 1 for ship complete).
    """

    shipment: Int
    unit: Int
    available: Int
    quantity: Int
    backorder: Int
    partial: Bool
    rank: Int
    lines_of_group: tuple[tuple[int, ...], ...]
    line_quantity: tuple[int, ...]
    offset: int
    split_penalty: int
    cap: int

    @staticmethod
    def of(built: BuiltModel) -> Problem | None:
        """The grouped problem, or None when lines of one SKU differ in their terms."""
        groups: dict[str, list[int]] = {}
        for line, terms in enumerate(built.lines):
            groups.setdefault(terms.sku, []).append(line)
        lines_of_group = tuple(tuple(ls) for ls in groups.values())
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
        first = [ls[0] for ls in lines_of_group]
        quantity = np.array(
            [sum(built.lines[line].quantity for line in ls) for ls in lines_of_group],
            dtype=np.int64,
        )
        backorder = np.array([built.lines[line].backorder_cost for line in first], dtype=np.int64)
        partial = np.array([built.lines[line].allow_partial for line in first], dtype=np.bool_)
        unit = m.unit[:, first]
        available = np.minimum(m.available[:, first], quantity)
        available[partial[None, :] & (unit >= backorder[None, :])] = 0
        n = len(m.node_ids)
        cap = n
        if built.max_shipments is not None:
            cap = min(cap, built.max_shipments)
        if built.ship_complete:
            cap = min(cap, 1)
        return Problem(
            shipment=m.shipment,
            unit=unit,
            available=available,
            quantity=quantity,
            backorder=backorder,
            partial=partial,
            rank=tie_ranks(built),
            lines_of_group=lines_of_group,
            line_quantity=tuple(terms.quantity for terms in built.lines),
            offset=built.offset,
            split_penalty=built.split_penalty,
            cap=cap,
        )

    @property
    def n_nodes(self) -> int:
        """Candidates J."""
        return len(self.shipment)

    @property
    def n_groups(self) -> int:
        """SKU groups G."""
        return len(self.quantity)

    @property
    def holds(self) -> Bool:
        """``holds[j, g]``: node j can ship a unit of group g."""
        held: Bool = self.available > 0
        return held

    @property
    def covers(self) -> Bool:
        """``covers[j, g]``: node j alone can ship all of group g."""
        covered: Bool = self.available >= self.quantity[None, :]
        return covered

    @property
    def all_backordered(self) -> int | None:
        """The cost of the plan that ships nothing, or None when a group must ship."""
        if not bool(self.partial.all()):
            return None
        return self.offset + int((self.quantity * self.backorder).sum())

    def fill_all(self) -> tuple[Int, bool]:
        """Per group, the least cost of its units using every candidate at once.

        A lower bound on what any set pays for the group. The flag says whether every
        group that may not be backordered can be supplied at all.
        """
        if self.n_nodes == 0:
            return self.quantity * self.backorder, bool(self.partial.all())
        order = np.argsort(self.unit, axis=0, kind="stable")  # cheapest first, per group
        available = np.take_along_axis(self.available, order, axis=0)
        before = np.cumsum(available, axis=0) - available
        take = np.clip(self.quantity[None, :] - before, 0, available)
        cost: Int = (take * np.take_along_axis(self.unit, order, axis=0)).sum(axis=0)
        left = self.quantity - take.sum(axis=0)
        suppliable = bool(((left == 0) | self.partial).all())
        return cost + left * self.backorder, suppliable

    def evaluate(self, sets: Int) -> Evaluated:
        """The greedy fill of each node set (rows of ``sets``, shape (M, k))."""
        m, k = sets.shape
        if k == 0:
            nothing = self.all_backordered
            cost = np.full(m, INFINITE if nothing is None else nothing, dtype=np.int64)
            valid = np.full(m, nothing is not None)
            return Evaluated(sets, cost, valid, np.zeros((m, 0, self.n_groups), dtype=np.int64))
        split = self.offset + self.split_penalty * (k - 1)
        if k == 1:  # one node: the closed form, without the sorting
            node = sets[:, 0]
            c, a = self.unit[node], self.available[node]
            units = np.minimum(self.quantity, a)
            left = self.quantity - units
            cost = split + self.shipment[node] + (units * c + left * self.backorder).sum(axis=1)
            covered = ((left == 0) | self.partial).all(axis=1)
            valid = covered & (units.sum(axis=1) > 0)
            return Evaluated(sets, cost, valid, units[:, None, :])
        unit = self.unit[sets]  # (M, k, G)
        available = self.available[sets]
        # Fill each group from the set's nodes in order of unit cost, then tie order.
        key = unit * (int(self.rank.max()) + 1) + self.rank[sets][:, :, None]
        order = np.argsort(key, axis=1, kind="stable")
        remaining = np.broadcast_to(self.quantity, (m, self.n_groups)).copy()
        take = np.zeros_like(unit)
        cost = split + self.shipment[sets].sum(axis=1)
        for t in range(k):
            node = order[:, t, :]  # (M, G): the set's t-th cheapest member per group
            c = np.take_along_axis(unit, node[:, None, :], axis=1)[:, 0, :]
            a = np.take_along_axis(available, node[:, None, :], axis=1)[:, 0, :]
            units = np.minimum(remaining, a)
            np.put_along_axis(take, node[:, None, :], units[:, None, :], axis=1)
            cost += (units * c).sum(axis=1)
            remaining -= units
        cost += (remaining * self.backorder).sum(axis=1)
        covered = ((remaining == 0) | self.partial).all(axis=1)
        busy = (take.sum(axis=2) > 0).all(axis=1)
        return Evaluated(sets, cost, covered & busy, take)

    def assignment(self, nodes: Int, take: Int) -> dict[tuple[int, int], int]:
        """Units per (node, line) of one set: a group's units fill its lines in order."""
        room = list(self.line_quantity)
        assignment: dict[tuple[int, int], int] = {}
        for member, j in enumerate(nodes.tolist()):
            for g, lines in enumerate(self.lines_of_group):
                units = int(take[member, g])
                for line in lines:
                    give = min(units, room[line])
                    if give:
                        assignment[j, line] = give
                        room[line] -= give
                        units -= give
        return assignment

    def restrict(self, rows: Int) -> Subproblem:
        """The same problem over the candidates ``rows`` only (ranks kept)."""
        problem = Problem(
            shipment=self.shipment[rows],
            unit=self.unit[rows],
            available=self.available[rows],
            quantity=self.quantity,
            backorder=self.backorder,
            partial=self.partial,
            rank=self.rank[rows],
            lines_of_group=self.lines_of_group,
            line_quantity=self.line_quantity,
            offset=self.offset,
            split_penalty=self.split_penalty,
            cap=min(self.cap, len(rows)),
        )
        return Subproblem(problem, rows)


@dataclass(frozen=True, slots=True)
class Subproblem:
    """A reduced problem and, for each of its candidates, its index in the original."""

    problem: Problem
    rows: Int

    def lift(self, sets: Int) -> Int:
        """Node sets of the reduced problem in the original's indices."""
        lifted: Int = self.rows[sets]
        return lifted


def tie_ranks(built: BuiltModel) -> Int:
    """Each candidate's rank in the tie order: priority high to low, then node id."""
    m = built.matrices
    order = np.lexsort((m.id_rank, -m.priority))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def drop_dominated(problem: Problem, wanted: int) -> Subproblem:
    """Drop every candidate that at least ``wanted`` other candidates dominate.

    Node d dominates node j when, for every group j can ship, d alone covers the group's
    whole quantity at a unit cost below j's (or equal, d earlier in the tie order), and
    d's shipment cost is below j's (or equal, d earlier in the tie order). In any set with
    both, the fill gives j nothing (d comes first and takes every unit), so a plan P that
    ships from j has no dominator of j. For each dominator d, P − j + d ships j's units
    from d at no higher cost (the members before d still take what they took in P, so d
    ships what j shipped, and more is never dearer); drop the nodes it leaves idle and a
    plan remains that contains d, is no dearer than P and comes earlier in the tie order.
    These plans differ for different d (each holds its own d and no other dominator), so
    with m ≥ ``wanted`` dominators, P is not among the ``wanted`` best, and j can go. A
    dominator that is dropped too has its own dominators, which dominate j as well.

    Not for searches that must keep a given node: the replacement may leave it idle.
    Checked on bitsets of groups, so it scales to thousands of candidates.
    """
    n = problem.n_nodes
    holds = bitsets(problem.holds)
    covers = bitsets(problem.covers)
    # In order of (F, rank), a dominator always comes first. Dominators are sought among
    # the undominated nodes so far and the earlier nodes of the same block: all of them
    # dominate when the relation holds, so the count never overstates (it may understate
    # when a dominator is itself dominated, which only keeps a node that could go).
    order = np.lexsort((problem.rank, problem.shipment))
    kept = np.ones(n, dtype=np.bool_)
    frontier = np.zeros(0, dtype=np.int64)
    for start in range(0, n, _DOMINANCE_BLOCK):
        block = order[start : start + _DOMINANCE_BLOCK]
        rivals = np.concatenate([frontier, block])
        # subset[d, j]: every group j holds, d covers; and d comes before j.
        subset = ((holds[block][None, :, :] & ~covers[rivals][:, None, :]) == 0).all(axis=2)
        subset[len(frontier) :] &= np.tri(len(block), k=-1, dtype=np.bool_).T
        dd, jj = np.nonzero(subset)
        cheaper = _unit_cheaper(problem, rivals[dd], block[jj])
        count = np.bincount(jj[cheaper], minlength=len(block))
        kept[block[count >= wanted]] = False
        frontier = np.concatenate([frontier, block[count == 0]])
    return problem.restrict(np.flatnonzero(kept))


_DOMINANCE_BLOCK = 256
"""Candidates checked against the undominated ones per batch."""


def _unit_cheaper(problem: Problem, i: Int, j: Int) -> Bool:
    """For pairs (i[p], j[p]): i's unit cost beats j's on every group j holds (ties: rank)."""
    out = np.ones(len(i), dtype=np.bool_)
    step = max(1, 2_000_000 // max(1, problem.n_groups))
    for start in range(0, len(i), step):
        a, b = i[start : start + step], j[start : start + step]
        ci, cj = problem.unit[a], problem.unit[b]
        earlier = (problem.rank[a] < problem.rank[b])[:, None]
        beats = (ci < cj) | ((ci == cj) & earlier) | ~problem.holds[b]
        out[start : start + step] = beats.all(axis=1)
    return out


def bitsets(flags: Bool) -> NDArray[np.uint64]:
    """Rows of booleans (J, G) as bitsets (J, W) of 64-bit words, group g at bit g % 64."""
    n, g = flags.shape
    words = max(1, -(-g // 64))
    out = np.zeros((n, words), dtype=np.uint64)
    shifts = np.arange(64, dtype=np.uint64)
    for w in range(words):
        part = flags[:, 64 * w : 64 * (w + 1)].astype(np.uint64)
        out[:, w] = (part << shifts[: part.shape[1]]).sum(axis=1, dtype=np.uint64)
    return out
