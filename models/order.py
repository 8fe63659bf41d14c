"""Orders: who buys what, where it goes, by when, and how it may be split."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from models import fields as f
from models.errors import Violations, quoted

if TYPE_CHECKING:
    from models.network import Network

MAX_LINES_PER_ORDER = 500
"""Largest order accepted; bigger ones are refused as bad input (an explicit size limit)."""
MAX_SHIPMENTS = 1000
"""The largest ``max_shipments`` an order may give."""


@dataclass(frozen=True, slots=True)
class ShipTo:
    """Where an order is delivered; ``region`` is the state or province code (e.g. ``CA``)."""

    latitude: float
    longitude: float
    country: str
    postal_code: str = ""
    region: str = ""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """Units of one SKU on an order; ``unit_price`` (currency units) makes the order's value."""

    line_id: str
    sku: str
    quantity: int
    unit_price: float = 0.0


@dataclass(frozen=True, slots=True)
class Order:
    """An order to route.

    ``ship_complete`` allows at most one shipment; ``allow_partial`` allows lines (or parts
    of lines) to stay unfulfilled at the backorder cost; ``max_shipments`` caps the number of
    shipments (``None``: only the rules' cap). ``pickup_node_id`` names the store where the
    customer collects the order; the order is then delivered to that node.
    """

    order_id: str
    created_at: datetime
    ship_to: ShipTo
    service: str
    lines: tuple[OrderLine, ...]
    channel: str = ""
    segment: str = ""
    deliver_by: date | None = None
    ship_complete: bool = False
    allow_partial: bool = True
    max_shipments: int | None = None
    pickup_node_id: str | None = None

    @property
    def value(self) -> float:
        """What the order is worth: quantity times unit price, summed over its lines."""
        return sum(line.quantity * line.unit_price for line in self.lines)

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations, network: Network | None = None) -> Order | None:
        """Validate one order as a JSON-like mapping (``orders.jsonl`` or a request).

        With a ``network`` its references are checked too, even when other fields are bad:
        each line's SKU is in the catalogue, the service is on the rate card, and the
        pickup node exists and offers pickup. Every violation is recorded with its path
        under ``v``'s prefix; returns ``None`` when there was any.
        """
        before = len(v.items)
        order_id = f.text(raw, "order_id", v)
        created_at = f.timestamp(raw, "created_at", v)
        service = f.text(raw, "service", v)
        if service is not None and network is not None and service not in network.rates.bands:
            known = ", ".join(network.rates.services)
            v.add("service", f"unknown service {quoted(service)} (rate card has: {known})")
        deliver_by = f.calendar_date(raw, "deliver_by", v)
        # Compared in UTC, so a file (own offset) and a request (UTC) agree; two days allow
        # for any offset.
        if deliver_by and created_at and deliver_by < _utc_date(created_at) - timedelta(days=2):
            v.add("deliver_by", f"must not be before the order's creation, got {deliver_by}")
        channel = f.text(raw, "channel", v, required=False) or ""
        segment = f.text(raw, "segment", v, required=False) or ""
        ship_complete = f.boolean(raw, "ship_complete", v, default=False)
        allow_partial = f.boolean(raw, "allow_partial", v, default=True)
        max_shipments = f.integer(
            raw, "max_shipments", v, required=False, minimum=1, maximum=MAX_SHIPMENTS
        )
        pickup = f.text(raw, "pickup_node_id", v, required=False)
        if pickup is not None and network is not None:
            node = network.node(pickup)
            if node is None:
                v.add("pickup_node_id", f"unknown node {quoted(pickup)}")
            elif not node.pickup:
                v.add("pickup_node_id", f"node {quoted(pickup)} does not offer pickup")
        ship_to = _ship_to(raw.get("ship_to"), v)
        lines = _lines(raw.get("lines"), v, network)
        if len(v.items) > before:
            return None
        assert order_id and created_at and service and ship_to and lines
        return Order(
            order_id=order_id,
            created_at=created_at,
            ship_to=ship_to,
            service=service,
            lines=lines,
            channel=channel,
            segment=segment,
            deliver_by=deliver_by,
            ship_complete=bool(ship_complete),
            allow_partial=bool(allow_partial),
            max_shipments=max_shipments,
            pickup_node_id=pickup,
        )


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _ship_to(raw: object, v: Violations) -> ShipTo | None:
    if not isinstance(raw, dict):
        v.add("ship_to", "is required (an object with latitude, longitude, country)")
        return None
    sub = Violations(v.path("ship_to"))
    lat = f.number(raw, "latitude", sub, minimum=-90, maximum=90)
    lon = f.number(raw, "longitude", sub, minimum=-180, maximum=180)
    country = f.text(raw, "country", sub)
    postal = f.text(raw, "postal_code", sub, required=False) or ""
    region = f.text(raw, "region", sub, required=False) or ""
    v.extend(sub.items)
    if sub:
        return None
    assert lat is not None and lon is not None and country is not None
    return ShipTo(lat, lon, country.upper(), postal, region.upper())


def _lines(raw: object, v: Violations, network: Network | None) -> tuple[OrderLine, ...] | None:
    if not isinstance(raw, list) or not raw:
        v.add("lines", "must be a non-empty list of {line_id, sku, quantity}")
        return None
    if len(raw) > MAX_LINES_PER_ORDER:
        v.add("lines", f"must have at most {MAX_LINES_PER_ORDER} lines, got {len(raw)}")
        return None
    lines: list[OrderLine] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        sub = Violations(v.path(f"lines[{i}]"))
        if not isinstance(item, dict):
            sub.add("", "must be an object {line_id, sku, quantity}")
            v.extend(sub.items)
            continue
        line_id = f.text(item, "line_id", sub)
        sku = f.text(item, "sku", sub)
        quantity = f.integer(item, "quantity", sub, minimum=1, maximum=f.MAX_QUANTITY)
        price = f.money(item, "unit_price", sub, required=False)
        if sku is not None and network is not None and sku not in network.skus:
            sub.add("sku", f"unknown sku {quoted(sku)}")
        if line_id is not None:
            if line_id in seen:
                sub.add("line_id", f"duplicates an earlier line id {quoted(line_id)}")
            seen.add(line_id)
        v.extend(sub.items)
        if not sub:
            assert line_id is not None and sku is not None and quantity is not None
            lines.append(OrderLine(line_id, sku, quantity, price or 0.0))
    total = sum(line.quantity for line in lines)
    if total > f.MAX_QUANTITY:
        v.add("lines", f"must order at most {f.MAX_QUANTITY} units in all, got {total}")
    return tuple(lines)
