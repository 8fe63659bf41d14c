"""Plan a wave of orders jointly against shared stock and node capacity, with a certified gap.

The joint model (docs/wave.md) is every order's canonical model (docs/cost-model.md), as
the per-order engine builds it, plus two kinds of coupling rows, one per *resource*:

* a stock position (node n, SKU s): the units all orders ship of s from n are at most its
  available units;
* an order slot (node n, day d) of a node with a ``daily_order_capacity``: the orders that
  ship from n with ship date d (each order's own ship date at n) are at most the slots left.

An order that must ship in full (no partial fulfilment) may also be left out whole, at
the backorder cost of all its units; without that a wave where two such orders compete
for one unit would have no plan.

Method (docs/wave.md says why): every order's own optimum ``z_o`` first (the per-order
engine, exact); ``Σ_o z_o`` is a lower bound, and the plan when those optima fit together.
Otherwise the *contested* orders (whose optimum uses an over-used resource):

1. Plans: the uncontested orders keep their optima; the contested ones are routed exactly
   against what is left, in order of regret or of arrival (the cheaper plan is kept);
   then improvement moves (re-route one order with the others fixed, swap two orders at
   a contested resource). Every plan is feasible at every moment, so a stop always
   returns one with its bound and gap.
2. Exact parts: the contested orders, split into parts that share an over-used resource,
   each solved as one HiGHS MILP with every resource whole; ``Σ_outside z_o + Σ_parts
   OPT(part)`` is a bound, and the parts' optima beside the others' optima, when they
   fit, the optimum (:func:`_exact`).
3. Lagrangian ascent when a gap remains: relaxing the coupling rows with prices ``λ ≥ 0``
   splits the wave into per-order models priced at ``λ`` (a unit of position r costs
   ``λ_r`` more, a shipment from a capacity-bound node its slot's ``λ_r`` more), each
   solved exactly by the per-order engine; ``L(λ) = Σ_o z_o(λ) − Σ_r λ_r·cap_r`` is a
   bound (weak duality), exact in integers since prices are whole solver units. An
   order's priced optimum stays optimal when no price it pays changes and no price in
   its model falls, so each step re-solves only the orders it touches; the best prices
   then steer a second rounding.

Pure: no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from models.capacity import CapacityUsed
from models.engines import FAST, FULL_MODEL, HIGHS_FULL
from models.network import Network, Stock
from models.order import Order
from models.plan import Plan, SolveStatus
from models.rules import RuleSet
from router.engine.arrays import network_arrays, stock_arrays
from router.engine.candidates import build_model
from router.engine.cpsat import solve_model
from router.engine.fast import solve_fast
from router.engine.highs import MatrixModel, solve_highs, solve_joint
from router.engine.problem import INFINITE, Problem
from router.engine.route import route_order
from router.engine.solve import plan_of
from router.engine.stop import Stop
from router.engine.terms import BuiltModel, Matrices, Solution

Int = NDArray[np.int64]

WAVE_TIME_LIMIT_S = 60.0
"""Seconds a wave may take when the caller gives no stop."""

MAX_ITERATIONS = 60
"""Subgradient steps at most."""

BOUND_SHARE = 0.4
"""Share of the time left that the subgradient ascent may use."""

MOVES_SHARE = 0.25
"""Share of the time left that the first improvement moves may use."""

EXACT_MAX_ORDERS = 60
"""The most orders one exact part (one HiGHS MILP) takes."""

EXACT_SHARE = 0.5
"""Share of the time left that each exact sub-wave solve may use."""

EXACT_ROUNDS = 3
"""Times the sub-wave grows by the orders its optimum collides with."""

WAVE_STEP = "wave"
"""The step name of a plan the wave engine made."""

_FREE = np.iinfo(np.int64).max // 4
"""Room of the free resource: what terms with no coupling row draw on."""

ORDERS, IMPROVING, BOUNDING, PLANS = "orders", "improving", "bounding", "plans"
"""The phases a wave goes through, as :class:`WaveProgress` reports them: each order's own
optimum, plans and improvement moves, the bound (exact parts, the ascent), the per-order
plans."""


@dataclass(frozen=True, slots=True)
class WaveProgress:
    """Where a running wave is, for a caller that reports on long waves.

    ``done`` counts the orders of the phase finished (own optima in :data:`ORDERS`, plans
    in :data:`PLANS`; the orders so far in the other phases); ``objective`` is the best
    plan's cost and ``bound`` the best proven bound so far, in solver units (None: none yet).
    """

    phase: str
    done: int
    orders: int
    objective: int | None = None
    bound: int | None = None


Progress = Callable[[WaveProgress], None]
"""What the engine calls with each step of a wave (cheap, on the solving thread)."""


def _no_progress(progress: WaveProgress) -> None:
    """The default: nobody is told."""


@dataclass(frozen=True, slots=True)
class WaveStats:
    """How the wave was solved."""

    orders: int
    contested_orders: int
    """Orders whose own optimum uses a resource that the orders' optima over-use together."""
    bound_seconds: float
    """Time on the bound: the Lagrangian dual (no LP is solved)."""
    primal_seconds: float
    """Time on plans: rounding and improvement moves."""
    iterations: int
    """Subgradient steps."""
    solves: int
    """Exact per-order solves, all phases."""
    improvements: int
    """Improvement moves that lowered the objective."""
    first_objective: int
    """The objective of the first plan (rounding at prices 0, before any move)."""


