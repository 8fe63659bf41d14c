"""The engine: candidates, cost model and exact solve for one order. The only OR-Tools user."""

from router.engine.route import route_order
from router.engine.solve import FULL_MODEL, plan_order
from router.engine.stop import Stop

__all__ = ["FULL_MODEL", "Stop", "plan_order", "route_order"]
