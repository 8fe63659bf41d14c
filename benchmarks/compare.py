"""The fast engine against two baselines, in one process: latency, proofs and optima.

Plans the orders with the fast engine and with each baseline in the same process,
interleaved in blocks of ``--block`` orders (each engine runs warm, and drift on the machine
hits all alike; see :func:`time_orders`), and times each ``route_order`` call
end to end (candidate generation, model building, solve, mapping back) with
``time.perf_counter``. The baselines are the whole canonical model in CP-SAT
(``cpsat-full``) and the same model as a MILP in HiGHS through scipy (``highs-full``).

Three parts, all from one command:

* the orders of a registered scenario (default ``standard``);
* the **sample sweep**: network size (nodes) × order size (lines) on the sample network;
* the **dense sweep**: the same on the ``dense`` family (``router.sample.dense_scenario``:
  every SKU at 30–60% of the nodes, several time zones, ship-complete, partial and
  max-shipment mixes), up to 3,000 nodes × 50 lines.

Orders of exactly ``k`` lines come from ``benchmarks/orders.py``. Every order's answers
are checked against each other: a proven answer (OPTIMAL, INFEASIBLE) that another engine
beats, or two proven answers that differ, is a contradiction; each is printed and the run
exits with status 1. Under a time limit an unproven answer may be worse: that is counted,
not a contradiction. Writes, under ``--out``:

* ``orders.csv``: one row per (scenario, seed, cell, order, engine); while the run goes
  on, ``orders.partial.csv`` holds every finished cell (``--from-csv`` reads it);
* ``summary.csv`` and ``summary.md``: per cell and engine, p50/p95/p99 ms, orders proven,
  the largest gap left, orders worse than the best answer; ratios to the fast engine;
* ``goals.md``: per cell of the dense sweep, the issue's goals and whether they are met;
* ``latency_vs_nodes.png`` and ``latency_vs_lines.png`` per sweep family.

    python -m benchmarks.compare --out out/compare
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from benchmarks.orders import orders_of_size
from models.order import Order
from models.scenario import Scenario
from router.engine import Stop, route_order
from router.engine.arrays import stock_arrays
from router.engine.solve import DEFAULT_TIME_LIMIT_S, FAST, FULL_MODEL, HIGHS_FULL
from router.sample import dense_scenario, sample_scenario, stores_for
from router.scenario.registry import REGISTRY

FAST_ROLE = "fast"
"""Role of the engine under test; each baseline's role is its engine's name."""

SWEEP = "sweep"
"""Scenario name of the sample sweep's rows."""

DENSE = "dense"
"""Scenario name of the dense sweep's rows."""

SWEEP_DCS = 8
"""DCs of every sample sweep network, as in the standard scenario."""

PROVEN = frozenset({"OPTIMAL", "INFEASIBLE", "REJECTED"})
"""Statuses that are proofs, not a plan cut short."""

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
    "bound",
    "seconds",
]


BLOCK = 20
"""Orders per block of the interleaving (see :func:`time_orders`)."""


@dataclass(frozen=True, slots=True)
class Engines:
    """The engine under test and the baselines it is measured against."""

    fast: str = FAST
    baselines: tuple[str, ...] = (FULL_MODEL, HIGHS_FULL)
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    block: int = BLOCK
    """Orders each engine plans in a row before the next engine plans the same ones."""

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(role, engine) in the order they run on each block: the engine under test first."""
        return ((FAST_ROLE, self.fast), *((b, b) for b in self.baselines))


@dataclass(frozen=True, slots=True)
class Sweep:
    """Network sizes × order sizes of one family, ``per_cell`` orders in each cell."""

    name: str = SWEEP
    nodes: tuple[int, ...] = (50, 100, 250, 500, 1000)
    lines: tuple[int, ...] = (1, 2, 5, 10, 20)
    per_cell: int = 30
    n_skus: int = 3000
    n_orders: int = 1000
    """Orders of the network's scenario whose ship-to points and flags the orders reuse."""


