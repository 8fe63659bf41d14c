"""Solve latency of the exact engine on a registered scenario.

Plans every order of the scenario on its own against the scenario's stock (as
``PlanOrder`` does), times each solve, and writes a tidy table with one row per order
(``scenario, seed, engine, order_id, lines, candidates, status, objective, seconds``) plus
a summary of p50/p95/p99 latency.

    python -m benchmarks.latency --scenario standard --orders 300 --out out/latency.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmarks.scenarios import REGISTRY
from router.engine import plan_order


def run(
    scenario_name: str, seed: int, n_orders: int | None, *, smoke: bool = False
) -> pd.DataFrame:
    """Time the engine on the first ``n_orders`` orders of a registered scenario."""
    spec = REGISTRY[scenario_name]
    scenario = (spec.smoke if smoke else spec.build)(seed)
    orders = scenario.orders[:n_orders] if n_orders else scenario.orders
    rows = []
    progress = tqdm(orders, desc=f"{scenario_name} seed {seed}", unit="order", file=sys.stderr)
    for order in progress:
        started = time.perf_counter()
        plan = plan_order(order, scenario.network, scenario.stock, scenario.rules)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "scenario": scenario_name,
                "seed": seed,
                "engine": plan.engine,
                "order_id": order.order_id,
                "lines": len(order.lines),
                "candidates": len(plan.model.candidates),
                "status": str(plan.status),
                "objective": plan.objective_amount,
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """p50/p95/p99 latency in milliseconds per scenario and engine."""
    grouped = table.groupby(["scenario", "engine"])["seconds"]
    return pd.DataFrame(
        {
            "orders": grouped.size(),
            "p50_ms": grouped.quantile(0.50) * 1e3,
            "p95_ms": grouped.quantile(0.95) * 1e3,
            "p99_ms": grouped.quantile(0.99) * 1e3,
            "mean_candidates": table.groupby(["scenario", "engine"])["candidates"].mean(),
        }
    ).round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(REGISTRY), default="standard")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders", type=int, default=300, help="0 = all")
    parser.add_argument("--out", type=Path, default=Path("out/latency.csv"))
    args = parser.parse_args()
    table = run(args.scenario, args.seed, args.orders or None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(summary(table).to_string())
    print(f"statuses: {table['status'].value_counts().to_dict()}; all rows in {args.out}")


if __name__ == "__main__":
    main()
