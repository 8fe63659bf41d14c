"""Reading scenario directories: the tiny scenario loads, and every bad input is located."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.errors import InvalidArgumentError
from models.network import NodeType
from models.rules import POLICY_FIELDS, Policy, RuleSet, SlaMode
from router.scenario import order_to_json, read_orders, read_scenario
from router.scenario.reader import TABLES, Table


def violation_fields(directory: Path, **kwargs: Path) -> list[str]:
    """The field paths of the violations reading ``directory`` raises (it must raise)."""
    with pytest.raises(InvalidArgumentError) as info:
        read_scenario(directory, **kwargs)
    return [v.field for v in info.value.violations]


def edit_csv(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    """Rewrite a CSV file after ``edit`` changed its rows (header included)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    edit(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Set one cell, addressed by physical line and column name."""

    def edit(rows: list[list[str]]) -> None:
        rows[line - 1][rows[0].index(column)] = value

    edit_csv(path, edit)


def drop_columns(path: Path, columns: Collection[str]) -> None:
    """Remove the named columns from a CSV file."""

    def edit(rows: list[list[str]]) -> None:
        keep = [i for i, name in enumerate(rows[0]) if name not in columns]
        rows[:] = [[row[i] for i in keep] for row in rows]

    edit_csv(path, edit)


def edit_order(path: Path, line: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite one line of a JSON Lines file after ``edit`` changed its object."""
    lines = path.read_text().splitlines()
    order = json.loads(lines[line - 1])
    edit(order)
    lines[line - 1] = json.dumps(order)
    path.write_text("\n".join(lines) + "\n")


# A value each column must refuse. Tag columns are absent: any text is a valid tag list.
BAD_CELLS = {
    ("nodes.csv", "node_id"): "",
    ("nodes.csv", "type"): "warehouse",
    ("nodes.csv", "latitude"): "91",
    ("nodes.csv", "longitude"): "east",
    ("nodes.csv", "country"): "",
    ("nodes.csv", "timezone"): "Mars/Olympus_Mons",
    ("nodes.csv", "handling_cost_per_shipment"): "-1",
    ("nodes.csv", "handling_cost_per_unit"): "cheap",
    ("nodes.csv", "processing_hours"): "-2",
    ("nodes.csv", "cutoff_local_time"): "25:00",
    ("nodes.csv", "daily_order_capacity"): "1.5",
    ("nodes.csv", "priority"): "high",
    ("nodes.csv", "ships"): "maybe",
    ("nodes.csv", "pickup"): "sometimes",
    ("skus.csv", "sku"): "",
    ("skus.csv", "weight_kg"): "-0.1",
    ("skus.csv", "hazmat"): "perhaps",
    ("stock.csv", "node_id"): "",
    ("stock.csv", "sku"): "",
    ("stock.csv", "on_hand"): "-1",
    ("stock.csv", "safety_stock"): "2.5",
    ("stock.csv", "reserved"): "-3",
    ("rates.csv", "service"): "",
    ("rates.csv", "max_distance_km"): "0",
    ("rates.csv", "base_cost"): "-1",
    ("rates.csv", "cost_per_kg"): "a lot",
    ("rates.csv", "transit_days"): "1.5",
}


def test_bad_cells_cover_every_column() -> None:
    """The corruption table below names every column of every CSV file except tags."""
    every = {(t.name, c) for t in TABLES for c in t.columns if c != "tags"}
    assert set(BAD_CELLS) == every


@pytest.mark.parametrize(("file", "column"), sorted(BAD_CELLS))
def test_bad_cell_is_reported_at_file_line_column(tiny: Path, file: str, column: str) -> None:
    """A bad value is reported once, as ``file:line:column``, and nothing else is."""
    set_cell(tiny / file, 2, column, BAD_CELLS[file, column])
    assert violation_fields(tiny) == [f"{file}:2:{column}"]


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """An edit that sets the dotted/indexed ``path`` (``lines[0].sku``) of an order."""

    def edit(order: dict[str, Any]) -> None:
        target: Any = order
        steps = path.replace("[", ".").replace("]", "").split(".")
        for step in steps[:-1]:
            target = target[int(step)] if step.isdigit() else target[step]
        last = steps[-1]
        target[int(last) if last.isdigit() else last] = value

    return edit


# (expected field path under orders.jsonl:1:, edit of the first order)
ORDER_CASES = [
    ("order_id", _set("order_id", "")),
    ("created_at", _set("created_at", "yesterday")),
    ("created_at", _set("created_at", "2026-11-20T14:05:00")),
    ("channel", _set("channel", ["web"])),
    ("segment", _set("segment", {"tier": 1})),
    ("ship_to", _set("ship_to", "home")),
    ("ship_to.latitude", _set("ship_to.latitude", 91)),
    ("ship_to.longitude", _set("ship_to.longitude", "west")),
    ("ship_to.country", _set("ship_to.country", "")),
    ("ship_to.postal_code", _set("ship_to.postal_code", [10001])),
    ("ship_to.region", _set("ship_to.region", {"state": "CA"})),
    ("service", _set("service", "")),
    ("service", _set("service", "teleport")),
    ("deliver_by", _set("deliver_by", "next week")),
    ("ship_complete", _set("ship_complete", "maybe")),
    ("allow_partial", _set("allow_partial", "perhaps")),
    ("max_shipments", _set("max_shipments", 0)),
    ("pickup_node_id", _set("pickup_node_id", "ST-NOWHERE")),
    ("pickup_node_id", _set("pickup_node_id", "DC-EAST")),
    ("lines", _set("lines", [])),
    ("lines[0]", _set("lines[0]", "SKU-1")),
    ("lines[0].line_id", _set("lines[0].line_id", "")),
    ("lines[1].line_id", _set("lines[1].line_id", "1")),
    ("lines[0].sku", _set("lines[0].sku", "")),
    ("lines[0].sku", _set("lines[0].sku", "SKU-404")),
    ("lines[0].quantity", _set("lines[0].quantity", 0)),
    ("lines[0].unit_price", _set("lines[0].unit_price", -3)),
]


def test_order_cases_cover_every_order_field(tiny: Path) -> None:
    """The order corruptions below touch every key the writer emits for an order."""
    orders = read_scenario(tiny).orders
    emitted = {key for order in orders for key in order_to_json(order)}
    ship_to = order_to_json(orders[0])["ship_to"]
    assert isinstance(ship_to, dict)
    emitted |= {f"ship_to.{key}" for key in ship_to}
    emitted |= {f"lines[0].{key}" for key in ("line_id", "sku", "quantity", "unit_price")}
    touched = {field.replace("[1]", "[0]") for field, _ in ORDER_CASES}
    assert emitted <= touched


@pytest.mark.parametrize(("field", "edit"), ORDER_CASES)
def test_bad_order_field_is_reported_at_line_and_path(
    tiny: Path, field: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    """A bad order field, or a bad reference to the network, is reported as its path."""
    edit_order(tiny / "orders.jsonl", 1, edit)
    assert violation_fields(tiny) == [f"orders.jsonl:1:{field}"]


# (expected field path under rules.yaml:, section of strategies[0] or "" for the top, key, value)
RULE_CASES = [
    ("name", "", "name", ["v1"]),
    ("strategies", "", "strategies", []),
    ("strategies[0].weights.split_penalty", "weights", "split_penalty", -1),
    ("strategies[0].weights.lateness_penalty_per_day", "weights", "lateness_penalty_per_day", "x"),
    ("strategies[0].weights.backorder_cost_per_unit", "weights", "backorder_cost_per_unit", -5),
    (
        "strategies[0].weights.unit_penalty_by_node_type",
        "weights",
        "unit_penalty_by_node_type",
        "store",
    ),
    (
        "strategies[0].weights.unit_penalty_by_node_type.store",
        "weights",
        "unit_penalty_by_node_type",
        {"store": -1},
    ),
    (
        "strategies[0].weights.unit_penalty_by_node_type.depot",
        "weights",
        "unit_penalty_by_node_type",
        {"depot": 1},
    ),
    ("strategies[0].weights.priority_bonus", "weights", "priority_bonus", -1),
    ("strategies[0].weights.distance_cost_per_km", "weights", "distance_cost_per_km", 1000),
    ("strategies[0].weights.opportunity_cost", "weights", "opportunity_cost", -0.5),
    ("strategies[0].weights.splitpenalty", "weights", "splitpenalty", 3),
    ("strategies[0].filters.node_types", "filters", "node_types", "warehouse"),
    ("strategies[0].filters.node_types[0]", "filters", "node_types", [""]),
    ("strategies[0].filters.node_tags", "filters", "node_tags", []),
    ("strategies[0].filters.exclude_node_tags", "filters", "exclude_node_tags", {"a": 1}),
    ("strategies[0].filters.nodes", "filters", "nodes", ["DC-NOWHERE"]),
    ("strategies[0].filters.exclude_nodes", "filters", "exclude_nodes", ["DC-NOWHERE"]),
    ("strategies[0].filters.max_distance_km", "filters", "max_distance_km", 0),
    ("strategies[0].filters.same_country", "filters", "same_country", "maybe"),
    ("strategies[0].filters.capabilities", "filters", "capabilities", 7.5),
    (
        "strategies[0].filters.blocked[0].sku",
        "filters",
        "blocked",
        [{"node_id": "DC-WEST", "sku": "NOPE"}],
    ),
    (
        "strategies[0].filters.min_buffer_by_node_type.store",
        "filters",
        "min_buffer_by_node_type",
        {"store": -2},
    ),
    ("strategies[0].constraints.max_shipments", "constraints", "max_shipments", -1),
    ("strategies[0].constraints.ship_complete", "constraints", "ship_complete", "sometimes"),
    ("strategies[0].constraints.sla", "constraints", "sla", "maybe"),
    ("strategies[0].constraints.no_split_below_value", "constraints", "no_split_below_value", -1),
]


def test_rule_cases_cover_every_rule() -> None:
    """The rule corruptions below touch every policy field of a strategy."""
    assert set(POLICY_FIELDS) <= {key for _, _, key, _ in RULE_CASES}


@pytest.mark.parametrize(("field", "section", "key", "value"), RULE_CASES)
def test_bad_rule_is_reported_at_its_path(
    tiny: Path, field: str, section: str, key: str, value: object
) -> None:
    """A bad or unknown rule is reported as ``rules.yaml:<path>``, node and SKU names checked."""
    path = tiny / "rules.yaml"
    rules = yaml.safe_load(path.read_text())
    target = rules["strategies"][0].setdefault(section, {}) if section else rules
    target[key] = value
    path.write_text(yaml.safe_dump(rules))
    assert violation_fields(tiny) == [f"rules.yaml:{field}"]


def test_tiny_scenario_loads(tiny: Path) -> None:
    """The tiny scenario loads with every column's value as written in its files."""
    scenario = read_scenario(tiny)
    network = scenario.network
    assert [n.node_id for n in network.nodes] == ["DC-EAST", "DC-WEST", "ST-CHI"]
    west = network.node("DC-WEST")
    assert west is not None
    assert west.daily_order_capacity == 5000
    assert west.cutoff_local_time == time(18, 0)
    store = network.node("ST-CHI")
    assert store is not None
    assert store.type is NodeType.STORE
    assert store.pickup
    assert store.tags == {"region:central", "urban"}
    assert network.skus["SKU-3"].hazmat
    assert network.rates.services == ("ground", "next_day")
    assert scenario.stock.available("DC-WEST", "SKU-3") == 10 - 1 - 2
    policy = scenario.rules.strategies[0].policy
    assert policy.sla is SlaMode.HARD
    assert policy.unit_penalty_by_node_type == {NodeType.STORE: 0.5}
    first = scenario.orders[0]
    assert first.created_at == datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
    assert first.deliver_by == date(2026, 11, 24)
    assert [o.pickup_node_id for o in scenario.orders] == [None, "ST-CHI", None]


def test_safety_stock_above_on_hand_is_not_an_error(tiny: Path) -> None:
    """Safety stock above on hand loads, and available stock clamps to zero."""
    scenario = read_scenario(tiny)
    position = scenario.stock.positions["ST-CHI", "SKU-1"]
    assert position.safety_stock > position.on_hand
    assert scenario.stock.available("ST-CHI", "SKU-1") == 0


def test_optional_files_default(tiny: Path) -> None:
    """Without rules.yaml and orders.jsonl the scenario has the default rules and no orders."""
    (tiny / "rules.yaml").unlink()
    (tiny / "orders.jsonl").unlink()
    scenario = read_scenario(tiny)
    assert scenario.rules == RuleSet()
    assert scenario.orders == ()


def test_empty_rules_file_means_defaults(tiny: Path) -> None:
    """An empty rules.yaml is the default rule set."""
    (tiny / "rules.yaml").write_text("")
    assert read_scenario(tiny).rules == RuleSet()


def test_optional_columns_may_be_left_out(tiny: Path) -> None:
    """CSV files with only their required columns load, with each optional column's default."""
    for table in TABLES:
        drop_columns(tiny / table.name, table.optional)
    (tiny / "orders.jsonl").unlink()  # its pickup order needs the pickup column
    scenario = read_scenario(tiny)
    store = scenario.network.node("ST-CHI")
    assert store is not None
    assert (store.ships, store.pickup, store.priority, store.daily_order_capacity) == (
        True,
        False,
        0,
        None,
    )
    assert scenario.stock.positions["DC-WEST", "SKU-3"].reserved == 0


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_missing_required_file_is_reported(tiny: Path, table: Table) -> None:
    """A missing required CSV file is reported by its name."""
    (tiny / table.name).unlink()
    assert violation_fields(tiny) == [table.name]


@pytest.mark.parametrize("keyword", ["orders_file", "rules_file"])
def test_missing_named_file_is_reported(tiny: Path, keyword: str) -> None:
    """A rules or orders file named explicitly must exist."""
    assert violation_fields(tiny, **{keyword: tiny / "absent.txt"}) == ["absent.txt"]


def test_named_files_replace_the_defaults(tiny: Path) -> None:
    """``orders_file`` and ``rules_file`` are read instead of the directory's own files."""
    other_orders = tiny / "other.jsonl"
    other_orders.write_text((tiny / "orders.jsonl").read_text().splitlines()[0] + "\n")
    other_rules = tiny / "other.yaml"
    other_rules.write_text(
        "name: other\nstrategies:\n  - name: only\n    weights: {split_penalty: 9.5}\n"
    )
    scenario = read_scenario(tiny, orders_file=other_orders, rules_file=other_rules)
    assert [o.order_id for o in scenario.orders] == ["O-1"]
    assert scenario.rules == RuleSet.single(
        Policy(split_penalty=9.5), name="other", strategy="only"
    )


def test_paths_name_the_file_that_was_read(tiny: Path) -> None:
    """Violations in a named orders file carry that file's name."""
    other = tiny / "other.jsonl"
    other.write_text("{}\n")
    fields = violation_fields(tiny, orders_file=other)
    assert fields and all(f.startswith("other.jsonl:1:") for f in fields)


@pytest.mark.parametrize(
    ("table", "column"),
    [(t, c) for t in TABLES for c in t.required],
    ids=lambda x: getattr(x, "name", x),
)
def test_missing_column_is_reported_once_on_the_header(
    tiny: Path, table: Table, column: str
) -> None:
    """A missing required column is reported on line 1, not again on every row."""
    drop_columns(tiny / table.name, [column])
    assert violation_fields(tiny) == [f"{table.name}:1:{column}"]


def test_missing_column_does_not_hide_other_cells(tiny: Path) -> None:
    """With a column missing, bad cells in the other columns are still reported."""
    set_cell(tiny / "nodes.csv", 3, "latitude", "north")
    drop_columns(tiny / "nodes.csv", ["timezone"])
    assert violation_fields(tiny) == ["nodes.csv:1:timezone", "nodes.csv:3:latitude"]


def test_misspelt_optional_column_is_reported(tiny: Path) -> None:
    """A column that looks like a misspelling of a missing known column is an error."""
    edit_csv(tiny / "stock.csv", lambda rows: rows[0].__setitem__(3, "saftey_stock"))
    assert violation_fields(tiny) == ["stock.csv:1:saftey_stock"]


def test_extra_columns_are_ignored(tiny: Path) -> None:
    """Columns the format does not define (a store name, a region) are read past."""
    edit_csv(tiny / "nodes.csv", lambda rows: [row.append("x") for row in rows])
    edit_csv(tiny / "nodes.csv", lambda rows: rows[0].__setitem__(-1, "store_name"))
    assert len(read_scenario(tiny).network.nodes) > 0


def test_unreadable_csv_is_reported(tiny: Path) -> None:
    """A CSV file pandas cannot parse (a row with too many fields) is reported by name."""
    with (tiny / "skus.csv").open("a") as handle:
        handle.write("SKU-9,1.0,false,toys,extra,fields\n")
    assert violation_fields(tiny) == ["skus.csv"]


def test_empty_csv_is_reported(tiny: Path) -> None:
    """An empty CSV file (not even a header) is reported by name."""
    (tiny / "rates.csv").write_text("")
    assert violation_fields(tiny) == ["rates.csv"]


def test_csv_line_numbers_are_physical_lines(tiny: Path) -> None:
    """Blank lines are skipped but still counted, so the reported line is the file's line."""
    path = tiny / "skus.csv"
    lines = path.read_text().splitlines()
    lines.insert(2, "")
    path.write_text("\n".join(lines) + "\n")
    set_cell(path, 4, "weight_kg", "heavy")
    assert violation_fields(tiny) == ["skus.csv:4:weight_kg"]


def test_jsonl_line_numbers_are_physical_lines(tiny: Path) -> None:
    """Blank lines in orders.jsonl are skipped but counted."""
    path = tiny / "orders.jsonl"
    path.write_text("\n" + path.read_text())
    edit_order(path, 3, _set("lines[0].quantity", -1))
    assert violation_fields(tiny) == ["orders.jsonl:3:lines[0].quantity"]


def test_unparseable_json_line_is_reported(tiny: Path) -> None:
    """A line that is not JSON is reported by file and line."""
    with (tiny / "orders.jsonl").open("a") as handle:
        handle.write('{"order_id": "O-4",\n')
    assert violation_fields(tiny) == ["orders.jsonl:4"]


def test_json_line_that_is_not_an_object_is_reported(tiny: Path) -> None:
    """A JSON value other than an object is reported by file and line."""
    with (tiny / "orders.jsonl").open("a") as handle:
        handle.write('["O-4"]\n')
    assert violation_fields(tiny) == ["orders.jsonl:4"]


def test_unparseable_yaml_is_reported_with_its_line(tiny: Path) -> None:
    """Broken YAML is reported with the line where the parser stopped."""
    (tiny / "rules.yaml").write_text("split_penalty: 4\nsla: [hard\n")
    fields = violation_fields(tiny)
    assert len(fields) == 1
    assert fields[0].startswith("rules.yaml:")


def test_yaml_that_is_not_a_mapping_is_reported(tiny: Path) -> None:
    """A rules document that is not a mapping is reported by file."""
    (tiny / "rules.yaml").write_text("- split_penalty\n")
    assert violation_fields(tiny) == ["rules.yaml"]


@pytest.mark.parametrize(
    ("file", "copy_line", "field"),
    [
        ("nodes.csv", 2, "node_id"),
        ("skus.csv", 3, "sku"),
        ("stock.csv", 4, "sku"),
        ("rates.csv", 2, "max_distance_km"),
    ],
)
def test_duplicate_keys_are_reported(tiny: Path, file: str, copy_line: int, field: str) -> None:
    """A row repeating an earlier row's key (id, or node and sku, or service and band) is bad."""
    edit_csv(tiny / file, lambda rows: rows.append(list(rows[copy_line - 1])))
    lines = len((tiny / file).read_text().splitlines())
    assert violation_fields(tiny) == [f"{file}:{lines}:{field}"]


def test_duplicate_rate_band_is_found_after_parsing(tiny: Path) -> None:
    """Bands ``1000`` and ``1000.0`` of one service are the same band."""
    with (tiny / "rates.csv").open("a") as handle:
        handle.write("next_day,1000,25.0,2.5,1\n")
    assert violation_fields(tiny) == ["rates.csv:6:max_distance_km"]


def test_duplicate_order_id_is_reported(tiny: Path) -> None:
    """Two orders with one id: the second is reported."""
    edit_order(tiny / "orders.jsonl", 3, _set("order_id", "O-1"))
    assert violation_fields(tiny) == ["orders.jsonl:3:order_id"]


def test_stock_naming_unknown_node_or_sku_is_reported(tiny: Path) -> None:
    """Stock rows must name a node of nodes.csv and a SKU of skus.csv."""
    set_cell(tiny / "stock.csv", 2, "node_id", "DC-NORTH")
    set_cell(tiny / "stock.csv", 3, "sku", "SKU-404")
    assert violation_fields(tiny) == ["stock.csv:2:node_id", "stock.csv:3:sku"]


def test_references_to_a_broken_file_are_not_reported(tiny: Path) -> None:
    """A bad nodes.csv row is reported once, not again by the stock and orders naming it."""
    set_cell(tiny / "nodes.csv", 4, "latitude", "north")
    assert violation_fields(tiny) == ["nodes.csv:4:latitude"]


def test_violations_in_all_files_are_reported_together(tiny: Path) -> None:
    """Problems in several files come in one error, in file order."""
    set_cell(tiny / "nodes.csv", 2, "type", "warehouse")
    set_cell(tiny / "stock.csv", 3, "on_hand", "lots")
    (tiny / "rules.yaml").write_text(
        "name: r\nstrategies: [{name: s, constraints: {sla: never}}]\n"
    )
    edit_order(tiny / "orders.jsonl", 2, _set("ship_to.latitude", 100))
    edit_order(tiny / "orders.jsonl", 3, _set("lines[0].quantity", 0))
    assert violation_fields(tiny) == [
        "nodes.csv:2:type",
        "stock.csv:3:on_hand",
        "rules.yaml:strategies[0].constraints.sla",
        "orders.jsonl:2:ship_to.latitude",
        "orders.jsonl:3:lines[0].quantity",
    ]


def test_every_bad_field_of_a_row_is_reported(tiny: Path) -> None:
    """A row with several bad cells reports each of them."""
    set_cell(tiny / "rates.csv", 3, "base_cost", "-1")
    set_cell(tiny / "rates.csv", 3, "transit_days", "soon")
    assert violation_fields(tiny) == ["rates.csv:3:base_cost", "rates.csv:3:transit_days"]


def test_read_orders_checks_against_the_network(tiny: Path) -> None:
    """``read_orders`` loads valid orders and reports references the network lacks."""
    network = read_scenario(tiny).network
    assert [o.order_id for o in read_orders(tiny / "orders.jsonl", network)] == [
        "O-1",
        "O-2",
        "O-3",
    ]
    edit_order(tiny / "orders.jsonl", 2, _set("lines[0].sku", "SKU-404"))
    with pytest.raises(InvalidArgumentError) as info:
        read_orders(tiny / "orders.jsonl", network)
    assert [v.field for v in info.value.violations] == ["orders.jsonl:2:lines[0].sku"]


def test_violation_message_reads_path_then_reason(tiny: Path) -> None:
    """The error text names the path and the reason, e.g. for a missing column."""
    drop_columns(tiny / "nodes.csv", ["latitude"])
    with pytest.raises(
        InvalidArgumentError, match=re.escape("nodes.csv:1:latitude: column is missing")
    ):
        read_scenario(tiny)
