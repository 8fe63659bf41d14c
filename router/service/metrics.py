"""Prometheus metrics of one server: its RPCs, plans, reservations, feeds, sweeper, ledger.

The RPC metrics carry the names and labels of go-grpc-prometheus and of the gRPC
ecosystem's dashboards (``grpc_server_started_total``, ``grpc_server_handled_total``,
``grpc_server_handling_seconds``); the domain ones start with ``router_``. Each
:class:`ServiceMetrics` has its own registry, so several servers in one process (the
tests) never share a series; :func:`serve_metrics` exposes one registry over HTTP at
``/metrics``. docs/operations.md lists every metric and what a healthy value looks like
(the look-ahead ones: docs/lookahead-service.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.lookahead import Evidence
from models.reservation import FeedOutcome

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: what go-grpc-prometheus dashboards expect

NO_PRICES = "none"
"""The ``price_version`` label of plans made without prices (their ``price_version`` is "")."""
KEPT_PRICE_VERSIONS = 3
"""Price versions whose ``router_plans_total`` series are kept (the newest ones); older
series are dropped when a new version is published, so the label set stays bounded."""
REFRESH_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Buckets of ``router_price_refresh_duration_seconds``: a price LP takes from well under a
second (small networks) to minutes (large ones)."""
HANDLING_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0
)  # fmt: skip
"""Buckets of ``grpc_server_handling_seconds`` and ``router_solve_duration_seconds``: a
health check takes a millisecond, a one-line plan a few, a large basket on a dense network
seconds, and a solve is cut at its time limit (60 s at most by default)."""
GAP_BUCKETS = (0.0, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Buckets of ``router_plan_gap``: 0 is a proven optimum; anything above 1e-4 is a plan
cut short by its time limit before the engine proved it."""
KEPT_FEEDS = 100
"""Feeds whose ``router_feed_last_applied_timestamp_seconds`` series are kept (the ones
applied to most recently): feed names come from clients, so the label set stays bounded."""
RESERVATION_OUTCOMES = ("held", "confirmed", "released", "expired")
"""The ``outcome`` label of ``router_reservations_total``."""

REJECTION_OUTCOMES = ("rerouted", "backordered")
"""The outcomes ``router_rejections`` counts, each exported from the start at 0."""


class ServiceMetrics:
    """The metrics a server exports, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.price_version = Gauge(
            "router_price_version",
            "Version of the stock prices routing uses now (0: none yet); per replica",
            registry=r,
        )
        self.price_refreshed = Gauge(
            "router_price_last_refresh_timestamp_seconds",
            "Unix time the current stock prices were computed (0: none yet)",
            registry=r,
        )
        self.refresh_seconds = Histogram(
            "router_price_refresh_duration_seconds",
            "Wall-clock time of successful price refreshes (forecast, stock read, price LP)",
            buckets=REFRESH_BUCKETS_S,
            registry=r,
        )
        self.refreshes = Counter(
            "router_price_refreshes",
            "Successful price refreshes, by what started them "
            "(rules_change, interval, stock_change, forecast_change, start)",
            ["trigger"],
            registry=r,
        )
        self.refresh_failures = Counter(
            "router_price_refresh_failures",
            "Price refreshes that failed; the previous prices stay in use",
            registry=r,
        )
        self.pricing_enabled = Gauge(
            "router_price_enabled",
            "1 when the active rule set has a strategy with opportunity_cost > 0 "
            "(prices are refreshed), else 0 (the refresher idles)",
            registry=r,
        )
        self.forecast_orders = Gauge(
            "router_price_forecast_orders",
            "Routed orders in the forecast's rolling window at the last refresh "
            "(0 with a --forecast file)",
            registry=r,
        )
        self.forecast_hours = Gauge(
            "router_price_forecast_hours",
            "Hours the rolling window's orders were gathered over at the last refresh "
            "(0 with a --forecast file)",
            registry=r,
        )
        self.forecast_evidence = Enum(
            "router_price_forecast_evidence",
            "Whether the forecast had enough evidence to price at the last refresh: enough, "
            "too_few_orders (below --forecast-min-orders) or too_few_hours (below "
            "--forecast-min-hours); no prices while it has not",
            states=[e.value for e in Evidence],
            registry=r,
        )
        self.plans = Counter(
            "router_plans",
            "Plans returned by PlanOrder and RouteOrder, by the price version they were "
            "priced with ('none': without prices) and status",
            ["price_version", "status"],
            registry=r,
        )
        self._plan_labels: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._add_rpc_metrics(r)
        self._add_domain_metrics(r)

    def _add_rpc_metrics(self, r: CollectorRegistry) -> None:
        """The gRPC ecosystem's server metrics (go-grpc-prometheus names and labels)."""
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.rpcs_started = Counter(
            "grpc_server_started",
            "RPCs started on the server (after gRPC found the method; before any check)",
            labels,
            registry=r,
        )
        self.rpcs_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status code (refusals of the access and limits "
            "checks included)",
            [*labels, "grpc_code"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the RPC's start on a worker thread to its status, by method",
            labels,
            buckets=HANDLING_BUCKETS_S,
            registry=r,
        )

    def _add_domain_metrics(self, r: CollectorRegistry) -> None:
        """Plans by strategy, solve time, gap and rule version; then :meth:`_add_ledger_metrics`."""
        self.plans_by_strategy = Counter(
            "router_plans_by_strategy",
            "Plans returned by PlanOrder and RouteOrder (not replays), by the routing "
            "strategy that made them and status",
            ["strategy", "status"],
            registry=r,
        )
        self.solve_seconds = Histogram(
            "router_solve_duration_seconds",
            "The engine's solve time of each plan returned (the plan's solve_time), by engine",
            ["engine"],
            buckets=HANDLING_BUCKETS_S,
            registry=r,
        )
        self.plan_gap = Histogram(
            "router_plan_gap",
            "Relative optimality gap of each plan returned (0: proven optimal)",
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.rule_version = Gauge(
            "router_rule_version_active",
            "Number of the rule-set version this replica routed with last (0: none yet)",
            registry=r,
        )
        self._add_rejection_metrics(r)
        self._add_ledger_metrics(r)
        self.pruned = Counter(
            "router_decisions_pruned",
            "Decisions the sweeper deleted from the decision log, past its retention",
            registry=r,
        )

    def _add_rejection_metrics(self, r: CollectorRegistry) -> None:
        """Rejected shipments (RejectShipment) by what became of their units."""
        self.rejections = Counter(
            "router_rejections",
            "Shipments rejected by a node (RejectShipment, not replays), by what became of "
            "the units: rerouted (held at other nodes, all or some) or backordered (none "
            "could be: the rejection limit, or no other node)",
            ["outcome"],
            registry=r,
        )
        for outcome in REJECTION_OUTCOMES:
            self.rejections.labels(outcome)

    def _add_ledger_metrics(self, r: CollectorRegistry) -> None:
        """Reservations, conflicts, replays, feeds and the sweeper."""
        self.reservations = Counter(
            "router_reservations",
            "Reservations by what happened to them on this replica: held (RouteOrder, not "
            "replays), confirmed and released (their successful RPCs, retries included) and "
            "expired (the sweeper)",
            ["outcome"],
            registry=r,
        )
        for outcome in RESERVATION_OUTCOMES:
            self.reservations.labels(outcome)
        self.stock_conflicts = Counter(
            "router_stock_conflicts",
            "RouteOrder reservations refused at write time because other orders took the "
            "stock or slots between the read and the write (each is followed by a re-solve "
            "or, after the last attempt, FAILED_PRECONDITION)",
            registry=r,
        )
        self.resolves = Counter(
            "router_resolve_attempts",
            "RouteOrder plans made again after a stock conflict",
            registry=r,
        )
        self.replays = Counter(
            "router_idempotent_replays",
            "Calls answered from the ledger's stored answer of their request_id",
            ["grpc_method"],
            registry=r,
        )
        self.feed_updates = Counter(
            "router_feed_updates",
            "Stock feed updates by kind (snapshot, delta) and outcome (applied, stale, duplicate)",
            ["kind", "outcome"],
            registry=r,
        )
        for kind in ("snapshot", "delta"):
            for feed_outcome in FeedOutcome:
                self.feed_updates.labels(kind, feed_outcome.value)
        self.feed_applied_at = Gauge(
            "router_feed_last_applied_timestamp_seconds",
            "Unix time this replica last applied an update of each feed (the newest "
            f"{KEPT_FEEDS} feeds)",
            ["feed"],
            registry=r,
        )
        self._feeds: dict[str, None] = {}
        self.sweeps = Counter(
            "router_sweeps", "Sweeps of lapsed reservations, by result", ["result"], registry=r
        )
        for result in ("ok", "failed"):
            self.sweeps.labels(result)
        self.swept_at = Gauge(
            "router_sweeper_last_success_timestamp_seconds",
            "Unix time of the last sweep that succeeded (the sweeper's lag is time() minus "
            "this; healthy: under two sweep intervals)",
            registry=r,
        )
        self.sweep_seconds = Histogram(
            "router_sweep_duration_seconds",
            "Time a successful sweep took",
            buckets=HANDLING_BUCKETS_S,
            registry=r,
        )
        self.expiring = Gauge(
            "router_reservations_expiring",
            "HELD reservations lapsing within the expiring window (--expiring-window) at the "
            "last sweep: orders the OMS has not confirmed yet",
            registry=r,
        )
        self.past_ship_date = Gauge(
            "router_reservations_past_ship_date",
            "HELD reservations with a shipment whose ship date passed (UTC) at the last "
            "sweep: confirmations missing",
            registry=r,
        )

    def count_plan(self, price_version: str, status: str) -> None:
        """Count one plan returned with ``price_version`` ("" → ``none``) and ``status``."""
        labels = (price_version or NO_PRICES, status)
        with self._lock:
            self._plan_labels.add(labels)
            self.plans.labels(*labels).inc()

    def count_solved(
        self,
        *,
        strategy: str,
        status: str,
        engine: str,
        solve_s: float,
        gap: float,
        rule_version: str,
    ) -> None:
        """Count one plan returned: by strategy and status, its solve time, gap, rule version.

        ``rule_version`` is the plan's label (``name@vN``; a draft sets no version).
        """
        self.plans_by_strategy.labels(strategy or "none", status).inc()
        self.solve_seconds.labels(engine or "none").observe(solve_s)
        self.plan_gap.observe(gap)
        number = _version_number(rule_version)
        if number is not None:
            self.rule_version.set(number)

    def count_feed(self, kind: str, feed: str, outcome: FeedOutcome, now_s: float) -> None:
        """Count one feed update; an applied one stamps its feed's last-applied time."""
        self.feed_updates.labels(kind, outcome.value).inc()
        if outcome is not FeedOutcome.APPLIED:
            return
        with self._lock:
            self._feeds.pop(feed, None)
            self._feeds[feed] = None  # newest last
            self.feed_applied_at.labels(feed).set(now_s)
            while len(self._feeds) > KEPT_FEEDS:
                oldest = next(iter(self._feeds))
                del self._feeds[oldest]
                self.feed_applied_at.remove(oldest)

    def watch_pool(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Export a connection pool's figures (psycopg_pool's ``get_stats``) at each scrape."""
        self.registry.register(_PoolCollector(stats))

    def forget_price_versions_before(self, version: int) -> None:
        """Drop the plan series of price versions below ``version``."""
        with self._lock:
            for labels in sorted(self._plan_labels):
                number = _version_number(labels[0])
                if number is not None and number < version:
                    self.plans.remove(*labels)
                    self._plan_labels.discard(labels)


POOL_FIGURES: tuple[tuple[Callable[[str, str, float], Metric], str, str, float, str], ...] = (
    (GaugeMetricFamily, "router_db_pool_size", "pool_size", 1, "Connections the pool holds now"),
    (GaugeMetricFamily, "router_db_pool_available", "pool_available", 1,
     "Connections idle in the pool now"),
    (GaugeMetricFamily, "router_db_pool_requests_waiting", "requests_waiting", 1,
     "Requests waiting for a connection now (healthy: 0 most of the time)"),
    (CounterMetricFamily, "router_db_pool_requests", "requests_num", 1,
     "Connections asked of the pool"),
    (CounterMetricFamily, "router_db_pool_requests_queued", "requests_queued", 1,
     "Connections asked of the pool that had to wait for one"),
    (CounterMetricFamily, "router_db_pool_wait_seconds", "requests_wait_ms", 1e-3,
     "Time requests waited for a connection"),
    (CounterMetricFamily, "router_db_pool_timeouts", "requests_errors", 1,
     "Requests that found no connection within the pool's timeout (UNAVAILABLE)"),
    (CounterMetricFamily, "router_db_connections_lost", "connections_lost", 1,
     "Connections found broken and discarded"),
)  # fmt: skip
"""The pool's figures: (family, metric name, psycopg_pool ``get_stats`` key, scale, help)."""


class _PoolCollector(Collector):
    """The ledger's database connection pool, read when scraped: size, free, waits."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """Gauges of the pool now; counters of the requests and waits since it opened."""
        stats = self._stats()
        for family, name, key, scale, text in POOL_FIGURES:
            yield family(name, text, stats.get(key, 0) * scale)

    def describe(self) -> Iterator[Metric]:
        """Nothing: the families are read at each collect (the registry must not call it)."""
        return iter(())


def _version_number(label: str) -> int | None:
    """7 for ``prices@v7``; None for ``none`` or any other label."""
    _, sep, number = label.rpartition("@v")
    return int(number) if sep and number.isdigit() else None


@dataclass(frozen=True)
class MetricsEndpoint:
    """An HTTP server answering ``GET /metrics`` from one registry, on its own thread."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the free one picked for port 0)."""
        return int(self.httpd.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def serve_metrics(metrics: ServiceMetrics, host: str, port: int) -> MetricsEndpoint:
    """Serve ``metrics`` at ``http://host:port/metrics`` (port 0 picks a free one)."""
    httpd, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsEndpoint(httpd, thread)