@dataclass(frozen=True, slots=True)
class WavePlan:
    """The wave's answer: status, objective, a proven lower bound, per-order plans.

    ``objective`` and ``bound`` are in solver units (:mod:`models.money`); every plan of
    the joint model costs at least ``bound``. ``status`` is OPTIMAL when ``objective ==
    bound``, FEASIBLE otherwise, with ``detail`` saying why. ``plans`` follow the orders.
    """

    status: SolveStatus
    objective: int
    bound: int
    plans: tuple[Plan, ...]
    stats: WaveStats
    detail: str

    @property
    def gap(self) -> float:
        """``|objective − bound| / max(1, |objective|)``, as for one order."""
        return abs(self.objective - self.bound) / max(1, abs(self.objective))


@dataclass(frozen=True, slots=True)
class _Member:
    """One order of the wave: its model, strategy, and the resource of each of its terms.

    ``position[j, l]`` is the resource of candidate j's stock of line l's SKU and
    ``slot[j]`` that of j's order slot on its ship date; the free resource where there is
    no coupling row.
    """

    order: Order
    built: BuiltModel
    strategy: str
    position: Int
    slot: Int
    reject_cost: int
    """The backorder of all its units: its cost when left out whole."""


@dataclass(frozen=True, slots=True)
class _Choice:
    """A plan of one order: its units, its true and priced cost, the resources it uses."""

    assignment: dict[tuple[int, int], int]
    cost: int
    priced: int
    bound: int
    """A lower bound on the priced cost of any plan of the order (= ``priced`` if proven)."""
    used: Int
    amount: Int
    rejected: bool = False


@dataclass(slots=True)
class _Wave:
    """The wave's members, resources and the running state of the solve."""

    members: list[_Member]
    cap: Int
    holders: sp.csc_array
    """``holders[o, r]`` is set when order o's model may draw on resource r."""
    engine: str
    stop: Stop
    solves: int = 0
    progress: Progress = _no_progress
    zero: Int = field(init=False)

    def __post_init__(self) -> None:
        self.zero = np.zeros(len(self.cap), dtype=np.int64)

    def solve(self, i: int, price: Int, room: Int | None = None) -> _Choice:
        """Order i's exact optimum priced at ``price``, within ``room`` when given."""
        self.solves += 1
        return _solve(self.members[i], price, room, self.stop, self.engine)

    def report(self, phase: str, done: int, objective: int | None, bound: int | None) -> None:
        """Tell the caller where the solve is (:class:`WaveProgress`)."""
        self.progress(WaveProgress(phase, done, len(self.members), objective, bound))


def plan_wave(
    orders: Sequence[Order],
    network: Network,
    stock: Stock,
    rules: RuleSet,
    *,
    capacity_used: CapacityUsed | None = None,
    stop: Stop | None = None,
    engine: str = FAST,
    progress: Progress | None = None,
) -> WavePlan:
    """Assign ``orders`` jointly against ``stock`` and the slots ``capacity_used`` leaves.

    No side effects. Each order is planned under the first strategy of ``rules`` whose
    condition it meets, its primary step (no fallbacks: docs/wave.md); an order no
    strategy applies to is rejected as :func:`~router.engine.route.route_order` rejects
    it. The solve ends when ``stop`` is set or its deadline passes (default
    :data:`WAVE_TIME_LIMIT_S`); the plan is feasible whenever it ends. ``progress``, when
    given, is called on the solving thread at each step (:class:`WaveProgress`).
    """
    stop = stop or Stop(WAVE_TIME_LIMIT_S)
    capacity_used = capacity_used or CapacityUsed()
    tell = progress or _no_progress
    tell(WaveProgress(ORDERS, 0, len(orders)))
    members = [_member(order, network, stock, rules, capacity_used) for order in orders]
    inside = [i for i, m in enumerate(members) if m is not None]
    wave = _wave([m for m in members if m is not None], network, stock, capacity_used)
    wave.engine, wave.stop = engine, stop  # the members are numbered before the solve
    wave.progress = tell
    result = _optimise(wave)
    plans: list[Plan] = []
    place = {i: k for k, i in enumerate(inside)}
    final = result.plan
    for i, order in enumerate(orders):
        tell(WaveProgress(PLANS, i, len(orders), final.objective, final.bound))
        if i in place:
            plans.append(_plan(wave, result, place[i], rules, engine))
        else:
            plans.append(
                route_order(
                    order, network, stock, rules, capacity_used=capacity_used, engine=engine
                )
            )
    return replace(result.plan, plans=tuple(plans))


