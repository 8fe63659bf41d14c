"""The hindsight lower bound: the LP relaxation of routing a whole order stream at once.

A policy that replays the stream (:mod:`router.whatif.replay`) routes one order at a
time on depleting stock, knowing nothing of later orders or replenishments. The bound
knows everything: every order, every replenishment, all at once, and it may split units
and shipments fractionally. Every replayed run is a feasible integer point of its model,
so every policy's total evaluation cost is at least :attr:`Bound.value`.

For each order *o*, the evaluation model is the canonical model (docs/cost-model.md)
built on ``stock_all`` (the initial stock plus every unit replenished by the last order,
so every node that holds stock while the stream runs is a candidate) with no capacity
used; its cost terms do not depend on stock. Over all orders, in solver units
(:data:`models.money.MONEY_SCALE`)::

    minimise  Σ_o [offset + Σ_j F_oj·y_oj + P_o·e_o + Σ_lj c_olj·x_olj + Σ_l b_ol·u_ol]
    s.t.      Σ_j x_olj + u_ol = q_ol                     every order o, line l
              0 ≤ x_olj ≤ min(q_ol, a_olj)·y_oj            a_olj on all stock
              e_o ≥ Σ_j y_oj − 1,  0 ≤ e_o ≤ J_o − 1       extra shipments
              Σ_j y_oj ≤ max_shipments;  ≤ 1 if ship complete
              Σ_{o,l: sku(l)=s} x_olj ≤ A_js + R_js        shared stock of node j, SKU s
              Σ_{o: t_o < t, l: sku(l)=s} x_olj ≤ A_js + R_js(< t)
                                            every arrival time t of a replenishment of (j, s)
              Σ_{o: ship_oj = d} y_oj ≤ capacity_j        daily order capacity
              0 ≤ y_oj ≤ 1,  0 ≤ u_ol ≤ q_ol

``A_js`` is the initial available stock (on hand − reserved − safety stock, ≥ 0),
``ship_oj`` the day node *j* would ship order *o* (its ship date in the evaluation model,
calendars included: capacity counts on the day a shipment leaves, as in replay and the
service), ``t_o`` order *o*'s ``created_at``, ``R_js(< t)`` the units of (j, s) arriving
strictly before ``t`` and ``R_js`` those arriving by the last order's ``created_at``.
Replenishment is timed exactly as replay applies it: units arriving at ``t`` are there for
every order with ``t_o >= t`` and for no earlier one, so the orders created before ``t``
share only what was there before it (one cumulative row per arrival time; a row whose
orders are those of the previous arrival time is implied by it and left out), and units
arriving after the last order are dropped (no order of the stream can use them). ``u_ol``
is allowed even when an order does not allow partial fulfilment: a policy may end up
backordering such an order, and the bound must stay below its cost too.

The model is assembled from numpy index arrays, one block per order, into sparse matrices
and solved by HiGHS through ``scipy.optimize.linprog`` (``highspy`` itself must not be
imported: it breaks beside OR-Tools). The standard sample (1,000 orders) makes an LP of
about 430,000 variables and 240,000 rows, built in about 1 s and solved in about 10 s.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from models.money import MONEY_SCALE
from models.network import Network, Stock, StockPosition
from models.order import Order
from models.replenishment import Replenishment, check_replenishment
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.candidates import build_model
from router.engine.terms import BuiltModel
from router.whatif.replay import arrival_order

Int = NDArray[np.int64]
Float = NDArray[np.float64]


@dataclass(frozen=True)
class Bound:
    """The hindsight lower bound of a stream's total evaluation cost.

    ``value`` is in currency units (NaN when the solve did not finish); ``status`` is
    ``"OPTIMAL"`` or HiGHS's message; ``variables`` and ``constraints`` give the size of
    the LP solved (after the exact substitution of single-line ``y_j``, see
    ``_Program.add``); ``seconds`` is the wall-clock time of building and solving it.
    """

    value: float
    status: str
    variables: int
    constraints: int
    seconds: float


def hindsight_bound(
    scenario: Scenario,
    *,
    orders: Sequence[Order] | None = None,
    replenishment: Sequence[Replenishment] = (),
    evaluation: RuleSet | None = None,
) -> Bound:
    """The LP relaxation of routing ``orders`` all at once with full hindsight.

    ``orders`` default to the scenario's; ``evaluation`` (default: the scenario's rules)
    prices them and must have a single strategy. ``replenishment`` adds units to the
    stock that the stream shares, each from its arrival on (as replay applies it; arrivals
    after the last order are dropped). Raises ``ValueError`` for an evaluation rule set of
    several strategies and :class:`~models.errors.InvalidArgumentError` for a bad
    replenishment (:func:`~models.replenishment.check_replenishment`).
    """
    started = time.perf_counter()
    rules = scenario.rules if evaluation is None else evaluation
    if len(rules.strategies) != 1:
        raise ValueError(
            f"the evaluation rule set must have a single strategy, {rules.label} has "
            f"{len(rules.strategies)}"
        )
    policy = rules.strategies[0].policy
    stream = arrival_order(scenario.orders if orders is None else orders)
    network = scenario.network
    check_replenishment(replenishment, network)
    last = stream[-1].created_at if stream else None
    arrivals = sorted((r for r in replenishment if last is not None and r.at <= last), key=_at)
    added: dict[tuple[str, str], int] = {}
    for r in arrivals:
        added[r.node_id, r.sku] = added.get((r.node_id, r.sku), 0) + r.units
    stock_all = _with_units(scenario.stock, added)

    lp = _Program(network)
    for rank, order in enumerate(stream):
        lp.add(order, build_model(order, network, stock_all, policy, None), rank)
    lp.add_shared_stock(scenario.stock, arrivals, [o.created_at for o in stream])
    lp.add_capacity()
    if lp.n_vars == 0:
        return Bound(0.0, "OPTIMAL", 0, 0, time.perf_counter() - started)

    a_ub, b_ub = lp.matrix(lp.ub)
    a_eq, b_eq = lp.matrix(lp.eq)
    result = linprog(
        np.concatenate(lp.cost),
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=np.column_stack([np.concatenate(lp.lower), np.concatenate(lp.upper)]),
        method="highs",
    )
    if result.status == 0:
        value, status = (float(result.fun) + lp.offset) / MONEY_SCALE, "OPTIMAL"
    else:
        value, status = math.nan, str(result.message)
    constraints = lp.ub.n_rows + lp.eq.n_rows
    return Bound(value, status, lp.n_vars, constraints, time.perf_counter() - started)


def _at(r: Replenishment) -> datetime:
    return r.at


def _with_units(stock: Stock, added: Mapping[tuple[str, str], int]) -> Stock:
    """``stock`` with ``added`` units on hand per (node, SKU)."""
    if not added:
        return stock
    positions = dict(stock.positions)
    for (node_id, sku), units in added.items():
        pos = positions.get((node_id, sku))
        if pos is None:
            positions[node_id, sku] = StockPosition(node_id, sku, units)
        else:
            positions[node_id, sku] = replace(pos, on_hand=pos.on_hand + units)
    return Stock(positions)


@dataclass
class _Rows:
    """Constraint rows as coordinate lists: ``row``, ``col``, ``val`` parts and ``rhs``."""

    n_rows: int = 0
    row: list[Int] = field(default_factory=list)
    col: list[Int] = field(default_factory=list)
    val: list[Float] = field(default_factory=list)
    rhs: list[Float] = field(default_factory=list)

    def add(self, n: int, rhs: Float) -> int:
        """Reserve ``n`` rows with right-hand sides ``rhs``; their first row index."""
        first = self.n_rows
        self.n_rows += n
        self.rhs.append(np.asarray(rhs, dtype=np.float64))
        return first

    def put(self, row: Int, col: Int, val: Float | float) -> None:
        """Coefficients ``val`` at (``row``, ``col``), element-wise."""
        self.row.append(row)
        self.col.append(col)
        self.val.append(np.broadcast_to(np.asarray(val, dtype=np.float64), row.shape))


class _Program:
    """The LP, assembled one order at a time from index arrays."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.node_row = network.node_index
        self.sku_index = {sku: i for i, sku in enumerate(network.skus)}
        self.skus = list(network.skus)
        self.n_vars = 0
        self.offset = 0
        self.cost: list[Float] = []
        self.lower: list[Float] = []
        self.upper: list[Float] = []
        self.eq = _Rows()
        self.ub = _Rows()
        # Per x variable: its column, its (node row, sku index) stock key and its order's
        # rank in arrival order.
        self.x_col: list[Int] = []
        self.x_key: list[Int] = []
        self.x_rank: list[Int] = []
        # Per y_j of a node with a daily capacity: column and coefficient of its
        # expression, node row, ship date ordinal.
        self.y_col: list[Int] = []
        self.y_coef: list[Float] = []
        self.y_node: list[Int] = []
        self.y_day: list[Int] = []
        capacity = [n.daily_order_capacity for n in network.nodes]
        self.capacity = np.array([-1 if c is None else c for c in capacity], dtype=np.int64)

    def _vars(self, cost: Float | Int, lower: Float | float, upper: Float | Int | float) -> Int:
        """New variables with these costs and bounds; their columns."""
        n = len(cost)
        cols = np.arange(self.n_vars, self.n_vars + n, dtype=np.int64)
        self.n_vars += n
        self.cost.append(np.asarray(cost, dtype=np.float64))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        return cols

    def add(self, order: Order, built: BuiltModel, rank: int) -> None:
        """The variables and own constraints of one order's evaluation model.

        ``rank`` is the order's place in arrival order (orders are added in that order).

        A candidate that can ship only one line (one x variable) and has ``F_j ≥ 0`` gets
        no ``y_j``: at an optimum ``y_j = x_lj / min(q_l, a_lj)`` (``y_j`` only has a
        nonnegative cost and appears with a positive coefficient in ≤ rows), so ``y_j`` is
        replaced by that expression. The LP's optimum is unchanged and it shrinks by a
        variable and a row per such candidate (about two thirds of them in the sample).
        """
        m = built.matrices
        n_cand, n_lines = len(m.node_ids), len(built.lines)
        quantity = np.array([t.quantity for t in built.lines], dtype=np.int64)
        backorder = np.array([t.backorder_cost for t in built.lines], dtype=np.int64)
        shipment = m.shipment
        self.offset += built.offset

        cap = np.minimum(quantity[None, :], m.available)  # min(q_l, a_lj), (J, L)
        jj, ll = np.nonzero(cap > 0)  # x only where a unit can ship; jj ascending
        cap_x = cap[jj, ll].astype(np.float64)
        only = (np.bincount(jj, minlength=n_cand) == 1) & (shipment >= 0)  # substituted
        first_x = np.searchsorted(jj, np.arange(n_cand))  # x of candidate j, when only[j]
        by_x = only[jj]
        x_cost = m.unit[jj, ll] + np.where(by_x, shipment[jj] / cap_x, 0.0)
        y = self._vars(shipment[~only], 0.0, 1.0)
        x = self._vars(x_cost, 0.0, cap_x)
        u = self._vars(backorder, 0.0, quantity)
        # y_j as an expression: column and coefficient per candidate.
        y_col = np.empty(n_cand, dtype=np.int64)
        y_col[~only] = y
        y_col[only] = x[first_x[only]]
        y_coef = np.ones(n_cand, dtype=np.float64)
        y_coef[only] = 1.0 / cap_x[first_x[only]]

        # Σ_j x_lj + u_l = q_l
        first = self.eq.add(n_lines, quantity.astype(np.float64))
        self.eq.put(first + ll, x, 1.0)
        self.eq.put(first + np.arange(n_lines, dtype=np.int64), u, 1.0)
        # x_lj − min(q_l, a_lj)·y_j ≤ 0 where y_j is a variable
        linked = np.flatnonzero(~by_x)
        first = self.ub.add(len(linked), np.zeros(len(linked)))
        rows = first + np.arange(len(linked), dtype=np.int64)
        self.ub.put(rows, x[linked], 1.0)
        self.ub.put(rows, y_col[jj[linked]], -cap_x[linked])
        # Σ_j y_j − e ≤ 1 (an extra shipment is possible only with two candidates)
        if n_cand >= 2:
            e = self._vars(np.array([built.split_penalty]), 0.0, float(n_cand - 1))
            row = self.ub.add(1, np.ones(1))
            self.ub.put(np.full(n_cand, row, dtype=np.int64), y_col, y_coef)
            self.ub.put(np.array([row], dtype=np.int64), e, -1.0)
        # Σ_j y_j ≤ the shipment cap
        limits = [c for c in (built.max_shipments, 1 if built.ship_complete else None) if c]
        if limits and min(limits) < n_cand:
            row = self.ub.add(1, np.array([float(min(limits))]))
            self.ub.put(np.full(n_cand, row, dtype=np.int64), y_col, y_coef)

        node_row = np.fromiter((self.node_row[n] for n in m.node_ids), np.int64, n_cand)
        sku = np.array([self.sku_index[t.sku] for t in built.lines], dtype=np.int64)
        self.x_col.append(x)
        self.x_key.append(node_row[jj] * len(self.skus) + sku[ll])
        self.x_rank.append(np.full(len(x), rank, dtype=np.int64))
        capped = self.capacity[node_row] >= 0
        self.y_col.append(y_col[capped])
        self.y_coef.append(y_coef[capped])
        self.y_node.append(node_row[capped])
        self.y_day.append(m.ship[capped])

    def add_shared_stock(
        self, stock: Stock, arrivals: Sequence[Replenishment], created: Sequence[datetime]
    ) -> None:
        """The shared-stock rows of every (node j, SKU s) some order may ship.

        One row over every order: Σ x ≤ initial available + ``arrivals``. And per arrival
        time t of (j, s) (``arrivals`` sorted by time, all by the last order): Σ x over the
        orders created before t ≤ initial available + units arriving before t.
        ``created`` lists the orders' ``created_at`` in arrival order (their ranks).
        """
        if not self.x_col:
            return
        keys = np.concatenate(self.x_key)
        if not len(keys):
            return
        cols, ranks = np.concatenate(self.x_col), np.concatenate(self.x_rank)
        n_skus = len(self.skus)
        nodes = self.network.nodes
        timed: dict[int, list[Replenishment]] = {}
        for r in arrivals:
            key = self.node_row[r.node_id] * n_skus + self.sku_index[r.sku]
            timed.setdefault(key, []).append(r)

        def initial(key: int) -> int:
            return stock.available(nodes[key // n_skus].node_id, self.skus[key % n_skus])

        unique, inverse = np.unique(keys, return_inverse=True)
        rhs = np.empty(len(unique), dtype=np.float64)
        for i, key in enumerate(unique.tolist()):
            rhs[i] = initial(key) + sum(r.units for r in timed.get(key, ()))
        first = self.ub.add(len(unique), rhs)
        self.ub.put(first + inverse.astype(np.int64), cols, 1.0)

        by_key = np.lexsort((ranks, keys))  # x sorted by key, then order rank
        keys, ranks, cols = keys[by_key], ranks[by_key], cols[by_key]
        for key, due in timed.items():
            lo, hi = np.searchsorted(keys, [key, key + 1]).tolist()
            if lo == hi:
                continue  # no order may ship this SKU from this node
            base, arrived, covered = initial(key), 0, 0
            for at, group in groupby(due, key=_at):
                n_before = bisect_left(created, at)  # orders created before ``at``
                if n_before > covered:  # else no order more than the previous row's
                    k = int(np.searchsorted(ranks[lo:hi], n_before))  # their x of (j, s)
                    if k:
                        row = self.ub.add(1, np.array([float(base + arrived)]))
                        self.ub.put(np.full(k, row, dtype=np.int64), cols[lo : lo + k], 1.0)
                    covered = n_before
                arrived += sum(r.units for r in group)

    def add_capacity(self) -> None:
        """Σ y over the orders node j would ship on day d ≤ j's daily order capacity."""
        if not self.y_col:
            return
        nodes, days = np.concatenate(self.y_node), np.concatenate(self.y_day)
        if not len(nodes):
            return
        unique, inverse = np.unique(np.column_stack([nodes, days]), axis=0, return_inverse=True)
        first = self.ub.add(len(unique), self.capacity[unique[:, 0]].astype(np.float64))
        rows = first + inverse.reshape(-1).astype(np.int64)
        self.ub.put(rows, np.concatenate(self.y_col), np.concatenate(self.y_coef))

    def matrix(self, rows: _Rows) -> tuple[sp.csr_array | None, Float | None]:
        """The rows as a sparse matrix over all variables, and their right-hand sides."""
        if rows.n_rows == 0:
            return None, None
        coords = (np.concatenate(rows.row), np.concatenate(rows.col))
        values = np.concatenate(rows.val)
        matrix = sp.csr_array(sp.coo_array((values, coords), shape=(rows.n_rows, self.n_vars)))
        return matrix, np.concatenate(rows.rhs)
