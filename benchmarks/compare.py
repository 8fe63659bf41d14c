"""Fast engine against the full-model baseline: latency and identical optima, in one run.

Plans each order with both engines in the same process, interleaved (the fast engine, then
the baseline, on the same order, so drift on the machine hits both alike), and times each
``route_order`` call end to end (candidate generation, model building, solve, mapping back)
with ``time.perf_counter``. Checks on every order that both engines report the same status
and the same objective; any mismatch is printed and the run exits with status 1.

Two parts: the orders of a registered scenario (default ``standard``), and a sweep over
network size (nodes) × order size (lines) on the sample network with orders of exactly
``k`` lines (``benchmarks/orders.py``). Writes, under ``--out``:

* ``orders.csv``: one row per (scenario, seed, cell, order, engine);
* ``summary.csv`` and ``summary.md``: per cell and engine, p50/p95/p99 ms and the
  baseline/fast ratios at p50 and p99;
* ``latency_vs_nodes.png`` and ``latency_vs_lines.png``: the sweep, p50 and p99, log scale.

    python -m benchmarks.compare --scenario standard --orders 300 --out out/compare
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmarks.orders import orders_of_size
from benchmarks.scenarios import REGISTRY
from models.order import Order
from models.scenario import Scenario
from router.engine import route_order
from router.engine.solve import DEFAULT_TIME_LIMIT_S, FAST, FULL_MODEL
from router.sample import sample_scenario

FAST_ROLE = "fast"
BASELINE_ROLE = "baseline"

SWEEP = "sweep"
"""Scenario name of the sweep's rows."""

SWEEP_DCS = 8
"""DCs of every sweep network, as in the standard scenario."""

COLUMNS = [
    "scenario",
    "seed",
    "cell",
    "order_id",
    "nodes",
    "lines",
    "candidates",
    "role",
    "engine",
    "status",
    "objective",
    "seconds",
]


