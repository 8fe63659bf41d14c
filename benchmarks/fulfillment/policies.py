"""The benchmark's policies: published baselines and the look-ahead policy.

Each policy decides, for one arriving order (type q at city j) and the stock left, the
centre to try for each item (the dummy row K for "do not serve"). The simulation
(:mod:`benchmarks.fulfillment.simulate`) ships an item from its centre when that centre
still has it and sends it to the dummy otherwise (no re-routing), as published.

- ``myopic``: each item from the closest centre that carries it.
- ``js``: Jasin & Sinha's correlated rounding of the DLP shares of (q, j).
- ``dilated``: Ma's dilated rounding: one exponential clock per centre, each item goes to
  the centre whose clock divided by the item's share rings first.
- ``greedy``: the order's exact optimum on current stock, planned by the product's engine
  (``plan_order``, fast engine) on the benchmark's costs
  (:mod:`benchmarks.fulfillment.product`).
- ``lookahead``: the same, with each unit of stock priced at its opportunity cost through
  the product's priced model (:class:`~models.lookahead.StockPrices`, ``opportunity_cost``
  1): the dual value of its stock row in the DLP re-solved on the stock and periods left,
  ``resolves`` times per sequence.
- ``lookahead-lp``: look-ahead with the product's own prices, the duals of its pricing
  LP (:func:`~router.engine.prices.price_stock`) over the expected demand of the
  periods left, in place of the DLP's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from benchmarks.fulfillment.dlp import Dlp, solve_dlp
from benchmarks.fulfillment.instance import Instance
from benchmarks.fulfillment.product import LiveStock, ProductInstance
from models.lookahead import StockPrices

Centres = NDArray[np.int64]

_EPSILON = 1e-7
"""Shares at most this are zero in Jasin–Sinha's rounding (the published constant)."""


class FulfillmentPolicy(Protocol):
    """Decides where each item of an order is tried; ``start`` begins a sequence."""

    name: str

    def start(self, instance: Instance, dlp: Dlp, rng: np.random.Generator) -> None:
        """Prepare for a new arrival sequence of ``instance`` (``dlp``: its DLP at start)."""

    def decide(self, t: int, q: int, j: int, stock: NDArray[np.int64]) -> Centres:
        """The centre (dummy: K) to try for each item of type ``q`` at city ``j``, period t."""


@dataclass
class Myopic:
    """Each item from the closest centre that carries it (the dummy when none does)."""

    name: str = "myopic"
    _closest: NDArray[np.int64] = field(init=False, repr=False)
    _types: tuple[NDArray[np.int64], ...] = field(init=False, repr=False)

    def start(self, instance: Instance, dlp: Dlp, rng: np.random.Generator) -> None:
        """Keep the closest carrying centres."""
        self._closest = instance.closest
        self._types = tuple(np.array(items, dtype=np.int64) for items in instance.types)

    def decide(self, t: int, q: int, j: int, stock: NDArray[np.int64]) -> Centres:
        """The closest carrying centre of each item."""
        return np.asarray(self._closest[self._types[q], j], dtype=np.int64)


