"""Batches of orders: JSON lines or CSV in, one proto3 JSON order each, with paths to blame.

A batch is read whole into :class:`BatchOrder` items before any is sent: each carries its
order (or the error that made it unreadable) and how to rewrite the field paths the
service names (``order.lines[0].quantity``) into the client's terms: ``orders[3].lines[0]
.quantity`` for JSON lines, ``file.csv:7:quantity`` (file, line, column) for CSV.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.errors import FieldViolation, Violations
from router.intake.errors import GatewayError, invalid_argument, invalid_field

JSONL_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json-lines",
    }
)
CSV_COLUMNS = (
    "order_id",
    "created_at",
    "service",
    "latitude",
    "longitude",
    "country",
    "postal_code",
    "region",
    "sku",
    "quantity",
    "line_id",
    "unit_price",
)
"""The columns of a batch CSV, one row per order line; rows of one order_id form one order."""
REQUIRED_CSV_COLUMNS = ("order_id", "sku", "quantity")


@dataclass
class BatchOrder:
    """One order of a batch: its id, its proto3 JSON (None if unreadable), how to name paths."""

    order_id: str
    raw: dict[str, Any] | None
    rewrite: Callable[[str], str]
    error: GatewayError | None = None


def batch_request_id(key: str, order_id: str) -> str:
    """The request_id a routed batch order is sent under: unambiguous for every key and id.

    ``batch/`` + 32 hex digits of SHA-256 of the key + ``/`` + the order_id: the key part
    has a fixed length (so no key/order_id split is ambiguous) and never contains the
    order_id's characters, and single-order keys are not expected to look like it.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"batch/{digest}/{order_id}"


BATCH_REQUEST_ID_OVERHEAD = len(batch_request_id("", ""))
"""How many characters of a batch request_id are not the order_id."""


_LINE = re.compile(r"^order\.lines\[(\d+)\](?:\.(.*))?$")


def _jsonl_path(index: int) -> Callable[[str], str]:
    def rewrite(path: str) -> str:
        if path == "order" or path.startswith(("order.", "order[")):
            return f"orders[{index}]{path[len('order') :]}"
        return path

    return rewrite


def _csv_path(name: str, first: int, lines: list[int]) -> Callable[[str], str]:
    def rewrite(path: str) -> str:
        match = _LINE.match(path)
        if match and int(match.group(1)) < len(lines):
            rest = match.group(2)
            row = lines[int(match.group(1))]
            return f"{name}:{row}:{rest}" if rest else f"{name}:{row}"
        for head in ("order.ship_to.", "order."):
            if path.startswith(head):
                return f"{name}:{first}:{path[len(head) :]}"
        if path == "order":
            return f"{name}:{first}"
        return path

    return rewrite


def rewrite_paths(error: GatewayError, rewrite: Callable[[str], str]) -> GatewayError:
    """``error`` with every field path of its BadRequest details rewritten."""
    message = error.message
    details = []
    every: list[FieldViolation] = []
    for detail in error.details:
        violations = detail.get("fieldViolations")
        if isinstance(violations, list):
            renamed = []
            for fv in violations:
                new = rewrite(str(fv.get("field", "")))
                renamed.append({**fv, "field": new})
                every.append(FieldViolation(new, str(fv.get("description", ""))))
            detail = {**detail, "fieldViolations": renamed}
        details.append(detail)
    if every:
        message = "; ".join(str(v) for v in every)  # as invalid_argument words it
    return GatewayError(error.code, message, details, http=error.http, headers=error.headers)


def _order_id(raw: Any) -> str:
    if isinstance(raw, dict):
        value = raw.get("order_id", raw.get("orderId"))
        if isinstance(value, str):
            return value
    return ""


