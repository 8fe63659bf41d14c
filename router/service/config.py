"""How ``router serve`` runs: the server's and the look-ahead prices' settings.

The one source of their defaults: the service reads them here, and so do ``router
serve``'s flags. Nothing heavy is imported, so the command line can show them without
loading the service or a solver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from models.engines import DEFAULT_TIME_LIMIT_S, FAST
from models.errors import FieldViolation
from models.lookahead import MAX_PRICE_RATIO, Forecast, ForecastRule
from models.network import Network, Stock
from models.rules import Policy
from router.ledger import DEFAULT_LEDGER_URL

PriceFunction = Callable[[Network, Stock, Forecast, Policy | None], Mapping[tuple[str, str], float]]
"""What computes prices: :func:`router.engine.prices.price_stock` unless a test injects one."""


@dataclass(frozen=True, slots=True)
class PriceSettings:
    """When prices are refreshed and where their forecast comes from."""

    refresh_interval_s: float = 300.0
    """Seconds between refreshes (``router serve --price-refresh``)."""
    min_gap_s: float = 10.0
    """Least seconds from the start of one refresh to an early one (any trigger but the
    interval), so that a burst of feed snapshots costs one refresh, not many."""
    stock_change_fraction: float = 0.1
    """An early refresh follows once the units moved since the last refresh — feed deltas'
    changes, units reserved by RouteOrder and given back by ReleaseReservation, all of
    the priced SKUs — exceed this fraction of those SKUs' available units at that refresh
    (``router serve --price-stock-change``). Any applied feed snapshot triggers one too.
    So do orders routed since the last refresh (with the window's forecast) once their
    units exceed this fraction of the units in the window at that refresh: after a
    start-up, prices follow the first orders instead of waiting for the interval."""
    forecast_window_hours: float = 24.0
    """How far back :class:`RecentOrders` keeps routed orders (``--forecast-window-hours``)."""
    forecast_horizon_hours: float = 24.0
    """The horizon the forecast expects demand over (``--forecast-horizon-hours``)."""
    max_window_orders: int = 100_000
    """The most orders the window keeps; the oldest go first beyond it."""
    forecast_min_orders: int = ForecastRule().min_orders
    """Orders the window must hold before a rolling forecast prices (``--forecast-min-orders``)."""
    forecast_min_hours: float = ForecastRule().min_hours
    """Hours they must have been gathered over (``--forecast-min-hours``)."""
    forecast_prior_hours: float = ForecastRule().prior_hours
    """Hours of observation the zero-demand prior is worth (``--forecast-prior-hours``)."""
    max_price_ratio: float = MAX_PRICE_RATIO
    """A unit's price is at most this multiple of its own cost (``--max-price-ratio``)."""

    @property
    def forecast_rule(self) -> ForecastRule:
        """When the rolling forecast may price, and how it is shrunk (models/lookahead.py)."""
        return ForecastRule(
            self.forecast_min_orders, self.forecast_min_hours, self.forecast_prior_hours
        )

    def check(self) -> list[FieldViolation]:
        """Every setting out of range, named by its ``router serve`` flag."""
        problems = []
        for flag, value in (
            ("--price-refresh", self.refresh_interval_s),
            ("--forecast-window-hours", self.forecast_window_hours),
            ("--forecast-horizon-hours", self.forecast_horizon_hours),
            ("--price-stock-change", self.stock_change_fraction),
        ):
            if not value > 0 or value == float("inf"):
                problems.append(FieldViolation(flag, f"must be a number above 0, got {value}"))
        rule = ForecastRule.problems(
            self.forecast_min_orders, self.forecast_min_hours, self.forecast_prior_hours
        )
        problems += [
            FieldViolation(f"--forecast-{name.replace('_', '-')}", why)
            for name, why in rule.items()
        ]
        if not self.max_price_ratio > 0:
            problems.append(
                FieldViolation(
                    "--max-price-ratio",
                    f"must be above 0 (inf: no bound), got {self.max_price_ratio}",
                )
            )
        return problems


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens, how many RPCs it runs at once, its time limits and engine."""

    host: str = "127.0.0.1"
    port: int = 50051
    """0 picks a free port (tests); :func:`create_server` returns the one bound."""
    max_workers: int = 8
    default_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    """Most solve time per request; a request's time_limit and deadline can only lower it."""
    grace_period_s: float = 5.0
    """How long in-flight RPCs may run on after a stop is requested."""
    engine: str = FAST
    """The engine that plans every request: ``fast`` or ``cpsat-full`` (``ENGINES``)."""
    ledger_url: str = DEFAULT_LEDGER_URL
    """The ledger (docs/ledger.md): ``sqlite://PATH``, ``memory://`` or ``postgresql://…``.
    An empty ledger is seeded from the scenario; one that holds stock is used as it is."""
    sweep_interval_s: float = 5.0
    """How often the sweeper expires lapsed reservations (``Ledger.expire``)."""
    rules_file: Path | None = None
    """A rules.yaml published (its text as is) at startup and activated when it is new to
    the ledger or nothing is active (``router serve --rules``); see :func:`bootstrap_rules`."""
    prices: PriceSettings = field(default_factory=PriceSettings)
    """When look-ahead stock prices are refreshed, and the forecast's window and horizon
    (docs/lookahead-service.md)."""
    forecast_file: Path | None = None
    """A forecast CSV read once at start-up (``router serve --forecast``); without it the
    forecast comes from the orders RouteOrder routed within the window."""
    price_function: PriceFunction | None = None
    """What computes prices; None is :func:`router.engine.prices.price_stock` (tests inject
    slow or failing ones)."""
    metrics_port: int | None = None
    """Where Prometheus metrics are served (``/metrics`` on ``host``); None: nowhere, 0 picks
    a free port (tests; :attr:`RouterServer.metrics_port` says which)."""
