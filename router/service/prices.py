"""Look-ahead stock prices in the live service: a board routing reads, a thread that refreshes it.

:class:`PriceBoard` holds the current :class:`~models.lookahead.StockPrices` behind one
reference that is swapped whole, so routing reads whatever prices are current without a
lock and never waits for a refresh (``None`` before the first one: plans are then made
without prices and their ``price_version`` is ""). A daemon thread re-computes the prices
every ``refresh_interval_s``, and early after a big stock change, many newly routed
orders or a change of the active rule set (:class:`PriceSettings`); each successful
refresh publishes version N + 1 of this process, a failed one keeps the old prices and
counts a failure. It computes only while the active rule set has a strategy with
``opportunity_cost`` > 0, and idles otherwise.
The board learns the active rule set from routing (:meth:`PriceBoard.for_rules`, at
every request), so it adds no ledger reads of its own beside the stock it prices: the
first prices are computed right after the first request under such rules.

Expected demand comes from a forecast file (``router serve --forecast``, read once at
start-up by :func:`router.scenario.read_forecast`) or from :class:`RecentOrders`, a
rolling window of the orders RouteOrder routed. A rolling forecast prices nothing until
its :class:`~models.lookahead.ForecastRule` finds enough evidence (the same rule as the
what-if look-ahead policy's), and shrinks thin windows toward zero demand.
docs/lookahead-service.md describes the policy for operators.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from models.lookahead import (
    Evidence,
    Forecast,
    StockPrices,
    Waiting,
)
from models.network import Network, Stock
from models.order import Order
from models.rules import Policy, RuleSet
from router.ledger.stock import StockStore
from router.service.config import PriceFunction, PriceSettings
from router.service.metrics import KEPT_PRICE_VERSIONS, ServiceMetrics

logger = logging.getLogger(__name__)


START, INTERVAL = "start", "interval"
STOCK_CHANGE, FORECAST_CHANGE, RULES_CHANGE = "stock_change", "forecast_change", "rules_change"
"""What started a refresh (the ``trigger`` label of ``router_price_refreshes_total``)."""


class RecentOrders:
    """The orders routed in the last ``window_hours``, by order id; safe across threads.

    An order routed again (a retry under a new request id, a re-route) replaces its earlier
    entry, so each order id counts once.
    """

    def __init__(
        self, window_hours: float, max_orders: int, started_s: float | None = None
    ) -> None:
        self._window_s = window_hours * 3600.0
        self._max_orders = max_orders
        self._started_s = time.monotonic() if started_s is None else started_s
        self._orders: OrderedDict[str, tuple[float, Order]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, order: Order, now_s: float | None = None) -> None:
        """Remember ``order`` as routed at ``now_s`` (monotonic seconds; default now)."""
        at = time.monotonic() if now_s is None else now_s
        with self._lock:
            self._orders.pop(order.order_id, None)
            self._orders[order.order_id] = (at, order)
            while len(self._orders) > self._max_orders:
                self._orders.popitem(last=False)

    def covered_hours(self, now_s: float | None = None) -> float:
        """Hours the window's orders were gathered over: the window, or less since start-up.

        Just after a restart this is a few minutes; the forecast's evidence rule and
        shrinkage (:class:`~models.lookahead.ForecastRule`) keep them from being scaled up
        to the whole horizon.
        """
        age_s = (time.monotonic() if now_s is None else now_s) - self._started_s
        return min(self._window_s, max(0.0, age_s)) / 3600.0

    def orders(self, now_s: float | None = None) -> tuple[Order, ...]:
        """The orders routed within the window before ``now_s``, oldest first."""
        with self._lock:
            self._drop_before(now_s)
            return tuple(order for _, order in self._orders.values())

    def count(self, now_s: float | None = None) -> int:
        """How many orders were routed within the window before ``now_s``."""
        with self._lock:
            self._drop_before(now_s)
            return len(self._orders)

    def _drop_before(self, now_s: float | None) -> None:
        """Forget the orders older than the window (the caller holds the lock)."""
        cutoff = (time.monotonic() if now_s is None else now_s) - self._window_s
        while self._orders:
            at, _ = next(iter(self._orders.values()))
            if at >= cutoff:
                break
            self._orders.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Published:
    """The current prices with what the early-refresh checks compare against."""

    prices: StockPrices
    skus: frozenset[str]
    """The SKUs priced: stock moves of other SKUs do not count towards an early refresh."""
    base_units: int
    """Available units of those SKUs when the prices were computed."""
    window_units: int
    """Units of the orders in the forecast's window then (0 with a forecast file)."""