def one_by_one(
    orders: Sequence[Order],
    network: Network,
    stock: Stock,
    rules: RuleSet,
    *,
    capacity_used: CapacityUsed | None = None,
    engine: str = FAST,
) -> int:
    """Total cost (solver units) of routing ``orders`` in turn, each reserving its plan.

    The yardstick of a wave: the exact per-order engine (``route_order``) in arrival
    order, each order against the stock and order slots the earlier ones left.
    """
    slots: dict[tuple[str, date], int] = dict(capacity_used.slots) if capacity_used else {}
    total = 0
    for order in orders:
        plan = route_order(
            order, network, stock, rules, capacity_used=CapacityUsed(dict(slots)), engine=engine
        )
        total += plan.objective or 0
        taken: dict[tuple[str, str], int] = {}
        for shipment in plan.shipments:
            node = network.node(shipment.node_id)
            if node is not None and node.daily_order_capacity:
                slot = (shipment.node_id, shipment.ship_date)
                slots[slot] = slots.get(slot, 0) + 1
            for line in shipment.lines:
                key = (shipment.node_id, line.sku)
                taken[key] = taken.get(key, 0) + line.quantity
        if taken:
            stock = stock.replaced(
                replace(stock.positions[key], reserved=stock.positions[key].reserved + units)
                for key, units in taken.items()
            )
    return total


@dataclass(frozen=True, slots=True)
class _Result:
    """The solve's outcome before the per-order plans are made."""

    plan: WavePlan
    choices: list[_Choice]
    solo: list[_Choice]


def _member(
    order: Order, network: Network, stock: Stock, rules: RuleSet, capacity_used: CapacityUsed
) -> tuple[Order, BuiltModel, str] | None:
    """The order's model under its first applying strategy's primary step (None: none)."""
    strategy = next((s for s in rules.strategies if not s.when.unmet(order, network)), None)
    if strategy is None:
        return None
    built = build_model(order, network, stock, strategy.policy, capacity_used)
    return order, built, strategy.name


def _wave(
    found: list[tuple[Order, BuiltModel, str]],
    network: Network,
    stock: Stock,
    capacity_used: CapacityUsed,
) -> _Wave:
    """Number the resources the orders' models draw on; their capacities; who may draw."""
    pos_keys, slot_keys = _keys(found, network)
    positions = np.unique(np.concatenate([*(k.ravel() for k in pos_keys), [-1]]))[1:]
    slots = np.unique(np.concatenate([*slot_keys, [-1]]))[1:]
    free = len(positions) + len(slots)
    cap = np.concatenate(
        [
            _capacities(positions, slots, network, stock, capacity_used),
            np.array([_FREE], dtype=np.int64),
        ]
    )
    members, cols, owners = [], [], []
    for o, ((order, built, name), pk, sk) in enumerate(
        zip(found, pos_keys, slot_keys, strict=True)
    ):
        position = _lookup(positions, pk, 0, free)
        slot = _lookup(slots, sk, len(positions), free)
        reject = sum(t.backorder_cost * t.quantity for t in built.lines)
        members.append(_Member(order, built, name, position, slot, reject))
        mine = np.unique(np.concatenate([position.ravel(), slot]))
        mine = mine[mine != free]
        cols.append(mine)
        owners.append(np.full(len(mine), o, dtype=np.int64))
    col = np.concatenate([*cols, np.zeros(0, dtype=np.int64)])
    own = np.concatenate([*owners, np.zeros(0, dtype=np.int64)])
    holders = sp.csc_array(
        (np.ones(len(col), dtype=np.bool_), (own, col)), shape=(len(members), free + 1)
    )
    return _Wave(members, cap, holders, FAST, Stop(None))


_DAY_KEY = 1_000_000
"""Slot keys are ``row × _DAY_KEY + ship date ordinal`` (ordinals stay below it)."""


def _keys(
    found: list[tuple[Order, BuiltModel, str]], network: Network
) -> tuple[list[Int], list[Int]]:
    """Per order, the key of each (candidate, line)'s stock position and each candidate's slot.

    A position key is ``row × SKUs + SKU index`` (-1 where the candidate holds none of the
    line's SKU); a slot key ``row × _DAY_KEY + ship date`` (-1 where the node has no
    daily order capacity).
    """
    arrays = network_arrays(network)
    skus = {s: k for k, s in enumerate(network.skus)}
    capacity = np.array([n.daily_order_capacity or 0 for n in arrays.nodes], dtype=np.int64)
    pos_keys, slot_keys = [], []
    for _, built, _ in found:
        m = built.matrices
        rows = np.fromiter((arrays.row[n] for n in m.node_ids), np.int64, len(m.node_ids))
        sku = np.array([skus[t.sku] for t in built.lines], dtype=np.int64)
        key = rows[:, None] * len(skus) + sku[None, :]
        pos_keys.append(np.where(m.available > 0, key, -1))
        slot_keys.append(np.where(capacity[rows] > 0, rows * _DAY_KEY + m.ship, -1))
    return pos_keys, slot_keys