DENSE_SWEEP = Sweep(DENSE, (50, 400, 1000, 3000), (1, 5, 20, 50), 20, 200, 400)
"""The dense sweep of the issue's goals (up to 3,000 nodes × 50 lines)."""


class EngineUnavailableError(RuntimeError):
    """``route_order`` cannot run an engine: it raised, or a different engine answered."""


def sweep_network(nodes: int, seed: int, sweep: Sweep) -> Scenario:
    """The network of ``nodes`` nodes of the sweep's family (its orders are templates)."""
    if sweep.name == DENSE:
        return dense_scenario(seed, n_nodes=nodes, n_skus=sweep.n_skus, n_orders=sweep.n_orders)
    return sample_scenario(
        seed, n_dcs=SWEEP_DCS, n_stores=stores_for(nodes), n_skus=sweep.n_skus,
        n_orders=sweep.n_orders,
    )  # fmt: skip


def warm(scenario: Scenario) -> None:
    """Build the per-SKU stock arrays of every SKU, untimed.

    The engines share them (cached per stock object), so whichever engine plans an order
    first would pay for building its SKUs' arrays in its timed call.
    """
    arrays = stock_arrays(scenario.stock, scenario.network)
    for sku in scenario.network.skus:
        arrays.sku(sku)


def check_engine(engine: str, scenario: Scenario, time_limit_s: float) -> None:
    """Plan one order with ``engine`` (untimed: it also warms the process up) or raise."""
    order = scenario.orders[0]
    try:
        plan = route_order(
            order, scenario.network, scenario.stock, scenario.rules,
            engine=engine, stop=Stop(time_limit_s),
        )  # fmt: skip
    except Exception as error:
        raise EngineUnavailableError(
            f"route_order(engine={engine!r}) raised {type(error).__name__}: {error}"
        ) from error
    if plan.engine != engine:
        raise EngineUnavailableError(
            f"route_order(engine={engine!r}) answered with engine {plan.engine!r}"
        )


CRASHED = "CRASHED"
"""The status of a baseline's solve that raised (e.g. HiGHS running out of memory)."""


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
    """Plan the orders in blocks, each block by every engine in turn; one row per solve.

    Within a block of ``engines.block`` orders the engine under test plans them all, then
    each baseline plans the same ones against the same stock (planning reserves nothing).
    Each engine so runs warm, as in a service that runs one engine, while drift on the
    machine still hits every engine alike, block by block. ``block=1`` interleaves order
    by order, which charges every short solve the cold caches the previous engine left.
    A baseline that raises is recorded as CRASHED (no plan) and the run goes on; the
    engine under test raising is a bug, and stops it.
    """
    nodes = len(scenario.network.nodes)
    rows: list[dict[str, object]] = []
    pending = list(orders)
    for start in range(0, len(pending), engines.block):
        block = pending[start : start + engines.block]
        for role, engine in engines.pairs():
            rows += [
                _timed(scenario, order, role, engine, engines.time_limit_s)
                | {"scenario": name, "seed": seed, "cell": cell, "nodes": nodes}
                for order in block
            ]
        if done is not None:
            for _ in block:
                done()
    return rows


def _timed(
    scenario: Scenario, order: Order, role: str, engine: str, time_limit_s: float
) -> dict[str, object]:
    """One timed ``route_order`` call as a row (a baseline that raises: CRASHED).

    The clock stops when ``route_order`` returns: the plan's explained model (its
    candidate count) is built on first use, which a ``PlanOrder`` without ``explain``
    never pays for.
    """
    row: dict[str, object] = {
        "order_id": order.order_id,
        "lines": len(order.lines),
        "role": role,
        "engine": engine,
    }
    started = time.perf_counter()
    try:
        plan = route_order(
            order, scenario.network, scenario.stock, scenario.rules,
            engine=engine, stop=Stop(time_limit_s),
        )  # fmt: skip
    except Exception as error:
        seconds = time.perf_counter() - started
        if role == FAST_ROLE:
            raise
        print(f"{engine} raised on {order.order_id}: {error!r}", file=sys.stderr)
        return row | {
            "candidates": 0, "status": CRASHED, "objective": None, "bound": None,
            "seconds": seconds,
        }  # fmt: skip
    seconds = time.perf_counter() - started
    return row | {
        "candidates": len(plan.explanation.model.candidates),
        "engine": plan.engine,
        "status": str(plan.status),
        "objective": plan.objective,
        "bound": plan.bound,
        "seconds": seconds,
    }


