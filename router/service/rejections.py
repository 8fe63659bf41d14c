"""RejectShipment's planning, pure: which units a rejection re-routes, and where they may go.

A node rejects units a HELD reservation holds there. The re-route plans the order as it
was routed (its lines cut down to the rejected units), with every node that rejected for
the reservation excluded, and within the order's split rules counting the shipments the
reservation still makes (docs/decisions.md, "Rejections and re-routing").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from models.capacity import CapacityUsed
from models.errors import FieldViolation, InvalidArgumentError
from models.network import Stock
from models.order import Order, OrderLine
from models.reservation import Reservation
from router.ledger.base import Units, check_held, held_units, take_lines
from router.service.decisions import without_nodes


@dataclass(frozen=True, slots=True)
class Reroute:
    """What one rejection re-routes, and where the units may go.

    ``order`` is the routed order cut down to the rejected units; ``excluded`` every node
    that rejected for the reservation, this one included, in the order they rejected;
    ``only`` (when not None) the only nodes left to ship from (the split rules allow no
    new shipment); ``rejections`` counts this one; ``backorder`` says why the units are
    backordered without a plan ("": they are planned).
    """

    order: Order
    excluded: tuple[str, ...]
    only: frozenset[str] | None
    rejections: int
    backorder: str = ""

    def stock(self, stock: Stock) -> Stock:
        """``stock`` as the re-route may use it: none when backordered, else the allowed nodes."""
        if self.backorder:
            return Stock.of(())
        allowed = without_nodes(stock, self.excluded)
        if self.only is None:
            return allowed
        return Stock.of(p for p in allowed.positions.values() if p.node_id in self.only)


def rejected_units(reservation: Reservation, node_id: str, asked: Units) -> Units:
    """The units rejected: ``asked``, or every unit the reservation holds at ``node_id``.

    InvalidArgumentError naming ``lines`` when it asks for more than is held there, and
    ``node_id`` when nothing is held there and none are named.
    """
    held = held_units(reservation.lines)
    if asked:
        check_held(asked, held, reservation.reservation_id)
        return asked
    at_node = {key: n for key, n in held.items() if key[0] == node_id}
    if not at_node:
        raise InvalidArgumentError(
            [
                FieldViolation(
                    "node_id",
                    f"reservation {reservation.reservation_id} holds nothing at {node_id}",
                )
            ]
        )
    return at_node


def rerouted_order(order: Order, units: Units) -> Order:
    """``order`` with only the rejected ``units``: per SKU, from its first lines first.

    Units of a SKU the order lacks (a reservation edited by hand) become a line of their own.
    """
    left: dict[str, int] = {}
    for (_node, sku), n in units.items():
        left[sku] = left.get(sku, 0) + n
    lines: list[OrderLine] = []
    for line in order.lines:
        take = min(left.get(line.sku, 0), line.quantity)
        if take:
            lines.append(replace(line, quantity=take))
            left[line.sku] -= take
    lines += [OrderLine(f"rejected-{sku}", sku, n) for sku, n in sorted(left.items()) if n]
    return replace(order, lines=tuple(lines))


def plan_reroute(
    order: Order,
    reservation: Reservation,
    node_id: str,
    units: Units,
    before: Sequence[str],
    max_rejections: int,
) -> Reroute:
    """Where the rejected ``units`` may go, after the nodes in ``before`` rejected.

    The order's cap on shipments (one when ``ship_complete``, else ``max_shipments``)
    counts the nodes still shipping other units of the reservation: the re-route may add
    that many fewer; none left, it may use only those nodes (not excluded ones).
    """
    rejections = len(before) + 1
    excluded = tuple(dict.fromkeys((*before, node_id)))
    sub = rerouted_order(order, units)
    if rejections > max_rejections:
        why = (
            f"rejection {rejections} of the order is beyond the limit of {max_rejections}: "
            "the units are backordered"
        )
        return Reroute(sub, excluded, None, rejections, why)
    shipping = {line.node_id for line in take_lines(reservation.lines, units)}
    cap = 1 if order.ship_complete else order.max_shipments
    if cap is None:
        return Reroute(sub, excluded, None, rejections)
    if cap > len(shipping):
        return Reroute(replace(sub, max_shipments=cap - len(shipping)), excluded, None, rejections)
    only = frozenset(shipping - set(excluded))
    sub = replace(sub, max_shipments=None)
    if not only:
        why = (
            f"the order allows {cap} shipment(s), all made by nodes that rejected: "
            "the units are backordered"
        )
        return Reroute(sub, excluded, only, rejections, why)
    return Reroute(sub, excluded, only, rejections)


def own_slots_freed(used: CapacityUsed, reservation: Reservation, units: Units) -> CapacityUsed:
    """``used`` less the reservation's own slots at nodes that still ship part of it.

    A re-route to such a node on a day it already holds takes no new slot, so that slot
    must not count against the node.
    """
    shipping = {line.node_id for line in take_lines(reservation.lines, units)}
    slots: dict[tuple[str, date], int] = dict(used.slots)
    for key in reservation.capacity:
        if key[0] in shipping and slots.get(key, 0) > 0:
            slots[key] -= 1
    return CapacityUsed({k: n for k, n in slots.items() if n})
