"""Lower bounds on the cost of every plan of k shipments, node by node.

A :class:`LevelBound` says, for one number k of shipments: every plan S of k nodes costs
at least ``base + Σ_{j∈S} reduced[j] + Σ_{g that no node of S holds} uncovered[g]``, and
S is no plan at all unless it holds every group that may not be backordered. Sorting the
nodes by ``reduced`` turns this into a bound on whole families of sets (the k smallest
reduced costs bound the level; a partial set plus the smallest remaining ones bounds its
completions), which is what the enumeration in :mod:`router.engine.fast` prunes with.

Two bounds are made, both exact in integers:

* :func:`cheap_bound`: ``reduced = F_j`` and ``base`` = the offset, the split penalties and
  the least cost of all units over every candidate at once (a set never supplies a group
  more cheaply than all candidates together). A group no node of S holds costs its whole
  backorder, which is ``uncovered[g]`` more than that least cost.
* :func:`lagrangian_bound`: the Lagrangian relaxation of the demand rows with a price
  ``v[g]`` per unit of group g. For any v and any set S of k nodes, relaxing
  ``Σ_j x_jg + u_g = q_g`` into the objective leaves a problem that splits by node:
  ``cost(S) ≥ (k−1)·split + offset + Σ_g v_g·q_g + Σ_{partial g} min(0, b_g − v_g)·q_g
  + Σ_{j∈S} (F_j − Σ_g a_jg·(v_g − c_jg)⁺)``. (Weak duality: any v gives a valid bound,
  so prices found by an approximate method are safe; they are rounded to integers, which
  makes the bound exact.) A group that S does not hold has ``u_g = q_g`` exactly, which
  the relaxation charged only ``min(v_g, b_g)·q_g``: the difference ``(b_g − v_g)⁺·q_g``
  is ``uncovered[g]``. With the right prices this is the LP relaxation of the level (the
  relaxation has the integrality property), and the uncovered terms make it stronger.
  :func:`ascend` finds such prices by a projected subgradient method with Polyak steps.

A level's bound also bounds every level above it when the next least reduced cost (the
(k+1)-th) is not negative and the split penalty is not negative
(:attr:`LevelBound.monotone`): a larger set costs at least the k least reduced costs plus
more that are not negative, and more split penalties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from router.engine.problem import Int, Problem
from router.engine.stop import Stop

ASCENT_ITERATIONS = 300
"""Subgradient steps per level at most (each costs one pass over the active candidates)."""

ASCENT_ACTIVE = 96
"""Candidates the ascent works on between refreshes (at least 8 per shipment)."""

ASCENT_REFRESH = 25
"""Steps between recomputing every candidate's reduced cost to refresh the active set."""

Float = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LevelBound:
    """A lower bound on every plan of ``k`` shipments (see the module docstring).

    ``uncovered[g]`` is the extra cost when no node of the set holds group g; groups that
    may not be backordered have none (such a set is no plan). ``prices`` are the Lagrangian
    prices behind the bound (empty for the cheap bound).
    """

    k: int
    base: int
    reduced: Int
    uncovered: Int
    monotone: bool
    prices: Float

    def floor(self, forced: int | None = None) -> int:
        """The least bound of any k-set (that contains ``forced``, if given)."""
        if self.k == 0:
            return self.base
        if forced is None:
            return self.base + int(np.sort(self.reduced)[: self.k].sum())
        others = np.delete(self.reduced, forced)
        return self.base + int(self.reduced[forced]) + int(np.sort(others)[: self.k - 1].sum())


def cheap_bound(problem: Problem, k: int, fill_all: Int, forced: int | None = None) -> LevelBound:
    """The bound from shipment costs and the least cost of the units over all candidates."""
    base = problem.offset + problem.split_penalty * max(0, k - 1) + int(fill_all.sum())
    uncovered = np.where(problem.partial, problem.quantity * problem.backorder - fill_all, 0)
    return _bound(problem, k, base, problem.shipment.copy(), uncovered, forced, np.zeros(0))


def lagrangian_bound(
    problem: Problem, k: int, prices: Int, forced: int | None = None
) -> LevelBound:
    """The Lagrangian bound of level ``k`` at integer ``prices`` per unit of each group."""
    v = prices.astype(np.int64)
    q, b = problem.quantity, problem.backorder
    base = problem.offset + problem.split_penalty * max(0, k - 1) + int((v * q).sum())
    base += int((np.where(problem.partial, np.minimum(0, b - v), 0) * q).sum())
    gain = np.maximum(v[None, :] - problem.unit, 0) * problem.available
    reduced = problem.shipment - gain.sum(axis=1)
    uncovered = np.where(problem.partial, np.maximum(b - v, 0) * q, 0)
    return _bound(problem, k, base, reduced, uncovered, forced, v.astype(np.float64))