@dataclass(frozen=True, slots=True)
class Engines:
    """The engine under test and the baseline it must match and is measured against."""

    fast: str = FAST
    baseline: str = FULL_MODEL
    time_limit_s: float = DEFAULT_TIME_LIMIT_S

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(role, engine) in the order they run on each order: fast first."""
        return ((FAST_ROLE, self.fast), (BASELINE_ROLE, self.baseline))


@dataclass(frozen=True, slots=True)
class Sweep:
    """Network sizes × order sizes, ``per_cell`` generated orders in each cell."""

    nodes: tuple[int, ...] = (50, 100, 250, 500, 1000)
    lines: tuple[int, ...] = (1, 2, 5, 10, 20)
    per_cell: int = 30
    n_skus: int = 3000
    n_orders: int = 1000
    """Orders of the sample whose ship-to points the generated orders reuse."""


class EngineUnavailableError(RuntimeError):
    """``route_order`` cannot run an engine: it raised, or a different engine answered."""


def stores_for(nodes: int, n_dcs: int = SWEEP_DCS) -> int:
    """``n_stores`` for which the sample network has exactly ``nodes`` nodes.

    The sample has ``n_dcs`` DCs, ``n_stores`` stores, one dark store per 50 stores (at least
    one) and four 3PL/drop-ship nodes.
    """
    for stores in range(max(0, nodes - n_dcs - 5 - nodes // 50), nodes):
        total = n_dcs + stores + max(1, stores // 50) + 4
        if total == nodes:
            return stores
        if total > nodes:
            break
    raise ValueError(f"no sample network has exactly {nodes} nodes with {n_dcs} DCs")


def sweep_network(nodes: int, seed: int, sweep: Sweep) -> Scenario:
    """The sample network with ``nodes`` nodes (8 DCs, stores varied)."""
    return sample_scenario(
        seed, n_dcs=SWEEP_DCS, n_stores=stores_for(nodes), n_skus=sweep.n_skus,
        n_orders=sweep.n_orders,
    )  # fmt: skip


def check_engine(engine: str, scenario: Scenario, time_limit_s: float) -> None:
    """Plan one order with ``engine`` (untimed: it also warms the process up) or raise."""
    order = scenario.orders[0]
    try:
        plan = route_order(
            order, scenario.network, scenario.stock, scenario.rules,
            engine=engine, time_limit_s=time_limit_s,
        )  # fmt: skip
    except Exception as error:
        raise EngineUnavailableError(
            f"route_order(engine={engine!r}) raised {type(error).__name__}: {error}"
        ) from error
    if plan.engine != engine:
        raise EngineUnavailableError(
            f"route_order(engine={engine!r}) answered with engine {plan.engine!r}"
        )


def time_orders(
    scenario: Scenario,
    orders: Iterable[Order],
    engines: Engines,
    *,
    name: str,
    seed: int,
    cell: str,
    done: Callable[[], object] | None = None,
) -> list[dict[str, object]]:
    """Plan each order with the fast engine, then the baseline; one row per solve."""
    nodes = len(scenario.network.nodes)
    rows: list[dict[str, object]] = []
    for order in orders:
        for role, engine in engines.pairs():
            started = time.perf_counter()
            plan = route_order(
                order, scenario.network, scenario.stock, scenario.rules,
                engine=engine, time_limit_s=engines.time_limit_s,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "scenario": name,
                    "seed": seed,
                    "cell": cell,
                    "order_id": order.order_id,
                    "nodes": nodes,
                    "lines": len(order.lines),
                    "candidates": len(plan.model.candidates),
                    "role": role,
                    "engine": plan.engine,
                    "status": str(plan.status),
                    "objective": plan.objective,
                    "seconds": seconds,
                }
            )
        if done is not None:
            done()
    return rows


def run_scenario(
    name: str,
    seeds: Sequence[int],
    n_orders: int | None,
    engines: Engines,
    *,
    smoke: bool = False,
) -> pd.DataFrame:
    """Both engines on the first ``n_orders`` orders (all when None) of a registered scenario."""
    spec = REGISTRY[name]
    built = {seed: (spec.smoke if smoke else spec.build)(seed) for seed in seeds}
    chosen = {seed: s.orders[:n_orders] if n_orders else s.orders for seed, s in built.items()}
    rows: list[dict[str, object]] = []
    with tqdm(
        total=sum(len(o) for o in chosen.values()), desc=name, unit="order", file=sys.stderr
    ) as progress:
        for seed, scenario in built.items():
            for _, engine in engines.pairs():
                check_engine(engine, scenario, engines.time_limit_s)
            rows += time_orders(
                scenario, chosen[seed], engines, name=name, seed=seed, cell=name,
                done=progress.update,
            )  # fmt: skip
    return _frame(rows)


def run_sweep(seeds: Sequence[int], sweep: Sweep, engines: Engines) -> pd.DataFrame:
    """Both engines on ``per_cell`` generated orders per (network size, order size) cell."""
    rows: list[dict[str, object]] = []
    total = len(seeds) * len(sweep.nodes) * len(sweep.lines) * sweep.per_cell
    with tqdm(total=total, desc=SWEEP, unit="order", file=sys.stderr) as progress:
        for seed, nodes in itertools.product(seeds, sweep.nodes):
            scenario = sweep_network(nodes, seed, sweep)
            for _, engine in engines.pairs():
                check_engine(engine, scenario, engines.time_limit_s)
            for lines in sweep.lines:
                cell = f"n{nodes}×k{lines}"
                progress.set_postfix_str(cell)
                orders = orders_of_size(scenario, lines, sweep.per_cell, seed, prefix=f"N{nodes}")
                rows += time_orders(
                    scenario, orders, engines, name=SWEEP, seed=seed, cell=cell,
                    done=progress.update,
                )  # fmt: skip
    return _frame(rows)


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["objective"] = table["objective"].astype("Int64")
    return table


def paired(table: pd.DataFrame) -> pd.DataFrame:
    """One row per order: the fast and baseline answers side by side, and whether they agree."""
    keys = ["scenario", "seed", "cell", "order_id"]
    value = ["engine", "status", "objective", "seconds"]
    fast = table[table["role"] == FAST_ROLE][keys + value]
    base = table[table["role"] == BASELINE_ROLE][keys + value]
    both = fast.merge(base, on=keys, how="outer", suffixes=("_fast", "_baseline"), sort=False)
    a, b = both["objective_fast"], both["objective_baseline"]
    same_objective = (a == b).fillna(False) | (a.isna() & b.isna())
    both["agree"] = (both["status_fast"] == both["status_baseline"]) & same_objective
    return both


def mismatches(table: pd.DataFrame) -> pd.DataFrame:
    """Orders where the engines differ in status or objective."""
    both = paired(table)
    return both[~both["agree"]]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell and engine: orders, p50/p95/p99 ms, agreement; ratios on the baseline's rows.

    ``ratio_p50`` and ``ratio_p99`` are baseline time / fast time at that percentile (how
    many times faster the fast engine is).
    """
    agree = {
        key: (int(group["agree"].sum()), len(group))
        for key, group in paired(table).groupby(["scenario", "cell"], sort=False)
    }
    out: list[dict[str, object]] = []
    for (scenario, cell), group in table.groupby(["scenario", "cell"], sort=False):
        same, total = agree[(scenario, cell)]
        p: dict[str, tuple[float, float, float]] = {}
        for role in (FAST_ROLE, BASELINE_ROLE):
            rows = group[group["role"] == role]
            ms = rows["seconds"] * 1e3
            p[role] = (float(ms.quantile(0.5)), float(ms.quantile(0.95)), float(ms.quantile(0.99)))
            out.append(
                {
                    "scenario": scenario,
                    "cell": cell,
                    "nodes": _span(group["nodes"]),
                    "lines": _span(group["lines"]),
                    "engine": "/".join(sorted(set(rows["engine"]))),
                    "orders": len(rows),
                    "p50_ms": p[role][0],
                    "p95_ms": p[role][1],
                    "p99_ms": p[role][2],
                    "mean_candidates": float(rows["candidates"].mean()),
                    "agree": f"{same}/{total}",
                    "ratio_p50": None,
                    "ratio_p99": None,
                }
            )
        out[-1]["ratio_p50"] = p[BASELINE_ROLE][0] / p[FAST_ROLE][0]
        out[-1]["ratio_p99"] = p[BASELINE_ROLE][2] / p[FAST_ROLE][2]
    return pd.DataFrame(out)


