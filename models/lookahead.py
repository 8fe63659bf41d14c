"""Look-ahead pricing: expected demand over a horizon, and the stock prices made from it.

A :class:`Forecast` says how many units of each SKU each region is expected to order over
the next ``horizon_hours``, and where that region's demand ships to. The engine turns it,
with the current stock, into :class:`StockPrices`: the opportunity cost of one unit of
each (node, SKU), the duals of a transportation LP that serves the forecast
(:func:`router.engine.prices.price_stock`). A strategy whose ``opportunity_cost`` weight is
above 0 adds ``opportunity_cost × price`` to the per-unit cost of every unit it ships
(docs/lookahead.md). Prices steer decisions; they are not a cost the retailer pays.

Pure data: no I/O. Reading a forecast file is the caller's job; :meth:`Forecast.from_rows`
validates its rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from models import fields as f
from models.errors import Violations
from models.order import Order

MAX_PRICE_RATIO = 1.0
"""A unit's price is at most this multiple of its own cost (docs/lookahead.md); ``inf``: no
bound. The default of ``router serve --max-price-ratio`` and ``router whatif
--max-price-ratio``."""

FORECAST_COLUMNS: tuple[str, ...] = ("region", "sku", "units", "latitude", "longitude")
"""The columns of a forecast CSV file (:meth:`Forecast.from_rows`)."""


def region_of(order: Order) -> str:
    """The demand region of an order: ``US-CA`` (country-region), or the country alone."""
    ship_to = order.ship_to
    return f"{ship_to.country}-{ship_to.region}" if ship_to.region else ship_to.country


@dataclass(frozen=True, slots=True)
class RegionDemand:
    """Expected units of one SKU that one region orders over the horizon.

    ``region`` is ``US-CA`` (country-region) or the country alone when orders carry no
    region; ``latitude``/``longitude`` are where the region's demand ships to (the
    unit-weighted mean of its orders' delivery points).
    """

    region: str
    sku: str
    units: float
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Expected demand by (region, SKU) over the next ``horizon_hours``; ``source`` says whence."""

    demand: tuple[RegionDemand, ...]
    horizon_hours: float
    source: str

    @property
    def total_units(self) -> float:
        """Units expected over the horizon, all regions and SKUs."""
        return sum(d.units for d in self.demand)

    def within(self, hours: float) -> Forecast:
        """The demand over the first ``hours`` of the horizon: units × hours / horizon.

        Itself when ``hours`` reaches the horizon (demand is taken as even over it).
        """
        if not hours > 0:
            raise ValueError(f"hours must be > 0, got {hours}")
        if hours >= self.horizon_hours:
            return self
        scale = hours / self.horizon_hours
        demand = tuple(replace(d, units=d.units * scale) for d in self.demand)
        return Forecast(demand, hours, self.source)

    @staticmethod
    def from_orders(
        orders: Sequence[Order],
        *,
        window_hours: float,
        horizon_hours: float,
        prior_hours: float = 0.0,
        prior: Forecast | None = None,
        source: str = "",
    ) -> Forecast:
        """The demand of ``orders`` (seen over ``window_hours``), shrunk toward ``prior``.

        Each (region, SKU) whose orders hold ``n`` units, and whose ``prior`` expects
        ``λ0`` units per hour (its units over its own horizon; 0 without a prior, or where
        the prior has no such demand), expects over ``horizon_hours``::

            horizon_hours × (n + prior_hours × λ0) / (window_hours + prior_hours)

        the mean of the rate's posterior when units arrive as a Poisson process and the
        prior is a Gamma of mean ``λ0`` worth ``prior_hours`` of observation: the observed
        rate ``n / window_hours`` gets the weight ``window_hours / (window_hours +
        prior_hours)``, the prior the rest (docs/lookahead.md). ``prior_hours`` 0 is the
        observed rate alone. The point of a demand is the unit-weighted mean of its orders'
        ship-to points and the prior's point. A pickup order counts at its ship-to point
        like any other (its region is where the customer is, and its pickup node is
        normally near it). ``demand`` is sorted by (region, SKU), so equal inputs give
        equal forecasts. ``source`` defaults to ``"recent orders (N orders over W h)"``,
        with the prior's weight and source when ``prior_hours`` > 0.
        """
        for name, value in (("window_hours", window_hours), ("prior_hours", prior_hours)):
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not window_hours + prior_hours > 0:
            raise ValueError("window_hours + prior_hours must be > 0, got 0")
        if horizon_hours <= 0 or not math.isfinite(horizon_hours):
            raise ValueError(f"horizon_hours must be > 0, got {horizon_hours}")
        exposure = window_hours + prior_hours
        observed = (
            RegionDemand(
                region_of(order),
                line.sku,
                line.quantity * horizon_hours / exposure,
                order.ship_to.latitude,
                order.ship_to.longitude,
            )
            for order in orders
            for line in order.lines
        )
        expected: Iterable[RegionDemand] = ()
        if prior is not None and prior_hours > 0:
            prior_scale = prior_hours / exposure * horizon_hours / prior.horizon_hours
            expected = (replace(d, units=d.units * prior_scale) for d in prior.demand)
        shrunk = ""
        if prior_hours > 0:
            towards = "zero demand" if prior is None else prior.source
            shrunk = f", shrunk toward {towards} worth {prior_hours:g} h"
        label = source or f"recent orders ({len(orders)} orders over {window_hours:.3g} h{shrunk})"
        return Forecast(_merged(itertools.chain(observed, expected)), horizon_hours, label)

    @staticmethod
    def from_rows(
        rows: Iterable[Mapping[str, str]], *, horizon_hours: float, source: str
    ) -> Forecast:
        """A forecast from CSV rows (``region,sku,units,latitude,longitude``; line 1 the header).

        ``units`` is a number >= 0 (expected over ``horizon_hours``), ``latitude`` in
        [-90, 90], ``longitude`` in [-180, 180]. Raises
        :class:`~models.errors.InvalidArgumentError` naming every bad cell at once as
        ``<source>:<line>:<column>``, with line 2 the first row. Rows for the same
        (region, SKU) add up; their point is the unit-weighted mean.
        """
        if horizon_hours <= 0 or not math.isfinite(horizon_hours):
            raise ValueError(f"horizon_hours must be > 0, got {horizon_hours}")
        v = Violations()
        found: list[RegionDemand] = []
        for i, raw in enumerate(rows):
            if all(f.is_blank(value) for value in raw.values()):
                continue
            row = Violations(f"{source}:{i + 2}:")
            values = {str(k).strip(): value for k, value in raw.items()}
            for column in FORECAST_COLUMNS:
                if column not in values:
                    row.add(column, "column is missing")
            for column in values:
                if column not in FORECAST_COLUMNS:
                    row.add(
                        column, f"is not a column; the columns are {', '.join(FORECAST_COLUMNS)}"
                    )
            region = f.text(values, "region", row)
            sku = f.text(values, "sku", row)
            units = f.number(values, "units", row, minimum=0)
            latitude = f.number(values, "latitude", row, minimum=-90, maximum=90)
            longitude = f.number(values, "longitude", row, minimum=-180, maximum=180)
            v.extend(row.items)
            if row or region is None or sku is None:
                continue
            assert units is not None and latitude is not None and longitude is not None
            found.append(RegionDemand(region.upper(), sku, units, latitude, longitude))
        v.raise_if_any()
        demand = _merged(found)
        return Forecast(demand, horizon_hours, source)


