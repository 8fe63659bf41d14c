"""What calendars cost per order: routing on the standard network with and without them.

For each order of the standard scenario, interleaved in one process so that drift on the
machine hits both variants alike (after one untimed call of each, which builds the
order's per-SKU stock arrays for its network), times ``route_order`` under the default
rule set on:

* ``open``: the network as generated, no calendar (every day a shipping and delivery day);
* ``calendars``: the same network with calendars (:func:`with_calendars`): every store
  closed on Sundays, every 3PL and drop-ship node at weekends, every node on the middle
  day of the stream and the day after, every service on Sundays and that middle day.

and reports p50/p99 latency and the ratio of each variant to ``open``; with ``calendars``
every order's ship dates and delivery dates go through the closed-day rounds.

    python -m benchmarks.calendars --orders 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, timedelta

from tqdm import tqdm

from benchmarks.rules import report
from models.calendar import Calendar, CalendarKind, Calendars
from models.network import Network, NodeType
from models.order import Order
from models.rules import RuleSet
from router.engine import route_order
from router.sample import sample_scenario

SAT, SUN = 5, 6


def with_calendars(network: Network, orders: tuple[Order, ...]) -> Network:
    """``network`` with the calendars described in the module docstring."""
    days = sorted({o.created_at.astimezone(UTC).date() for o in orders})
    holiday = days[len(days) // 2]
    closed = frozenset({holiday, holiday + timedelta(days=1)})
    weekly = {NodeType.STORE: {SUN}, NodeType.THREE_PL: {SAT, SUN}, NodeType.DROPSHIP: {SAT, SUN}}
    nodes = [
        (CalendarKind.NODE, n.node_id, Calendar(frozenset(weekly.get(n.type, ())), closed))
        for n in network.nodes
    ]
    services = [
        (CalendarKind.SERVICE, s, Calendar(frozenset({SUN}), frozenset({holiday})))
        for s in network.rates.services
    ]
    return replace(network, calendars=Calendars.of([*nodes, *services]))


def measure(n_orders: int, smoke: bool = False) -> dict[str, list[float]]:
    """Seconds per order for each variant, interleaved order by order."""
    size = {"n_stores": 50, "n_skus": 200} if smoke else {}
    scenario = sample_scenario(n_orders=n_orders, **size)
    open_network, stock = scenario.network, scenario.stock
    closed_network = with_calendars(open_network, scenario.orders)
    rules = RuleSet()
    variants: dict[str, Callable[[Order], object]] = {
        "open": lambda o: route_order(o, open_network, stock, rules),
        "calendars": lambda o: route_order(o, closed_network, stock, rules),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for order in tqdm(scenario.orders, desc="orders", unit="order"):
        for run in variants.values():  # untimed: builds the order's per-SKU stock arrays,
            run(order)  # which are cached per (stock, network) pair
        for name, run in variants.items():
            started = time.perf_counter()
            run(order)
            times[name].append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="a small network, for tests")
    args = parser.parse_args(argv)
    print(report(measure(args.orders, args.smoke), base="open"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
