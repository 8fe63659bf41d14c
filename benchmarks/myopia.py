"""What myopia can cost a stream, and how much of it a policy won back, per stream.

Routing each order *alone* on the stream's initial stock, with no capacity used (no
earlier order has taken anything), at the optimum of the model replay prices it with,
costs at most what any online policy pays for it: stock only shrinks and capacity only
fills as a replay goes on, no cost term depends on either, so the order's feasible plans
only get fewer. The engine's total less that *alone* total is therefore all that
routing orders one at a time (myopia) can have cost it, and the most a look-ahead policy
can win back; the hindsight bound's gap adds the relaxation's fractional shipments on top.
Without replenishment only: arrivals would add stock the initial stock lacks.

``python -m benchmarks.myopia OUT`` reads a what-if run's ``OUT/records.csv``
(with the ``engine`` run and another, ``--other``, default ``look-ahead``; ``--smoke``
when the run was at smoke size; as many orders per stream as the engine's records),
routes each stream's orders alone, and writes ``OUT/myopia.csv`` (a row per stream) and
``OUT/myopia.png`` (saving against myopia per stream); it prints the mean difference per
stream (other − engine) with its bootstrap interval over streams.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm import tqdm

from models.money import MONEY_SCALE
from models.order import Order
from models.plan import SolveStatus
from models.scenario import Scenario
from router.engine.candidates import build_model
from router.engine.fast import solve_fast
from router.engine.stop import Stop
from router.whatif.kpis import ORDER_KEYS, STREAM_KEYS, bootstrap_interval
from router.whatif.replay import objective
from router.whatif.report import figure, png
from router.whatif.run import Stream

COLUMNS = (
    "scenario", "seed", "orders", "base_cost", "other_cost", "alone_cost", "myopia",
    "difference", "orders_better", "orders_worse",
)  # fmt: skip
"""``myopia`` is ``base_cost − alone_cost``; ``difference`` is ``other_cost − base_cost``."""

TIME_LIMIT_S = 60.0
"""Time for each order's exact solve; an order not proven optimal in it is an error."""


def alone_costs(scenario: Scenario, orders: Iterable[Order]) -> dict[str, float]:
    """Each order's optimum alone on ``scenario``'s initial stock, no capacity used, by id.

    The optimum of the evaluation model replay prices every decision with (the scenario's
    single strategy), solved exactly; no fallbacks, so no rule can make it dearer than the
    best plan. An order the model cannot supply (``INFEASIBLE``: a line that allows no
    partial fulfilment lacks stock) counts backordered whole, as the engine routes it.
    Raises ``ValueError`` for an order not solved to optimality.
    """
    evaluation = scenario.rules.strategies[0].policy  # replay's evaluation rules
    out = {}
    for order in orders:
        built = build_model(order, scenario.network, scenario.stock, evaluation)
        found = solve_fast(built, Stop(TIME_LIMIT_S)).best
        if found.status not in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE):
            raise ValueError(f"{order.order_id}: alone, {found.status} in {TIME_LIMIT_S:g} s")
        out[order.order_id] = objective(built, found.assignment) / MONEY_SCALE
    return out


def by_seed(records: pd.DataFrame, alone: pd.DataFrame, *, other: str) -> pd.DataFrame:
    """A row per stream: totals, myopia, the other run's difference, orders better and worse.

    ``alone`` has ``scenario, seed, order_id, alone``. Raises ``ValueError`` unless the
    engine, ``other`` and ``alone`` cover the same orders and no engine order costs less
    than alone (which no replay of the same stream can: a sign of a stream built otherwise,
    e.g. at smoke size or with replenishment).
    """
    keys = list(ORDER_KEYS)
    runs = records[records["run"].isin(["engine", other])]
    cost = runs.pivot_table(index=keys, columns="run", values="cost").reset_index()
    table = cost.merge(alone, on=keys, how="outer")
    if table[["engine", other, "alone"]].isna().any(axis=None):
        raise ValueError(f"engine, {other} and the streams alone do not cover the same orders")
    below = table[table["engine"] < table["alone"] - 1e-6]
    if len(below):
        raise ValueError(
            f"{below['order_id'].iloc[0]} (seed {below['seed'].iloc[0]}) costs the engine less "
            "than alone: the records are not of these streams (--smoke? replenishment?)"
        )
    diff = table[other] - table["engine"]
    table = table.assign(better=diff < -1e-9, worse=diff > 1e-9)
    sums = table.groupby(list(STREAM_KEYS), sort=True).agg(
        orders=("order_id", "size"), base_cost=("engine", "sum"), other_cost=(other, "sum"),
        alone_cost=("alone", "sum"), orders_better=("better", "sum"), orders_worse=("worse", "sum"),
    )  # fmt: skip
    sums["myopia"] = sums["base_cost"] - sums["alone_cost"]
    sums["difference"] = sums["other_cost"] - sums["base_cost"]
    return sums.reset_index()[list(COLUMNS)]


