"""The canonical model of one order as a sparse MILP, solved by HiGHS through scipy.

The HiGHS adapter: this module is the only one that calls ``scipy.optimize.milp``. It
builds the same model as :mod:`router.engine.cpsat` (docs/cost-model.md) in matrix form,
once, so that the whole model can be solved by HiGHS's branch and bound (the ``highs-full``
baseline engine) or its LP relaxation read by the exact engine. Variables, in column order:

* ``y[j]`` (binary) = 1 when candidate j ships part of the order;
* ``x[k]`` (integer) = units of line ``line[k]`` shipped from candidate ``node[k]``, one
  column per (candidate, line) pair that may ship (stock there, and cheaper than the
  backorder when the line may be backordered);
* ``u[l]`` (integer) = units of line l backordered (fixed to 0 when partial fulfilment is
  not allowed);
* ``e`` = shipments beyond the first, each charged the split penalty.

``highspy`` cannot be imported beside OR-Tools; scipy's bundled HiGHS can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from models.plan import SolveStatus
from router.engine.stop import Stop
from router.engine.terms import BuiltModel, Int, Solution


@dataclass(frozen=True, slots=True)
class MatrixModel:
    """The canonical model of one order in matrix form: ``min c·v + offset`` over columns ``v``.

    ``node[k]``, ``line[k]`` name the (candidate, line) pair of the k-th ``x`` column and
    ``cap[k]`` its upper bound ``min(q_l, a_jl)``.
    """

    built: BuiltModel
    node: Int
    line: Int
    cap: Int

    @staticmethod
    def of(built: BuiltModel) -> MatrixModel:
        """The columns of ``built``: one ``x`` per (candidate, line) pair that may ship."""
        m = built.matrices
        quantity = np.array([t.quantity for t in built.lines], dtype=np.int64)
        backorder = np.array([t.backorder_cost for t in built.lines], dtype=np.int64)
        partial = np.array([t.allow_partial for t in built.lines], dtype=np.bool_)
        cap = np.minimum(m.available, quantity[None, :])
        cap[partial[None, :] & (m.unit >= backorder[None, :])] = 0
        node, line = np.nonzero(cap)
        return MatrixModel(built, node.astype(np.int64), line.astype(np.int64), cap[node, line])

    @property
    def n_nodes(self) -> int:
        """Candidates (``y`` columns)."""
        return len(self.built.matrices.node_ids)

    @property
    def n_lines(self) -> int:
        """Order lines (``u`` columns)."""
        return len(self.built.lines)

    @property
    def objective(self) -> NDArray[np.float64]:
        """``c``: F_j per y, c_jl per x, b_l per u, the split penalty per e."""
        b = self.built
        return np.concatenate(
            [
                b.matrices.shipment,
                b.matrices.unit[self.node, self.line],
                [t.backorder_cost for t in b.lines],
                [b.split_penalty],
            ]
        ).astype(np.float64)

    def bounds(self) -> Bounds:
        """0 ≤ y ≤ 1, 0 ≤ x ≤ cap, 0 ≤ u ≤ q (0 when no partial), 0 ≤ e ≤ J."""
        lines = self.built.lines
        upper = np.concatenate(
            [
                np.ones(self.n_nodes),
                self.cap,
                [t.quantity if t.allow_partial else 0 for t in lines],
                [max(0, self.n_nodes - 1)],
            ]
        ).astype(np.float64)
        return Bounds(np.zeros(len(upper)), upper)

    def constraints(self) -> LinearConstraint:
        """Every row of the canonical model (see the module docstring of cpsat.py)."""
        n_y, n_x, n_u = self.n_nodes, len(self.node), self.n_lines
        y0, x0, u0, e0 = 0, n_y, n_y + n_x, n_y + n_x + n_u
        built = self.built
        rows: list[sp.coo_array] = []
        low: list[NDArray[np.float64]] = []
        high: list[NDArray[np.float64]] = []
        k = np.arange(n_x)

        def block(r: Int, c: Int, v: NDArray[np.float64] | float, n_rows: int) -> sp.coo_array:
            values = np.broadcast_to(np.asarray(v, dtype=np.float64), r.shape)
            return sp.coo_array((values, (r, c)), shape=(n_rows, e0 + 1))

        # Σ_j x_jl + u_l = q_l: every unit ships or is backordered.
        quantity = np.array([t.quantity for t in built.lines], dtype=np.float64)
        rows.append(
            block(
                np.concatenate([self.line, np.arange(n_u)]),
                np.concatenate([x0 + k, u0 + np.arange(n_u)]),
                1.0,
                n_u,
            )
        )
        low.append(quantity)
        high.append(quantity)
        # x_jl − cap_jl·y_j ≤ 0: only a shipping node ships, at most what it holds.
        rows.append(
            block(
                np.concatenate([k, k]),
                np.concatenate([x0 + k, y0 + self.node]),
                np.concatenate([np.ones(n_x), -self.cap]),
                n_x,
            )
        )
        low.append(np.full(n_x, -np.inf))
        high.append(np.zeros(n_x))
        # y_j − Σ_l x_jl ≤ 0: a node counts as a shipment only when it ships a unit.
        rows.append(
            block(
                np.concatenate([np.arange(n_y), self.node]),
                np.concatenate([y0 + np.arange(n_y), x0 + k]),
                np.concatenate([np.ones(n_y), -np.ones(n_x)]),
                n_y,
            )
        )
        low.append(np.full(n_y, -np.inf))
        high.append(np.zeros(n_y))
        # Lines of one SKU share each node's stock of it.
        shared = _shared_rows(self)
        if shared is not None:
            r, c, limit = shared
            rows.append(block(r, x0 + c, 1.0, len(limit)))
            low.append(np.full(len(limit), -np.inf))
            high.append(limit)
        # Σ y_j − e ≤ 1: shipments beyond the first are counted by e.
        # Σ y_j ≤ max_shipments (1 when the order ships complete).
        cap = built.max_shipments
        if built.ship_complete:
            cap = 1 if cap is None else min(cap, 1)
        ones = np.ones(n_y)
        counted = block(
            np.zeros(n_y + 1, dtype=np.int64),
            np.concatenate([y0 + np.arange(n_y), [e0]]),
            np.concatenate([ones, [-1.0]]),
            1,
        )
        rows.append(counted)
        low.append(np.array([-np.inf]))
        high.append(np.array([1.0]))
        if cap is not None:
            rows.append(block(np.zeros(n_y, dtype=np.int64), y0 + np.arange(n_y), 1.0, 1))
            low.append(np.array([-np.inf]))
            high.append(np.array([float(cap)]))
        matrix = sp.vstack(rows, format="csr")
        return LinearConstraint(matrix, np.concatenate(low), np.concatenate(high))

    def integrality(self) -> NDArray[np.int64]:
        """y, x and u are integer; e follows from y."""
        n = self.n_nodes + len(self.node) + self.n_lines
        return np.concatenate([np.ones(n, dtype=np.int64), [0]])

    def assignment(self, values: NDArray[np.float64]) -> dict[tuple[int, int], int]:
        """Units per (candidate, line) of a solution vector."""
        x = np.rint(values[self.n_nodes : self.n_nodes + len(self.node)]).astype(np.int64)
        return {
            (int(j), int(line)): int(q)
            for j, line, q in zip(self.node[x > 0], self.line[x > 0], x[x > 0], strict=True)
        }


def _shared_rows(model: MatrixModel) -> tuple[Int, Int, NDArray[np.float64]] | None:
    """Rows Σ_{l of one SKU} x_jl ≤ a_j for SKUs ordered on several lines, or None."""
    built = model.built
    lines_of: dict[str, list[int]] = {}
    for line, terms in enumerate(built.lines):
        lines_of.setdefault(terms.sku, []).append(line)
    groups = [ls for ls in lines_of.values() if len(ls) > 1]
    if not groups:
        return None
    r: list[int] = []
    c: list[int] = []
    limit: list[float] = []
    available = built.matrices.available
    for ls in groups:
        for j in range(model.n_nodes):
            cols = np.flatnonzero((model.node == j) & np.isin(model.line, ls))
            if len(cols) > 1:
                r += [len(limit)] * len(cols)
                c += cols.tolist()
                limit.append(float(available[j, ls[0]]))
    if not limit:
        return None
    return np.array(r, dtype=np.int64), np.array(c, dtype=np.int64), np.array(limit)


def solve_highs(built: BuiltModel, stop: Stop) -> Solution:
    """The canonical model solved by HiGHS's branch and bound (no tie-break among optima).

    HiGHS cannot be interrupted from outside, so ``stop`` only sets its time limit.
    """
    model = MatrixModel.of(built)
    limit = stop.remaining_s()
    if limit <= 0:
        return Solution(SolveStatus.NO_SOLUTION, {}, None, None)
    result = milp(
        model.objective,
        integrality=model.integrality(),
        bounds=model.bounds(),
        constraints=model.constraints(),
        options={"presolve": True, "mip_rel_gap": 0.0}
        | ({"time_limit": limit} if math.isfinite(limit) else {}),
    )
    if result.status == 2:  # infeasible
        return Solution(SolveStatus.INFEASIBLE, {}, None, None)
    if result.x is None:
        return Solution(SolveStatus.NO_SOLUTION, {}, None, None)
    assignment = model.assignment(result.x)
    objective = built.objective(assignment)
    if result.status == 0:
        return Solution(SolveStatus.OPTIMAL, assignment, objective, objective)
    bound = getattr(result, "mip_dual_bound", None)
    proven = (
        None
        if bound is None or not math.isfinite(bound)
        else math.ceil(bound + built.offset - 1e-6)
    )
    return Solution(SolveStatus.FEASIBLE, assignment, objective, proven)


@dataclass(frozen=True, slots=True)
class JointSolution:
    """The optimum (or best plan found) of several orders' models with shared rows.

    ``assignments[o]`` is order o's units per (candidate, line), or None when it is left
    out whole; ``bound`` is HiGHS's proven lower bound (rounded up: costs are integers).
    """

    optimal: bool
    assignments: tuple[dict[tuple[int, int], int] | None, ...] | None
    bound: int | None


def solve_joint(
    models: list[MatrixModel],
    x_rows: list[Int],
    y_rows: list[Int],
    limits: Int,
    stop: Stop,
) -> JointSolution:
    """Several orders' canonical models as one MILP, coupled by shared ``≤`` rows.

    ``x_rows[o][k]`` is the shared row of order o's k-th ``x`` column (its units count
    against it), ``y_rows[o][j]`` that of its candidate j (a shipment counts 1); -1: none.
    Row r allows ``limits[r]``. An order that may not be backordered in part may be left
    out whole, at the backorder cost of all its units: a binary ``w_o`` with
    ``u_l = q_l·w_o`` for each of its lines. HiGHS's time limit is ``stop``'s.
    """
    blocks = [m.constraints() for m in models]
    bounds = [m.bounds() for m in models]
    sizes = [len(m.objective) for m in models]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    whole = [o for o, m in enumerate(models) if not all(t.allow_partial for t in m.built.lines)]
    n = int(starts[-1]) + len(whole)
    upper = np.concatenate([*(b.ub for b in bounds), np.ones(len(whole))])
    rows, low, high = [sp.block_diag([b.A for b in blocks], format="csr")], [], []
    low += [b.lb for b in blocks]
    high += [b.ub for b in blocks]
    for w, o in enumerate(whole):  # u_l − q_l·w_o = 0
        m = models[o]
        u0 = int(starts[o]) + m.n_nodes + len(m.node)
        q = np.array([t.quantity for t in m.built.lines], dtype=np.float64)
        upper[u0 : u0 + m.n_lines] = q
        r = np.arange(m.n_lines)
        rows.append(
            sp.coo_array(
                (
                    np.concatenate([np.ones(m.n_lines), -q]),
                    (
                        np.tile(r, 2),
                        np.concatenate([u0 + r, np.full(m.n_lines, int(starts[-1]) + w)]),
                    ),
                ),
                shape=(m.n_lines, n),
            )
        )
        low.append(np.zeros(m.n_lines))
        high.append(np.zeros(m.n_lines))
    rows[0] = sp.hstack([rows[0], sp.csr_array((rows[0].shape[0], len(whole)))])
    rows.append(_shared(models, x_rows, y_rows, starts, len(limits), n))
    low.append(np.full(len(limits), -np.inf))
    high.append(limits.astype(np.float64))
    limit = stop.remaining_s()
    result = milp(
        np.concatenate([*(m.objective for m in models), np.zeros(len(whole))]),
        integrality=np.concatenate([*(m.integrality() for m in models), np.ones(len(whole))]),
        bounds=Bounds(np.zeros(n), upper),
        constraints=LinearConstraint(
            sp.vstack(rows, format="csr"), np.concatenate(low), np.concatenate(high)
        ),
        options={"presolve": True, "mip_rel_gap": 0.0}
        | ({"time_limit": max(limit, 0.01)} if math.isfinite(limit) else {}),
    )
    dual = getattr(result, "mip_dual_bound", None)
    offset = sum(m.built.offset for m in models)
    bound = None if dual is None or not math.isfinite(dual) else math.ceil(dual + offset - 1e-6)
    if result.x is None:
        return JointSolution(False, None, bound)
    found = tuple(
        None
        if o in whole and result.x[int(starts[-1]) + whole.index(o)] > 0.5
        else m.assignment(result.x[int(starts[o]) : int(starts[o + 1])])
        for o, m in enumerate(models)
    )
    return JointSolution(result.status == 0, found, bound)


def _shared(
    models: list[MatrixModel],
    x_rows: list[Int],
    y_rows: list[Int],
    starts: Int,
    n_rows: int,
    n_columns: int,
) -> sp.coo_array:
    """The shared rows: each x column's units and each y column's shipment on its row."""
    r, c, v = [], [], []
    for o, m in enumerate(models):
        x0 = int(starts[o]) + m.n_nodes
        at = np.flatnonzero(x_rows[o] >= 0)
        r.append(x_rows[o][at])
        c.append(x0 + at)
        v.append(np.ones(len(at)))
        at = np.flatnonzero(y_rows[o] >= 0)
        r.append(y_rows[o][at])
        c.append(int(starts[o]) + at)
        v.append(np.ones(len(at)))
    return sp.coo_array(
        (
            np.concatenate([*v, np.zeros(0)]),
            (
                np.concatenate([*r, np.zeros(0, dtype=np.int64)]),
                np.concatenate([*c, np.zeros(0, dtype=np.int64)]),
            ),
        ),
        shape=(n_rows, n_columns),
    )
