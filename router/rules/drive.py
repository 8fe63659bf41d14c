"""A test drive: one order planned under a rule set, as planners try rules before publishing.

The one definition behind the ``TestDrive`` RPC and ``router rules drive``: the plan
``route_order`` makes, with the runner-up when the answer is explained (as ``PlanOrder``
does), against the stock and capacity the caller gives.
"""

from __future__ import annotations

from models.capacity import CapacityUsed
from models.engines import FAST
from models.network import Network, Stock
from models.order import Order
from models.plan import ExplainLevel, Plan, alternatives_wanted
from models.rules import RuleSet
from router.engine import Stop, route_order


def drive_order(
    order: Order,
    network: Network,
    stock: Stock,
    rules: RuleSet,
    explain: ExplainLevel,
    *,
    capacity_used: CapacityUsed | None = None,
    stop: Stop | None = None,
    engine: str = FAST,
) -> Plan:
    """The plan ``rules`` make for ``order``; with the runner-up unless ``explain`` is NONE."""
    return route_order(
        order,
        network,
        stock,
        rules,
        capacity_used=capacity_used,
        stop=stop,
        engine=engine,
        alternatives=alternatives_wanted(0, explain=explain is not ExplainLevel.NONE),
    )