def per_stream(
    table: pd.DataFrame, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean difference per stream (other − engine) and its bootstrap interval over streams.

    Streams are independent (each its own stock), so this interval is the stricter check
    of the per-order one the what-if report gives, whose orders share a stream's stock.
    """
    difference = table["difference"].to_numpy(dtype=np.float64)
    low, high = bootstrap_interval(difference, level=level, resamples=resamples, seed=seed)
    return float(difference.mean()), low, high


def plot(table: pd.DataFrame, *, other: str) -> Figure:
    """Saving per stream against its myopia: on the diagonal a policy wins all of it back."""
    fig = figure(6.5, 5)
    ax = fig.subplots()
    saving = -table["difference"]
    ax.scatter(table["myopia"], saving, s=14, color="#1f77b4")
    top = max(float(table["myopia"].max()), 1.0)
    ax.plot([0, top], [0, top], color="#555555", linestyle="--", linewidth=1, label="all of it")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("myopia: engine − orders routed alone on the initial stock")
    ax.set_ylabel(f"saving: engine − {other}")
    total, myopia = float(saving.sum()), float(table["myopia"].sum())
    ax.set_title(
        f"{len(table)} streams: {other} saves {total:,.2f} of {myopia:,.2f} ({total / myopia:.0%})"
        if myopia > 0
        else f"{len(table)} streams"
    )
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Read ``OUT/records.csv``, write ``OUT/myopia.csv`` and ``OUT/myopia.png``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.myopia", description=__doc__)
    p.add_argument("out", type=Path, help="a what-if output directory (records.csv)")
    p.add_argument("--other", default="look-ahead", help="the run compared with engine")
    p.add_argument("--smoke", action="store_true", help="the what-if run was at smoke size")
    args = p.parse_args(argv)
    records = pd.read_csv(args.out / "records.csv", usecols=["run", *ORDER_KEYS, "cost"])
    missing = {"engine", args.other} - set(records["run"])
    if missing:
        print(f"records.csv has no run {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    engine = records[records["run"] == "engine"]
    sizes = engine.groupby(list(STREAM_KEYS)).size().reset_index(name="orders")
    streams = [
        Stream(str(scenario), int(seed), n_orders=int(n), smoke=args.smoke)
        for scenario, seed, n in zip(sizes["scenario"], sizes["seed"], sizes["orders"], strict=True)
    ]
    alone = pd.DataFrame(
        [
            (s.scenario, s.seed, order_id, cost)
            for s in tqdm(streams, desc="alone", unit="stream")
            for order_id, cost in alone_costs(s.build(), s.orders()).items()
        ],
        columns=[*ORDER_KEYS, "alone"],
    )
    try:
        table = by_seed(records, alone, other=args.other)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    table.to_csv(args.out / "myopia.csv", index=False)
    (args.out / "myopia.png").write_bytes(png(plot(table, other=args.other)))
    difference, myopia = table["difference"].sum(), table["myopia"].sum()
    mean, low, high = per_stream(table)
    print(
        f"{len(table)} streams: myopia {myopia:,.2f}; {args.other} − engine {difference:+,.2f}, "
        f"per stream {mean:+.3f} [{low:+.3f}, {high:+.3f}] (95% bootstrap over streams)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
