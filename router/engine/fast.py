"""The fast exact engine: the canonical model solved as a bounded search over node sets.

For a fixed set S of shipping nodes the rest of the canonical model is a greedy fill
(:mod:`router.engine.problem`), so the model is a search over node sets, level by level
(k = number of shipments), and this module does that search exactly:

1. **Reduction.** Candidates that at least as many others dominate as plans are wanted
   go (:func:`~router.engine.problem.drop_dominated`: every plan through such a node is
   beaten by that many others, so it is neither the best plan nor one of the next best).
   Not when a node must ship (a counterfactual).
2. **An incumbent.** A greedy plan: from the empty set (or the node that must ship), add
   the node whose set is cheapest, while that pays. It runs even when the stop signal is
   already set, so a search cut short still answers with a plan when one is found.
3. **A bound per level.** For each k up to the order's shipment limit, a lower bound on
   every plan of k shipments that splits by node (:mod:`router.engine.bounds`): from the
   shipment costs and the least cost of all units when the level is small, from the
   Lagrangian relaxation of the demand rows (its prices found by subgradient ascent; the
   LP relaxation of the level, plus the exact cost of groups a set leaves unheld) when it
   is not. A level whose least bound exceeds the cost to beat is skipped, and every level
   above it too when the bound says so for them.
4. **Best-first enumeration.** Each remaining level lists its sets in windows of rising
   bound (nodes sorted by reduced cost; a partial set is extended only while it plus the
   smallest possible rest stays within the window; a complete set's bound adds its
   unheld groups), evaluates them exactly, cheapest bound first, and skips every set
   whose bound exceeds the cost of the wanted-th best plan found so far. The level whose
   window is lowest goes next, so good plans come early and shrink every window.

**Proof of optimality.** Every plan of every level either was evaluated, or had a bound
above the wanted-th best plan found (so it is dearer), or belongs to a dominated node or
a skipped level (dearer by the arguments above). Sets whose bound equals that cost are
evaluated, so ties are settled by the documented tie order, not by search order: cost,
then fewer shipments, then the smaller sum of the nodes' ranks in the tie order (priority
high to low, then node id), then the sorted ranks compared in turn. When the stop signal
ends the search early, the plan found is FEASIBLE and its bound is the least of: its
cost, the window edge of every unfinished level (all sets below it were evaluated), and
the least bound of every level not reached.

Lines of one SKU with different terms (only in hand-made models) cannot be grouped; such
models go to CP-SAT (:mod:`router.engine.cpsat`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.plan import ExplainedModel, SolveStatus
from router.engine.bounds import (
    LevelBound,
    ascend,
    cheap_bound,
    initial_prices,
    lagrangian_bound,
    units_of,
)
from router.engine.cpsat import solve_model
from router.engine.problem import (
    INFINITE,
    Evaluated,
    Int,
    Problem,
    Subproblem,
    bitsets,
    drop_dominated,
    tie_ranks,
)
from router.engine.stop import Stop
from router.engine.terms import BuiltModel, Solution

SMALL_LEVEL = 20_000
"""A level with at most this many sets under the cheap bound is enumerated with it; a
larger one first gets the Lagrangian bound."""

CROWDED_LEVEL = 200_000
"""A level bounded while the incumbent was worse gets its prices sharpened toward the
better one when it still has more than this many sets under its bound."""

GREEDY_POOL = 256
"""Candidates the greedy heuristic tries per step (the most promising by a cheap score)."""

GREEDY_AFTER_STOP = 4_000_000
"""(set, node, group) cells the greedy heuristic may still evaluate after the stop signal:
enough to finish it on any ordinary order, bounded on pathological ones."""

EVALUATE_CELLS = 1_000_000
"""(set, node, group) cells evaluated at once, so memory stays bounded on huge orders."""

BUILD_CHUNK = 100_000
"""Node sets built in memory at once by the enumeration."""

EVALUATE_CHUNK = 2_048
"""Node sets evaluated at once (the threshold is updated between chunks)."""

PROBE_SETS = 1_000
"""Sets a crowded level tries at once among its nodes of least reduced cost."""


@dataclass(frozen=True, slots=True)
class FastResult:
    """The best plan (and, on request, the next best ones) with status and bound."""

    best: Solution
    alternatives: tuple[Solution, ...]


def solve_fast(
    model: ExplainedModel | BuiltModel,
    stop: Stop,
    *,
    alternatives: int = 0,
    forced: int | None = None,
) -> FastResult:
    """Solve the canonical model exactly; also the next ``alternatives`` best node sets.

    Alternatives are the best plans of other sets of shipping nodes in which every node is
    needed, in tie-break order. With ``forced`` (a candidate index) only plans that ship
    from that candidate count (a counterfactual). The search, and the CP-SAT fallback for
    models it cannot group, end when ``stop`` is set or its deadline passes.
    """
    built = model if isinstance(model, BuiltModel) else BuiltModel.of(model)
    problem = Problem.of(built)
    if problem is None:
        return _by_cpsat(built, stop, alternatives, forced)
    return _Search(problem, 1 + alternatives, forced, stop).run()


@dataclass(order=True, slots=True)
class _Plan:
    """A plan found: its rank in the tie order first, then its nodes and units."""

    key: tuple[int, int, int, tuple[int, ...]]
    nodes: Int = field(compare=False)
    take: Int = field(compare=False)

    @property
    def cost(self) -> int:
        return self.key[0]


class _Found:
    """The plans found so far that can still be among the ``wanted`` best, best first.

    Plans are kept in the indices of the ``problem`` given here (the whole problem), so
    sets evaluated on a reduced problem are lifted first.
    """

    def __init__(self, problem: Problem, wanted: int) -> None:
        self._rank = problem.rank
        self._wanted = wanted
        self._plans: list[_Plan] = []
        self._seen: set[tuple[int, ...]] = set()
        self.threshold = INFINITE
        """The cost of the wanted-th best plan so far (no set dearer can rank)."""

    @property
    def plans(self) -> list[_Plan]:
        """The wanted best plans found, best first."""
        return self._plans[: self._wanted]

    def add(self, evaluated: Evaluated, sub: Subproblem | None = None) -> None:
        """Keep the plans among ``evaluated`` (of ``sub``, if given) that rank so far."""
        ok = np.flatnonzero(evaluated.valid & (evaluated.cost <= self.threshold))
        if not len(ok):
            return
        sets = evaluated.sets[ok] if sub is None else sub.lift(evaluated.sets[ok])
        cost = evaluated.cost[ok]
        rank_sum = self._rank[sets].sum(axis=1)
        # Within the batch only the wanted best (and their ties on cost) can rank.
        first = np.lexsort((rank_sum, cost))
        cutoff = cost[first[min(len(first), self._wanted) - 1]]
        k = sets.shape[1]
        for i in first.tolist():
            if cost[i] > cutoff:
                break
            # Members in index order, so a set's units go to lines the same way whichever
            # search found it.
            members = np.argsort(sets[i])
            nodes = sets[i][members]
            if (seen := tuple(nodes.tolist())) in self._seen:
                continue
            self._seen.add(seen)
            ranks = tuple(sorted(self._rank[nodes].tolist()))
            key = (int(cost[i]), k, int(rank_sum[i]), ranks)
            self._plans.append(_Plan(key, nodes, evaluated.take[ok[i]][members]))
        self._plans.sort()
        if len(self._plans) >= self._wanted:
            self.threshold = self._plans[self._wanted - 1].cost
            self._plans = [plan for plan in self._plans if plan.cost <= self.threshold]


@dataclass(slots=True)
class _Level:
    """One level's bound and how far its sets are evaluated: every set with bound ≤ edge."""

    bound: LevelBound
    edge: int
    width: int
    order: Int
    """Candidates (the forced one left out) in order of reduced cost."""
    tables: NDArray[np.int64]
    """``tables[byte, value]``: uncovered cost of the groups of that byte of the bitsets."""