@dataclass
class Dilated:
    """Ma's dilated rounding of the DLP shares of the arriving (q, j)."""

    name: str = "dilated"
    _shares: tuple[tuple[NDArray[np.float64] | None, ...], ...] = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def start(self, instance: Instance, dlp: Dlp, rng: np.random.Generator) -> None:
        """Keep the DLP shares and the random stream."""
        self._shares, self._rng = dlp.shares, rng

    def decide(self, t: int, q: int, j: int, stock: NDArray[np.int64]) -> Centres:
        """Exponential opening times per centre, dilated by each item's share."""
        shares = self._shares[q][j]
        assert shares is not None
        clocks = np.asarray(self._rng.exponential(size=shares.shape[0]))
        with np.errstate(divide="ignore"):
            return np.asarray((clocks[:, None] / shares).argmin(axis=0), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _JsTable:
    """Jasin–Sinha's sampling tables for one (q, j).

    A (centre, level) slot is drawn with weight ``slot_weight``; item i goes to the slot's
    centre when ``covered[slot, i]``, else to a centre drawn from its own residual weights
    ``residual[i]``.
    """

    slot_centre: NDArray[np.int64]
    slot_cumulative: NDArray[np.float64]
    covered: NDArray[np.bool_]
    residual_cumulative: NDArray[np.float64]  # (items, slots)


def _js_table(shares: NDArray[np.float64]) -> _JsTable:
    """Steps 1–3 of Jasin & Sinha's correlated rounding (as in Ma's published code)."""
    n_rows, n = shares.shape
    tilde = np.zeros((n, n_rows, n))  # [level m - 1, centre, item]
    for k in range(n_rows):
        v = shares[k].copy()
        for m in range(n, 0, -1):
            positive = v > _EPSILON
            low = float(v[positive].min()) if positive.any() else 0.0
            if int(positive.sum()) < m:
                low = 0.0
            tilde[m - 1, k] = np.where(positive, low, 0.0)
            v -= tilde[m - 1, k]
    levels = np.arange(1, n + 1)
    lengths = tilde.max(axis=2) * (levels / n)[:, None]  # [m - 1, k]
    reduced = np.where(tilde > _EPSILON, tilde - lengths[:, :, None], 0.0)
    # Slots in (k, m) order.
    slot_weight = lengths.T.ravel()
    slot_centre = np.repeat(np.arange(n_rows), n)
    covered = (tilde.transpose(1, 0, 2) > 0).reshape(n_rows * n, n)
    residual = np.maximum(reduced.transpose(1, 0, 2).reshape(n_rows * n, n).T, 0.0)
    return _JsTable(
        slot_centre=slot_centre,
        slot_cumulative=np.cumsum(slot_weight) / slot_weight.sum(),
        covered=covered,
        residual_cumulative=np.cumsum(residual, axis=1)
        / np.maximum(residual.sum(axis=1, keepdims=True), 1e-300),
    )


@dataclass
class JasinSinha:
    """Jasin & Sinha's correlated rounding of the DLP shares of the arriving (q, j)."""

    name: str = "js"
    _tables: dict[tuple[int, int], _JsTable] = field(init=False, repr=False)
    _shares: tuple[tuple[NDArray[np.float64] | None, ...], ...] | None = field(
        init=False, repr=False, default=None
    )
    _rng: np.random.Generator = field(init=False, repr=False)

    def start(self, instance: Instance, dlp: Dlp, rng: np.random.Generator) -> None:
        """Keep the shares (and the tables made from them, on first use of each (q, j))."""
        if dlp.shares is not self._shares:
            self._tables, self._shares = {}, dlp.shares
        self._rng = rng

    def decide(self, t: int, q: int, j: int, stock: NDArray[np.int64]) -> Centres:
        """One correlated draw for the whole order."""
        table = self._tables.get((q, j))
        if table is None:
            assert self._shares is not None
            shares = self._shares[q][j]
            assert shares is not None
            table = self._tables[(q, j)] = _js_table(shares)
        draws = self._rng.random(1 + table.covered.shape[1])
        slot = int(np.searchsorted(table.slot_cumulative, draws[0], side="right"))
        slot = min(slot, len(table.slot_centre) - 1)
        centres = np.full(table.covered.shape[1], table.slot_centre[slot], dtype=np.int64)
        for i in np.flatnonzero(~table.covered[slot]).tolist():
            other = int(np.searchsorted(table.residual_cumulative[i], draws[1 + i], side="right"))
            centres[i] = table.slot_centre[min(other, len(table.slot_centre) - 1)]
        return centres


@dataclass
class Greedy:
    """The order's exact optimum on current stock, by the product's engine; priced for look-ahead.

    Each decision is ``plan_order`` (fast engine) on the order, network and stock of
    :mod:`benchmarks.fulfillment.product`. With ``resolves`` > 0 (look-ahead) every unit
    is priced (as :class:`~models.lookahead.StockPrices`, with ``opportunity_cost`` 1) at
    its stock dual in the DLP, or with ``pricing_lp`` by the product's own pricing LP over
    the expected demand, re-solved on the stock and periods left at ``resolves`` evenly
    spaced periods (the first at 0, where the DLP is the one given to :meth:`start`). A
    plan is remembered per (q, j) until a re-solve: while every unit it takes is still in
    stock it is still optimal, and still the engine's choice among equal plans (stock only
    shrinks, so no plan can appear), which spares most solves without changing a decision.
    """

    name: str = "greedy"
    resolves: int = 0
    pricing_lp: bool = False
    resolve_seconds: float = field(init=False, default=0.0)
    _instance: Instance | None = field(init=False, repr=False, default=None)
    _product: ProductInstance = field(init=False, repr=False)
    _stock: LiveStock = field(init=False, repr=False)
    _prices: StockPrices | None = field(init=False, repr=False)
    _next_resolve: int = field(init=False, repr=False)
    _plans: dict[tuple[int, int], tuple[Centres, list[tuple[int, int]]]] = field(
        init=False, repr=False
    )

    def start(self, instance: Instance, dlp: Dlp, rng: np.random.Generator) -> None:
        """Start with the prices at period 0 (look-ahead) or none (greedy).

        The product's network is built on the first sequence of an instance and kept.
        """
        if instance is not self._instance:
            self._instance, self._product = instance, ProductInstance.of(instance)
        self._stock = LiveStock(self._product, instance.stock)
        self._plans = {}
        self.resolve_seconds = 0.0
        self._prices = None
        self._next_resolve = instance.periods + 1
        if self.resolves:
            self._next_resolve = 0
            self._price(0, instance.stock, dlp)

    @property
    def _interval(self) -> int:
        return max(1, -(-self._product.instance.periods // max(1, self.resolves)))

    def _price(self, t: int, stock: NDArray[np.int64], dlp: Dlp | None = None) -> None:
        """Prices for the periods left after ``t`` on ``stock``; ``dlp``: already solved."""
        started = time.perf_counter()
        left = self._product.instance.periods - t
        version = t // self._interval
        if self.pricing_lp:
            self._prices = self._product.lp_prices(self._stock.view(stock), version, left)
        else:
            dlp = dlp or solve_dlp(self._product.instance, stock, left)
            self._prices = self._product.dlp_prices(dlp.prices, version, left)
        if t:  # pricing at period 0 is part of start, outside the decisions' time
            self.resolve_seconds += time.perf_counter() - started
        self._next_resolve += self._interval
        self._plans.clear()

    def decide(self, t: int, q: int, j: int, stock: NDArray[np.int64]) -> Centres:
        """The product's optimal plan of the order on ``stock`` with priced units."""
        instance = self._product.instance
        if t >= self._next_resolve:
            self._price(t, stock)
        known = self._plans.get((q, j))
        if known is not None and all(stock[k, i] > 0 for k, i in known[1]):
            return known[0]
        plan = self._product.plan(q, j, self._stock.view(stock), self._prices)
        centres = self._product.centres(plan)
        dummy = instance.geography.dummy
        items = instance.types[q]
        cells = [(k, i) for k, i in zip(centres.tolist(), items, strict=True) if k != dummy]
        self._plans[(q, j)] = (centres, cells)
        return centres


POLICIES = ("myopic", "js", "dilated", "greedy", "lookahead", "lookahead-lp")


def make_policy(name: str, *, resolves: int = 20) -> FulfillmentPolicy:
    """A fresh policy by name (``resolves``: price re-solves per sequence for look-ahead)."""
    match name:
        case "myopic":
            return Myopic()
        case "js":
            return JasinSinha()
        case "dilated":
            return Dilated()
        case "greedy":
            return Greedy()
        case "lookahead":
            return Greedy(name="lookahead", resolves=resolves)
        case "lookahead-lp":
            return Greedy(name="lookahead-lp", resolves=resolves, pricing_lp=True)
    raise ValueError(f"policy: unknown {name!r}; expected one of {', '.join(POLICIES)}")