def _span(values: pd.Series[int]) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def markdown(stats: pd.DataFrame) -> str:
    """The summary as a markdown table (ratios only on the baseline's row of each cell)."""
    header = (
        "| scenario | nodes | lines | engine | orders | p50 ms | p95 ms | p99 ms "
        "| mean candidates | same optimum | baseline/fast p50 | baseline/fast p99 |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in stats.to_dict("records"):
        ratios = ["" if pd.isna(r[k]) else f"{r[k]:.1f}×" for k in ("ratio_p50", "ratio_p99")]
        lines.append(
            f"| {r['scenario']} | {r['nodes']} | {r['lines']} | {r['engine']} | {r['orders']} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['mean_candidates']:.0f} | {r['agree']} | {ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines) + "\n"


def headline(table: pd.DataFrame, scenario: str) -> str:
    """``<scenario>: fast is X× faster at p50 and Y× at p99, identical objectives on N/N``."""
    rows = table[table["scenario"] == scenario]
    fast = rows[rows["role"] == FAST_ROLE]["seconds"]
    base = rows[rows["role"] == BASELINE_ROLE]["seconds"]
    both = paired(rows)
    p50 = base.quantile(0.5) / fast.quantile(0.5)
    p99 = base.quantile(0.99) / fast.quantile(0.99)
    return (
        f"{scenario}: fast is {p50:.1f}× faster at p50 and {p99:.1f}× at p99, "
        f"identical objectives on {int(both['agree'].sum())}/{len(both)} orders"
    )


def plot(table: pd.DataFrame, out: Path) -> list[Path]:
    """The sweep's p50 and p99 against network size and against order size, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = table[table["scenario"] == SWEEP]
    if sweep.empty:
        return []
    seconds = sweep.groupby(["role", "nodes", "lines"])["seconds"]
    q = pd.DataFrame(
        {"p50": seconds.quantile(0.5) * 1e3, "p99": seconds.quantile(0.99) * 1e3}
    ).reset_index()
    names = dict(zip(sweep["role"], sweep["engine"], strict=False))
    styles = {FAST_ROLE: "-", BASELINE_ROLE: "--"}
    markers = {FAST_ROLE: "o", BASELINE_ROLE: "s"}
    written = []
    for x, series, x_label, s_label in (
        ("nodes", "lines", "network size (nodes)", "{}-line orders"),
        ("lines", "nodes", "order size (lines)", "{} nodes"),
    ):
        fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True, constrained_layout=True)
        levels = sorted(q[series].unique())
        colors = plt.get_cmap("viridis")(
            [i / max(1, len(levels) - 1) * 0.9 for i in range(len(levels))]
        )
        for ax, stat in zip(axes, ("p50", "p99"), strict=True):
            for level, color in zip(levels, colors, strict=True):
                for role in (FAST_ROLE, BASELINE_ROLE):
                    line = q[(q[series] == level) & (q["role"] == role)].sort_values(x)
                    ax.plot(
                        line[x], line[stat], styles[role], marker=markers[role], color=color,
                        markersize=4, label=f"{names.get(role, role)}, {s_label.format(level)}",
                    )  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = sorted(q[x].unique())
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xticks([], minor=True)
            ax.set_xlabel(x_label)
            ax.set_title(f"{stat} latency of route_order")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("ms per order (log scale)")
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        per_cell = int(sweep.groupby(["role", "cell", "seed"]).size().max())
        fig.suptitle(
            f"{names.get(FAST_ROLE)} (solid) vs {names.get(BASELINE_ROLE)} (dashed), "
            f"{per_cell} orders per cell and seed"
        )
        path = out / f"latency_vs_{x}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write the tidy table, the summary (CSV and markdown) and the plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stats = summary(table)
    paths = {
        "orders": out / "orders.csv",
        "summary": out / "summary.csv",
        "markdown": out / "summary.md",
    }
    table.to_csv(paths["orders"], index=False)
    stats.round(3).to_csv(paths["summary"], index=False)
    paths["markdown"].write_text(markdown(stats), encoding="utf-8")
    for path in plot(table, out):
        paths[path.stem] = path
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--scenario", choices=sorted(REGISTRY), default="standard")
    parser.add_argument("--seed", type=int, nargs="+", default=[7])
    parser.add_argument("--orders", type=int, default=300, help="first N orders; 0 = all")
    parser.add_argument("--smoke", action="store_true", help="the scenario at its smoke size")
    default = Sweep()
    parser.add_argument("--nodes", type=int, nargs="*", default=list(default.nodes))
    parser.add_argument("--lines", type=int, nargs="*", default=list(default.lines))
    parser.add_argument("--per-cell", type=int, default=default.per_cell, help="0 = no sweep")
    parser.add_argument("--sweep-skus", type=int, default=default.n_skus)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--fast", default=FAST, help="engine under test")
    parser.add_argument("--baseline", default=FULL_MODEL, help="engine it must match")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    parser.add_argument("--out", type=Path, default=Path("out/compare"))
    parser.add_argument(
        "--from-csv", type=Path, help="re-summarise and re-plot an orders.csv; no solving"
    )
    args = parser.parse_args(argv)
    if args.from_csv:
        return report(_frame_from_csv(args.from_csv), args.scenario, args.out)
    engines = Engines(args.fast, args.baseline, args.time_limit)
    sweep = Sweep(tuple(args.nodes), tuple(args.lines), args.per_cell, args.sweep_skus)
    try:
        parts = [run_scenario(args.scenario, args.seed, args.orders or None, engines,
                              smoke=args.smoke)]  # fmt: skip
        if not args.no_sweep and sweep.nodes and sweep.lines and sweep.per_cell:
            parts.append(run_sweep(args.seed, sweep, engines))
    except EngineUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        print(
            "hint: --fast cpsat-full compares the baseline with itself (a dry run)",
            file=sys.stderr,
        )
        return 2
    return report(pd.concat(parts, ignore_index=True), args.scenario, args.out)


def _frame_from_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"status": str, "engine": str, "role": str})[COLUMNS]
    table["objective"] = table["objective"].astype("Int64")
    return table


def report(table: pd.DataFrame, scenario: str, out: Path) -> int:
    """Write every output, print the summary, mismatches and headline; 1 if any mismatch."""
    paths = write(table, out)
    print(markdown(summary(table)))
    bad = mismatches(table)
    for r in bad.itertuples(index=False):
        print(
            f"MISMATCH {r.scenario} seed {r.seed} {r.cell} {r.order_id}: "
            f"{r.engine_fast} {r.status_fast} {r.objective_fast} vs "
            f"{r.engine_baseline} {r.status_baseline} {r.objective_baseline}"
        )
    print(headline(table, scenario))
    print(f"{len(bad)} mismatches; wrote " + ", ".join(str(p) for p in paths.values()))
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
