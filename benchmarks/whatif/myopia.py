"""What myopia can cost a stream, and how much of it a policy won back, per seed.

Routing each order *alone* on the stream's initial stock, with no capacity used (no
earlier order has taken anything), costs at most what any online policy pays for it:
stock only shrinks and capacity only fills as a replay goes on, so the order's feasible
plans only get fewer. The engine's total less that *alone* total is therefore all that
routing orders one at a time (myopia) can have cost it, and the most a look-ahead policy
can win back; the hindsight bound's gap adds the relaxation's fractional shipments on top.
Without replenishment only: arrivals would add stock the initial stock lacks.

``python -m benchmarks.whatif.myopia OUT`` reads a what-if run's ``OUT/records.csv``
(with the ``engine`` run and another, ``--other``, default ``look-ahead``; full-size
streams, as many orders as the engine's records of each), routes each stream alone and
writes ``OUT/myopia.csv`` (a row per seed) and
``OUT/myopia.png`` (saving against myopia per seed), and prints the mean saving per
stream with its bootstrap interval over streams.
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

from benchmarks.whatif.kpis import bootstrap_means
from benchmarks.whatif.policies import EnginePolicy
from benchmarks.whatif.replay import objective
from benchmarks.whatif.report import _figure, png
from benchmarks.whatif.run import Stream
from models.money import MONEY_SCALE
from models.order import Order
from models.scenario import Scenario
from router.engine.candidates import build_model

COLUMNS = (
    "scenario", "seed", "orders", "base_cost", "other_cost", "alone_cost", "myopia", "saving",
    "orders_better", "orders_worse",
)  # fmt: skip
"""``myopia`` is ``base_cost − alone_cost``; ``saving`` is ``base_cost − other_cost``."""


def alone_cost(scenario: Scenario, orders: Iterable[Order]) -> float:
    """``orders`` each routed by the engine alone on ``scenario``'s initial stock (total)."""
    policy = EnginePolicy(scenario.rules)
    evaluation = scenario.rules.strategies[0].policy  # replay's evaluation rules
    total = 0
    for order in orders:
        built = build_model(order, scenario.network, scenario.stock, evaluation, {})
        total += objective(built, policy.decide(order, built, scenario.network, scenario.stock, {}))
    return total / MONEY_SCALE


def by_seed(
    records: pd.DataFrame, alone: dict[tuple[str, int], float], *, other: str
) -> pd.DataFrame:
    """A row per stream of ``alone``: totals, myopia, saving, orders better and worse."""
    rows = []
    for scenario, seed in sorted(alone):
        part = records[(records["scenario"] == scenario) & (records["seed"] == seed)]
        cost = part.pivot_table(index="order_id", columns="run", values="cost")
        diff = cost[other] - cost["engine"]
        base, mine = float(cost["engine"].sum()), float(cost[other].sum())
        lone = alone[(scenario, seed)]
        rows.append(
            (scenario, seed, len(cost), base, mine, lone, base - lone, base - mine,
             int((diff < -1e-9).sum()), int((diff > 1e-9).sum()))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def per_stream(
    table: pd.DataFrame, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean saving per stream and its percentile bootstrap interval over streams.

    Streams are independent (each its own stock), so this interval is the stricter check
    of the per-order one the what-if report gives, whose orders share a stream's stock.
    """
    saving = table["saving"].to_numpy(dtype=np.float64)
    means = bootstrap_means(saving, resamples=resamples, seed=seed)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(saving.mean()), float(low), float(high)


def plot(table: pd.DataFrame, *, other: str) -> Figure:
    """Saving per seed against its myopia: on the diagonal a policy wins all of it back."""
    fig = _figure(6.5, 5)
    ax = fig.subplots()
    ax.scatter(table["myopia"], table["saving"], s=14, color="#1f77b4")
    top = max(float(table["myopia"].max()), 1.0)
    ax.plot([0, top], [0, top], color="#555555", linestyle="--", linewidth=1, label="all of it")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("myopia: engine − orders routed alone on the initial stock")
    ax.set_ylabel(f"saving: engine − {other}")
    saving, myopia = table["saving"].sum(), table["myopia"].sum()
    ax.set_title(
        f"{len(table)} streams: {other} saves {saving:,.2f} of {myopia:,.2f} "
        f"({saving / myopia:.0%})"
        if myopia > 0
        else f"{len(table)} streams"
    )
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Read ``OUT/records.csv``, write ``OUT/myopia.csv`` and ``OUT/myopia.png``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.whatif.myopia", description=__doc__)
    p.add_argument("out", type=Path, help="a what-if output directory (records.csv)")
    p.add_argument("--other", default="look-ahead", help="the run compared with engine")
    args = p.parse_args(argv)
    records = pd.read_csv(args.out / "records.csv", low_memory=False)
    missing = {"engine", args.other} - set(records["run"])
    if missing:
        print(f"records.csv has no run {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    engine = records[records["run"] == "engine"]
    sizes = engine.groupby(["scenario", "seed"]).size().reset_index(name="orders")
    streams = [
        Stream(str(scenario), int(seed), n_orders=int(n))
        for scenario, seed, n in zip(sizes["scenario"], sizes["seed"], sizes["orders"], strict=True)
    ]
    alone = {
        (s.scenario, s.seed): alone_cost(s.build(), s.orders())
        for s in tqdm(streams, desc="alone", unit="stream")
    }
    table = by_seed(records, alone, other=args.other)
    table.to_csv(args.out / "myopia.csv", index=False)
    (args.out / "myopia.png").write_bytes(png(plot(table, other=args.other)))
    saving, myopia = table["saving"].sum(), table["myopia"].sum()
    mean, low, high = per_stream(table)
    print(
        f"{len(table)} streams: myopia {myopia:,.2f}, {args.other} saves {saving:,.2f}; "
        f"per stream {mean:+.3f} [{low:+.3f}, {high:+.3f}] (95% bootstrap over streams)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