def run_scenario(
    name: str,
    seeds: Sequence[int],
    n_orders: int | None,
    engines: Engines,
    *,
    smoke: bool = False,
) -> pd.DataFrame:
    """Every engine on the first ``n_orders`` orders (all when None) of a registered scenario."""
    spec = REGISTRY[name]
    built = {seed: (spec.smoke if smoke else spec.build)(seed) for seed in seeds}
    chosen = {seed: s.orders[:n_orders] if n_orders else s.orders for seed, s in built.items()}
    rows: list[dict[str, object]] = []
    with tqdm(
        total=sum(len(o) for o in chosen.values()), desc=name, unit="order", file=sys.stderr
    ) as progress:
        for seed, scenario in built.items():
            warm(scenario)
            for _, engine in engines.pairs():
                check_engine(engine, scenario, engines.time_limit_s)
            rows += time_orders(
                scenario, chosen[seed], engines, name=name, seed=seed, cell=name,
                done=progress.update,
            )  # fmt: skip
    return _frame(rows)


def run_sweep(
    seeds: Sequence[int],
    sweep: Sweep,
    engines: Engines,
    *,
    checkpoint: Callable[[pd.DataFrame], object] | None = None,
) -> pd.DataFrame:
    """Every engine on ``per_cell`` generated orders per (network size, order size) cell.

    ``checkpoint`` gets each cell's rows as soon as the cell is done.
    """
    rows: list[dict[str, object]] = []
    total = len(seeds) * len(sweep.nodes) * len(sweep.lines) * sweep.per_cell
    with tqdm(total=total, desc=sweep.name, unit="order", file=sys.stderr) as progress:
        for seed, nodes in itertools.product(seeds, sweep.nodes):
            scenario = sweep_network(nodes, seed, sweep)
            warm(scenario)
            for _, engine in engines.pairs():
                check_engine(engine, scenario, engines.time_limit_s)
            for lines in sweep.lines:
                cell = f"n{nodes}×k{lines}"
                progress.set_postfix_str(cell)
                orders = orders_of_size(scenario, lines, sweep.per_cell, seed, prefix=f"N{nodes}")
                done = time_orders(
                    scenario, orders, engines, name=sweep.name, seed=seed, cell=cell,
                    done=progress.update,
                )  # fmt: skip
                rows += done
                if checkpoint is not None:
                    checkpoint(_frame(done))
    return _frame(rows)


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("objective", "bound"):
        table[column] = table[column].astype("Int64")
    return table


def judged(table: pd.DataFrame) -> pd.DataFrame:
    """Each row with the best objective any engine found for its order, and verdicts.

    ``proven``: the status is a proof. ``worse``: another engine found a cheaper plan (or a
    plan where this one found none). ``contradiction``: a proof that another answer refutes
    (a proven optimum that is beaten, infeasibility where a plan was found; of two proven
    optima that differ, the dearer one).
    """
    keys = ["scenario", "seed", "cell", "order_id"]
    out = table.copy()
    best = out.groupby(keys, sort=False)["objective"].transform("min")
    out["best"] = best
    out["proven"] = out["status"].isin(PROVEN)
    found = out["objective"].notna()
    out["worse"] = (found & best.notna() & (out["objective"] > best)).fillna(False)
    out["worse"] |= ~found & best.notna()
    out["contradiction"] = out["proven"] & out["worse"]
    return out