def _capacities(
    positions: Int, slots: Int, network: Network, stock: Stock, capacity_used: CapacityUsed
) -> Int:
    """Units available at each position, then slots left at each (node, day)."""
    arrays = network_arrays(network)
    sku_ids = list(network.skus)
    n_skus = len(sku_ids)
    by_sku = stock_arrays(stock, network)
    cap = np.zeros(len(positions) + len(slots), dtype=np.int64)
    sku_of = positions % n_skus
    for k in np.unique(sku_of).tolist():
        held = by_sku.sku(sku_ids[k])
        units = np.zeros(len(arrays.nodes), dtype=np.int64)
        units[held.rows] = held.available
        at = np.flatnonzero(sku_of == k)
        cap[at] = units[positions[at] // n_skus]
    for r, key in enumerate(slots.tolist()):
        node = arrays.nodes[key // _DAY_KEY]
        day = date.fromordinal(key % _DAY_KEY)
        left = (node.daily_order_capacity or 0) - capacity_used.used(node.node_id, day)
        cap[len(positions) + r] = max(0, left)
    return cap


def _lookup(known: Int, keys: Int, first: int, free: int) -> Int:
    """The resource numbers of ``keys`` (``first`` + place in ``known``); -1 keys: ``free``."""
    at = np.searchsorted(known, keys)
    out: Int = np.where(keys < 0, free, first + at)
    return out


def _solve(member: _Member, price: Int, room: Int | None, stop: Stop, engine: str) -> _Choice:
    """The order's exact optimum with prices added to its terms, within ``room`` if given.

    Priced model: each unit of line l from candidate j costs ``price[position[j, l]]``
    more, each shipment from j ``price[slot[j]]`` more. ``room`` caps each candidate's
    stock by what the position has left and drops candidates whose slot is used up.
    Leaving an order that must ship in full out whole is taken when it is cheaper or the
    only way.
    """
    built, m = member.built, member.built.matrices
    available = m.available
    if room is not None:
        available = np.minimum(available, room[member.position])
        available[room[member.slot] <= 0, :] = 0
    priced = BuiltModel(
        replace(
            m,
            unit=m.unit + price[member.position],
            penalty=m.penalty + price[member.slot],
            available=available,
        ),
        built.lines,
        offset=built.offset,
        split_penalty=built.split_penalty,
        max_shipments=built.max_shipments,
        ship_complete=built.ship_complete,
        stock_anywhere=built.stock_anywhere,
    )
    solution = _solve_model(priced, stop, engine)
    reject = member.reject_cost
    # What the solve proved of the order's least cost: its bound; when it proved nothing (cut
    # short before a bound, or before any plan) only the offset (every other term is >= 0).
    proven = built.offset if solution.bound is None else solution.bound
    if solution.status is SolveStatus.OPTIMAL and solution.objective is not None:
        proven = solution.objective
    if solution.objective is None or solution.objective > reject:
        lower = reject if solution.status is SolveStatus.INFEASIBLE else min(proven, reject)
        return replace(_choice(member, None, price), bound=lower)
    choice = _choice(member, solution.assignment, price)
    return replace(choice, bound=min(proven, reject))


def _choice(member: _Member, assignment: dict[tuple[int, int], int] | None, price: Int) -> _Choice:
    """The plan ``assignment`` of the order (None: left out whole), priced at ``price``."""
    if assignment is None:
        empty = np.zeros(0, dtype=np.int64)
        reject = member.reject_cost
        return _Choice({}, reject, reject, reject, empty, empty, rejected=True)
    resources = [int(member.position[j, line]) for j, line in assignment]
    units = list(assignment.values())
    for j in {j for j, _ in assignment}:
        resources.append(int(member.slot[j]))
        units.append(1)
    used, where = np.unique(np.array(resources, dtype=np.int64), return_inverse=True)
    amount = np.bincount(where, weights=units, minlength=len(used)).astype(np.int64)
    keep = used != len(price) - 1
    used, amount = used[keep], amount[keep]
    cost = member.built.objective(assignment)
    priced = cost + int(price[used] @ amount)
    return _Choice(assignment, cost, priced, priced, used, amount)


def _solve_model(built: BuiltModel, stop: Stop, engine: str) -> Solution:
    """One order's canonical model solved exactly by ``engine``."""
    if engine == FAST:
        return solve_fast(built, stop).best
    if engine == HIGHS_FULL:
        return solve_highs(built, stop)
    if engine == FULL_MODEL:
        return solve_model(built.model, stop)
    raise ValueError(f"unknown engine {engine!r} (engines: {FAST}, {FULL_MODEL}, {HIGHS_FULL})")


def _usage(choices: Sequence[_Choice], n: int) -> Int:
    """Units (or slots) the choices draw on each resource."""
    usage = np.zeros(n, dtype=np.int64)
    if choices:
        np.add.at(
            usage,
            np.concatenate([c.used for c in choices]),
            np.concatenate([c.amount for c in choices]),
        )
    return usage


def _fits(choice: _Choice, room: Int) -> bool:
    """Whether the choice's resources are left in ``room``."""
    return bool((room[choice.used] >= choice.amount).all())


def _dual(choices: Sequence[_Choice], price: Int, cap: Int) -> int:
    """``L(λ) = Σ_o z_o(λ) − Σ_r λ_r·cap_r``: a lower bound on every wave plan."""
    priced = price[:-1] > 0
    return sum(c.bound for c in choices) - int(price[:-1][priced] @ cap[:-1][priced])


def _optimise(wave: _Wave) -> _Result:
    """Bound and plan: solo optima, rounding, the exact sub-wave, the ascent, moves."""
    n = len(wave.cap)
    solo = []
    for i in range(len(wave.members)):
        wave.report(ORDERS, i, None, None)
        solo.append(wave.solve(i, wave.zero))
    bound = _dual(solo, wave.zero, wave.cap)
    wave.report(IMPROVING, len(solo), None, bound)
    over = _usage(solo, n) > wave.cap
    contested = [i for i, c in enumerate(solo) if over[c.used].any()]
    if not contested:
        objective = sum(c.cost for c in solo)
        stats = WaveStats(len(solo), 0, 0.0, 0.0, 0, wave.solves, 0, objective)
        detail = "every order's own optimum fits the shared stock and capacity"
        return _Result(_wave_plan(objective, bound, stats, detail, wave.stop), solo, solo)
    clock = time.perf_counter()
    choices = min(
        _round(wave, wave.zero, solo),
        _round(wave, wave.zero, solo, by_regret=False),
        key=lambda plan: sum(c.cost for c in plan),
    )
    first = sum(c.cost for c in choices)
    wave.report(IMPROVING, len(solo), first, bound)
    soon = time.perf_counter() + MOVES_SHARE * wave.stop.remaining_s()
    choices, moves = _improve(wave, choices, contested, solo, soon)
    primal_s = time.perf_counter() - clock
    wave.report(BOUNDING, len(solo), sum(c.cost for c in choices), bound)
    exact = _exact(wave, solo, contested, choices)
    bound = max(bound, exact.bound or 0)
    if exact.choices is not None and sum(c.cost for c in exact.choices) < first:
        choices = exact.choices
    detail = f"the contested orders ({len(contested)}) solved jointly by HiGHS"
    ascent = _Ascent(bound, wave.zero, None, 0, detail)
    clock = time.perf_counter()
    if sum(c.cost for c in choices) > bound:
        deadline = clock + BOUND_SHARE * wave.stop.remaining_s()
        ascent = _ascend(wave, solo, sum(c.cost for c in choices), bound, deadline)
        bound = max(bound, ascent.bound)
    bound_s, clock = exact.seconds + time.perf_counter() - clock, time.perf_counter()
    if ascent.best_choices is not None and bound < sum(c.cost for c in choices):
        again = _round(wave, ascent.best_price, ascent.best_choices)
        if sum(c.cost for c in again) < sum(c.cost for c in choices):
            choices = again
    if sum(c.cost for c in choices) > bound:
        wave.report(IMPROVING, len(solo), sum(c.cost for c in choices), bound)
        choices, more = _improve(wave, choices, contested, solo, math.inf)
        moves += more
    objective = sum(c.cost for c in choices)
    primal_s += time.perf_counter() - clock
    stats = WaveStats(
        len(solo), len(contested), bound_s, primal_s, ascent.iterations, wave.solves, moves, first
    )
    plan = _wave_plan(objective, bound, stats, ascent.detail, wave.stop)
    return _Result(plan, choices, solo)


def _wave_plan(objective: int, bound: int, stats: WaveStats, detail: str, stop: Stop) -> WavePlan:
    """The wave's status from its objective and bound; the plans come later."""
    if objective <= bound:
        return WavePlan(SolveStatus.OPTIMAL, objective, objective, (), stats, f"proven: {detail}")
    why = "stopped by the time limit" if stop.is_set() else "the bound did not close"
    return WavePlan(SolveStatus.FEASIBLE, objective, bound, (), stats, f"{why}; {detail}")


@dataclass(frozen=True, slots=True)
class _Ascent:
    """The best Lagrangian bound found, its prices and the orders' priced optima there."""

    bound: int
    best_price: Int
    best_choices: list[_Choice] | None
    iterations: int
    detail: str


def _ascend(wave: _Wave, solo: list[_Choice], upper: int, lower: int, deadline: float) -> _Ascent:
    """Projected subgradient ascent of ``L(λ)`` with Polyak steps toward ``upper``.

    The subgradient of resource r is its use by the priced optima less its capacity;
    prices are rounded to whole solver units (any λ ≥ 0 gives a valid bound). Only the
    orders a step touches are re-solved (:func:`_touched`). The step shrinks by half
    after three steps without a better bound.
    """
    price, choices = wave.zero.copy(), list(solo)
    best, best_price, best_choices = lower, price, None
    current, theta, stale, steps = lower, 1.0, 0, 0
    detail = f"{MAX_ITERATIONS} subgradient steps"
    while steps < MAX_ITERATIONS:
        if best >= upper:
            detail = "the bound met the plan"
            break
        if time.perf_counter() >= deadline or wave.stop.is_set():
            detail = f"the bound's time share ran out after {steps} subgradient steps"
            break
        g = _usage(choices, len(price)) - wave.cap
        g[-1] = 0
        d = np.where((g > 0) | (price > 0), g, 0)
        norm = float(d @ d)
        if norm == 0:
            detail = "the priced optima fit together"
            break
        new = np.rint(price + theta * (upper - current) / norm * d).astype(np.int64)
        new = np.maximum(new, 0)
        new[-1] = 0
        steps += 1
        if np.array_equal(new, price):
            theta /= 2
            continue
        for i in _touched(wave, choices, price, new):
            choices[i] = wave.solve(i, new)
        price, current = new, _dual(choices, new, wave.cap)
        if current > best:
            best, best_price, best_choices, stale = current, price, list(choices), 0
        else:
            stale += 1
            if stale >= 3:
                theta, stale = theta / 2, 0
    return _Ascent(best, best_price, best_choices, steps, detail)


def _touched(wave: _Wave, choices: list[_Choice], old: Int, new: Int) -> list[int]:
    """The orders whose priced optimum may change when prices go from ``old`` to ``new``.

    An optimum stays optimal when no price it pays changes and no price in its model
    falls: every other plan's cost rose by at least as much as its own (by nothing).
    """
    changed = old != new
    redo = {i for i, c in enumerate(choices) if changed[c.used].any()}
    fell = np.flatnonzero(new < old)
    if len(fell):
        redo.update(wave.holders[:, fell].nonzero()[0].tolist())
    return sorted(redo)


def _round(
    wave: _Wave, price: Int, choices: list[_Choice], *, by_regret: bool = True
) -> list[_Choice]:
    """A feasible plan from the orders' optima priced at ``price``.

    The optima that use no over-used resource are kept (together they fit). The others
    go in order of regret, the priced cost of doing without the over-used resources, most
    first (or in the orders' own order without ``by_regret``): each keeps its optimum
    when it still fits, else is routed exactly against the stock and slots left, priced
    at ``price``.
    """
    n = len(wave.cap)
    over = _usage(choices, n) > wave.cap
    contested = [i for i, c in enumerate(choices) if over[c.used].any()]
    settled = set(range(len(choices))) - set(contested)
    room = wave.cap - _usage([choices[i] for i in settled], n)
    without = np.where(over, 0, room)
    regret = dict.fromkeys(contested, 0)
    for i in contested:  # past the stop, the rest keep regret 0: arrival order
        if wave.stop.is_set() or not by_regret:
            break
        regret[i] = wave.solve(i, price, without).priced - choices[i].priced
    out = list(choices)
    for i in sorted(contested, key=lambda i: (-regret[i], i)):
        c = choices[i] if _fits(choices[i], room) else wave.solve(i, price, room)
        out[i] = c
        np.subtract.at(room, c.used, c.amount)
    return out


def _improve(
    wave: _Wave,
    choices: list[_Choice],
    contested: list[int],
    solo: list[_Choice],
    deadline: float,
) -> tuple[list[_Choice], int]:
    """Improvement moves at the true costs until none pays, the stop or ``deadline``.

    Moves: re-route one order exactly against what the others leave; swap two orders at
    a contested resource (:func:`_swap`). Each keeps the plan feasible.
    """
    n = len(wave.cap)
    choices = list(choices)
    room = wave.cap - _usage(choices, n)
    over = _usage(solo, n) > wave.cap
    focus = sorted(set(contested) | {i for i, c in enumerate(choices) if over[c.used].any()})
    moves, improved = 0, True

    def late() -> bool:
        return wave.stop.is_set() or time.perf_counter() >= deadline

    while improved and not late():
        improved = False
        for i in focus:
            if late():
                break
            if choices[i].cost <= solo[i].bound:
                continue  # nothing cheaper exists
            np.add.at(room, choices[i].used, choices[i].amount)
            c = wave.solve(i, wave.zero, room)
            if c.cost < choices[i].cost:
                choices[i], moves, improved = c, moves + 1, True
            np.subtract.at(room, choices[i].used, choices[i].amount)
        swapped = _swaps(wave, choices, room, focus, solo, over, late)
        moves, improved = moves + swapped, improved or swapped > 0
    return choices, moves


def _swaps(
    wave: _Wave,
    choices: list[_Choice],
    room: Int,
    focus: list[int],
    solo: list[_Choice],
    over: NDArray[np.bool_],
    late: Callable[[], bool],
) -> int:
    """Swap moves: an order above its own optimum against each holder of what it wanted."""
    holding: dict[int, list[int]] = {}
    for i in focus:
        for r in choices[i].used[over[choices[i].used]].tolist():
            holding.setdefault(r, []).append(i)
    moves = 0
    for b in focus:
        if choices[b].cost <= solo[b].bound:
            continue
        wanted = solo[b].used[over[solo[b].used]].tolist()
        for a in sorted({a for r in wanted for a in holding.get(r, ()) if a != b}):
            if late():
                return moves
            if _swap(wave, choices, room, solo, a, b):
                moves += 1
                break
    return moves


def _swap(
    wave: _Wave, choices: list[_Choice], room: Int, solo: list[_Choice], a: int, b: int
) -> bool:
    """Release orders a and b, route b first and then a; keep it when the pair costs less."""
    old = (choices[a], choices[b])
    before = old[0].cost + old[1].cost
    if solo[a].bound + solo[b].bound >= before:
        return False  # neither can cost less than alone
    for c in old:
        np.add.at(room, c.used, c.amount)
    new_b = wave.solve(b, wave.zero, room)
    np.subtract.at(room, new_b.used, new_b.amount)
    new_a = None
    if new_b.cost + solo[a].bound < before:
        new_a = wave.solve(a, wave.zero, room)
    if new_a is not None and new_a.cost + new_b.cost < before:
        np.subtract.at(room, new_a.used, new_a.amount)
        choices[a], choices[b] = new_a, new_b
        return True
    np.add.at(room, new_b.used, new_b.amount)
    for c in old:
        np.subtract.at(room, c.used, c.amount)
    return False


def _plan(wave: _Wave, result: _Result, k: int, rules: RuleSet, engine: str) -> Plan:
    """Order k's plan in the wave, with its model as the explanation.

    Its status is the wave's; its bound the wave's proof when OPTIMAL, else the order's
    own optimum (no wave plan gives it less). An order that must ship in full and was
    left out whole is INFEASIBLE, every unit unfulfilled.
    """
    member, choice = wave.members[k], result.choices[k]
    optimal = result.plan.status is SolveStatus.OPTIMAL
    if choice.rejected and not member.order.allow_partial:
        solution = Solution(SolveStatus.INFEASIBLE, {}, None, None)
        detail = "left out of the wave whole: it must ship in full and the stock left cannot"
    else:
        status = SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE
        bound = choice.cost if optimal else result.solo[k].bound
        solution = Solution(status, choice.assignment, choice.cost, bound)
        detail = f"planned in a wave: {result.plan.detail}"
    plan = plan_of(
        member.order.order_id,
        member.built,
        solution,
        engine=engine,
        seconds=result.plan.stats.bound_seconds + result.plan.stats.primal_seconds,
        detail=detail,
    )
    return replace(plan, rule_version=rules.label, strategy=member.strategy, step=WAVE_STEP)


@dataclass(frozen=True, slots=True)
class _Exact:
    """What the exact sub-wave proved: a bound, and a plan of the whole wave if it fits."""

    bound: int | None
    choices: list[_Choice] | None
    seconds: float


def _exact(
    wave: _Wave, solo: list[_Choice], contested: list[int], incumbent: list[_Choice]
) -> _Exact:
    """Solve the contested orders exactly, part by part; the rest keep their own optima.

    The contested orders are split into *parts*: orders whose own optima share an
    over-used resource are in one part. Give every part every resource whole and the parts
    no longer interact, so ``Σ_{o outside} z_o + Σ_parts OPT(part)`` is a lower bound on
    every wave plan (each order outside costs at least its own optimum; the orders of a
    part, in any wave plan, form a plan of the part); a part too large for
    :data:`EXACT_MAX_ORDERS` or the time counts its orders' own optima instead. When every
    part's optimum fits beside the others' own optima, they are a wave plan at that bound:
    optimal. Else the parts and orders that collide on a resource are merged and solved
    again, up to :data:`EXACT_ROUNDS` times. Each part is one HiGHS MILP.
    """
    started = time.perf_counter()
    n, best = len(wave.cap), None
    over = _usage(solo, n) > wave.cap
    parts = _parts({i: solo[i] for i in contested}, over)
    solved: dict[frozenset[int], tuple[int, _Found | None]] = {}
    for _ in range(EXACT_ROUNDS):
        for part in parts:
            if part not in solved and len(part) <= EXACT_MAX_ORDERS and not wave.stop.is_set():
                members = sorted(part)
                upper = sum(incumbent[i].cost for i in members)
                solved[part] = _solve_group(wave, members, solo, upper)
        lower = sum(c.bound for c in solo)
        for part in (p for p in parts if p in solved):
            lower += solved[part][0] - sum(solo[i].bound for i in part)
        best = max(best or 0, lower)
        if any(solved.get(p, (0, None))[1] is None for p in parts):
            break
        choices = list(solo)
        for part in parts:
            found = solved[part][1]
            assert found is not None
            for i, assignment in zip(sorted(part), found, strict=True):
                choices[i] = _choice(wave.members[i], assignment, wave.zero)
        over = _usage(choices, n) > wave.cap
        if not over.any():
            return _Exact(best, choices, time.perf_counter() - started)
        colliding = {i: c for i, c in enumerate(choices) if over[c.used].any()}
        parts = _merged(parts, _parts(colliding, over))
    return _Exact(best, None, time.perf_counter() - started)


def _parts(choices: dict[int, _Choice], over: NDArray[np.bool_]) -> list[frozenset[int]]:
    """The orders of ``choices`` grouped by the over-used resources their plans share."""
    by_resource: dict[int, set[int]] = {}
    for i, c in choices.items():
        for r in c.used[over[c.used]].tolist():
            by_resource.setdefault(r, set()).add(i)
    return _merged([frozenset({i}) for i in choices], [frozenset(s) for s in by_resource.values()])


def _merged(*families: list[frozenset[int]]) -> list[frozenset[int]]:
    """The connected unions of the sets of ``families`` (sets sharing an order merge)."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for family in families:
        for group in family:
            first, *rest = sorted(group)
            for i in rest:
                parent[root(i)] = root(first)
    joined: dict[int, set[int]] = {}
    for i in list(parent):
        joined.setdefault(root(i), set()).add(i)
    return sorted((frozenset(g) for g in joined.values()), key=min)


_Found = tuple[dict[tuple[int, int], int] | None, ...]


def _solve_group(
    wave: _Wave, members: list[int], solo: list[_Choice], upper: int
) -> tuple[int, _Found | None]:
    """The orders ``members`` as one HiGHS MILP, every resource whole: bound and optimum.

    ``upper`` is the cost of a plan of the group. In a cheaper one, order o costs at most
    ``upper − Σ_{o' ≠ o} z_o'``, so a candidate whose every plan costs more (its ``F_j``
    plus the least cost of the order's units over all candidates) is left out of o's
    block; the bound returned is ``min(upper, the MILP's bound)``, valid for every plan.
    """
    slack = upper - sum(solo[i].bound for i in members)
    models, x_res, y_res, rows_of = [], [], [], []
    for i in members:
        member = wave.members[i]
        rows = _worth(member.built, solo[i].bound + slack)
        model = MatrixModel.of(_restricted(member.built, rows))
        models.append(model)
        x_res.append(member.position[rows][model.node, model.line])
        y_res.append(member.slot[rows])
        rows_of.append(rows)
    free = len(wave.cap) - 1
    touched = np.unique(np.concatenate([*x_res, *y_res]))
    touched = touched[touched != free]
    place = np.full(len(wave.cap), -1, dtype=np.int64)
    place[touched] = np.arange(len(touched))
    stop = Stop(EXACT_SHARE * wave.stop.remaining_s())
    joint = solve_joint(
        models, [place[r] for r in x_res], [place[r] for r in y_res], wave.cap[touched], stop
    )
    alone = upper - slack  # the members' own optima: a bound when HiGHS proves none
    bound = alone if joint.bound is None else min(upper, max(alone, joint.bound))
    if joint.assignments is None:
        return bound, None
    found = tuple(
        None if a is None else {(int(rows[j]), line): q for (j, line), q in a.items()}
        for a, rows in zip(joint.assignments, rows_of, strict=True)
    )
    return bound, found


def _worth(built: BuiltModel, most: int) -> Int:
    """The candidates some plan of cost at most ``most`` may ship from.

    A plan through candidate j ships from j alone, and costs at least j's one-node plan
    (the exact fill of j with all its stock; less stock only costs more), or from j and
    others, and costs at least ``offset + F_j + min F + split penalty`` plus the least cost
    of the order's units over all candidates.
    """
    problem = Problem.of(built)
    n = len(built.matrices.node_ids)
    if problem is None or n == 0:
        return np.arange(n)
    fill, _ = problem.fill_all()
    alone = problem.evaluate(np.arange(n)[:, None])
    one = np.where(alone.valid, alone.cost, INFINITE)
    shipment = problem.shipment
    more = built.offset + shipment + int(shipment.min()) + built.split_penalty + int(fill.sum())
    if problem.cap < 2:
        more = np.full(n, INFINITE)
    kept: Int = np.flatnonzero(np.minimum(one, more) <= most)
    return kept


def _restricted(built: BuiltModel, rows: Int) -> BuiltModel:
    """``built`` over the candidates ``rows`` only."""
    m = built.matrices
    picked: dict[str, Any] = {
        f.name: (
            tuple(getattr(m, f.name)[j] for j in rows.tolist())
            if isinstance(getattr(m, f.name), tuple)
            else getattr(m, f.name)[rows]
        )
        for f in fields(m)
    }
    return BuiltModel(
        Matrices(**picked),
        built.lines,
        offset=built.offset,
        split_penalty=built.split_penalty,
        max_shipments=built.max_shipments,
        ship_complete=built.ship_complete,
        stock_anywhere=built.stock_anywhere,
    )