class Evidence(StrEnum):
    """Whether a rolling forecast has seen enough orders to price stock from."""

    ENOUGH = "enough"
    """At least :attr:`ForecastRule.min_orders` orders over :attr:`ForecastRule.min_hours`."""
    TOO_FEW_ORDERS = "too_few_orders"
    """The window holds fewer than :attr:`ForecastRule.min_orders` orders."""
    TOO_FEW_HOURS = "too_few_hours"
    """The window's orders were gathered over less than :attr:`ForecastRule.min_hours`."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """No forecast yet: the evidence that is short, and a reason naming how short."""

    evidence: Evidence
    reason: str
    """For logs: ``3 of 100 orders``, ``orders over 0.25 of 1 h``."""


@dataclass(frozen=True, slots=True)
class ForecastRule:
    """When a rolling forecast of recent orders may price stock, and how it is shrunk.

    The one rule of the live service (``router serve``) and the what-if look-ahead
    policy (docs/lookahead.md): no forecast before ``min_orders`` orders gathered over
    ``min_hours``, and then the observed rates shrunk toward the prior with the weight of
    ``prior_hours`` of observation (:meth:`Forecast.from_orders`), so that a thin window
    is not scaled up to the whole horizon.
    """

    min_orders: int = 100
    min_hours: float = 1.0
    prior_hours: float = 6.0

    def __post_init__(self) -> None:
        problems = self.problems(self.min_orders, self.min_hours, self.prior_hours)
        if problems:
            raise ValueError("; ".join(f"{name} {why}" for name, why in problems.items()))

    @staticmethod
    def problems(min_orders: int, min_hours: float, prior_hours: float) -> dict[str, str]:
        """What is out of range in these settings, by field name; empty when nothing is."""
        problems = {}
        if min_orders < 0:
            problems["min_orders"] = f"must be >= 0, got {min_orders}"
        if not 0 <= min_hours < math.inf:
            problems["min_hours"] = f"must be a finite number >= 0, got {min_hours}"
        if not 0 < prior_hours < math.inf:
            problems["prior_hours"] = f"must be a finite number > 0, got {prior_hours}"
        return problems

    def evidence(self, orders: int, hours: float) -> Evidence:
        """Whether ``orders`` orders gathered over ``hours`` are enough to forecast from."""
        if orders < self.min_orders:
            return Evidence.TOO_FEW_ORDERS
        if hours < self.min_hours:
            return Evidence.TOO_FEW_HOURS
        return Evidence.ENOUGH

    def forecast(
        self,
        orders: Sequence[Order],
        *,
        hours: float,
        horizon_hours: float,
        prior: Forecast | None = None,
    ) -> Forecast | Waiting:
        """The shrunk forecast of ``orders`` gathered over ``hours``, or what it waits for.

        ``prior`` is what the rates shrink toward (zero demand without one).
        """
        evidence = self.evidence(len(orders), hours)
        if evidence is Evidence.TOO_FEW_ORDERS:
            return Waiting(evidence, f"{len(orders)} of {self.min_orders} orders")
        if evidence is Evidence.TOO_FEW_HOURS:
            return Waiting(evidence, f"orders over {hours:.2g} of {self.min_hours:g} h")
        return Forecast.from_orders(
            orders,
            window_hours=hours,
            horizon_hours=horizon_hours,
            prior_hours=self.prior_hours,
            prior=prior,
        )


def _merged(rows: Iterable[RegionDemand]) -> tuple[RegionDemand, ...]:
    """One demand per (region, SKU), sorted by them: units added up.

    The point is the rows' unit-weighted mean (the last row's when their units add up to 0).
    """
    acc: dict[tuple[str, str], list[float]] = {}
    for d in rows:
        a = acc.setdefault((d.region, d.sku), [0.0, 0.0, 0.0, 0.0, 0.0])
        a[0] += d.units
        a[1] += d.units * d.latitude
        a[2] += d.units * d.longitude
        a[3], a[4] = d.latitude, d.longitude
    return tuple(
        RegionDemand(
            region,
            sku,
            a[0],
            a[1] / a[0] if a[0] else a[3],
            a[2] / a[0] if a[0] else a[4],
        )
        for (region, sku), a in sorted(acc.items())
    )


@dataclass(frozen=True, slots=True)
class StockPrices:
    """The opportunity cost of one unit of each (node, SKU), as of ``computed_at``.

    ``version`` counts computations (plans name it as :attr:`label`); ``source`` is the
    forecast's source and ``horizon_hours`` its horizon. ``prices`` is in currency units
    per unit, each finite and >= 0 (the engine's bounds need every cost term
    non-negative); a pair that is absent is priced 0.
    """

    version: int
    computed_at: datetime
    source: str
    horizon_hours: float
    prices: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.computed_at.tzinfo is None or self.computed_at.utcoffset() is None:
            raise ValueError(f"computed_at must be timezone-aware, got {self.computed_at}")
        bad = [k for k, p in self.prices.items() if not (math.isfinite(p) and p >= 0)]
        if bad:
            raise ValueError(f"prices must be finite and >= 0; not so at {sorted(bad)[:5]}")
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    @property
    def label(self) -> str:
        """How plans name these prices: ``prices@v7``."""
        return f"prices@v{self.version}"

    def of(self, node_id: str, sku: str) -> float:
        """The price of one unit of ``sku`` at ``node_id`` (0 when not priced)."""
        return self.prices.get((node_id, sku), 0.0)
