"""Prometheus metrics of one server: look-ahead price refreshes and the plans made with them.

Each :class:`ServiceMetrics` has its own registry, so several servers in one process (the
tests) never share a series; :func:`serve_metrics` exposes one registry over HTTP at
``/metrics``. docs/lookahead-service.md lists every metric.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    start_http_server,
)

from models.lookahead import Evidence

NO_PRICES = "none"
"""The ``price_version`` label of plans made without prices (their ``price_version`` is "")."""
KEPT_PRICE_VERSIONS = 3
"""Price versions whose ``router_plans_total`` series are kept (the newest ones); older
series are dropped when a new version is published, so the label set stays bounded."""
REFRESH_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Buckets of ``router_price_refresh_duration_seconds``: a price LP takes from well under a
second (small networks) to minutes (large ones)."""


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

    def count_plan(self, price_version: str, status: str) -> None:
        """Count one plan returned with ``price_version`` ("" → ``none``) and ``status``."""
        labels = (price_version or NO_PRICES, status)
        with self._lock:
            self._plan_labels.add(labels)
            self.plans.labels(*labels).inc()

    def forget_price_versions_before(self, version: int) -> None:
        """Drop the plan series of price versions below ``version``."""
        with self._lock:
            for labels in sorted(self._plan_labels):
                number = _version_number(labels[0])
                if number is not None and number < version:
                    self.plans.remove(*labels)
                    self._plan_labels.discard(labels)


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
