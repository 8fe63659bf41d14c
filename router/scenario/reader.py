"""Read a scenario directory (CSV, YAML, JSON Lines) into a validated :class:`Scenario`.

Every problem in every file is collected, each with its file, physical line and column
(``nodes.csv:3:latitude``, ``orders.jsonl:5:lines[0].quantity``, ``rules.yaml:sla``), and
reported together in one :class:`InvalidArgumentError`; nothing is half-loaded.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd

from models import fields as f
from models.calendar import Calendar, CalendarKind, Calendars, ClosedDay
from models.errors import FieldViolation, InvalidArgumentError, Violations
from models.lookahead import Forecast
from models.network import Network, Node, RateBand, RateCard, Sku, Stock, StockPosition
from models.order import Order
from models.replenishment import Replenishment, check_replenishment
from models.rules import RuleSet
from models.scenario import Scenario
from router.rules.document import parse_rules

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Table:
    """One CSV file of the scenario format.

    ``key`` names the columns no two rows may share; they are also the attribute names of
    the domain object a row becomes.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column, in the order the writer puts them."""
        return self.required + self.optional


NODES = Table(
    "nodes.csv",
    (
        "node_id",
        "type",
        "latitude",
        "longitude",
        "country",
        "timezone",
        "handling_cost_per_shipment",
        "handling_cost_per_unit",
        "processing_hours",
        "cutoff_local_time",
    ),
    ("daily_order_capacity", "priority", "ships", "pickup", "tags"),
    key=("node_id",),
)
SKUS = Table("skus.csv", ("sku", "weight_kg"), ("hazmat", "tags"), key=("sku",))
STOCK = Table(
    "stock.csv",
    ("node_id", "sku", "on_hand"),
    ("safety_stock", "reserved"),
    key=("node_id", "sku"),
)
RATES = Table(
    "rates.csv",
    ("service", "max_distance_km", "base_cost", "cost_per_kg", "transit_days"),
    (),
    key=("service", "max_distance_km"),
)
TABLES = (NODES, SKUS, STOCK, RATES)
"""The required CSV files."""
CALENDARS = Table(
    "calendars.csv",
    ("closed_day",),
    ("node_id", "service"),
    key=("node_id", "service", "closed_day"),
)
"""The optional CSV file of calendars: one closed day of one node or service per row."""
RULES_FILE = "rules.yaml"
ORDERS_FILE = "orders.jsonl"


def read_scenario(
    directory: Path, *, orders_file: Path | None = None, rules_file: Path | None = None
) -> Scenario:
    """Read and validate the scenario in ``directory``.

    ``nodes.csv``, ``skus.csv``, ``stock.csv`` and ``rates.csv`` are required;
    ``calendars.csv`` (no calendars), ``rules.yaml`` (default :class:`RuleSet`) and
    ``orders.jsonl`` (no orders) are optional,
    and ``rules_file`` / ``orders_file`` name other files, which must then exist. References
    (stock to nodes and SKUs, orders to the network) are checked only against files that
    loaded cleanly, so one bad row is reported once rather than once per reference to it.

    Raises :class:`InvalidArgumentError` carrying every violation in every file.
    """
    v = Violations()
    nodes, nodes_ok = _read_table(directory, NODES, Node.from_raw, v)
    skus, skus_ok = _read_table(directory, SKUS, Sku.from_raw, v)
    stock, _ = _read_table(directory, STOCK, StockPosition.from_raw, v)
    rates, rates_ok = _read_table(directory, RATES, RateBand.from_raw, v)
    network = Network(
        nodes=tuple(node for _, node in nodes),
        skus={sku.sku: sku for _, sku in skus},
        rates=RateCard.of(band for _, band in rates),
    )
    calendars = _read_calendars(directory, network, v, nodes_ok=nodes_ok, rates_ok=rates_ok)
    network = replace(network, calendars=calendars)
    for line, pos in stock:
        row = Violations(f"{STOCK.name}:{line}:")
        if nodes_ok and network.node(pos.node_id) is None:
            row.add("node_id", f"unknown node {pos.node_id!r}")
        if skus_ok and pos.sku not in network.skus:
            row.add("sku", f"unknown sku {pos.sku!r}")
        v.extend(row.items)
    known = network if nodes_ok and skus_ok and rates_ok else None
    rules = _read_rules(
        rules_file or directory / RULES_FILE, v, required=rules_file is not None, network=known
    )
    orders = _read_orders(
        orders_file or directory / ORDERS_FILE,
        known,
        v,
        required=orders_file is not None,
    )
    v.raise_if_any()
    assert rules is not None
    return Scenario(network, Stock.of(pos for _, pos in stock), rules, orders)


def read_stock(path: Path, network: Network | None = None) -> Stock:
    """Read and validate a ``stock.csv`` file (any name), rows checked as in a scenario.

    With ``network``, every node and SKU must be in it. Raises
    :class:`InvalidArgumentError` carrying every violation in the file.
    """
    v = Violations()
    table = replace(STOCK, name=path.name)
    stock, _ = _read_table(path.parent, table, StockPosition.from_raw, v)
    if network is not None:
        for line, pos in stock:
            row = Violations(f"{table.name}:{line}:")
            if network.node(pos.node_id) is None:
                row.add("node_id", f"unknown node {pos.node_id!r}")
            if pos.sku not in network.skus:
                row.add("sku", f"unknown sku {pos.sku!r}")
            v.extend(row.items)
    v.raise_if_any()
    return Stock.of(pos for _, pos in stock)


def read_orders(path: Path, network: Network) -> tuple[Order, ...]:
    """Read and validate an ``orders.jsonl`` file against ``network``.

    Raises :class:`InvalidArgumentError` carrying every violation in the file.
    """
    v = Violations()
    orders = _read_orders(path, network, v, required=True)
    v.raise_if_any()
    return orders


def read_rules(path: Path) -> RuleSet:
    """Read and validate a ``rules.yaml`` file; raises with every violation in it."""
    v = Violations()
    rules = _read_rules(path, v, required=True)
    v.raise_if_any()
    assert rules is not None
    return rules


def read_forecast(path: Path, horizon_hours: float) -> Forecast:
    """The forecast in a CSV file (``region,sku,units,latitude,longitude``; any name).

    Its units are expected over ``horizon_hours``. Rows are read here as text;
    :meth:`Forecast.from_rows` validates them. Raises :class:`InvalidArgumentError` naming
    every bad cell as ``file:line:column``, or the file when it cannot be read as CSV.
    """
    name = path.name
    try:
        # Blank lines are kept (and skipped by from_rows) so that row i sits on line i + 2.
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False
        )
    except (OSError, ValueError) as exc:  # also pandas' ParserError, EmptyDataError, bad UTF-8
        v = Violations()
        v.add(name, f"cannot be read as CSV: {exc}")
        v.raise_if_any()
    frame.columns = [str(c).strip() for c in frame.columns]
    rows = [{str(k): str(x) for k, x in raw.items()} for raw in frame.to_dict("records")]
    return Forecast.from_rows(rows, horizon_hours=horizon_hours, source=name)


def _read_table(
    directory: Path,
    table: Table,
    build: Callable[[f.Raw, Violations], T | None],
    v: Violations,
) -> tuple[list[tuple[int, T]], bool]:
    """Valid rows of one CSV file with their line numbers, and whether the file was clean."""
    before = len(v.items)
    path = directory / table.name
    if not path.is_file():
        v.add(table.name, "required file is missing")
        return [], False
    try:
        # Blank lines are kept (and skipped below) so that row i sits on physical line i + 2.
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False
        )
    except ValueError as exc:  # pandas' ParserError and EmptyDataError, bad UTF-8
        v.add(table.name, f"cannot be read as CSV: {exc}")
        return [], False
    frame.columns = [str(c).strip() for c in frame.columns]
    header = Violations(f"{table.name}:1:")
    missing = [c for c in table.required if c not in frame.columns]
    for column in missing:
        header.add(column, "column is missing")
    # Extra columns are welcome (names, regions, notes) and ignored, unless one looks like a
    # misspelling of a column the file lacks: then a default must not hide the typo.
    absent = [c for c in table.columns if c not in frame.columns]
    for column in frame.columns:
        if column not in table.columns:
            close = difflib.get_close_matches(column, absent, n=1, cutoff=0.8)
            if close:
                header.add(column, f"is not a known column; did you mean {close[0]!r}?")
    v.extend(header.items)
    rows: list[tuple[int, T]] = []
    for i, raw in enumerate(frame.to_dict("records")):
        if all(f.is_blank(value) for value in raw.values()):
            continue
        line = i + 2
        row = Violations(f"{table.name}:{line}:")
        item = build({str(k): value for k, value in raw.items()}, row)
        # A missing column is reported once on the header, not again as blank on every row.
        v.extend(x for x in row.items if x.field.rpartition(":")[2] not in missing)
        if item is not None:
            rows.append((line, item))
    _check_unique(table.name, table.key, rows, v)
    return rows, len(v.items) == before


def _read_calendars(
    directory: Path, network: Network, v: Violations, *, nodes_ok: bool, rates_ok: bool
) -> Calendars:
    """The calendars of ``calendars.csv`` (none when the file is absent).

    Each row's node must be in ``nodes.csv`` and each service in ``rates.csv`` (checked
    when those loaded cleanly); a calendar that closes every weekday is reported on the
    ``closed_day`` of its owner's last row.
    """
    if not (directory / CALENDARS.name).is_file():
        return Calendars()
    rows, _ = _read_table(directory, CALENDARS, ClosedDay.from_raw, v)
    days: dict[tuple[CalendarKind, str], list[tuple[int, str]]] = {}
    for line, row in rows:
        kind, owner = row.owner
        column = "node_id" if kind is CalendarKind.NODE else "service"
        unknown = network.unknown_owner(kind, owner)
        if unknown and (nodes_ok if kind is CalendarKind.NODE else rates_ok):
            v.add(f"{CALENDARS.name}:{line}:{column}", unknown)
        days.setdefault((kind, owner), []).append((line, row.closed_day))
    entries = []
    for (kind, owner), closed in days.items():
        where = f"{CALENDARS.name}:{closed[-1][0]}:closed_day"
        calendar = Calendar.parse([day for _, day in closed], where, v)
        if calendar is not None:
            entries.append((kind, owner, calendar))
    return Calendars.of(entries)


def _check_unique(
    file: str, key: tuple[str, ...], rows: Iterable[tuple[int, object]], v: Violations
) -> None:
    """Report, on its last key column, every row whose key an earlier row already has."""
    first: dict[tuple[object, ...], int] = {}
    for line, item in rows:
        values = tuple(getattr(item, column) for column in key)
        if values in first:
            shown = ", ".join(f"{c}={x!r}" for c, x in zip(key, values, strict=True))
            v.add(f"{file}:{line}:{key[-1]}", f"{shown} is already on line {first[values]}")
        else:
            first[values] = line


def _read_rules(
    path: Path, v: Violations, *, required: bool, network: Network | None = None
) -> RuleSet | None:
    """The rule set in ``path``; the defaults when it is absent and not required."""
    if not path.is_file():
        if required:
            v.add(path.name, "file is missing")
        return RuleSet()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        v.add(path.name, f"is not UTF-8 text: {exc}")
        return None
    return parse_rules(text, path.name, v, network)


def _read_orders(
    path: Path, network: Network | None, v: Violations, *, required: bool
) -> tuple[Order, ...]:
    """Valid orders of a JSON Lines file, checked against ``network`` when one is given."""
    if not path.is_file():
        if required:
            v.add(path.name, "file is missing")
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        v.add(path.name, f"is not UTF-8 text: {exc}")
        return ()
    orders: list[tuple[int, Order]] = []
    for line, source in enumerate(text.splitlines(), start=1):
        if not source.strip():
            continue
        where = f"{path.name}:{line}"
        try:
            raw = json.loads(source)
        except json.JSONDecodeError as exc:
            v.add(where, f"is not valid JSON: {exc}")
            continue
        if not isinstance(raw, dict):
            v.add(where, f"must be a JSON object, got {type(raw).__name__}")
            continue
        found = Violations(f"{where}:")
        order = Order.from_raw(raw, found, network)
        v.extend(found.items)
        if order is not None and not found:
            orders.append((line, order))
    _check_unique(path.name, ("order_id",), orders, v)
    return tuple(order for _, order in orders)


REPLENISHMENT_COLUMNS: tuple[str, ...] = ("at", "node_id", "sku", "units")
"""The columns of a ``--replenishment`` CSV file."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROW_FIELD = re.compile(r"^replenishment\[(\d+)\]\.(\w+)$")


