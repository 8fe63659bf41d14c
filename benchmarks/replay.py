"""What the what-if replay costs per order against planning the same orders independently.

For each scenario family, the first ``--orders`` orders in arrival order are

* ``plan``: routed one by one with ``route_order`` on the scenario's stock (independent
  planning: what the service does per request, no stock taken off);
* ``replay``: replayed under the engine policy (:func:`router.whatif.replay.replay`): the
  evaluation model, the engine's decision, the check, the pricing, the record, the stock
  and capacity taken off, for every order.

Both run in the same process, alternating, ``--rounds`` times (after one untimed pass of
each that builds the caches they share); the best round of each is kept, and the table
gives milliseconds per order and the ratio ``replay / plan``.

    python -m benchmarks.replay --orders 300
    python -m benchmarks.replay --smoke --rounds 1      # each family's tiny scenario
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from models.capacity import CapacityUsed
from models.order import Order
from models.scenario import Scenario
from router.engine import route_order
from router.scenario.registry import REGISTRY
from router.whatif.policies import EnginePolicy
from router.whatif.replay import arrival_order, replay

FAMILIES = ("standard", "peak-day", "dense-400")
"""Sparse (the sample, 1–10 lines), the same network with popular SKUs running out, and
the dense ship-from-store family (400 nodes, 1–50 lines)."""


def measure(scenario: Scenario, orders: Sequence[Order], rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` seconds per order for ``plan`` and ``replay``."""
    network, stock, rules = scenario.network, scenario.stock, scenario.rules

    def plan() -> None:
        for order in orders:
            route_order(order, network, stock, rules, capacity_used=CapacityUsed())

    def replayed() -> None:
        replay(scenario, EnginePolicy(rules), scenario_name="", seed=0, orders=orders)

    runs: dict[str, Callable[[], None]] = {"plan": plan, "replay": replayed}
    best = {name: float("inf") for name in runs}
    for round_ in range(rounds + 1):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            if round_:  # round 0 builds the caches
                best[name] = min(best[name], (time.perf_counter() - started) / len(orders))
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per family")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--family", action="append", choices=sorted(REGISTRY), default=None)
    parser.add_argument("--smoke", action="store_true", help="each family's tiny scenario")
    args = parser.parse_args(argv)
    print("| family | orders | plan ms/order | replay ms/order | replay / plan |")
    print("|---|---:|---:|---:|---:|")
    for family in args.family or FAMILIES:
        spec = REGISTRY[family]
        scenario = (spec.smoke if args.smoke else spec.build)(args.seed)
        orders = arrival_order(scenario.orders, args.orders)
        print(f"{family}: {len(orders)} orders, {args.rounds} rounds", file=sys.stderr)
        best = measure(scenario, orders, args.rounds)
        print(
            f"| {family} | {len(orders)} | {best['plan'] * 1e3:.3f} | "
            f"{best['replay'] * 1e3:.3f} | {best['replay'] / best['plan']:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
