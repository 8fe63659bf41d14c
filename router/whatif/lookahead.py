"""The look-ahead policy: the engine, steered by stock prices re-computed as the replay runs.

:class:`LookAheadPolicy` routes like :class:`~router.whatif.policies.EnginePolicy`
(``route_order`` under its rules) with every strategy's ``opportunity_cost`` set to
:attr:`LookAhead.opportunity_cost` (where the rules leave it at 0) and with the current
:class:`~models.lookahead.StockPrices`. Prices are re-computed by
:func:`router.engine.prices.price_stock` from the replay's current stock and a forecast:

- before the first order that comes ``refresh_orders`` orders after the last pricing,
- before the first order after a replenishment of at least ``restock_units`` units arrived
  (replay tells the policy, :meth:`LookAheadPolicy.arrived`),

and, with a rolling forecast, never before the service's evidence rule allows it
(:class:`~models.lookahead.ForecastRule`: ``min_orders`` orders over ``min_hours``). The
forecast is either the rolling one the service keeps, from the orders already routed in
this replay within the last ``window_hours`` (the current order excluded), gathered over
the window or the replay's age when younger, and shrunk toward zero demand with the
weight of ``prior_hours`` (:meth:`~models.lookahead.Forecast.from_orders`), or a fixed one
given with the configuration (``router whatif --forecast FILE``). Prices are bounded by
``max_price_ratio`` times each unit's own cost, as the service's. Each decision carries
the price version it used (``prices@v3``; empty before the first pricing).

The policy is the one stateful thing of a replay: make a new one per replay
(:func:`~router.whatif.run.execute` does). Given the same stream it makes the same
decisions: the forecast depends only on the orders already seen, the prices on it and the
replay's stock, and the LP is solved deterministically.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from models.capacity import CapacityUsed
from models.lookahead import MAX_PRICE_RATIO, Forecast, ForecastRule, StockPrices, Waiting
from models.network import Network, Stock
from models.order import Order
from models.rules import RuleSet
from router.engine import route_order
from router.engine.prices import NEAREST, UNITS_PER_SHIPMENT, price_stock
from router.engine.solve import FAST
from router.engine.terms import BuiltModel
from router.whatif.decision import Decision, decision_of

LOOK_AHEAD = "look-ahead"
"""The policy's name in records and in ``--policies``."""

_NO_TIME_LEFT = 1e-6
"""Hours a forecast covers at the replay's last order (a horizon must be > 0): no demand."""


