"""Wave planning against routing the same orders one by one, on the sample network.

For each wave size: the first N orders of ``sample_scenario(n_orders=N)`` in arrival
order, planned jointly by :func:`router.engine.wave.plan_wave` under a time limit, and
routed one by one with the exact per-order engine (``route_order``), each against the
stock and slots the earlier ones left. Prints a Markdown table (docs/wave.md)::

    python -m benchmarks.wave --orders 100 1000 --time-limit 10
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from models.money import MONEY_SCALE
from models.network import Network, Stock
from models.order import Order
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.stop import Stop
from router.engine.wave import one_by_one as route_one_by_one
from router.engine.wave import plan_wave
from router.sample import sample_scenario
from router.whatif.replay import arrival_order


def one_by_one(
    orders: Sequence[Order], network: Network, stock: Stock, rules: RuleSet
) -> tuple[int, float]:
    """Total cost (solver units) and seconds of routing ``orders`` in turn, each reserving."""
    started = time.perf_counter()
    total = route_one_by_one(orders, network, stock, rules)
    return total, time.perf_counter() - started


def scaled(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with every daily order capacity times ``factor`` (at least 1 slot)."""
    if factor == 1.0:
        return scenario
    nodes = tuple(
        replace(n, daily_order_capacity=max(1, int(n.daily_order_capacity * factor)))
        if n.daily_order_capacity
        else n
        for n in scenario.network.nodes
    )
    return replace(scenario, network=replace(scenario.network, nodes=nodes))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--stream",
        type=int,
        default=0,
        help="draw the scenario with this many orders (3000: the peak-day stream) and take "
        "the first N in arrival order (default: N)",
    )
    parser.add_argument(
        "--capacity-scale",
        type=float,
        default=1.0,
        help="multiply every node's daily order capacity (0.1: the capacity-bound variant)",
    )
    args = parser.parse_args(argv)
    print(
        "| orders | wave s | wave cost | bound | gap | one by one cost | one by one s "
        "| wave vs one by one | contested | steps | solves | moves | status |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in args.orders:
        scenario = scaled(
            sample_scenario(args.seed, n_orders=max(n, args.stream)), args.capacity_scale
        )
        orders = arrival_order(scenario.orders, n)
        net, stock, rules = scenario.network, scenario.stock, scenario.rules
        started = time.perf_counter()
        wave = plan_wave(orders, net, stock, rules, stop=Stop(args.time_limit))
        wave_s = time.perf_counter() - started
        seq, seq_s = one_by_one(orders, net, stock, rules)
        s = wave.stats
        print(
            f"| {n:,} | {wave_s:.1f} | {wave.objective / MONEY_SCALE:,.2f} "
            f"| {wave.bound / MONEY_SCALE:,.2f} | {wave.gap:.4%} | {seq / MONEY_SCALE:,.2f} "
            f"| {seq_s:.1f} | {(wave.objective - seq) / max(1, seq):+.3%} | {s.contested_orders} "
            f"| {s.iterations} | {s.solves:,} | {s.improvements} | {wave.status} |",
            flush=True,
        )
        print(f"{n}: {wave.detail}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
