"""Look-ahead stock prices: the opportunity cost of a unit, from the duals of a transport LP.

:func:`price_stock` solves one linear program over the expected demand of a
:class:`~models.lookahead.Forecast` and the current available stock::

    minimise   Σ_(r,n) c_rn·x_rn + Σ_r b·u_r + Σ_(n,s) P_ns·e_ns
    subject to Σ_n x_rn + u_r = D_r                 every demand r = (region, SKU)
               Σ_(r : sku(r) = s) x_rn − e_ns ≤ S_ns every stock position (n, s) used
               x, u, e ≥ 0

``x_rn`` are units of demand ``r`` served from node ``n``, ``u_r`` its units backordered at
the policy's ``backorder_cost_per_unit`` ``b``, ``e_ns`` units brought to ``n`` from
outside the LP at ``P_ns = max_price_ratio × c_ns``, where ``c_ns`` is the unit's own
cost: the least ``c_rn`` of the demands that may draw on it. The price of a unit of ``s``
at ``n`` is minus the dual of its stock row: what the expected demand would save with one
more unit there (0 where stock is plentiful, up to ``b − c`` where it is short for
everyone), and never more than ``P_ns``, since the LP buys ``e_ns`` before a unit is worth
more (docs/lookahead.md says why the bound is right).

``c_rn`` approximates the canonical model's cost of one unit (docs/cost-model.md) for an
order at the region's point: the node's handling per unit, the policy's unit penalty of
its type, the weight cost of the SKU in the rate band of the distance (of ``service``),
plus the per-shipment costs (handling per shipment, the band's base cost, the policy's
``distance_cost_per_km`` and ``priority_bonus`` terms) divided by ``units_per_shipment``.
Lateness, capacity, SLA and the rules' filters other than ``min_buffer_by_node_type`` are
left out: a price is a steer, not a plan. Nodes that do not ship, or lie beyond the last
band, do not serve the forecast. Each demand may use only its ``nearest`` cheapest holding
nodes, which keeps the LP small (docs/lookahead.md has its size and time on the standard
scenario).

Solved with HiGHS through ``scipy.optimize.linprog`` (``highspy`` cannot be imported after
OR-Tools in one process). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.sparse import csr_array

from models.lookahead import MAX_PRICE_RATIO, Forecast, RegionDemand
from models.money import MONEY_SCALE
from models.network import Network, Stock
from models.rules import Policy
from router.engine.arrays import NetworkArrays, network_arrays, stock_arrays, weight_units
from router.engine.geo import great_circle_km

NEAREST = 12
"""Holding nodes each (region, SKU) may draw on in the LP: the cheapest ones for it."""

UNITS_PER_SHIPMENT = 2.0
"""Units a shipment carries on average, to spread per-shipment costs over units."""

MIN_PRICE = 1e-6
"""Prices below this (currency units) are left out as 0."""


class PricingError(RuntimeError):
    """The pricing LP did not solve (HiGHS's status and message say why)."""


def price_stock(
    network: Network,
    stock: Stock,
    forecast: Forecast,
    policy: Policy | None = None,
    *,
    service: str | None = None,
    nearest: int = NEAREST,
    units_per_shipment: float = UNITS_PER_SHIPMENT,
    max_price_ratio: float = MAX_PRICE_RATIO,
) -> dict[tuple[str, str], float]:
    """The opportunity cost of one unit of each (node, SKU), in currency units.

    Minus the duals of the stock rows of the transportation LP above; pairs priced 0 are
    left out. ``policy`` (default: the built-in one) gives the backorder cost, unit
    penalties, node penalties and buffers; ``service`` the rate bands (default ``ground``
    when the rate card has it, else its first service); ``max_price_ratio`` bounds each
    price by that multiple of the unit's own cost (``inf``: no bound). Raises
    :class:`PricingError` when HiGHS fails (it cannot be infeasible: backorders are always
    allowed).
    """
    lp = pricing_lp(
        network,
        stock,
        forecast,
        policy or Policy(),
        service=service,
        nearest=nearest,
        units_per_shipment=units_per_shipment,
        max_price_ratio=max_price_ratio,
    )
    if lp.n_demands == 0 or not lp.positions:
        return {}
    result = linprog(
        lp.cost,
        A_ub=lp.a_ub,
        b_ub=lp.b_ub,
        A_eq=lp.a_eq,
        b_eq=lp.b_eq,
        bounds=(0, None),
        method="highs",
    )
    if result.status != 0:
        raise PricingError(f"pricing LP: HiGHS status {result.status}: {result.message}")
    duals = -np.asarray(result.ineqlin.marginals, dtype=np.float64)
    return {
        position: float(price)
        for position, price in zip(lp.positions, duals.tolist(), strict=True)
        if price > MIN_PRICE
    }


@dataclass(frozen=True, slots=True)
class PricingLp:
    """The LP of :func:`price_stock` in ``linprog`` form; ``positions[i]`` is stock row ``i``.

    Variables: the ``x_rn`` (one per demand and allowed node), then one ``u_r`` per demand,
    then one ``e_ns`` per stock row (none when prices are not bounded).
    """

    cost: NDArray[np.float64]
    a_ub: csr_array
    b_ub: NDArray[np.float64]
    a_eq: csr_array
    b_eq: NDArray[np.float64]
    positions: list[tuple[str, str]]
    n_demands: int

    @property
    def n_variables(self) -> int:
        """Columns of the LP."""
        return len(self.cost)

    @property
    def n_constraints(self) -> int:
        """Rows of the LP (demand rows and stock rows)."""
        return int(len(self.b_ub) + len(self.b_eq))


def pricing_lp(
    network: Network,
    stock: Stock,
    forecast: Forecast,
    policy: Policy,
    *,
    service: str | None = None,
    nearest: int = NEAREST,
    units_per_shipment: float = UNITS_PER_SHIPMENT,
    max_price_ratio: float = MAX_PRICE_RATIO,
) -> PricingLp:
    """Build the LP of :func:`price_stock` (costs in currency units)."""
    if not max_price_ratio > 0:
        raise ValueError(f"max_price_ratio must be > 0, got {max_price_ratio}")
    node_ids = network_arrays(network).node_ids
    backorder = policy.backorder_cost_per_unit
    holders = _holders(
        network,
        stock,
        forecast,
        policy,
        service=service,
        nearest=nearest,
        units_per_shipment=units_per_shipment,
    )
    cols = _Columns.of(holders, node_ids)
    positions, position_units, own_cost = cols.positions, cols.position_units, cols.own_cost
    cost, demands = cols.cost, cols.demands
    ub_rows, ub_cols, eq_rows, eq_cols = cols.ub_rows, cols.ub_cols, cols.eq_rows, cols.eq_cols
    n_x = len(cost)
    n_r = len(demands)
    # Backorder columns follow the x columns, one per demand.
    eq_rows.extend(range(n_r))
    eq_cols.extend(range(n_x, n_x + n_r))
    all_cost = np.array(cost + [backorder] * n_r, dtype=np.float64)
    ub_values = [1.0] * len(ub_rows)
    if np.isfinite(max_price_ratio):
        # Outside-supply columns follow, one per stock row: e_ns extra units at n, at P_ns.
        n_e = len(positions)
        ub_rows.extend(range(n_e))
        ub_cols.extend(range(n_x + n_r, n_x + n_r + n_e))
        ub_values.extend([-1.0] * n_e)
        all_cost = np.concatenate([all_cost, max_price_ratio * np.array(own_cost)])
    n_var = len(all_cost)
    a_ub = csr_array(
        (
            np.array(ub_values),
            (np.array(ub_rows, dtype=np.intp), np.array(ub_cols, dtype=np.intp)),
        ),
        shape=(len(positions), n_var),
    )
    a_eq = csr_array(
        (
            np.ones(len(eq_rows)),
            (np.array(eq_rows, dtype=np.intp), np.array(eq_cols, dtype=np.intp)),
        ),
        shape=(n_r, n_var),
    )
    return PricingLp(
        all_cost,
        a_ub,
        np.array(position_units, dtype=np.float64),
        a_eq,
        np.array(demands, dtype=np.float64),
        positions,
        n_r,
    )


Holders = Iterator[tuple[RegionDemand, NDArray[np.intp], NDArray[np.int64], NDArray[np.float64]]]
"""Per forecast demand: its network rows, their usable units and unit costs, cheapest first."""


@dataclass(slots=True)
class _Columns:
    """The transport columns of the pricing LP: one per (demand, holder), with their rows.

    ``positions`` are the stock rows (node id, SKU) in order of first use, with their units
    and ``own_cost`` (the least cost of the demands drawing on each); ``cost`` the columns'
    costs; ``ub_*`` and ``eq_*`` the coordinates of their 1s in the stock and demand rows.
    """

    positions: list[tuple[str, str]] = field(default_factory=list)
    position_units: list[float] = field(default_factory=list)
    own_cost: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    ub_rows: list[int] = field(default_factory=list)
    ub_cols: list[int] = field(default_factory=list)
    eq_rows: list[int] = field(default_factory=list)
    eq_cols: list[int] = field(default_factory=list)
    demands: list[float] = field(default_factory=list)

    @staticmethod
    def of(holders: Holders, node_ids: Sequence[str]) -> _Columns:
        """The columns of every demand's holders."""
        out = _Columns()
        position_row: dict[tuple[int, str], int] = {}  # (network row, sku) -> stock row
        for demand, rows, units, costs in holders:
            r = len(out.demands)
            out.demands.append(demand.units)
            for row, held, c in zip(rows.tolist(), units.tolist(), costs.tolist(), strict=True):
                key = (row, demand.sku)
                stock_row = position_row.get(key)
                if stock_row is None:
                    stock_row = position_row[key] = len(out.positions)
                    out.positions.append((node_ids[row], demand.sku))
                    out.position_units.append(float(held))
                    out.own_cost.append(c)
                out.own_cost[stock_row] = min(out.own_cost[stock_row], c)
                column = len(out.cost)
                out.cost.append(c)
                out.ub_rows.append(stock_row)
                out.ub_cols.append(column)
                out.eq_rows.append(r)
                out.eq_cols.append(column)
        return out


def _holders(
    network: Network,
    stock: Stock,
    forecast: Forecast,
    policy: Policy,
    *,
    service: str | None,
    nearest: int,
    units_per_shipment: float,
) -> Holders:
    """Each forecast demand with the ``nearest`` cheapest nodes that could serve it.

    Skips demands of no units or of SKUs the network lacks; a node serves when it ships,
    holds units above the policy's buffer, lies inside the last band and costs less than
    a backorder. Ties in cost go to the lower network row, so the order is deterministic.
    """
    if nearest < 1:
        raise ValueError(f"nearest must be >= 1, got {nearest}")
    if units_per_shipment <= 0:
        raise ValueError(f"units_per_shipment must be > 0, got {units_per_shipment}")
    arrays = network_arrays(network)
    held = stock_arrays(stock, network)
    services = network.rates.services
    name = service or ("ground" if "ground" in services else (services[0] if services else ""))
    if name not in arrays.services:
        return
    backorder = policy.backorder_cost_per_unit
    buffer = np.array(
        [policy.min_buffer_by_node_type.get(t, 0) for t in arrays.types], dtype=np.int64
    )[arrays.type_index]
    per_unit = (
        arrays.handling_per_unit.astype(np.float64) / MONEY_SCALE
        + np.array(
            [policy.unit_penalty_by_node_type.get(t, 0.0) for t in arrays.types], dtype=np.float64
        )[arrays.type_index]
    )
    per_shipment = arrays.handling_per_shipment.astype(np.float64) / MONEY_SCALE
    if policy.priority_bonus and len(arrays.priority):
        below_top = (arrays.priority.max() - arrays.priority).astype(np.float64)
        per_shipment = per_shipment + policy.priority_bonus * below_top
    for demand in forecast.demand:
        if demand.units <= 0 or demand.sku not in network.skus:
            continue
        sku_stock = held.sku(demand.sku)
        rows = sku_stock.rows
        units = np.maximum(sku_stock.available - buffer[rows], 0)
        usable = (units > 0) & arrays.ships[rows]
        rows, units = rows[usable], units[usable]
        costs = _unit_costs(
            arrays,
            bands_name=name,
            rows=rows,
            weight_kg=network.skus[demand.sku].weight_kg,
            latitude=demand.latitude,
            longitude=demand.longitude,
            per_unit=per_unit,
            per_shipment=per_shipment,
            distance_cost_per_km=policy.distance_cost_per_km,
            units_per_shipment=units_per_shipment,
        )
        worth = np.isfinite(costs) & (costs < backorder)
        rows, units, costs = rows[worth], units[worth], costs[worth]
        keep = np.lexsort((rows, costs))[:nearest]
        yield demand, rows[keep], units[keep], costs[keep]


def _unit_costs(
    arrays: NetworkArrays,
    *,
    bands_name: str,
    rows: NDArray[np.intp],
    weight_kg: float,
    latitude: float,
    longitude: float,
    per_unit: NDArray[np.float64],
    per_shipment: NDArray[np.float64],
    distance_cost_per_km: float,
    units_per_shipment: float,
) -> NDArray[np.float64]:
    """``c_rn`` for the nodes ``rows`` (``inf`` beyond the last band), currency units."""
    service = arrays.services[bands_name]
    distance = great_circle_km(latitude, longitude, arrays.latitude[rows], arrays.longitude[rows])
    band = service.band_of(distance)
    inside = band < len(service.bands)
    safe = np.where(inside, band, 0)
    per_kg = np.array(
        [weight_units(b.cost_per_kg, weight_kg) for b in service.bands], dtype=np.float64
    )
    shipment = (
        per_shipment[rows]
        + service.base_units[safe].astype(np.float64) / MONEY_SCALE
        + distance_cost_per_km * distance
    )
    out = per_unit[rows] + per_kg[safe] / MONEY_SCALE + shipment / units_per_shipment
    return np.where(inside, out, np.inf)