def read_replenishment(path: Path, network: Network) -> tuple[Replenishment, ...]:
    """The replenishments of a CSV file (``at,node_id,sku,units``), checked against ``network``.

    ``at`` is an RFC 3339 timestamp with an offset; ``units`` a whole number. Values are
    read here; whether the network can take them is
    :func:`~models.replenishment.check_replenishment`'s call. Raises
    :class:`InvalidArgumentError` with every problem as ``file:line:column``.
    """
    v = Violations()
    name = path.name
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False
        )
    except (OSError, ValueError) as exc:  # missing file, parser errors, empty file, bad UTF-8
        v.add(name, f"cannot be read as CSV: {exc}")
        v.raise_if_any()
    frame.columns = [str(c).strip() for c in frame.columns]
    header = Violations(f"{name}:1:")
    for column in REPLENISHMENT_COLUMNS:
        if column not in frame.columns:
            header.add(column, "column is missing")
    for column in frame.columns:
        if column not in REPLENISHMENT_COLUMNS:
            header.add(
                column, f"is not a column; the columns are {', '.join(REPLENISHMENT_COLUMNS)}"
            )
    header.raise_if_any()
    rows: list[tuple[int, Replenishment, set[str]]] = []  # line, row, fields already refused
    for i, raw in enumerate(frame.to_dict("records")):
        if all(f.is_blank(value) for value in raw.values()):
            continue
        row = Violations(f"{name}:{i + 2}:")
        values = {str(k): value for k, value in raw.items()}
        at = f.timestamp(values, "at", row)
        node_id = f.text(values, "node_id", row)
        sku = f.text(values, "sku", row)
        units = f.integer(values, "units", row, maximum=f.MAX_INT32)
        v.extend(row.items)
        refused = {x.field.rsplit(":", 1)[-1] for x in row.items}
        # Placeholders for refused values, so the network checks still see the rest.
        item = Replenishment(at or _EPOCH, node_id or "", sku or "", units or 0)
        rows.append((i + 2, item, refused))
    try:
        check_replenishment([item for _, item, _ in rows], network)
    except InvalidArgumentError as error:
        for x in error.violations:
            match = _ROW_FIELD.match(x.field)
            if match is None:
                v.add(x.field, x.description)
                continue
            line, _, refused = rows[int(match[1])]
            if match[2] not in refused:
                v.items.append(FieldViolation(f"{name}:{line}:{match[2]}", x.description))
    v.raise_if_any()
    return tuple(item for _, item, _ in rows)
