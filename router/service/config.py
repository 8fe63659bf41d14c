"""How ``router serve`` runs: the server's and the look-ahead prices' settings.

The one source of their defaults: the service reads them here, and so do ``router
serve``'s flags. Nothing heavy is imported, so the command line can show them without
loading the service or a solver.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from models.decision import DecisionRetention
from models.engines import DEFAULT_TIME_LIMIT_S, FAST
from models.errors import FieldViolation, InvalidArgumentError
from models.lookahead import MAX_PRICE_RATIO, Forecast, ForecastRule
from models.network import Network, Stock
from models.rules import Policy
from router.ledger import DEFAULT_LEDGER_URL

LEDGER_URL_ENV = "ROUTER_LEDGER_URL"
"""The environment variable a ledger URL may come from, so that no password shows in ``ps``."""
MAX_EXPIRING_WINDOW_S = 30 * 86400.0
"""The longest ``--expiring-window``: 30 days (a reservation is held 7 days at most)."""
DEFAULT_METRICS_PORT = 9464
"""``router serve``'s metrics port (``--metrics-port``; the OpenTelemetry Prometheus
exporter's usual one); the gateway's is :data:`router.intake.config.DEFAULT_METRICS_PORT`."""


def ledger_url(
    flag: str | None,
    url_file: Path | None,
    environ: Mapping[str, str],
    default: str | None = DEFAULT_LEDGER_URL,
) -> str | None:
    """The ledger URL a command uses, from the first of its sources that gives one.

    ``--ledger`` (``flag``), else ``--ledger-url-file``, else :data:`LEDGER_URL_ENV`, else
    ``default``. The file holds the URL on its first line (surrounding blanks ignored),
    the way secret stores mount it. None of them need carry a password: libpq's own variables
    (``PGPASSWORD``, ``PGPASSFILE``, ``PGHOST``, ``PGUSER``, ``PGDATABASE`` …) fill in what a
    ``postgresql://`` URL leaves out (docs/ledger.md). Raises InvalidArgumentError naming
    ``--ledger-url-file`` when the file cannot be read or holds no URL; the error never
    quotes the file's content.
    """
    if flag is not None:
        return flag
    if url_file is not None:
        try:
            lines = url_file.read_text(encoding="utf-8").strip().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            why = f"cannot read {url_file}: {type(e).__name__}"
            raise InvalidArgumentError([FieldViolation("--ledger-url-file", why)]) from e
        if not lines or not lines[0].strip():
            why = f"{url_file} holds no ledger URL"
            raise InvalidArgumentError([FieldViolation("--ledger-url-file", why)])
        return lines[0].strip()
    return environ.get(LEDGER_URL_ENV) or default


PriceFunction = Callable[[Network, Stock, Forecast, Policy | None], Mapping[tuple[str, str], float]]
"""What computes prices: :func:`router.engine.prices.price_stock` unless a test injects one."""


DEFAULT_MAX_REJECTIONS = 3
"""Rejections (RejectShipment) a reservation's order may have re-routed by default."""


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


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Per-principal rate limits and the queue for solve slots (docs/security.md).

    The bound on solving calls running at once is :attr:`ServerConfig.max_workers`.
    """

    rate_per_s: float = 100.0
    """Calls per second each authenticated principal may make, sustained (``--rate-limit``;
    0: no limit). Not applied when authentication is off (every caller is one)."""
    burst: int = 200
    """Calls a principal may make at once above the rate (``--rate-burst``)."""
    queued_solves: int = 32
    """Solving calls that may wait for a slot (``--queued-solves``); the next is refused.
    A waiting call holds a thread blocked on the slot, which costs the interpreter nothing."""
    failed_auth_per_s: float = 1.0
    """Failed authentications a second each client address may make after a burst of
    :attr:`failed_auth_burst`; beyond, its calls are refused (RESOURCE_EXHAUSTED) before
    any token is looked up, valid or not (clients behind one address share the limit)."""
    failed_auth_burst: int = 30
    queue_wait_s: float = 10.0
    """The longest a solving call waits for a slot (less when its deadline is nearer)."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The server's certificate and key, and the CA its clients' certificates must chain to.

    With ``client_ca`` set every client must present a certificate it signed (mTLS): the
    certificate is then a principal of its own (docs/security.md), and a bearer token, when
    sent too, decides instead. gRPC's Python server cannot ask for a certificate without
    requiring one, so mTLS is all clients or none.
    """

    cert: Path
    key: Path
    client_ca: Path | None = None

    def files(self) -> tuple[Path, ...]:
        """The files the credentials are read from."""
        return (self.cert, self.key) + (() if self.client_ca is None else (self.client_ca,))


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens, how many RPCs it runs at once, its time limits and engine."""

    host: str = "127.0.0.1"
    port: int = 50051
    """0 picks a free port (tests); :func:`create_server` returns the one bound."""
    max_workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    """Solving calls (plan, route, lint, test, publish) that run at once (``--workers``;
    default: the machine's cores, at least 2); :attr:`AdmissionSettings.queued_solves`
    more wait, the next is refused at once with RESOURCE_EXHAUSTED and a retry hint. The
    engine is Python: more solving threads than cores add no throughput, and each one
    makes every other call wait longer for the interpreter (benchmarks/README.md, "Load
    shedding")."""
    default_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    """Most solve time per request; a request's time_limit and deadline can only lower it."""
    grace_period_s: float = 5.0
    """How long in-flight RPCs may run on after a stop is requested."""
    engine: str = FAST
    """The engine that plans every request: ``fast`` or ``cpsat-full`` (``ENGINES``)."""
    ledger_url: str = DEFAULT_LEDGER_URL
    """The ledger (docs/ledger.md): ``sqlite://PATH``, ``memory://`` or ``postgresql://…``.
    An empty ledger is seeded from the scenario; one that holds stock is used as it is.
    ``router serve`` takes it from ``--ledger``, ``--ledger-url-file`` or
    ``ROUTER_LEDGER_URL`` (:func:`ledger_url`)."""
    sweep_interval_s: float = 5.0
    """How often the sweeper expires lapsed reservations (``Ledger.expire``)."""
    expiring_window_s: float = 900.0
    """The status timer ``router_reservations_expiring`` counts HELD reservations lapsing
    within this many seconds (``--expiring-window``)."""
    max_rejections: int = DEFAULT_MAX_REJECTIONS
    """Rejections (RejectShipment) a reservation's order may have re-routed; later ones
    are backordered (``--max-rejections``; docs/decisions.md)."""
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
    """Where Prometheus metrics are served (``/metrics`` on :attr:`metrics_host`); None:
    nowhere, 0 picks a free port (tests; :attr:`RouterServer.metrics_port` says which)."""
    metrics_host: str = "127.0.0.1"
    """The address metrics listen on (``--metrics-host``): loopback unless a scraper on
    another machine must reach them; they carry no secrets but need no public address."""
    auth: bool | None = None
    """Whether every call must authenticate (docs/security.md). None: yes, unless the
    server listens on loopback only (the ``make run`` default, open to this machine's
    users, and it says so when it starts); False on another address is
    ``--insecure-no-auth``, and logged loudly."""
    tls: TlsSettings | None = None
    """The server's certificate, key and client CA (``--tls-cert``, ``--tls-key``,
    ``--tls-client-ca``); None: plaintext."""
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    """Per-principal rate limits (``--rate-limit``, ``--rate-burst``)."""
    cheap_workers: int = 4
    """Threads beyond :attr:`max_workers`, kept for health checks and calls that do not solve."""
    max_concurrent_rpcs: int = 1000
    """Calls in progress or waiting for a thread at once (``--max-concurrent-rpcs``); gRPC
    refuses the next with RESOURCE_EXHAUSTED before any thread is spent on it. A bound on
    memory, not on latency: health checks and cheap calls go ahead of queued solves."""
    gc_thresholds: tuple[int, int, int] = (200_000, 50, 100)
    """The garbage collector's thresholds in ``router serve`` (Python's: 700, 10, 10).
    Almost all of the server's garbage is freed by reference counting; collecting after
    every 700 allocations paused every thread often under load, and the full collections
    set the tail of every call (measured: a probe's p99 under a flood 238 → 39 ms)."""
    switch_interval_s: float = 0.001
    """The interpreter's thread switch interval in ``router serve`` (Python's default is
    0.005 s): solving threads hand the interpreter over five times as often, so a health
    check or a refusal waits milliseconds, not tens of them, behind solves."""
    token_cache_s: float = 5.0
    """How long a token lookup is kept: a revocation reaches this server within it."""
    otlp_endpoint: str | None = None
    """Where ``router serve`` exports its spans over OTLP/HTTP (``--otlp-endpoint``); None:
    the standard ``OTEL_EXPORTER_OTLP_*`` variables decide (:mod:`router.telemetry`)."""
    drain_s: float = 0.0
    """On SIGTERM, how long ``router serve`` answers health NOT_SERVING while still serving
    before it stops (``--drain``): the time a load balancer takes to notice."""
    decision_retention: DecisionRetention = field(default_factory=DecisionRetention)
    """How long the decision log keeps decisions (``--decisions-max-age-days``,
    ``--decisions-max-count``); the sweeper prunes the rest every
    :attr:`prune_interval_s`."""
    prune_interval_s: float = 60.0
    """How often the sweeper prunes the decision log."""

    @property
    def loopback_only(self) -> bool:
        """Whether :attr:`host` is a loopback address (only this machine can connect)."""
        return is_loopback(self.host)

    @property
    def auth_required(self) -> bool:
        """Whether calls must authenticate (see :attr:`auth`)."""
        return (not self.loopback_only) if self.auth is None else self.auth


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``: an address only this machine reaches."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
