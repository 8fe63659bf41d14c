"""Seeded orders of an exact number of lines, drawn from a scenario, for the sweeps.

Each order copies a template order of the scenario (its ship-to, service, creation time,
promise date and split flags, so the mix of destinations and constraints stays the
sample's) and replaces its lines by ``k`` distinct SKUs drawn with probability
proportional to their available stock over the whole network (deep stock is where demand
is planned, so it stands in for popularity, which the scenario does not carry). Quantities
are resampled from the scenario's own order lines. Every order goes through
``Order.from_raw`` with the network, exactly as a line of ``orders.jsonl`` does, so it is a
valid domain order.
"""

from __future__ import annotations

import numpy as np

from models.errors import InvalidArgumentError, Violations
from models.order import Order
from models.scenario import Scenario
from router.scenario.writer import order_to_json


def stock_weights(scenario: Scenario) -> tuple[list[str], np.ndarray]:
    """SKUs with stock available somewhere, and their share of all available units."""
    totals: dict[str, int] = {}
    for position in scenario.stock.positions.values():
        if position.available > 0:
            totals[position.sku] = totals.get(position.sku, 0) + position.available
    skus = sorted(totals)
    weights = np.array([totals[s] for s in skus], dtype=np.float64)
    return skus, weights / weights.sum()


def orders_of_size(
    scenario: Scenario, lines: int, count: int, seed: int, *, prefix: str = "SWP"
) -> tuple[Order, ...]:
    """``count`` valid orders of exactly ``lines`` lines each, reproducible from ``seed``."""
    if not scenario.orders:
        raise ValueError("the scenario has no orders to take ship-to points from")
    skus, p = stock_weights(scenario)
    if lines < 1 or lines > len(skus):
        raise ValueError(f"lines must be 1..{len(skus)} (SKUs in stock), got {lines}")
    quantities = np.array([line.quantity for o in scenario.orders for line in o.lines])
    rng = np.random.default_rng([seed, lines, count])
    templates = rng.choice(len(scenario.orders), size=count)
    out = []
    for i, t in enumerate(templates.tolist()):
        raw = order_to_json(scenario.orders[t])
        order_id = f"{prefix}-{lines:02d}-{i + 1:05d}"
        raw["order_id"] = order_id
        chosen = rng.choice(len(skus), size=lines, replace=False, p=p)
        drawn = rng.choice(quantities, size=lines)
        raw["lines"] = [
            {"line_id": str(j + 1), "sku": skus[s], "quantity": int(q)}
            for j, (s, q) in enumerate(zip(chosen.tolist(), drawn.tolist(), strict=True))
        ]
        v = Violations(order_id)
        order = Order.from_raw(raw, v, scenario.network)
        if order is None:
            raise InvalidArgumentError(v.items)
        out.append(order)
    return tuple(out)