class PriceBoard:
    """The current stock prices, and the thread that keeps them fresh.

    ``forecast`` is a fixed forecast (from a file), else the window of routed orders is.
    """

    def __init__(
        self,
        network: Network,
        ledger: StockStore,
        metrics: ServiceMetrics,
        settings: PriceSettings = PriceSettings(),
        *,
        forecast: Forecast | None = None,
        price: PriceFunction | None = None,
    ) -> None:
        self._network = network
        self._ledger = ledger
        self._metrics = metrics
        self._settings = settings
        self._forecast = forecast
        self._rule = settings.forecast_rule
        self._price = price or functools.partial(
            _price_stock, max_price_ratio=settings.max_price_ratio
        )
        self.recent = RecentOrders(settings.forecast_window_hours, settings.max_window_orders)
        metrics.forecast_evidence.state(
            Evidence.ENOUGH if forecast is not None else self._rule.evidence(0, 0.0)
        )
        self._published: _Published | None = None
        self._rules: RuleSet | None = None  # the rule set routing used last
        self._version = 0
        self._lock = threading.Lock()  # guards the fields below
        self._moved = 0
        self._routed = 0  # units of orders routed since the last refresh began
        self._early: str | None = None
        self._rules_seen = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="price-refresher", daemon=True)

    # --- what routing and the feeds call ------------------------------------------------

    @property
    def current(self) -> StockPrices | None:
        """The prices to route with now; None before the first successful refresh."""
        published = self._published  # one read of one reference: never torn, never waits
        return None if published is None else published.prices

    def for_rules(self, rules: RuleSet) -> StockPrices | None:
        """:attr:`current`; ``rules`` is the active rule set a request routes with.

        Refreshes price under the rules routing used last. A rule set with a pricing
        strategy that the last refresh did not see (the first request, or an activation
        through any replica) asks for an early refresh; until it is done plans use the
        current prices, if any.
        """
        if rules is not self._rules:
            self._rules = rules
            if rules.label != self._rules_seen and rules.pricing_strategy is not None:
                self.request_refresh(RULES_CHANGE)
        return self.current

    def record_order(self, order: Order) -> None:
        """Count a routed order in the forecast's window (ignored with a forecast file).

        Refreshes early once the units routed since the last refresh are above the
        :attr:`PriceSettings.stock_change_fraction` of those in the window then; without
        prices, once the window holds enough evidence to price (under pricing rules).
        """
        if self._forecast is not None:
            return
        self.recent.record(order)
        published = self._published
        if published is None:
            rules = self._rules
            if rules is not None and rules.pricing_strategy is not None:
                evidence = self._rule.evidence(self.recent.count(), self.recent.covered_hours())
                if evidence is Evidence.ENOUGH:
                    self.request_refresh(FORECAST_CHANGE)
            return
        with self._lock:
            self._routed += sum(line.quantity for line in order.lines)
            routed = self._routed
        if routed > self._settings.stock_change_fraction * published.window_units:
            self.request_refresh(FORECAST_CHANGE)

    def stock_moved(self, moves: Iterable[tuple[str, int]]) -> None:
        """Count (sku, units) that changed availability; refresh early past the threshold."""
        published = self._published
        if published is None:
            return
        units = sum(abs(q) for sku, q in moves if sku in published.skus)
        if not units:
            return
        with self._lock:
            self._moved += units
            moved = self._moved
        if moved > self._settings.stock_change_fraction * max(1, published.base_units):
            self.request_refresh(STOCK_CHANGE)

    def snapshot_applied(self) -> None:
        """A feed replaced a node's stock: refresh early."""
        if self._published is not None:
            self.request_refresh(STOCK_CHANGE)

    def request_refresh(self, trigger: str) -> None:
        """Ask the thread to refresh as soon as :attr:`PriceSettings.min_gap_s` allows."""
        with self._lock:
            if self._early is None:
                self._early = trigger
        self._wake.set()

    # --- the thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Start refreshing in the background (at once when a request came already)."""
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop refreshing; wait up to ``timeout_s`` for a refresh in progress to end.

        A refresh still running after that is abandoned (the thread is a daemon) and
        publishes nothing.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        trigger: str | None = START
        computed = -math.inf  # when the last computation (success or failure) began
        while trigger is not None:
            started = time.monotonic()
            if self._refresh(trigger):
                computed = started
            trigger = self._next_trigger(
                started + self._settings.refresh_interval_s, computed + self._settings.min_gap_s
            )

    def _next_trigger(self, due: float, earliest: float) -> str | None:
        """Wait for the next refresh, at ``due`` or early (not before ``earliest``).

        What triggers it, or None when stopping.
        """
        while not self._stopping.is_set():
            now = time.monotonic()
            with self._lock:
                early = self._early
                if early is not None and now >= earliest:
                    self._early = None
                    return early
            if now >= due:
                return INTERVAL
            until = due if early is None else min(due, earliest)
            self._wake.wait(until - now)
            self._wake.clear()
        return None

    def _refresh(self, trigger: str) -> bool:
        """Compute and publish new prices now, on the refresher thread.

        False when nothing was computed: no request has come yet, or its rules have no
        pricing strategy (idle). A failure is logged and counted, and the old prices stay.
        A rolling forecast without enough evidence withdraws the prices (:meth:`_wait`).
        """
        with self._lock:
            moved_before = self._moved  # moves from here on are not in the stock read below
            routed_before = self._routed
            # This refresh serves what was asked before it began. Cleared before the rules
            # are read: a rules change asked for after that read is kept for the next one.
            self._early = None
        rules = self._rules
        if rules is None:
            return False
        self._rules_seen = rules.label
        strategy = rules.pricing_strategy
        self._metrics.pricing_enabled.set(0 if strategy is None else 1)
        if strategy is None:
            return False
        began = time.perf_counter()
        try:
            forecast, window_units = self._current_forecast()
            if isinstance(forecast, Waiting):
                self._wait(forecast, trigger)
                return True
            skus = frozenset(d.sku for d in forecast.demand)
            stock = self._ledger.stock(skus) if skus else Stock.of(())
            prices = dict(self._price(self._network, stock, forecast, strategy.policy))
        except Exception:
            if self._stopping.is_set():
                return True  # the ledger closing under a refresh at shutdown: no failure
            logger.exception("price refresh (%s) failed: keeping %s", trigger, self._label())
            self._metrics.refresh_failures.inc()
            return True
        if self._stopping.is_set():
            return True  # stopped meanwhile: publish nothing after stop
        elapsed = time.perf_counter() - began
        with self._lock:
            self._version += 1
            self._moved -= moved_before  # moves during the refresh still count
            self._routed -= routed_before
            published = StockPrices(
                self._version, datetime.now(UTC), forecast.source, forecast.horizon_hours, prices
            )
            self._published = _Published(
                published, skus, sum(p.available for p in stock.positions.values()), window_units
            )
        m = self._metrics
        m.price_version.set(published.version)
        m.price_refreshed.set(published.computed_at.timestamp())
        m.refresh_seconds.observe(elapsed)
        m.refreshes.labels(trigger).inc()
        m.forget_price_versions_before(published.version - KEPT_PRICE_VERSIONS + 1)
        logger.info(
            "published %s (%s, %d priced positions, %s, %.2fs, %s)",
            published.label,
            trigger,
            len(prices),
            forecast.source,
            elapsed,
            rules.label,
        )
        return True

    def _wait(self, waiting: Waiting, trigger: str) -> None:
        """Route without prices until the forecast has enough evidence; say why."""
        with self._lock:
            withdrawn = self._published
            self._published = None
        self._metrics.price_version.set(0)
        logger.info(
            "no prices (%s): the forecast waits for evidence: %s%s",
            trigger,
            waiting.reason,
            "" if withdrawn is None else f"; {withdrawn.prices.label} withdrawn",
        )

    def _current_forecast(self) -> tuple[Forecast | Waiting, int]:
        """The file's forecast, or the rule's from the orders routed within the window.

        With the units of the window's orders (0 for the file).
        """
        if self._forecast is not None:
            self._metrics.forecast_orders.set(0)
            return self._forecast, 0
        orders = self.recent.orders()
        hours = self.recent.covered_hours()
        m = self._metrics
        m.forecast_orders.set(len(orders))
        m.forecast_hours.set(hours)
        forecast = self._rule.forecast(
            orders, hours=hours, horizon_hours=self._settings.forecast_horizon_hours
        )
        m.forecast_evidence.state(
            forecast.evidence if isinstance(forecast, Waiting) else Evidence.ENOUGH
        )
        return forecast, sum(line.quantity for order in orders for line in order.lines)

    def _label(self) -> str:
        current = self.current
        return "no prices" if current is None else current.label


def _price_stock(
    network: Network,
    stock: Stock,
    forecast: Forecast,
    policy: Policy | None,
    *,
    max_price_ratio: float,
) -> Mapping[tuple[str, str], float]:
    """:func:`router.engine.prices.price_stock`, imported on first use (scipy is heavy)."""
    from router.engine.prices import price_stock

    return price_stock(network, stock, forecast, policy, max_price_ratio=max_price_ratio)
