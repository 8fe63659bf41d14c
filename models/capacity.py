"""Daily order capacity already used: order slots held or confirmed per node and day."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class CapacityUsed:
    """Order slots already taken, per (node_id, day): a node's slots count on its ship date.

    A node with a ``daily_order_capacity`` takes one slot of the day a shipment leaves it
    (its ship date, in the node's calendar); planning checks each candidate against the
    slots of *its own* ship date. Pairs absent from ``slots`` have none taken.
    ``nodes`` (derived) lists the nodes with any slot, so that a check of a node without
    one costs a set lookup.
    """

    slots: Mapping[tuple[str, date], int] = field(default_factory=dict)
    nodes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes = frozenset(node_id for node_id, _ in self.slots)
        object.__setattr__(self, "nodes", nodes)  # frozen: derived once here

    def used(self, node_id: str, day: date) -> int:
        """Slots of ``node_id`` taken on ``day``."""
        return self.slots.get((node_id, day), 0)

    def with_full(self, full: Mapping[tuple[str, date], int]) -> CapacityUsed:
        """These slots with ``full[(node_id, day)]`` slots taken on those days instead.

        RouteOrder marks a (node, day) that a reservation found full with the node's limit.
        """
        return CapacityUsed({**self.slots, **full})