def jsonl_orders(data: bytes) -> list[BatchOrder]:
    """One order per non-blank line, each a proto3 JSON Order; paths ``orders[i].…``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field("body", f"is not UTF-8: {error}") from None
    orders: list[BatchOrder] = []
    for line in text.split("\n"):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        index = len(orders)
        rewrite = _jsonl_path(index)
        try:
            raw = json.loads(line)
        except RecursionError:
            bad = invalid_field(f"orders[{index}]", "nested too deeply")
            orders.append(BatchOrder("", None, rewrite, bad))
            continue
        except ValueError as error:
            bad = invalid_field(f"orders[{index}]", f"is not valid JSON: {error}")
            orders.append(BatchOrder("", None, rewrite, bad))
            continue
        if not isinstance(raw, dict):
            bad = invalid_field(f"orders[{index}]", "must be a JSON object (an Order)")
            orders.append(BatchOrder("", None, rewrite, bad))
            continue
        orders.append(BatchOrder(_order_id(raw), raw, rewrite))
    if not orders:
        raise invalid_field("body", "has no orders")
    return orders


def csv_orders(data: bytes, name: str) -> list[BatchOrder]:
    """Rows grouped by order_id into orders; paths ``NAME:LINE:column``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field(name, f"is not UTF-8: {error}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _csv_groups(reader, name)
    except csv.Error as error:
        # line_num counts the lines of the records read whole: the bad one is the next
        raise invalid_field(f"{name}:{reader.line_num + 1}", str(error)) from None


def _csv_groups(reader: csv.DictReader[str], name: str) -> list[BatchOrder]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if missing:
        raise invalid_argument(
            FieldViolation(f"{name}:1:{c}", f"column is missing; columns: {', '.join(CSV_COLUMNS)}")
            for c in missing
        )
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    v = Violations()
    for row in reader:
        line = reader.line_num
        cells = {(k or "").strip(): (val or "").strip() for k, val in row.items() if k is not None}
        order_id = cells.get("order_id", "")
        if not order_id:
            v.add(f"{name}:{line}:order_id", "is required")
            continue
        groups.setdefault(order_id, []).append((line, cells))
    if v:
        raise invalid_argument(v.items)
    if not groups:
        raise invalid_field(name, "has no rows")
    orders = []
    for order_id, rows in groups.items():
        lines = [line for line, _ in rows]
        rewrite = _csv_path(name, lines[0], lines)
        raw, problems = _csv_order(order_id, rows, name)
        bad = invalid_argument(problems) if problems else None
        orders.append(BatchOrder(order_id, None if problems else raw, rewrite, bad))
    return orders


def _csv_order(
    order_id: str, rows: list[tuple[int, dict[str, str]]], name: str
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The proto3 JSON Order of one order's rows, and the cells that are not numbers."""
    problems: list[FieldViolation] = []

    def number(line: int, cells: dict[str, str], column: str, kind: type) -> Any:
        text = cells.get(column, "")
        if not text:
            return None
        try:
            value = kind(text)
        except ValueError:
            problems.append(FieldViolation(f"{name}:{line}:{column}", f"is not a number: {text!r}"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(FieldViolation(f"{name}:{line}:{column}", "must be finite"))
            return None
        return value

    first_line, first = rows[0]
    ship_to: dict[str, Any] = {}
    for column in ("latitude", "longitude"):
        value = number(first_line, first, column, float)
        if value is not None:
            ship_to[column] = value
    for column in ("country", "postal_code", "region"):
        if first.get(column):
            ship_to[column] = first[column]
    order: dict[str, Any] = {"order_id": order_id, "ship_to": ship_to}
    for column in ("created_at", "service"):
        if first.get(column):
            order[column] = first[column]
    lines = []
    for k, (line, cells) in enumerate(rows):
        item: dict[str, Any] = {"line_id": cells.get("line_id") or str(k + 1)}
        if cells.get("sku"):
            item["sku"] = cells["sku"]
        quantity = number(line, cells, "quantity", int)
        if quantity is not None:
            item["quantity"] = quantity
        price = number(line, cells, "unit_price", float)
        if price is not None:
            item["unit_price"] = price
        lines.append(item)
    order["lines"] = lines
    return order, problems
