"""What the rule language costs per order: routing under rule sets against one bare solve.

For each order of the standard scenario, interleaved in one process so that drift on the
machine hits every variant alike (after one untimed call that builds the caches every
variant shares), times:

* ``bare``: ``plan_order`` with the default policy (one canonical model, no rule set);
* ``default``: ``route_order`` under the default rule set (one unconditional strategy);
* ``example``: ``route_order`` under docs/examples/rules.yaml (four strategies with
  conditions, filters, a store buffer, fallbacks that relax the SLA or reject).

and reports p50/p99 latency and the ratio of each variant to ``bare``. The ``example``
ratio includes the extra solves its fallbacks make (SLA relaxation steps), so it is the
price of those rules, not only of evaluating them.

    python -m benchmarks.rules --orders 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.order import Order
from models.rules import Policy, RuleSet
from router.engine import plan_order, route_order
from router.rules.document import load_rules
from router.sample import sample_scenario

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "rules.yaml"


def measure(n_orders: int, smoke: bool = False) -> dict[str, list[float]]:
    """Seconds per order for each variant, interleaved order by order."""
    size = {"n_stores": 50, "n_skus": 200} if smoke else {}
    scenario = sample_scenario(n_orders=n_orders, **size)
    network, stock = scenario.network, scenario.stock
    example = load_rules(EXAMPLE.read_text(), "rules.yaml", network)
    variants: dict[str, Callable[[Order], object]] = {
        "bare": lambda o: plan_order(o, network, stock, Policy()),
        "default": lambda o: route_order(o, network, stock, RuleSet()),
        "example": lambda o: route_order(o, network, stock, example),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for order in tqdm(scenario.orders, desc="orders", unit="order"):
        variants["bare"](order)  # untimed: builds the order's per-SKU stock arrays for all
        for name, run in variants.items():
            started = time.perf_counter()
            run(order)
            times[name].append(time.perf_counter() - started)
    return times


def report(times: dict[str, list[float]], base: str = "bare") -> str:
    """A Markdown table: p50/p99 in ms per variant and its ratio to the ``base`` variant."""
    bare = np.array(times[base])
    rows = [
        f"| variant | p50 ms | p99 ms | p50 / {base} | p99 / {base} |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        v = np.array(values)
        p50, p99 = np.percentile(v, 50), np.percentile(v, 99)
        rows.append(
            f"| {name} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | "
            f"{p50 / np.percentile(bare, 50):.2f} | {p99 / np.percentile(bare, 99):.2f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="a small network, for tests")
    args = parser.parse_args(argv)
    print(report(measure(args.orders, args.smoke)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