class _Search:
    """One exact search (see the module docstring)."""

    def __init__(self, problem: Problem, wanted: int, forced: int | None, stop: Stop) -> None:
        self.whole = problem
        self.stop = stop
        self.wanted = wanted
        self.forced_whole = forced
        self.found = _Found(problem, wanted)
        self.complete = True
        self.pending_floor = INFINITE
        """The least bound of levels never reached (when the search was stopped)."""
        self.levels: list[_Level] = []

    def run(self) -> FastResult:
        """Search and map the plans found back to the caller's candidates."""
        whole, f = self.whole, self.forced_whole
        fill, suppliable = whole.fill_all()
        if not suppliable or (f is not None and not whole.holds[f].any()):
            return _result(SolveStatus.INFEASIBLE, [], None, whole)
        if f is None and whole.all_backordered is not None:
            self.found.add(whole.evaluate(np.zeros((1, 0), dtype=np.int64)))
        if whole.cap >= 1:  # one node: a closed form for every candidate at once
            singles = np.arange(whole.n_nodes)[:, None] if f is None else np.array([[f]])
            self.found.add(whole.evaluate(singles))
        beyond = cheap_bound(whole, 2, fill, f)
        if whole.cap >= 2 and (beyond.floor(f) <= self.found.threshold or not beyond.monotone):
            self._beyond_one()
        plans = self.found.plans
        if not plans:
            status = SolveStatus.INFEASIBLE if self.complete else SolveStatus.NO_SOLUTION
            return _result(status, [], None, whole)
        if self.complete:
            return _result(SolveStatus.OPTIMAL, plans, None, whole)
        edges = [level.edge + 1 for level in self.levels]
        bound = min(plans[0].cost, self.pending_floor, *edges)
        status = SolveStatus.OPTIMAL if bound >= plans[0].cost else SolveStatus.FEASIBLE
        return _result(status, plans, bound, whole)

    def _beyond_one(self) -> None:
        """Plans of two or more shipments: reduce, find an incumbent, bound, enumerate."""
        whole, f = self.whole, self.forced_whole
        # A forced node may be left idle by a dominator's replacement: no dominance then.
        self.sub = (
            drop_dominated(whole, self.wanted)
            if f is None
            else whole.restrict(np.arange(whole.n_nodes))
        )
        p = self.p = self.sub.problem
        self.forced = None if f is None else int(np.flatnonzero(self.sub.rows == f)[0])
        self.holds = bitsets(p.holds)
        self.must = bitsets(~p.partial[None, :])[0]
        self._greedy()
        fill, _ = p.fill_all()
        self.levels = self._levels(fill)
        self._enumerate(self.levels)

    def _greedy(self) -> None:
        """Grow a plan one node at a time, the cheapest set each step, while it pays.

        Starts from the best one-node plan (or the forced node). It goes on after the stop
        signal for up to ``GREEDY_AFTER_STOP`` cells of work, so a search cut short still
        has this plan.
        """
        p, f = self.p, self.forced
        if f is not None:
            current = np.array([f])
        else:
            singles = p.evaluate(np.arange(p.n_nodes)[:, None])
            ships = singles.take[:, 0, :].sum(axis=1) > 0
            if not ships.any():
                return
            current = np.array([int(np.argmin(np.where(ships, singles.cost, INFINITE)))])
        now = p.evaluate(current[None, :])
        best = int(now.cost[0]) if now.valid[0] else INFINITE
        taken = now.take[0]
        work = 0
        while len(current) < p.cap:
            if self.stop.is_set() and work > GREEDY_AFTER_STOP:
                break
            pool = self._pool(current, taken)
            if not len(pool):
                break
            work += len(pool) * (len(current) + 1) * p.n_groups
            sets = np.column_stack([np.broadcast_to(current, (len(pool), len(current))), pool])
            tried = p.evaluate(sets)
            self.found.add(tried, self.sub)
            ships = tried.take[:, -1, :].sum(axis=1) > 0
            if not ships.any():
                break
            i = int(np.argmin(np.where(ships, tried.cost, INFINITE)))
            if tried.valid[i] and tried.cost[i] >= best:
                break
            # A node the newcomer left idle goes (a set with an idle node is no plan).
            busy = tried.take[i].sum(axis=1) > 0
            if f is not None:
                busy[0] = True
            current = sets[i][busy]
            now = p.evaluate(current[None, :])
            self.found.add(now, self.sub)
            if now.valid[0]:
                best = min(best, int(now.cost[0]))
            taken = now.take[0]

    def _pool(self, current: Int, taken: Int) -> Int:
        """The candidates worth trying next to ``current``: by what they could save."""
        p = self.p
        outside = np.ones(p.n_nodes, dtype=np.bool_)
        outside[current] = False
        pool = np.flatnonzero(outside)
        size = max(1, min(GREEDY_POOL, EVALUATE_CELLS // ((len(current) + 1) * p.n_groups)))
        if len(pool) <= size:
            return pool
        missing = p.quantity - taken.sum(axis=0)
        worst = np.where(p.partial, p.backorder, INFINITE // (4 * max(1, int(p.quantity.sum()))))
        gain = np.minimum(p.available[pool], missing) * np.maximum(worst - p.unit[pool], 0)
        score = p.shipment[pool] - gain.sum(axis=1)
        picked: Int = pool[np.argpartition(score, size - 1)[:size]]
        return picked

    def _levels(self, fill: Int) -> list[_Level]:
        """Each level's bound from two shipments on, or none for levels the bounds rule out.

        A crowded level gets the Lagrangian bound, and the sets of its nodes of least
        reduced cost are tried at once (they are the likeliest plans: this is how the
        relaxation guides the incumbent). Once every level is bounded, the Lagrangian
        bounds found while the incumbent was worse are sharpened toward the better one.
        """
        p, f = self.p, self.forced
        bounds: list[tuple[LevelBound, bool, float]] = []  # bound, small, ascent target
        prices = initial_prices(p)
        for k in range(2, p.cap + 1):
            threshold = self.found.threshold
            bound = cheap_bound(p, k, fill, f)
            if self.stop.is_set():
                self.complete = False
                self.pending_floor = min(self.pending_floor, bound.floor(f))
                if bound.monotone:
                    break
                continue
            if bound.floor(f) > threshold:
                if bound.monotone:
                    break
                continue
            small = _count(bound, self._order(bound), threshold, f, SMALL_LEVEL) <= SMALL_LEVEL
            target = np.inf
            if not small and threshold < INFINITE:
                target = threshold * 1.001 + 1
                prices = ascend(p, k, prices, target, self.stop, forced=f)
                sharp = lagrangian_bound(p, k, units_of(prices), f)
                if sharp.floor(f) >= bound.floor(f):
                    bound = sharp
                    self._probe(bound)
                if bound.floor(f) > self.found.threshold:
                    if bound.monotone:
                        break
                    continue
            bounds.append((bound, small, target))
        threshold = self.found.threshold
        levels = []
        for bound, small, target in bounds:
            sharpen = bound.prices.size and target > threshold * 1.01 + 1
            if (
                sharpen
                and not self.stop.is_set()
                and _count(bound, self._order(bound), threshold, f, CROWDED_LEVEL) > CROWDED_LEVEL
            ):
                again = ascend(p, bound.k, bound.prices, threshold * 1.001 + 1, self.stop, forced=f)
                sharper = lagrangian_bound(p, bound.k, units_of(again), f)
                if sharper.floor(f) > bound.floor(f):
                    bound = sharper
            if bound.floor(f) <= threshold:
                levels.append(self._level(bound, threshold, small=small))
        return levels

    def _probe(self, bound: LevelBound) -> None:
        """Evaluate the level's sets among its few nodes of least reduced cost."""
        f = self.forced
        order = self._order(bound)
        free = bound.k if f is None else bound.k - 1
        pool = free
        most = max(1, min(PROBE_SETS, EVALUATE_CELLS // (bound.k * self.p.n_groups)))
        while pool < len(order) and math.comb(pool + 1, free) <= most:
            pool += 1
        if pool < free:
            return
        chosen = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(order[:pool].tolist(), free)),
            dtype=np.int64,
        ).reshape(-1, free)
        if f is not None:
            chosen = np.column_stack([chosen, np.full(len(chosen), f)])
        self.found.add(self.p.evaluate(chosen), self.sub)

    def _order(self, bound: LevelBound) -> Int:
        order = np.argsort(bound.reduced, kind="stable")
        if self.forced is not None:
            order = order[order != self.forced]
        return order

    def _level(self, bound: LevelBound, threshold: int, *, small: bool) -> _Level:
        """A level to enumerate: all at once when small, else in windows of rising bound."""
        floor = bound.floor(self.forced)
        if small or threshold >= INFINITE:
            width = INFINITE if small else max(1, abs(floor) // 50)
        else:
            width = max(1, (threshold - floor) // 8)
        words = self.holds.shape[1]
        tables = np.zeros((words * 8, 256), dtype=np.int64)
        values = np.arange(256)
        for byte in range(words * 8):
            for bit in range(8):
                g = 8 * byte + bit
                if g < self.p.n_groups:
                    tables[byte, (values >> bit) & 1 == 1] += bound.uncovered[g]
        return _Level(bound, floor - 1, width, self._order(bound), tables)

    def _enumerate(self, levels: list[_Level]) -> None:
        """Evaluate every level's sets in windows of rising bound, lowest window first."""
        heap = [(lv.edge, i) for i, lv in enumerate(levels)]
        heapq.heapify(heap)
        while heap:
            edge, i = heapq.heappop(heap)
            level = levels[i]
            threshold = self.found.threshold
            if edge >= threshold:
                level.edge = max(level.edge, threshold)
                continue
            if self.stop.is_set():
                self.complete = False
                return
            upper = min(edge + level.width, threshold)
            if not self._window(level, upper):
                self.complete = False
                return
            level.edge, level.width = upper, min(INFINITE, 2 * level.width)
            heapq.heappush(heap, (upper, i))

    def _window(self, level: _Level, upper: int) -> bool:
        """Evaluate the level's sets with bound in (edge, upper]; False when stopped."""
        p = self.p
        step = max(1, min(EVALUATE_CHUNK, EVALUATE_CELLS // (level.bound.k * p.n_groups)))
        for sets, bounds in self._sets(level, upper):
            order = np.argsort(bounds, kind="stable")
            sets, bounds = sets[order], bounds[order]
            for start in range(0, len(sets), step):
                if self.stop.is_set():
                    return False
                chunk = slice(start, start + step)
                keep = bounds[chunk] <= self.found.threshold
                if not keep.any():
                    break
                self.found.add(p.evaluate(sets[chunk][keep]), self.sub)
        return not self.stop.is_set()  # the sets may have ended early at the stop

    def _sets(self, level: _Level, upper: int) -> Iterator[tuple[Int, Int]]:
        """The level's sets with bound in (edge, upper], in batches, with their bounds.

        The last node of each set is only looked at, not built into a row: the bits its
        prefix holds (OR of the prefix's nodes, and the forced node's) are combined with
        each candidate last node's, and only the sets whose whole bound is in the window
        become rows.
        """
        bound, f = level.bound, self.forced
        r = bound.reduced[level.order]
        fixed = bound.base + (0 if f is None else int(bound.reduced[f]))
        free = bound.k if f is None else bound.k - 1
        base_bits = np.zeros(self.holds.shape[1], dtype=np.uint64) if f is None else self.holds[f]
        if free == 0:
            single = np.array([[f]])
            total = fixed + self._uncovered(level, base_bits[None, :])
            if level.edge < total[0] <= upper:
                yield single, total
            return
        bits = self.holds[level.order]
        # A set that misses a group whose uncovered cost alone exceeds the window's room
        # above the level's least bound is out: checked on the bits first, cheaply.
        room = upper - bound.floor(f)
        needed = bitsets(((bound.uncovered > room) | ~self.p.partial)[None, :])[0]
        for batch in _batches(r, free, upper - fixed, stop=self.stop):
            owner, nxt = batch.children()
            prefixes = batch.prefixes[batch.first : batch.last]
            held = np.bitwise_or.reduce(bits[prefixes], axis=1) | base_bits  # per prefix
            held = held[owner - batch.first] | bits[nxt]
            near = np.flatnonzero(((held & needed) == needed).all(axis=1))
            if not len(near):
                continue
            owner, nxt = owner[near], nxt[near]
            total = fixed + batch.sums[owner] + r[nxt] + self._uncovered(level, held[near])
            keep = np.flatnonzero((total > level.edge) & (total <= upper))
            if not len(keep):
                continue
            chosen = level.order[np.column_stack([batch.prefixes[owner[keep]], nxt[keep]])]
            if f is not None:
                chosen = np.column_stack([chosen, np.full(len(chosen), f)])
            yield chosen, total[keep]

    def _uncovered(self, level: _Level, held: NDArray[np.uint64]) -> Int:
        """Per set (the group bits it holds), the cost of the groups it does not hold.

        INFINITE when it misses a group that may not be backordered: no plan.
        """
        ok = ((held & self.must) == self.must).all(axis=1)
        free_bytes = (~held).view(np.uint8).reshape(len(held), -1)
        extra = level.tables[np.arange(free_bytes.shape[1]), free_bytes].sum(axis=1)
        out: Int = np.where(ok, extra, INFINITE)
        return out


def _count(bound: LevelBound, order: Int, limit: int, forced: int | None, budget: int) -> int:
    """How many sets the level has with Σ reduced ≤ ``limit`` − base (at most budget + 1).

    The last position of each set is only counted, never built.
    """
    if limit >= INFINITE:
        return budget + 1
    r = bound.reduced[order]
    fixed = bound.base + (0 if forced is None else int(bound.reduced[forced]))
    free = bound.k if forced is None else bound.k - 1
    if free == 0:
        return int(limit >= fixed)
    total = 0
    for batch in _batches(r, free, limit - fixed, chunk=max(1, budget // 8)):
        total += batch.size
        if total > budget:
            break
    return total


def _expand(r: Int, k: int, slack: int) -> Iterator[tuple[Int, Int]]:
    """Every k-subset of positions of ``r`` (sorted ascending) with Σ r ≤ ``slack``.

    Yields batches (positions (M, k) ascending within a row, their sums), each at most
    ``BUILD_CHUNK`` rows.
    """
    if k == 0:
        if slack >= 0:
            yield np.zeros((1, 0), dtype=np.int64), np.zeros(1, dtype=np.int64)
        return
    for batch in _batches(r, k, slack):
        yield batch.build(r)


@dataclass(frozen=True, slots=True)
class _Batch:
    """The children of some prefixes, not built yet.

    Prefixes ``first`` to ``last`` (excluded), each extended by every position of its
    range ``[low, low + count)``; or prefix ``first`` alone by the positions
    ``[start, stop)``.
    """

    prefixes: Int
    sums: Int
    low: Int
    count: Int
    first: int
    last: int
    start: int = -1
    stop: int = -1

    @property
    def size(self) -> int:
        """Rows it builds."""
        if self.start >= 0:
            return self.stop - self.start
        return int(self.count[self.first : self.last].sum())

    def children(self) -> tuple[Int, Int]:
        """For each row it builds: the index of its prefix, and the position added."""
        if self.start >= 0:
            nxt = np.arange(self.start, self.stop)
            return np.full(len(nxt), self.first), nxt
        part = self.count[self.first : self.last]
        owner = np.repeat(np.arange(self.first, self.last), part)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(part) - part, part)
        return owner, self.low[owner] + offset

    def build(self, r: Int) -> tuple[Int, Int]:
        """The extended prefixes and their sums."""
        owner, nxt = self.children()
        return np.column_stack([self.prefixes[owner], nxt]), self.sums[owner] + r[nxt]


def _batches(
    r: Int, k: int, slack: int, chunk: int = BUILD_CHUNK, stop: Stop | None = None
) -> Iterator[_Batch]:
    """The batches of k-subsets of positions of ``r`` with Σ r ≤ ``slack``, depth first.

    A prefix is extended by position n only while its sum plus r[n] plus the smallest
    possible rest (the next positions after n) stays within the slack: since r is sorted,
    those n form a range found by binary search. Batches of each depth are built only
    when taken, and hold at most ``chunk`` rows, so memory stays bounded however many
    sets there are; the last depth's batches are yielded unbuilt. It ends early, between
    batches, when ``stop`` is set.
    """
    n = len(r)
    if not 0 < k <= n:
        return
    sums_after = np.concatenate([[0], np.cumsum(r)])
    start = np.arange(n)

    def least(t: int) -> Int:
        """r[n] + the t smallest entries after n, for every n (INFINITE past the end)."""
        end = start + 1 + t
        total = sums_after[np.minimum(end, n)] - sums_after[start]
        out: Int = np.where(end <= n, total, INFINITE)
        return out

    leasts = [least(k - d - 1) for d in range(k)]

    def children(prefixes: Int, sums: Int) -> list[_Batch]:
        d = prefixes.shape[1]
        low = prefixes[:, -1] + 1 if d else np.zeros(len(prefixes), dtype=np.int64)
        high = np.searchsorted(leasts[d], slack - sums, side="right")
        count = np.maximum(high - low, 0)
        ends = np.cumsum(count)
        batches: list[_Batch] = []
        first = 0
        while first < len(prefixes):
            base = int(ends[first - 1]) if first else 0
            last = int(np.searchsorted(ends, base + chunk, side="right"))
            if last == first:  # one prefix alone has too many children: split its range
                lo, hi = int(low[first]), int(high[first])
                for part in range(lo, hi, chunk):
                    stop = min(hi, part + chunk)
                    batches.append(_Batch(prefixes, sums, low, count, first, first + 1, part, stop))
                first += 1
                continue
            if int(ends[last - 1]) > base:
                batches.append(_Batch(prefixes, sums, low, count, first, last))
            first = last
        return batches

    root = np.zeros((1, 0), dtype=np.int64)
    stack = children(root, np.zeros(1, dtype=np.int64))[::-1]
    while stack:
        if stop is not None and stop.is_set():
            return
        batch = stack.pop()
        if batch.prefixes.shape[1] == k - 1:
            yield batch
            continue
        prefixes, sums = batch.build(r)
        stack.extend(children(prefixes, sums)[::-1])


def _result(
    status: SolveStatus, plans: list[_Plan], bound: int | None, problem: Problem
) -> FastResult:
    """The plans found as solutions (their nodes are the whole problem's candidates)."""
    if not plans:
        return FastResult(Solution(status, {}, None, None), ())
    solutions = []
    for plan in plans:
        proven = plan.cost if status is SolveStatus.OPTIMAL else bound
        assignment = problem.assignment(plan.nodes, plan.take)
        solutions.append(Solution(status, assignment, plan.cost, proven))
    return FastResult(solutions[0], tuple(solutions[1:]))


def _by_cpsat(built: BuiltModel, stop: Stop, alternatives: int, forced: int | None) -> FastResult:
    """CP-SAT with the tie-break, alternatives by no-goods (models whose lines cannot group).

    CP-SAT's objective orders plans by cost, shipments and the sum of ranks; the sorted
    ranks and the alternatives come from no-good solves, in that order, until the plans
    wanted are settled: the newest plan ranks after the last one wanted.
    """
    model = built.model
    ranks = tie_ranks(built).tolist()
    best = solve_model(model, stop, tie_order=ranks, force=forced)
    if best.status is not SolveStatus.OPTIMAL:
        return FastResult(best, ())

    def key(solution: Solution) -> tuple[int, int, int, list[int]]:
        places = sorted(ranks[j] for j in solution.nodes)
        return (solution.objective or 0, len(places), sum(places), places)

    plans, seen, last = [best], [best.nodes], best
    for _ in range(10 * (alternatives + 1)):
        if stop.is_set():
            break
        ranked = sorted(plans, key=key)
        if len(ranked) > alternatives and key(last)[:3] > key(ranked[alternatives])[:3]:
            break
        last = solve_model(model, stop, exclude=seen, tie_order=ranks, force=forced)
        if last.status is not SolveStatus.OPTIMAL:
            break
        seen.append(last.nodes)
        plans.append(last)
    ranked = sorted(plans, key=key)[: alternatives + 1]
    return FastResult(ranked[0], tuple(ranked[1:]))
