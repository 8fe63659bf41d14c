"""From an order and the network to the canonical model: candidates, exclusions, cost terms.

Every node of the network ends up either as a candidate with its terms or as an exclusion
with its reason. Checks run in a fixed order, so each excluded node gets the first reason
that applies: does not ship, filtered by rule, no available stock, beyond the last rate band,
cannot meet a hard SLA, out of capacity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from models.money import to_units
from models.network import Network, Node, RateBand, Stock
from models.order import Order
from models.plan import CandidateTerms, Exclusion, ExclusionReason, ExplainedModel, LineTerms
from models.rules import RuleSet, SlaMode
from router.engine.dates import days_late, ship_date
from router.engine.geo import great_circle_km


@dataclass(frozen=True, slots=True)
class BuiltModel:
    """The canonical model of one order, the nodes left out of it, and stock anywhere.

    ``stock_anywhere[l]`` is the available stock of line ``l``'s SKU over the whole
    network, candidates or not, so that a plan can tell "no stock" from "no eligible stock".
    """

    model: ExplainedModel
    excluded: tuple[Exclusion, ...]
    stock_anywhere: tuple[int, ...]


def _band(bands: tuple[RateBand, ...], distance_km: float) -> RateBand | None:
    for band in bands:
        if distance_km <= band.max_distance_km:
            return band
    return None


def _max_shipments(order: Order, rules: RuleSet) -> int | None:
    caps = [c for c in (order.max_shipments, rules.max_shipments) if c is not None]
    return min(caps) if caps else None


def build_model(
    order: Order,
    network: Network,
    stock: Stock,
    rules: RuleSet,
    capacity_used: Mapping[str, int] | None = None,
) -> BuiltModel:
    """Build the canonical model (docs/cost-model.md) of ``order`` on current ``stock``.

    ``order`` must have passed validation against ``network`` (``Order.from_raw(..., network)``).
    ``capacity_used`` counts the orders each node has already taken today.
    A pickup order is delivered to its pickup node: that node hands over its own stock at
    the counter (no carrier cost, no transit), and other nodes ship to it by carrier.
    """
    used = capacity_used or {}
    bands = network.rates.bands[order.service]
    pickup = order.pickup_node_id
    if pickup is not None:
        pickup_node = network.node(pickup)
        assert pickup_node is not None, "order must be validated against the network first"
        dest_lat, dest_lon = pickup_node.latitude, pickup_node.longitude
    else:
        dest_lat, dest_lon = order.ship_to.latitude, order.ship_to.longitude
    distances = great_circle_km(
        dest_lat,
        dest_lon,
        [n.latitude for n in network.nodes],
        [n.longitude for n in network.nodes],
    )
    weights = [Decimal(repr(network.skus[line.sku].weight_kg)) for line in order.lines]
    late_per_day = to_units(rules.lateness_penalty_per_day)

    candidates: list[CandidateTerms] = []
    excluded: list[Exclusion] = []

    def exclude(node: Node, reason: ExclusionReason, detail: str) -> None:
        excluded.append(Exclusion(node.node_id, reason, detail))

    for i in sorted(range(len(network.nodes)), key=lambda k: network.nodes[k].node_id):
        node = network.nodes[i]
        at_counter = node.node_id == pickup
        distance = 0.0 if at_counter else float(distances[i])
        if not node.ships and not at_counter:
            exclude(node, ExclusionReason.DOES_NOT_SHIP, "node does not ship parcels")
            continue
        if rules.node_types is not None and node.type not in rules.node_types:
            exclude(node, ExclusionReason.FILTERED_BY_RULE, f"node type {node.type} not allowed")
            continue
        if rules.max_distance_km is not None and distance > rules.max_distance_km:
            detail = f"{distance:.1f} km is beyond the {rules.max_distance_km:g} km radius"
            exclude(node, ExclusionReason.FILTERED_BY_RULE, detail)
            continue
        available = tuple(stock.available(node.node_id, line.sku) for line in order.lines)
        if not any(available):
            exclude(node, ExclusionReason.NO_AVAILABLE_STOCK, "no available unit of any line")
            continue
        band = _band(bands, distance)
        if band is None:
            last = bands[-1].max_distance_km
            detail = f"{distance:.1f} km is beyond the last {order.service} band ({last:g} km)"
            exclude(node, ExclusionReason.BEYOND_LAST_BAND, detail)
            continue
        shipped = ship_date(
            order.created_at, node.processing_hours, node.cutoff_local_time, node.timezone
        )
        delivered = shipped + timedelta(days=0 if at_counter else band.transit_days)
        late = days_late(delivered, order.deliver_by)
        if late and rules.sla is SlaMode.HARD:
            detail = f"delivers {delivered.isoformat()}, {late} day(s) after {order.deliver_by}"
            exclude(node, ExclusionReason.CANNOT_MEET_SLA, detail)
            continue
        capacity = node.daily_order_capacity
        if capacity is not None and used.get(node.node_id, 0) >= capacity:
            detail = f"{used.get(node.node_id, 0)} of {capacity} orders taken today"
            exclude(node, ExclusionReason.OUT_OF_CAPACITY, detail)
            continue
        per_unit = to_units(node.handling_cost_per_unit) + to_units(
            rules.unit_penalty_by_node_type.get(node.type, 0.0)
        )
        per_kg = Decimal(0) if at_counter else Decimal(repr(band.cost_per_kg))
        candidates.append(
            CandidateTerms(
                node_id=node.node_id,
                distance_km=distance,
                service="pickup" if at_counter else order.service,
                ship_date=shipped,
                delivery_date=delivered,
                days_late=late,
                handling_cost=to_units(node.handling_cost_per_shipment),
                shipping_cost=0 if at_counter else to_units(band.base_cost),
                lateness_cost=late_per_day * late,
                node_penalty=0,
                unit_costs=tuple(per_unit + to_units(per_kg * w) for w in weights),
                available=available,
                priority=node.priority,
            )
        )

    backorder = to_units(rules.backorder_cost_per_unit)
    lines = tuple(
        LineTerms(line.line_id, line.sku, line.quantity, backorder, order.allow_partial)
        for line in order.lines
    )
    model = ExplainedModel(
        offset=0,
        split_penalty=to_units(rules.split_penalty),
        candidates=tuple(candidates),
        lines=lines,
        max_shipments=_max_shipments(order, rules),
        ship_complete=order.ship_complete,
    )
    anywhere = tuple(
        sum(p.available for p in stock.by_sku.get(line.sku, ())) for line in order.lines
    )
    return BuiltModel(model, tuple(excluded), anywhere)
