"""Write a :class:`Scenario` as a scenario directory that :func:`read_scenario` reads back equal.

Floats are written with ``repr`` (the shortest text that parses to the same float), tags
``;``-joined and sorted, cutoffs ``HH:MM``, an unlimited capacity as a blank cell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from models.network import Node, RateBand, Sku, StockPosition
from models.order import Order
from models.scenario import Scenario
from router.rules.document import canonical_text
from router.scenario.reader import (
    CALENDARS,
    NODES,
    ORDERS_FILE,
    RATES,
    RULES_FILE,
    SKUS,
    STOCK,
    Table,
)


def write_scenario(scenario: Scenario, directory: Path) -> None:
    """Write every file of the scenario format into ``directory`` (created if needed).

    ``calendars.csv`` is written when the network has calendars (none: no file).
    """
    directory.mkdir(parents=True, exist_ok=True)
    network = scenario.network
    _write_table(directory, NODES, (_node_row(node) for node in network.nodes))
    _write_table(directory, SKUS, (_sku_row(sku) for sku in network.skus.values()))
    _write_table(directory, STOCK, (_stock_row(p) for p in scenario.stock.positions.values()))
    bands = (band for service in network.rates.services for band in network.rates.bands[service])
    _write_table(directory, RATES, (_rate_row(band) for band in bands))
    if network.calendars:
        rows = ((r.closed_day, r.node_id, r.service) for r in network.calendars.rows())
        _write_table(directory, CALENDARS, rows)
    (directory / RULES_FILE).write_text(canonical_text(scenario.rules), encoding="utf-8")
    (directory / ORDERS_FILE).write_text(
        "".join(json.dumps(order_to_json(order)) + "\n" for order in scenario.orders),
        encoding="utf-8",
    )


def order_to_json(order: Order) -> dict[str, object]:
    """One ``orders.jsonl`` object; optional fields that are unset are left out."""
    ship_to: dict[str, object] = {
        "latitude": order.ship_to.latitude,
        "longitude": order.ship_to.longitude,
        "country": order.ship_to.country,
        "postal_code": order.ship_to.postal_code,
    }
    if order.ship_to.region:
        ship_to["region"] = order.ship_to.region
    document: dict[str, object] = {
        "order_id": order.order_id,
        "created_at": _rfc3339(order.created_at),
        "channel": order.channel,
        "segment": order.segment,
        "ship_to": ship_to,
        "service": order.service,
    }
    if order.deliver_by is not None:
        document["deliver_by"] = order.deliver_by.isoformat()
    document["ship_complete"] = order.ship_complete
    document["allow_partial"] = order.allow_partial
    if order.max_shipments is not None:
        document["max_shipments"] = order.max_shipments
    if order.pickup_node_id is not None:
        document["pickup_node_id"] = order.pickup_node_id
    document["lines"] = [
        {"line_id": line.line_id, "sku": line.sku, "quantity": line.quantity}
        | ({"unit_price": line.unit_price} if line.unit_price else {})
        for line in order.lines
    ]
    return document


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _write_table(directory: Path, table: Table, rows: Iterable[Sequence[str]]) -> None:
    frame = pd.DataFrame(list(rows), columns=list(table.columns), dtype=str)
    frame.to_csv(directory / table.name, index=False)


def _number(value: float) -> str:
    return repr(float(value))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _tags(tags: frozenset[str]) -> str:
    return ";".join(sorted(tags))


def _node_row(node: Node) -> list[str]:
    capacity = node.daily_order_capacity
    return [
        node.node_id,
        node.type.value,
        _number(node.latitude),
        _number(node.longitude),
        node.country,
        node.timezone,
        _number(node.handling_cost_per_shipment),
        _number(node.handling_cost_per_unit),
        _number(node.processing_hours),
        node.cutoff_local_time.strftime("%H:%M"),
        "" if capacity is None else str(capacity),
        str(node.priority),
        _flag(node.ships),
        _flag(node.pickup),
        _tags(node.tags),
    ]


def _sku_row(sku: Sku) -> list[str]:
    return [sku.sku, _number(sku.weight_kg), _flag(sku.hazmat), _tags(sku.tags)]


def _stock_row(pos: StockPosition) -> list[str]:
    return [pos.node_id, pos.sku, str(pos.on_hand), str(pos.safety_stock), str(pos.reserved)]


def _rate_row(band: RateBand) -> list[str]:
    return [
        band.service,
        _number(band.max_distance_km),
        _number(band.base_cost),
        _number(band.cost_per_kg),
        str(band.transit_days),
    ]