@dataclass(frozen=True, slots=True)
class LookAhead:
    """How the look-ahead policy prices stock (docs/lookahead.md has the defaults' why).

    ``forecast``: a fixed forecast (a file's), else the rolling one from orders seen, under
    the service's rule (:attr:`forecast_rule`: ``min_orders``, ``min_hours``,
    ``prior_hours``, with the service's defaults).
    ``until``: when the replay's last order arrives (:func:`~router.whatif.run.execute`
    sets it). Prices look no further: demand after the replay is in no replayed order's
    cost, so the horizon shrinks to the hours left (a fixed forecast's units with it),
    as the published benchmark's DLP is re-solved over the periods left.
    """

    opportunity_cost: float = 1.0
    horizon_hours: float = 24.0
    window_hours: float = 36.0
    refresh_orders: int = 25
    min_orders: int = ForecastRule().min_orders
    min_hours: float = ForecastRule().min_hours
    prior_hours: float = ForecastRule().prior_hours
    max_price_ratio: float = MAX_PRICE_RATIO
    restock_units: int = 1
    nearest: int = NEAREST
    units_per_shipment: float = UNITS_PER_SHIPMENT
    forecast: Forecast | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.opportunity_cost >= 0:
            problems.append(f"opportunity_cost must be >= 0, got {self.opportunity_cost}")
        for name in ("horizon_hours", "window_hours", "units_per_shipment", "max_price_ratio"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("refresh_orders", "nearest", "restock_units"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        rule = ForecastRule.problems(self.min_orders, self.min_hours, self.prior_hours)
        problems += [f"{name} {why}" for name, why in rule.items()]
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def forecast_rule(self) -> ForecastRule:
        """The rolling forecast's evidence rule and shrinkage: the service's, with these values."""
        return ForecastRule(self.min_orders, self.min_hours, self.prior_hours)

    def label(self) -> str:
        """A short description for reports: the forecast and the pricing cadence."""
        where = (
            self.forecast.source
            if self.forecast is not None
            else (
                f"rolling {self.window_hours:g} h of orders (from {self.min_orders} orders "
                f"over {self.min_hours:g} h, shrunk toward zero over {self.prior_hours:g} h)"
            )
        )
        until = "" if self.until is None else ", never past the replay's last order"
        return (
            f"opportunity_cost={self.opportunity_cost:g}, horizon {self.horizon_hours:g} h"
            f"{until}, forecast {where}, prices at most {self.max_price_ratio:g} x a unit's "
            f"own cost, re-priced every {self.refresh_orders} orders and on restock"
        )


@dataclass(slots=True)
class LookAheadPolicy:
    """The engine with look-ahead stock prices; one object per replay (it keeps state)."""

    rules: RuleSet
    config: LookAhead = LookAhead()
    engine: str = FAST
    name: str = LOOK_AHEAD
    prices: StockPrices | None = None
    seen: list[Order] = field(default_factory=list, repr=False)
    _seen_at: list[datetime] = field(default_factory=list, repr=False)
    _since: int = 0
    _restocked: int = 0
    _priced_rules: RuleSet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        weight = self.config.opportunity_cost
        strategies = tuple(
            s
            if s.policy.opportunity_cost > 0
            else replace(s, policy=replace(s.policy, opportunity_cost=weight))
            for s in self.rules.strategies
        )
        self._priced_rules = replace(self.rules, strategies=strategies)

    def arrived(self, units: Mapping[tuple[str, str], int]) -> None:
        """Replay's notice that replenishment ``units`` (per (node, SKU)) arrived on hand."""
        self._restocked += sum(max(0, u) for u in units.values())

    def decide(
        self,
        order: Order,
        evaluation: BuiltModel,
        network: Network,
        stock: Stock,
        capacity_used: CapacityUsed,
    ) -> Decision:
        """Re-price when due, then route with the engine on the priced model."""
        if self._due():
            self._price(order.created_at, network, stock)
        plan = route_order(
            order,
            network,
            stock,
            self._priced_rules,
            capacity_used=capacity_used,
            engine=self.engine,
            prices=self.prices,
        )
        self.seen.append(order)
        self._seen_at.append(order.created_at)
        self._since += 1
        return decision_of(
            plan, order, evaluation, policy=self.name, label=self._priced_rules.label
        )

    def _due(self) -> bool:
        """Whether to price before this order.

        Always while there are no prices (a rolling forecast may still wait for evidence),
        else after ``refresh_orders`` orders or a restock.
        """
        config = self.config
        if self.prices is None:
            return True
        return self._since >= config.refresh_orders or self._restocked >= config.restock_units

    def _forecast(self, now: datetime) -> Forecast | Waiting:
        config = self.config
        horizon = config.horizon_hours
        if config.until is not None:
            left = (config.until - now).total_seconds() / 3600
            horizon = max(min(horizon, left), _NO_TIME_LEFT)
        if config.forecast is not None:
            return (
                config.forecast
                if horizon == config.horizon_hours
                else config.forecast.within(horizon)
            )
        start = now - timedelta(hours=config.window_hours)
        first = bisect.bisect_left(self._seen_at, start)
        recent = self.seen[first:]
        # The replay's age, not the first recent order's: a lull at the window's start
        # must not shrink the window the units are spread over.
        covered = (now - self._seen_at[0]).total_seconds() / 3600 if recent else 0.0
        hours = min(config.window_hours, covered)
        return config.forecast_rule.forecast(recent, hours=hours, horizon_hours=horizon)

    def _price(self, now: datetime, network: Network, stock: Stock) -> None:
        forecast = self._forecast(now)
        if isinstance(forecast, Waiting):
            self.prices = None  # as the service: no prices without evidence
            return
        priced = self._priced_rules.pricing_strategy or self._priced_rules.strategies[0]
        policy = priced.policy  # the service's choice (docs/lookahead-service.md)
        prices = price_stock(
            network,
            stock,
            forecast,
            policy,
            nearest=self.config.nearest,
            units_per_shipment=self.config.units_per_shipment,
            max_price_ratio=self.config.max_price_ratio,
        )
        version = 1 if self.prices is None else self.prices.version + 1
        self.prices = StockPrices(version, now, forecast.source, forecast.horizon_hours, prices)
        self._since = 0
        self._restocked = 0
