"""Forecasts from orders and from rows, and stock prices: scaling, points, errors, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.errors import InvalidArgumentError
from models.lookahead import Forecast, RegionDemand, StockPrices, region_of
from models.order import Order, OrderLine, ShipTo

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _order(order_id: str, lat: float, lon: float, region: str, *lines: tuple[str, int]) -> Order:
    return Order(
        order_id=order_id,
        created_at=T0,
        ship_to=ShipTo(lat, lon, "US", "00000", region),
        service="ground",
        lines=tuple(OrderLine(f"l{i}", sku, q) for i, (sku, q) in enumerate(lines)),
    )


def test_from_orders_scales_units_by_horizon_over_window_and_weights_points_by_units():
    """12 h of orders scaled to 24 h doubles units; the point is the unit-weighted mean.

    US-CA orders 1 unit of A at (30, −120) and 3 units at (34, −116): 4 units, ×2 = 8,
    at (30·1 + 34·3)/4 = 33, (−120 − 348)/4 = −117. An order without a region counts
    under its country (US). Demand is sorted by (region, SKU).
    """
    orders = [
        _order("o1", 30.0, -120.0, "CA", ("A", 1), ("B", 2)),
        _order("o2", 34.0, -116.0, "CA", ("A", 3)),
        _order("o3", 40.0, -80.0, "", ("A", 1)),
    ]
    forecast = Forecast.from_orders(orders, window_hours=12.0, horizon_hours=24.0)
    assert forecast.demand == (
        RegionDemand("US", "A", 2.0, 40.0, -80.0),
        RegionDemand("US-CA", "A", 8.0, 33.0, -117.0),
        RegionDemand("US-CA", "B", 4.0, 30.0, -120.0),
    )
    assert forecast.horizon_hours == 24.0
    assert forecast.source == "recent orders (3 orders over 12 h)"
    assert forecast.total_units == 14.0
    assert region_of(orders[0]) == "US-CA" and region_of(orders[2]) == "US"


def test_from_orders_refuses_a_window_or_horizon_that_is_not_positive():
    """A window or horizon of 0 has no meaning: ValueError naming it."""
    with pytest.raises(ValueError, match="window_hours"):
        Forecast.from_orders([], window_hours=0.0, horizon_hours=1.0)
    with pytest.raises(ValueError, match="horizon_hours"):
        Forecast.from_orders([], window_hours=1.0, horizon_hours=-1.0)


def test_within_a_shorter_time_scales_units_and_keeps_points_and_source():
    """24 h of demand within 6 h is a quarter of the units; within 24 h or more, itself."""
    forecast = Forecast((RegionDemand("US-CA", "A", 8.0, 33.0, -117.0),), 24.0, "file f.csv")
    quarter = forecast.within(6.0)
    assert quarter == Forecast((RegionDemand("US-CA", "A", 2.0, 33.0, -117.0),), 6.0, "file f.csv")
    assert forecast.within(24.0) is forecast and forecast.within(48.0) is forecast
    with pytest.raises(ValueError, match="hours"):
        forecast.within(0.0)


def test_from_rows_reads_and_merges_rows_of_one_region_and_sku():
    """Two rows of (US-CA, A) add up, their point weighted by units; regions upper-cased."""
    rows = [
        {"region": "us-ca", "sku": "A", "units": "1", "latitude": "30", "longitude": "-120"},
        {"region": "US-CA", "sku": "A", "units": "3", "latitude": "34", "longitude": "-116"},
        {"region": "US-NY", "sku": "B", "units": "0", "latitude": "40.7", "longitude": "-74"},
        {"region": "", "sku": "", "units": "", "latitude": "", "longitude": ""},
    ]
    forecast = Forecast.from_rows(rows, horizon_hours=24.0, source="forecast.csv")
    assert forecast.demand == (
        RegionDemand("US-CA", "A", 4.0, 33.0, -117.0),
        RegionDemand("US-NY", "B", 0.0, 40.7, -74.0),
    )
    assert forecast.source == "forecast.csv" and forecast.horizon_hours == 24.0


def test_from_rows_names_every_bad_cell_as_source_line_column_at_once():
    """Bad cells of several rows are all reported, each as ``file:line:column``.

    Line 1 is the header, so the first row is line 2.
    """
    rows = [
        {"region": "US-CA", "sku": "A", "units": "-1", "latitude": "30", "longitude": "-120"},
        {"region": "", "sku": "A", "units": "2", "latitude": "91", "longitude": "x"},
    ]
    with pytest.raises(InvalidArgumentError) as caught:
        Forecast.from_rows(rows, horizon_hours=24.0, source="f.csv")
    fields = [v.field for v in caught.value.violations]
    assert fields == ["f.csv:2:units", "f.csv:3:region", "f.csv:3:latitude", "f.csv:3:longitude"]
    assert "must be >= 0" in str(caught.value)


def test_from_rows_names_missing_and_unknown_columns():
    """A row without ``units`` and with an extra column: both named, nothing read."""
    rows = [{"region": "US-CA", "sku": "A", "latitude": "1", "longitude": "2", "extra": "3"}]
    with pytest.raises(InvalidArgumentError) as caught:
        Forecast.from_rows(rows, horizon_hours=1.0, source="f.csv")
    fields = [v.field for v in caught.value.violations]
    assert "f.csv:2:units" in fields and "f.csv:2:extra" in fields


def test_stock_prices_label_lookup_and_timezone():
    """``label`` is ``prices@v7``; an absent pair prices 0; naive times, negative prices refused."""
    prices = StockPrices(7, T0, "test", 24.0, {("DC-01", "A"): 2.5})
    assert prices.label == "prices@v7"
    assert prices.of("DC-01", "A") == 2.5
    assert prices.of("DC-01", "B") == 0.0
    with pytest.raises(ValueError, match="timezone-aware"):
        StockPrices(1, datetime(2026, 11, 20), "test", 24.0, {})
    with pytest.raises(ValueError, match=r"finite and >= 0.*DC-01"):
        StockPrices(1, T0, "test", 24.0, {("DC-01", "A"): -0.5})