def _bound(
    problem: Problem,
    k: int,
    base: int,
    reduced: Int,
    uncovered: Int,
    forced: int | None,
    prices: Float,
) -> LevelBound:
    # Levels above add the next least reduced costs: never less when the next is ≥ 0.
    rest = np.sort(reduced if forced is None else np.delete(reduced, forced))
    used = k if forced is None else k - 1
    monotone = (used >= len(rest) or bool(rest[used] >= 0)) and problem.split_penalty >= 0
    return LevelBound(k, base, reduced, uncovered.astype(np.int64), monotone, prices)


def initial_prices(problem: Problem) -> Float:
    """Rough prices to start the ascent: each unit's cheapest cost plus a share of F."""
    holds = problem.available > 0
    per_node = np.maximum(1, (problem.available * holds).sum(axis=1))
    share = (problem.shipment + max(0, problem.split_penalty)) / per_node
    price = np.where(holds, problem.unit + share[:, None], np.inf).min(axis=0, initial=np.inf)
    price = np.where(np.isfinite(price), price, problem.backorder)
    return np.where(problem.partial, np.minimum(price, problem.backorder), price).astype(float)


def ascend(
    problem: Problem,
    k: int,
    start: Float,
    target: float,
    stop: Stop,
    *,
    forced: int | None = None,
    iterations: int = ASCENT_ITERATIONS,
) -> Float:
    """Prices that (nearly) maximise the Lagrangian bound of level ``k``.

    Subgradient ascent with Polyak steps toward ``target`` (a little above the cost to
    beat: once the bound passes it the level is pruned and the ascent stops), the step
    halved after 15 steps without progress. It works on the ``ASCENT_ACTIVE`` candidates
    of least reduced cost, refreshed from all of them every ``ASCENT_REFRESH`` steps: only
    the k least reduced costs enter the bound. Returns the best prices seen (floats; the
    caller rounds them and computes the exact bound over every candidate).
    """
    unit = problem.unit.astype(np.float64)
    available = problem.available.astype(np.float64)
    shipment = problem.shipment.astype(np.float64)
    q = problem.quantity.astype(np.float64)
    b = problem.backorder.astype(np.float64)
    partial = problem.partial
    split = (k - 1) * problem.split_penalty + problem.offset
    n = problem.n_nodes
    free = k if forced is None else k - 1
    size = min(n, max(ASCENT_ACTIVE, 8 * k))

    v = start.copy()
    best_value, best = -np.inf, v.copy()
    step, stalled = 1.0, 0
    for it in range(iterations):
        if it % ASCENT_REFRESH == 0:
            if stop.is_set():
                break
            every = shipment - (np.maximum(v[None, :] - unit, 0.0) * available).sum(axis=1)
            if forced is not None:
                every[forced] = -np.inf  # always active and always chosen
            active = np.argpartition(every, size - 1)[:size] if size < n else np.arange(n)
            unit_a, available_a, shipment_a = unit[active], available[active], shipment[active]
            forced_at = None if forced is None else int(np.flatnonzero(active == forced)[0])
        above = v[None, :] > unit_a
        gain = np.where(above, (v[None, :] - unit_a) * available_a, 0.0)
        reduced = shipment_a - gain.sum(axis=1)
        if forced_at is None:
            picked = np.argpartition(reduced, free - 1)[:free]
        else:
            reduced_f, reduced[forced_at] = reduced[forced_at], np.inf
            picked = np.argpartition(reduced, free - 1)[:free] if free else np.zeros(0, int)
            reduced[forced_at] = reduced_f
            picked = np.append(picked, forced_at)
        backordered = partial & (v > b)
        value = split + float(np.where(backordered, b, v) @ q) + float(reduced[picked].sum())
        if value > best_value + 1e-9:
            best_value, best, stalled = value, v.copy(), 0
            if value > target:
                break
        else:
            stalled += 1
            if stalled >= 15:
                step, stalled = step / 2, 0
                if step < 1e-4:
                    break
        grad = np.where(backordered, 0.0, q) - (available_a[picked] * above[picked]).sum(axis=0)
        norm = float(grad @ grad)
        if norm == 0.0:
            break
        v = v + step * (target - value) / norm * grad
    return best


def units_of(prices: Float) -> Int:
    """Prices rounded to whole solver units (the bound is then exact in integers)."""
    rounded: Int = np.rint(prices).astype(np.int64)
    return rounded
