"""Tiny hand-made networks for engine tests: a few nodes on a line of longitude 0.

On the equator one degree of longitude is 111.195 km (great circle, R = 6371.009 km), so
node positions translate into distances that are easy to read off in a test's comment.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from models.network import Network, Node, NodeType, RateBand, RateCard, Sku, Stock, StockPosition
from models.order import Order, OrderLine, ShipTo

KM_PER_DEGREE = 111.19508


def node(
    node_id: str,
    lon: float,
    *,
    type: NodeType = NodeType.DC,
    per_shipment: float = 1.0,
    per_unit: float = 0.0,
    processing_hours: float = 0.0,
    cutoff: time = time(23, 59),
    timezone: str = "UTC",
    capacity: int | None = None,
    ships: bool = True,
    pickup: bool = False,
    priority: int = 0,
) -> Node:
    """A node on the equator at ``lon`` degrees east."""
    return Node(
        node_id=node_id,
        type=type,
        latitude=0.0,
        longitude=lon,
        country="US",
        timezone=timezone,
        handling_cost_per_shipment=per_shipment,
        handling_cost_per_unit=per_unit,
        processing_hours=processing_hours,
        cutoff_local_time=cutoff,
        daily_order_capacity=capacity,
        priority=priority,
        ships=ships,
        pickup=pickup,
    )


# ground: up to 500 km costs 5 + 1/kg and takes 1 day; up to 1,500 km 8 + 2/kg, 3 days.
RATES = RateCard.of(
    [
        RateBand("ground", 500.0, 5.0, 1.0, 1),
        RateBand("ground", 1500.0, 8.0, 2.0, 3),
    ]
)
SKUS = {"A": Sku("A", 1.0), "B": Sku("B", 2.0), "C": Sku("C", 0.5)}


def network(*nodes: Node) -> Network:
    """A network of ``nodes`` with the SKUs A (1 kg), B (2 kg), C (0.5 kg) and RATES."""
    return Network(tuple(nodes), SKUS, RATES)


def stock(*rows: tuple[str, str, int]) -> Stock:
    """Stock from (node_id, sku, on_hand) rows, no safety stock or reservations."""
    return Stock.of(StockPosition(n, s, q) for n, s, q in rows)


CREATED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def order(
    *lines: tuple[str, int],
    ship_complete: bool = False,
    allow_partial: bool = True,
    max_shipments: int | None = None,
    deliver_by: date | None = None,
    pickup_node_id: str | None = None,
    created_at: datetime = CREATED,
) -> Order:
    """An order to (0, 0) of (sku, quantity) lines named l1, l2 and so on."""
    return Order(
        order_id="o1",
        created_at=created_at,
        ship_to=ShipTo(0.0, 0.0, "US", "00000"),
        service="ground",
        lines=tuple(OrderLine(f"l{i + 1}", s, q) for i, (s, q) in enumerate(lines)),
        deliver_by=deliver_by,
        ship_complete=ship_complete,
        allow_partial=allow_partial,
        max_shipments=max_shipments,
        pickup_node_id=pickup_node_id,
    )
