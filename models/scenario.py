"""A scenario: a network, its stock, a rule set and a stream of orders."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import Violations
from models.network import Network, Stock
from models.order import Order
from models.rules import RuleSet


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a routing run needs, as read from a scenario directory or generated."""

    network: Network
    stock: Stock
    rules: RuleSet
    orders: tuple[Order, ...] = ()


def check_order(order: Order, network: Network, v: Violations) -> None:
    """Record violations of an order against the network it is routed on.

    The order's own fields were checked when it was built; here its references are: each
    line's SKU is in the catalogue, its service is on the rate card, and its pickup node
    exists and offers pickup. Paths are relative to ``v``'s prefix.
    """
    if order.service not in network.rates.bands:
        known = ", ".join(network.rates.services)
        v.add("service", f"unknown service {order.service!r} (rate card has: {known})")
    for i, line in enumerate(order.lines):
        if line.sku not in network.skus:
            v.add(f"lines[{i}].sku", f"unknown sku {line.sku!r}")
    if order.pickup_node_id is not None:
        node = network.node(order.pickup_node_id)
        if node is None:
            v.add("pickup_node_id", f"unknown node {order.pickup_node_id!r}")
        elif not node.pickup:
            v.add("pickup_node_id", f"node {node.node_id!r} does not offer pickup")