def mismatches(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose proof another engine's answer contradicts."""
    rows = judged(table)
    return rows[rows["contradiction"]]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell and engine: latency percentiles, proofs, gaps, answers worse than the best.

    ``ratio_p50`` and ``ratio_p99`` (on a baseline's rows) are the baseline's time over the
    fast engine's at that percentile: how many times faster the fast engine is.
    """
    rows = judged(table)
    out: list[dict[str, object]] = []
    for (scenario, cell), group in rows.groupby(["scenario", "cell"], sort=False):
        fast_ms = None
        for role, part in group.groupby("role", sort=False):
            ms = part["seconds"] * 1e3
            p50, p95, p99 = (float(ms.quantile(q)) for q in (0.5, 0.95, 0.99))
            unproven = part[~part["proven"] & part["objective"].notna() & part["bound"].notna()]
            gaps = (unproven["objective"] - unproven["bound"]).abs() / unproven["objective"].abs()
            if role == FAST_ROLE:
                fast_ms = (p50, p99)
            out.append(
                {
                    "scenario": scenario,
                    "cell": cell,
                    "nodes": _span(part["nodes"]),
                    "lines": _span(part["lines"]),
                    "role": role,
                    "engine": "/".join(sorted(set(part["engine"]))),
                    "orders": len(part),
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "p99_ms": p99,
                    "mean_candidates": float(part["candidates"].mean()),
                    "proven": int(part["proven"].sum()),
                    "max_gap": float(gaps.max()) if len(gaps) else 0.0,
                    "no_plan": int(part["objective"].isna().sum()),
                    "worse": int(part["worse"].sum()),
                    "ratio_p50": None if fast_ms is None or role == FAST_ROLE else p50 / fast_ms[0],
                    "ratio_p99": None if fast_ms is None or role == FAST_ROLE else p99 / fast_ms[1],
                }
            )
    return pd.DataFrame(out)


def _span(values: pd.Series[int]) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def markdown(stats: pd.DataFrame) -> str:
    """The summary as a markdown table (ratios on the baselines' rows)."""
    header = (
        "| scenario | nodes | lines | engine | orders | p50 ms | p95 ms | p99 ms "
        "| candidates | proven | max gap | worse | baseline/fast p50 | baseline/fast p99 |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in stats.to_dict("records"):
        ratios = ["" if pd.isna(r[k]) else f"{r[k]:.1f}×" for k in ("ratio_p50", "ratio_p99")]
        lines.append(
            f"| {r['scenario']} | {r['nodes']} | {r['lines']} | {r['engine']} | {r['orders']} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['mean_candidates']:.0f} | {r['proven']}/{r['orders']} | {r['max_gap']:.2%} "
            f"| {r['worse']} | {ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines) + "\n"


GOAL_PROVEN = 0.99
"""Share of a cell's orders the fast engine must prove optimal within the time limit."""

GOAL_GAP = 0.005
"""Largest certified gap of any order it does not prove."""

GOAL_RATIO = 20.0
"""How many times faster than the full CP-SAT model at p50 and p99."""


def goals(stats: pd.DataFrame, scenario: str = DENSE) -> pd.DataFrame:
    """Per cell of ``scenario``: the issue's goals for the fast engine and whether each holds.

    Proven share ≥ 99% and every other gap ≤ 0.5%; p50 and p99 ≥ 20× faster than
    ``cpsat-full``; p99 no slower than ``highs-full``.
    """
    rows = []
    cells = stats[stats["scenario"] == scenario]
    for cell, group in cells.groupby("cell", sort=False):
        by_role = {r["role"]: r for r in group.to_dict("records")}
        fast = by_role.get(FAST_ROLE)
        cpsat, highs = by_role.get(FULL_MODEL), by_role.get(HIGHS_FULL)
        if fast is None:
            continue
        row: dict[str, Any] = {
            "cell": cell,
            "nodes": fast["nodes"],
            "lines": fast["lines"],
            "orders": fast["orders"],
            "proven": fast["proven"] / fast["orders"],
            "max_gap": fast["max_gap"],
            "vs_cpsat_p50": None if cpsat is None else cpsat["ratio_p50"],
            "vs_cpsat_p99": None if cpsat is None else cpsat["ratio_p99"],
            "vs_highs_p99": None if highs is None else highs["ratio_p99"],
        }
        row["proofs_met"] = row["proven"] >= GOAL_PROVEN and fast["max_gap"] <= GOAL_GAP
        row["speed_met"] = (
            cpsat is not None
            and min(cpsat["ratio_p50"], cpsat["ratio_p99"]) >= GOAL_RATIO
            and (highs is None or highs["ratio_p99"] >= 1.0)
        )
        rows.append(row)
    return pd.DataFrame(rows)


def goals_markdown(table: pd.DataFrame) -> str:
    """The goals as a markdown table."""
    lines = [
        "| nodes | lines | orders | proven | max gap | cpsat/fast p50 | cpsat/fast p99 "
        "| highs/fast p99 | proofs goal | speed goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(value: float | None) -> str:
        return "" if value is None or pd.isna(value) else f"{float(value):.1f}×"

    for r in table.to_dict("records"):
        lines.append(
            f"| {r['nodes']} | {r['lines']} | {r['orders']} | {r['proven']:.0%} "
            f"| {r['max_gap']:.2%} | {ratio(r['vs_cpsat_p50'])} | {ratio(r['vs_cpsat_p99'])} "
            f"| {ratio(r['vs_highs_p99'])} | {'met' if r['proofs_met'] else 'NOT met'} "
            f"| {'met' if r['speed_met'] else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


def headline(table: pd.DataFrame, scenario: str) -> str:
    """``<scenario>: fast is X× faster than <baseline> at p50 and Y× at p99, …``."""
    rows = table[table["scenario"] == scenario]
    fast = rows[rows["role"] == FAST_ROLE]["seconds"]
    parts = []
    for role in dict.fromkeys(rows["role"]):
        if role == FAST_ROLE:
            continue
        base = rows[rows["role"] == role]["seconds"]
        p50 = base.quantile(0.5) / fast.quantile(0.5)
        p99 = base.quantile(0.99) / fast.quantile(0.99)
        parts.append(f"{p50:.1f}× faster than {role} at p50 and {p99:.1f}× at p99")
    judged_rows = judged(rows)
    proven = judged_rows[judged_rows["role"] == FAST_ROLE]["proven"]
    agree = judged_rows.groupby("order_id")["objective"].nunique() <= 1
    return (
        f"{scenario}: fast is " + ", ".join(parts) + f"; fast proves {int(proven.sum())}/"
        f"{len(proven)}, identical objectives on {int(agree.sum())}/{len(agree)} orders"
    )


def plot(table: pd.DataFrame, out: Path) -> list[Path]:
    """Each sweep's p50 and p99 against network size and against order size, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    styles = ["-", "--", ":", "-."]
    for family in (SWEEP, DENSE):
        sweep = table[table["scenario"] == family]
        if sweep.empty:
            continue
        seconds = sweep.groupby(["role", "nodes", "lines"])["seconds"]
        q = pd.DataFrame(
            {"p50": seconds.quantile(0.5) * 1e3, "p99": seconds.quantile(0.99) * 1e3}
        ).reset_index()
        roles = list(dict.fromkeys(sweep["role"]))
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
                    for style, role in zip(styles, roles, strict=False):
                        line = q[(q[series] == level) & (q["role"] == role)].sort_values(x)
                        ax.plot(
                            line[x], line[stat], style, marker="o", color=color, markersize=3,
                            label=f"{role}, {s_label.format(level)}",
                        )  # fmt: skip
                ax.set_xscale("log")
                ax.set_yscale("log")
                ticks = sorted(q[x].unique())
                ax.set_xticks(ticks, [str(t) for t in ticks])
                ax.set_xticks([], minor=True)
                ax.set_xlabel(x_label)
                ax.set_title(f"{family}: {stat} latency of route_order")
                ax.grid(True, which="both", alpha=0.3)
            axes[0].set_ylabel("ms per order (log scale)")
            axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            legend = ", ".join(f"{r} {s}" for r, s in zip(roles, styles, strict=False))
            fig.suptitle(f"{family} sweep ({legend})")
            path = out / (f"latency_vs_{x}.png" if family == SWEEP else f"{family}_vs_{x}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def write(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write the tidy table, the summary, the goals and the plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stats = summary(table)
    paths = {
        "orders": out / "orders.csv",
        "summary": out / "summary.csv",
        "markdown": out / "summary.md",
    }
    table.to_csv(paths["orders"], index=False)
    stats.round(4).to_csv(paths["summary"], index=False)
    paths["markdown"].write_text(markdown(stats), encoding="utf-8")
    goal = goals(stats)
    if not goal.empty:
        paths["goals"] = out / "goals.md"
        paths["goals"].write_text(goals_markdown(goal), encoding="utf-8")
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
    dense = DENSE_SWEEP
    parser.add_argument("--dense-nodes", type=int, nargs="*", default=list(dense.nodes))
    parser.add_argument("--dense-lines", type=int, nargs="*", default=list(dense.lines))
    parser.add_argument(
        "--dense-per-cell", type=int, default=dense.per_cell, help="0 = no dense sweep"
    )
    parser.add_argument("--dense-skus", type=int, default=dense.n_skus)
    parser.add_argument("--fast", default=FAST, help="engine under test")
    parser.add_argument(
        "--baselines", nargs="*", default=[FULL_MODEL, HIGHS_FULL], help="engines to beat"
    )
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    parser.add_argument(
        "--block", type=int, default=BLOCK,
        help="orders each engine plans in a row; 1 = interleave order by order",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("out/compare"))
    parser.add_argument(
        "--from-csv", type=Path, help="re-summarise and re-plot an orders.csv; no solving"
    )
    args = parser.parse_args(argv)
    if args.from_csv:
        return report(_frame_from_csv(args.from_csv), args.scenario, args.out)
    engines = Engines(args.fast, tuple(args.baselines), args.time_limit, max(1, args.block))
    sweeps = []
    if not args.no_sweep and args.nodes and args.lines and args.per_cell:
        sweeps.append(
            Sweep(SWEEP, tuple(args.nodes), tuple(args.lines), args.per_cell, args.sweep_skus)
        )
    if args.dense_nodes and args.dense_lines and args.dense_per_cell:
        sweeps.append(
            Sweep(
                DENSE,
                tuple(args.dense_nodes),
                tuple(args.dense_lines),
                args.dense_per_cell,
                args.dense_skus,
                dense.n_orders,
            )
        )
    partial = args.out / "orders.partial.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)

    def checkpoint(rows: pd.DataFrame) -> None:
        """Append rows to the partial table, so a run cut short keeps what it measured."""
        rows.to_csv(partial, mode="a", header=not partial.exists(), index=False)

    try:
        parts = [run_scenario(args.scenario, args.seed, args.orders or None, engines,
                              smoke=args.smoke)]  # fmt: skip
        checkpoint(parts[0])
        parts += [run_sweep(args.seed, sweep, engines, checkpoint=checkpoint) for sweep in sweeps]
    except EngineUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        print(
            "hint: --fast cpsat-full compares the baseline with itself (a dry run)",
            file=sys.stderr,
        )
        return 2
    partial.unlink(missing_ok=True)
    return report(pd.concat(parts, ignore_index=True), args.scenario, args.out)


def _frame_from_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"status": str, "engine": str, "role": str})[COLUMNS]
    for column in ("objective", "bound"):
        table[column] = table[column].astype("Int64")
    return table


def report(table: pd.DataFrame, scenario: str, out: Path) -> int:
    """Write every output, print the summary, contradictions and headline; 1 if any."""
    paths = write(table, out)
    stats = summary(table)
    print(markdown(stats))
    goal = goals(stats)
    if not goal.empty:
        print(goals_markdown(goal))
    bad = mismatches(table)
    for r in bad.itertuples(index=False):
        print(
            f"MISMATCH {r.scenario} seed {r.seed} {r.cell} {r.order_id}: {r.engine} "
            f"{r.status} {r.objective}, best found {r.best}"
        )
    print(headline(table, scenario))
    print(f"{len(bad)} mismatches; wrote " + ", ".join(str(p) for p in paths.values()))
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
