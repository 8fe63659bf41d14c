"""Forecasts from orders and from rows, and stock prices: scaling, points, errors, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.errors import InvalidArgumentError
from models.lookahead import (
    Evidence,
    Forecast,
    ForecastRule,
    RegionDemand,
    StockPrices,
    Waiting,
    region_of,
)
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
    """A window of 0 without a prior, or a horizon of 0, has no meaning: ValueError naming it.

    A window of 0 hours is fine with a prior: the forecast is then the prior's.
    """
    with pytest.raises(ValueError, match="window_hours"):
        Forecast.from_orders([], window_hours=0.0, horizon_hours=1.0)
    with pytest.raises(ValueError, match="horizon_hours"):
        Forecast.from_orders([], window_hours=1.0, horizon_hours=-1.0)
    with pytest.raises(ValueError, match="prior_hours"):
        Forecast.from_orders([], window_hours=1.0, horizon_hours=1.0, prior_hours=-1.0)
    assert (
        Forecast.from_orders([], window_hours=0.0, horizon_hours=1.0, prior_hours=6.0).demand == ()
    )


CALIFORNIA = [
    _order("o1", 33.0, -117.0, "CA", ("A", 1), ("B", 2)),
    _order("o2", 33.0, -117.0, "CA", ("A", 3)),
]
"""4 units of A and 2 of B to US-CA at (33, −117): the shrinkage tests' evidence."""


def test_shrinkage_toward_zero_demand_weights_the_observed_rate_by_its_hours():
    """4 units of A over 2 h, prior 6 h of zero demand: 24 × 4 / (2 + 6) = 12 units in 24 h.

    Unshrunk the window's rate (2 per hour) makes 48; the evidence's weight is
    2 / (2 + 6) = 1/4. B: 24 × 2 / 8 = 6. Points stay the orders'.
    """
    forecast = Forecast.from_orders(
        CALIFORNIA, window_hours=2.0, horizon_hours=24.0, prior_hours=6.0
    )
    assert forecast.demand == (
        RegionDemand("US-CA", "A", 12.0, 33.0, -117.0),
        RegionDemand("US-CA", "B", 6.0, 33.0, -117.0),
    )
    assert forecast.source == (
        "recent orders (2 orders over 2 h, shrunk toward zero demand worth 6 h)"
    )


def test_shrinkage_toward_a_prior_forecast_blends_rates_and_points():
    """The posterior mean: evidence weighted 2 / (2 + 6), the prior's rate the rest.

    The prior expects 24 units of A in US-CA over 24 h at (36, −118) (1 per hour) and 8
    units of B in US-NY over 24 h (1/3 per hour). A: 24 × (4 + 6 × 1) / 8 = 30 = 1/4 of
    the window's 48 + 3/4 of the prior's 24; its point weights the orders' 12 units at
    (33, −117) and the prior's 18 at (36, −118): (33·12 + 36·18) / 30 = 34.8, −117.6. B in
    US-CA has no prior: 24 × 2 / 8 = 6. B in US-NY has no orders: 3/4 of 8 = 6.
    """
    prior = Forecast(
        (
            RegionDemand("US-CA", "A", 24.0, 36.0, -118.0),
            RegionDemand("US-NY", "B", 8.0, 40.7, -74.0),
        ),
        24.0,
        "plan.csv",
    )
    forecast = Forecast.from_orders(
        CALIFORNIA, window_hours=2.0, horizon_hours=24.0, prior_hours=6.0, prior=prior
    )
    assert [(d.region, d.sku) for d in forecast.demand] == [
        ("US-CA", "A"),
        ("US-CA", "B"),
        ("US-NY", "B"),
    ]
    numbers = [x for d in forecast.demand for x in (d.units, d.latitude, d.longitude)]
    assert numbers == pytest.approx([30.0, 34.8, -117.6, 6.0, 33.0, -117.0, 6.0, 40.7, -74.0])
    assert forecast.source.endswith("shrunk toward plan.csv worth 6 h)")


def test_a_few_minutes_of_orders_are_not_scaled_up_to_a_day():
    """Three orders of 2 units in 3 minutes forecast 24 × 6 / (0.05 + 6) ≈ 23.8 units a day.

    The issue's start-up case: before, the window's 6 units were spread over at least an
    hour and scaled to 24 h, 144 units; with 6 h of zero-demand prior the forecast stays
    near 4 times what was seen, and tends to the window's rate as hours of orders come in.
    """
    orders = [_order(f"c{i}", 41.9, -87.7, "IL", ("SKU-00802", 2)) for i in range(3)]
    rule = ForecastRule()
    forecast = Forecast.from_orders(
        orders, window_hours=0.05, horizon_hours=24.0, prior_hours=rule.prior_hours
    )
    assert forecast.total_units == pytest.approx(24 * 6 / 6.05)
    day = Forecast.from_orders(orders, window_hours=24.0, horizon_hours=24.0, prior_hours=6.0)
    assert day.total_units == pytest.approx(6 * 24 / 30)  # the evidence's weight is 0.8


def test_the_forecast_rule_waits_for_orders_then_hours_and_says_why():
    """No forecast before ``min_orders`` orders over ``min_hours``; then the shrunk one.

    The reason names what is missing; the forecast it gives is
    :meth:`Forecast.from_orders` with the rule's ``prior_hours``.
    """
    rule = ForecastRule(min_orders=2, min_hours=1.0, prior_hours=6.0)
    few = rule.forecast(CALIFORNIA[:1], hours=3.0, horizon_hours=24.0)
    assert few == Waiting(Evidence.TOO_FEW_ORDERS, "1 of 2 orders")
    short = rule.forecast(CALIFORNIA, hours=0.5, horizon_hours=24.0)
    assert short == Waiting(Evidence.TOO_FEW_HOURS, "orders over 0.5 of 1 h")
    enough = rule.forecast(CALIFORNIA, hours=2.0, horizon_hours=24.0)
    assert enough == Forecast.from_orders(
        CALIFORNIA, window_hours=2.0, horizon_hours=24.0, prior_hours=6.0
    )
    assert rule.evidence(2, 1.0) is Evidence.ENOUGH
    assert ForecastRule(min_orders=0, min_hours=0.0).evidence(0, 0.0) is Evidence.ENOUGH


def test_the_forecast_rule_refuses_settings_out_of_range():
    """Negative counts or hours, and a prior of no weight, are refused naming each field."""
    with pytest.raises(ValueError, match=r"min_orders.*min_hours.*prior_hours"):
        ForecastRule(min_orders=-1, min_hours=-1.0, prior_hours=0.0)


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
