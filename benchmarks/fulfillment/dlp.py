"""The deterministic LP (DLP): the benchmark's lower bound, its fractional plan, its prices.

For every order type q ≠ ∅, city j and item i of q, ``u[q, j, i, k]`` is the share of item
i sent from centre k (the dummy centre included, with unlimited stock); ``y[q, j, k]`` is
the share of boxes from k, at least every ``u`` of k. Expected arrivals of (q, j) over
``periods`` are ``periods · rate[q, j]``; each centre's shipments of an item stay within
its stock. The objective is the expected cost. Its optimum on the starting stock and the
full horizon is the DLP bound of the papers: no policy's expected cost is lower.

Only centres with stock of an item get its ``u`` (a centre without stock can only ship
zero), which leaves the LP unchanged and makes it smaller. Solved by HiGHS through
``scipy.optimize.linprog`` (the ``highspy`` wheel does not import beside OR-Tools). The
duals of the stock rows are the opportunity cost of one unit of each (centre, item): what
the look-ahead policy adds to that unit's cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from benchmarks.fulfillment.instance import Instance

SIMPLEX_VARIABLES = 100_000
"""Largest DLP solved by dual simplex by default; larger ones go to the interior point."""


@dataclass(frozen=True, slots=True)
class Dlp:
    """The LP's optimum, the shares per (type, city) and the stock prices.

    ``shares[q][j]`` is the (K + 1, |q|) matrix of item shares per centre (``None`` for the
    empty type); ``prices[k, i]`` the dual value of one unit of stock of item i at k.
    """

    objective: float
    shares: tuple[tuple[NDArray[np.float64] | None, ...], ...]
    prices: NDArray[np.float64]
    variables: int
    constraints: int
    seconds: float


def solve_dlp(
    instance: Instance,
    stock: NDArray[np.int64] | None = None,
    periods: float | None = None,
    *,
    method: str | None = None,
) -> Dlp:
    """The DLP of ``instance`` on ``stock`` for ``periods`` arrivals (default: the start).

    The look-ahead policy re-solves it on the stock left and the periods left. ``method``
    is scipy's HiGHS method; by default dual simplex up to :data:`SIMPLEX_VARIABLES`
    variables (the small configuration: about 5,000, 0.3 s) and the interior-point method
    with crossover above (the large one: about 410,000, some 6 CPU minutes, where dual
    simplex had not finished after 10).
    """
    started = time.perf_counter()
    geo = instance.geography
    stock = instance.stock if stock is None else stock
    periods = float(instance.periods if periods is None else periods)
    n_centres = len(geo.centres)
    n_rows = n_centres + 1
    n_cities = len(geo.cities)

    # One entry per (q, j, i): its pair p = q * J + j and its item.
    pair_list, item_list = [], []
    for q, items in enumerate(instance.types):
        for j in range(n_cities):
            for i in items:
                pair_list.append(q * n_cities + j)
                item_list.append(i)
    pair = np.array(pair_list, dtype=np.int64)
    item = np.array(item_list, dtype=np.int64)
    q_of, j_of = np.divmod(pair, n_cities)
    weight = periods * instance.rate[q_of, j_of]

    eligible = np.hstack([stock[:, item].T > 0, np.ones((len(item), 1), dtype=bool)])
    triple, centre = np.nonzero(eligible)  # one u per (triple, centre)
    n_u = len(triple)
    box_key = pair[triple] * n_rows + centre
    boxes, u_box = np.unique(box_key, return_inverse=True)
    n_y = len(boxes)
    y_q, y_j = np.divmod(boxes // n_rows, n_cities)
    y_k = boxes % n_rows

    cost = np.concatenate(
        [
            weight[triple] * geo.item[centre, j_of[triple]],
            periods * instance.rate[y_q, y_j] * geo.box[y_k, y_j],
        ]
    )
    # Every item of every (q, j) fully assigned.
    a_eq = sp.csr_array((np.ones(n_u), (triple, np.arange(n_u))), shape=(len(item), n_u + n_y))
    # u ≤ y: one row per u.
    rows = np.arange(n_u)
    link = sp.csr_array(
        (
            np.concatenate([np.ones(n_u), -np.ones(n_u)]),
            (np.concatenate([rows, rows]), np.concatenate([rows, n_u + u_box])),
        ),
        shape=(n_u, n_u + n_y),
    )
    # Stock: expected shipments of (k, i) within stock[k, i].
    real = centre < n_centres
    stock_key = centre[real] * stock.shape[1] + item[triple[real]]
    keys, stock_row = np.unique(stock_key, return_inverse=True)
    stock_rows = sp.csr_array(
        (weight[triple[real]], (stock_row, np.flatnonzero(real))),
        shape=(len(keys), n_u + n_y),
    )
    a_ub = sp.vstack([link, stock_rows], format="csr")
    b_ub = np.concatenate([np.zeros(n_u), stock.ravel()[keys].astype(float)])
    result = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=np.ones(len(item)),
        bounds=(0, None),
        method=method or ("highs" if n_u + n_y <= SIMPLEX_VARIABLES else "highs-ipm"),
    )
    if result.status != 0:
        raise RuntimeError(f"the DLP did not solve: {result.message}")

    prices = np.zeros(stock.shape)
    prices.ravel()[keys] = np.maximum(0.0, -result.ineqlin.marginals[n_u:])
    u = np.maximum(result.x[:n_u], 0.0)  # HiGHS may return -1e-12 for a zero share
    shares: list[list[NDArray[np.float64] | None]] = []
    start = 0
    position = np.zeros(len(item), dtype=np.int64)  # place of each triple's item in its type
    for items in instance.types:
        for _ in range(n_cities):
            position[start : start + len(items)] = np.arange(len(items))
            start += len(items)
    matrices = {p: np.zeros((n_rows, len(instance.types[p // n_cities]))) for p in np.unique(pair)}
    for t, k, value in zip(triple.tolist(), centre.tolist(), u.tolist(), strict=True):
        matrices[int(pair[t])][k, position[t]] = value
    for q, items in enumerate(instance.types):
        shares.append([matrices.get(q * n_cities + j) if items else None for j in range(n_cities)])
    return Dlp(
        objective=float(result.fun),
        shares=tuple(tuple(row) for row in shares),
        prices=prices,
        variables=n_u + n_y,
        constraints=len(item) + a_ub.shape[0],
        seconds=time.perf_counter() - started,
    )
