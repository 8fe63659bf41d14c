from __future__ import annotations

import pytest

from models import fields as f
from models.errors import Violations
from models.money import from_units, to_units
from models.network import StockPosition
from models.order import Order

GOOD = {
    "order_id": "o1",
    "created_at": "2026-11-20T12:00:00Z",
    "ship_to": {"latitude": 41.9, "longitude": -87.6, "country": "us", "postal_code": "60602"},
    "service": "ground",
    "deliver_by": "2026-11-24",
    "lines": [{"line_id": "1", "sku": "A", "quantity": 2}],
}


def parse(raw):
    v = Violations("order")
    order = Order.from_raw(raw, v)
    return order, [str(x) for x in v.items]


def test_good_order_parses_with_defaults():
    """A valid order parses; unset flags take their documented defaults."""
    order, errors = parse(GOOD)
    assert errors == []
    assert order is not None
    assert (order.ship_complete, order.allow_partial, order.max_shipments) == (False, True, None)
    assert order.ship_to.country == "US" and order.created_at.utcoffset() is not None


def test_every_bad_field_is_reported_at_once_with_its_path():
    """All violations come back together, each with its full field path."""
    bad = {
        **GOOD,
        "created_at": "2026-11-20 12:00",
        "deliver_by": "24/11/2026",
        "max_shipments": 0,
        "ship_to": {"latitude": 91, "longitude": -87.6},
        "lines": [
            {"line_id": "1", "sku": "A", "quantity": 0},
            {"line_id": "1", "sku": "", "quantity": 2.5},
            "x",
        ],
    }
    order, errors = parse(bad)
    assert order is None
    fields = [e.split(":")[0] for e in errors]
    assert fields == [
        "order.created_at",
        "order.deliver_by",
        "order.max_shipments",
        "order.ship_to.latitude",
        "order.ship_to.country",
        "order.lines[0].quantity",
        "order.lines[1].sku",
        "order.lines[1].quantity",
        "order.lines[1].line_id",
        "order.lines[2]",
    ]


def test_missing_required_fields_are_named():
    """An empty order names every required field."""
    _, errors = parse({})
    assert [e.split(":")[0] for e in errors] == [
        "order.order_id",
        "order.created_at",
        "order.service",
        "order.ship_to",
        "order.lines",
    ]


def test_order_size_limit():
    """Orders above the line limit are refused, not solved."""
    lines = [{"line_id": str(i), "sku": "A", "quantity": 1} for i in range(501)]
    _, errors = parse({**GOOD, "lines": lines})
    assert errors == ["order.lines: must have at most 500 lines, got 501"]


def test_available_never_below_zero():
    """Available stock is on hand − reserved − safety stock, floored at zero."""
    assert StockPosition("n", "s", 10, safety_stock=2, reserved=3).available == 5
    assert StockPosition("n", "s", 3, safety_stock=5).available == 0


@pytest.mark.parametrize("amount", [0, 0.01, 1.2345, 19.99, 123456.7891])
def test_money_round_trips_exactly(amount):
    """Currency amounts with up to four decimals survive the scaling to solver units."""
    assert from_units(to_units(amount)) == amount


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created_at": "9999-12-31T23:59:59Z"}, "order.created_at"),
        ({"created_at": "0001-01-01T00:00:00Z"}, "order.created_at"),
        ({"created_at": "20261120T120000Z"}, "order.created_at"),
        ({"created_at": "2026-11-20T12:00:00"}, "order.created_at"),
        ({"deliver_by": "20261124"}, "order.deliver_by"),
        ({"deliver_by": "2026-11-01"}, "order.deliver_by"),
        ({"max_shipments": 10**400}, "order.max_shipments"),
        ({"ship_to": {**GOOD["ship_to"], "latitude": "1e400"}}, "order.ship_to.latitude"),
        (
            {"lines": [{"line_id": "1", "sku": "A", "quantity": 3 * 10**9}]},
            "order.lines[0].quantity",
        ),
        (
            {"lines": [{"line_id": "1", "sku": "A", "quantity": "9" * 400}]},
            "order.lines[0].quantity",
        ),
        (
            {"lines": [{"line_id": str(i), "sku": "A", "quantity": 600_000} for i in range(2)]},
            "order.lines",
        ),
    ],
)
def test_extreme_values_are_violations_not_crashes(change, field):
    """Values that would overflow dates, int64 costs or int32 fields are refused by path."""
    order, errors = parse({**GOOD, **change})
    assert order is None
    assert [e.split(":")[0] for e in errors] == [field]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"weight_kg": "1e300"}, "weight_kg"),
        ({"weight_kg": "inf"}, "weight_kg"),
        ({"weight_kg": "2000"}, "weight_kg"),
    ],
)
def test_sku_bounds(row, field):
    """SKU weights must be finite and within a parcel network's range."""
    from models.network import Sku

    v = Violations()
    assert Sku.from_raw({"sku": "A", **row}, v) is None
    assert [x.field for x in v.items] == [field]


