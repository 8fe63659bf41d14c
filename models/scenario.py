"""A scenario: a network, its stock, a rule set and a stream of orders."""

from __future__ import annotations

from dataclasses import dataclass

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