def _nested_lists(levels: int) -> list[object]:
    """Lists nested ``levels`` deep, the same list nine times at each level (shared)."""
    value: list[object] = ["lol"] * 9
    for _ in range(levels - 1):
        value = [value] * 9
    return value


LONG = "x" * 10_000


@pytest.mark.parametrize(
    ("read", "value"),
    [
        pytest.param(f.number, LONG, id="number-long"),
        pytest.param(f.number, _nested_lists(5), id="number-nested"),
        pytest.param(f.integer, LONG, id="integer-long"),
        pytest.param(f.integer, 10**4000, id="integer-4001-digits"),
        pytest.param(f.boolean, LONG, id="boolean-long"),
        pytest.param(f.boolean, _nested_lists(5), id="boolean-nested"),
        pytest.param(f.local_time, LONG, id="local_time-long"),
        pytest.param(f.timestamp, LONG, id="timestamp-long"),
        pytest.param(f.calendar_date, LONG, id="calendar_date-long"),
        pytest.param(f.names, [_nested_lists(5)], id="names-nested"),
    ],
)
def test_every_reader_quotes_a_bad_value_by_a_bounded_prefix(read, value):
    """However long or nested a bad value, its violation's description stays under 250 chars.

    (Nine shared lists of nine, five levels deep, print as 500 KB; a 10,000-character text
    is cut to 80 characters and its length.)
    """
    v = Violations()
    read({"field": value}, "field", v)
    [violation] = v.items
    assert len(violation.description) < 250
    if value is LONG:
        assert "… (10000 chars)" in violation.description


@pytest.mark.parametrize(
    ("read", "value", "lenient"),
    [
        (f.number, "5", 5.0),
        (f.number, " 2.5 ", 2.5),
        (f.money, "5", 5.0),
        (f.integer, "3", 3),
        (f.boolean, "yes", True),
        (f.boolean, "no", False),
        (f.boolean, "off", None),
        (f.boolean, 1, True),
        (f.boolean, "true", True),
    ],
)
def test_strict_readers_take_only_numbers_as_numbers_and_true_false_as_booleans(
    read, value, lenient
):
    """``strict`` refuses text where a number or a boolean is expected; lenient reads it.

    CSV cells and form fields arrive as text, so their readers are lenient; a YAML 1.2
    rule document holds numbers and booleans typed, so its readers are strict.
    """
    v = Violations()
    assert read({"field": value}, "field", v) == lenient
    assert read({"field": value}, "field", v, strict=True) is None
    assert [x.field for x in v.items] == (["field"] if lenient is None else []) + ["field"]


@pytest.mark.parametrize(
    ("read", "value"),
    [(f.number, 5), (f.number, 2.5), (f.integer, 3), (f.integer, 3.0), (f.boolean, False)],
)
def test_strict_readers_read_typed_values(read, value):
    """A typed number or boolean is read by a strict reader as by a lenient one."""
    v = Violations()
    assert read({"field": value}, "field", v, strict=True) == value
    assert not v
