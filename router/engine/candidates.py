"""From an order and the network to the canonical model: candidates, exclusions, cost terms.

Every node of the network ends up either as a candidate with its terms or as an exclusion
with its reason. Checks run in a fixed order, so each excluded node gets the first reason
that applies: does not ship, filtered by a node filter, in another country, beyond the
radius, no available stock, stock all held back by rules, beyond the last rate band,
cannot meet a hard SLA, out of capacity. The detail of a rule exclusion names the rule
(``filters.max_distance_km: …``).

Dates follow the network's calendars (docs/calendars.md): each node's ship date is its
next shipping day, the delivery date counts the service's running days, lateness is the
calendar days from the deliver-by date to that delivery date, and a node with a daily
order capacity is checked against the slots taken on *its own* ship date.

The checks run on arrays over all nodes at once (:mod:`router.engine.arrays`, built once
per network and per stock object). Distances are computed for every node (the radius
filter and its detail need them); bands, dates and costs only for the nodes that pass the
first three checks (they ship, are allowed and hold an order SKU).

Money stays exact: handling and base costs are ``to_units`` of the amounts, precomputed
per node and per band. The weight cost of a unit keeps its Decimal definition,
``to_units(Decimal(repr(cost_per_kg)) * Decimal(repr(weight_kg)))``, computed once per
(rate, weight) pair and cached (:func:`~router.engine.arrays.weight_units`). A float
formula was not used: ``round(cost_per_kg * weight_kg * 10_000)`` differs from it on 828 of
the 51,000 (rate, weight) pairs of the standard sample scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from models.capacity import CapacityUsed
from models.lookahead import StockPrices
from models.money import MONEY_SCALE
from models.network import Network, Stock
from models.order import Order
from models.plan import Exclusion, ExclusionReason, LineTerms
from models.rules import Policy, SlaMode
from router.engine.arrays import (
    NetworkArrays,
    NodeFilter,
    Recent,
    ServiceBands,
    SkuStock,
    money_units,
    network_arrays,
    node_filter,
    price_rows,
    stock_arrays,
    weight_units,
)
from router.engine.geo import great_circle_km
from router.engine.terms import BuiltModel, Matrices

MAX_CACHED_MODELS = 2
"""Models kept for a second ask (:func:`build_model`): the what-if replay asks twice in a row."""

_BUILT: Recent[tuple[int, BuiltModel]] = Recent(MAX_CACHED_MODELS)


def _max_shipments(order: Order, policy: Policy) -> int | None:
    caps = [c for c in (order.max_shipments, policy.max_shipments) if c is not None]
    if policy.no_split_below_value is not None and order.value < policy.no_split_below_value:
        caps.append(1)
    return min(caps) if caps else None


def ship_window(order: Order, network: Network) -> tuple[date, date]:
    """The earliest and the latest ship date any node of ``network`` has for ``order``.

    Every candidate's ship date lies in it, so the slots used on these days are all that
    planning the order needs to know of node capacity.
    """
    arrays = network_arrays(network)
    shipped = arrays.clocks.ship_ordinals(order.created_at, np.arange(len(arrays.nodes)))
    if not len(shipped):
        day = order.created_at.date()
        return day, day
    return date.fromordinal(int(shipped.min())), date.fromordinal(int(shipped.max()))


def build_model(
    order: Order,
    network: Network,
    stock: Stock,
    policy: Policy,
    capacity_used: CapacityUsed | None = None,
    *,
    relax_sla_days: int = 0,
    prices: StockPrices | None = None,
) -> BuiltModel:
    """Build the canonical model (docs/cost-model.md) of ``order`` on current ``stock``.

    See :func:`_build` for the arguments. The last few models built are kept per the very
    objects they were built from (all frozen) and handed out again when asked for twice:
    the what-if replay builds an order's evaluation model, then the engine it replays asks
    for the same model, and it is priced on that one (a model is never changed once built).
    """
    key = (order, network, stock, policy, capacity_used, prices)
    found = _BUILT.get(*key)
    if found is not None and found[0] == relax_sla_days:
        return found[1]
    built = _build(order, network, stock, policy, capacity_used, relax_sla_days, prices)
    _BUILT.put((relax_sla_days, built), *key)
    return built


def _build(
    order: Order,
    network: Network,
    stock: Stock,
    policy: Policy,
    capacity_used: CapacityUsed | None,
    relax_sla_days: int,
    prices: StockPrices | None,
) -> BuiltModel:
    """The canonical model of ``order`` on current ``stock``, built.

    ``order`` must have passed validation against ``network`` (``Order.from_raw(..., network)``).
    ``policy`` is the applying strategy's filters, weights and constraints (docs/rules.md);
    ``relax_sla_days`` moves the deliver-by date later (a fallback step).
    ``capacity_used`` counts the order slots each node has already taken per day; a node
    is out of capacity when its slots of the order's ship date there are used up.
    With ``prices`` and a ``policy.opportunity_cost`` above 0, each unit of a line's SKU
    at a candidate costs ``opportunity_cost × prices.of(node, sku)`` more (rounded to
    solver units; docs/lookahead.md): the model is then the *priced* model.
    A pickup order is delivered to its pickup node: that node hands over its own stock at
    the counter (no carrier cost, no transit), and other nodes ship to it by carrier.
    """
    arrays = network_arrays(network)
    service = arrays.services[order.service]
    counter, distances, ships = _destination(order, network, arrays)
    by_sku = [stock_arrays(stock, network).sku(line.sku) for line in order.lines]
    available = _available(by_sku, len(arrays.nodes))
    holding = np.count_nonzero(available, axis=1) > 0
    screen = _Screen(
        order,
        policy,
        arrays,
        distances,
        held_back=_hold_back(order, network, arrays, policy, available),
        nodes_kept=node_filter(policy, network) if policy.has_node_filter else None,
    )
    screen.by_node(ships, holding, available)
    rows, band = screen.by_band(service)
    at_counter = rows == counter
    shipped = arrays.clocks.ship_ordinals(order.created_at, rows)
    delivered = service.delivery_ordinals(shipped, service.transit_days[band])
    delivered[at_counter] = shipped[at_counter]  # handed over at the counter: no carrier
    late = np.zeros(len(rows), dtype=np.int64)
    if order.deliver_by is not None:
        deadline = order.deliver_by + timedelta(days=relax_sla_days)
        late = np.maximum(delivered - deadline.toordinal(), 0)
        if policy.sla is SlaMode.HARD:
            screen.by_promise(rows, delivered, late, deadline)
    screen.by_capacity(rows, shipped, capacity_used or CapacityUsed())
    keep = screen.reason[rows] == 0
    matrices = _matrices(
        order,
        policy,
        arrays,
        [network.skus[line.sku].weight_kg for line in order.lines],
        prices=prices,
        rows=rows[keep],
        band=band[keep],
        at_counter=at_counter[keep],
        distances=distances,
        available=available,
        shipped=shipped[keep],
        delivered=delivered[keep],
        late=late[keep],
    )
    backorder = money_units(policy.backorder_cost_per_unit)
    return BuiltModel(
        matrices,
        tuple(
            LineTerms(line.line_id, line.sku, line.quantity, backorder, order.allow_partial)
            for line in order.lines
        ),
        offset=0,
        split_penalty=money_units(policy.split_penalty),
        max_shipments=_max_shipments(order, policy),
        ship_complete=order.ship_complete or policy.ship_complete,
        excluded=screen.excluded,
        stock_anywhere=tuple(s.total for s in by_sku),
    )


def _available(by_sku: Sequence[SkuStock], n_nodes: int) -> NDArray[np.int64]:
    """``available[node, line]``: the units of each line's SKU each node holds for orders."""
    available = np.zeros((n_nodes, len(by_sku)), dtype=np.int64)
    for line, sku_stock in enumerate(by_sku):
        available[sku_stock.rows, line] = sku_stock.available
    return available


def _destination(
    order: Order, network: Network, arrays: NetworkArrays
) -> tuple[int, NDArray[np.float64], NDArray[np.bool_]]:
    """The row of the pickup node (-1 when none), every node's distance, who ships.

    A pickup order's destination is its pickup node, which hands the order over at its
    counter: distance 0, and it "ships" even when it ships no parcels.
    """
    counter = -1
    if order.pickup_node_id is not None:
        pickup_node = network.node(order.pickup_node_id)
        assert pickup_node is not None, "order must be validated against the network first"
        counter = arrays.row[order.pickup_node_id]
        dest_lat, dest_lon = pickup_node.latitude, pickup_node.longitude
    else:
        dest_lat, dest_lon = order.ship_to.latitude, order.ship_to.longitude
    distances = great_circle_km(dest_lat, dest_lon, arrays.latitude, arrays.longitude)
    ships = arrays.ships.copy()
    if counter >= 0:
        distances[counter] = 0.0
        ships[counter] = True
    return counter, distances, ships


class _Screen:
    """One order's checks of every node: ``reason[row]`` stays 0 while it is a candidate.

    The checks run in a fixed order (the module docstring's), so each node gets the first
    reason that applies. Details are made when someone reads the exclusions, from the
    reason and what the checks kept (``detailed`` for the checks of the nodes left).
    """

    def __init__(
        self,
        order: Order,
        policy: Policy,
        arrays: NetworkArrays,
        distances: NDArray[np.float64],
        *,
        held_back: Callable[[int], str],
        nodes_kept: NodeFilter | None,
    ) -> None:
        self.order = order
        self.policy = policy
        self.arrays = arrays
        self.distances = distances
        self.held_back = held_back
        self.nodes_kept = nodes_kept
        self.reason = np.zeros(len(arrays.nodes), dtype=np.int8)
        self.detailed: dict[int, str] = {}

    def _fail(self, failing: NDArray[np.bool_], code: int) -> None:
        self.reason[(self.reason == 0) & failing] = code

    def _exclude(self, row: int, code: int, detail: str) -> None:
        self.reason[row] = code
        self.detailed[row] = detail

    def by_node(
        self, ships: NDArray[np.bool_], holding: NDArray[np.bool_], available: NDArray[np.int64]
    ) -> None:
        """The checks on every node: ships, node filters, country, radius, stock."""
        policy, arrays = self.policy, self.arrays
        self._fail(~ships, _DOES_NOT_SHIP)
        if self.nodes_kept is not None:
            self._fail(~self.nodes_kept.allowed, _NODE_FILTER)
        if policy.same_country:
            self._fail(arrays.country != self.order.ship_to.country, _OTHER_COUNTRY)
        if policy.max_distance_km is not None:
            self._fail(self.distances > policy.max_distance_km, _BEYOND_RADIUS)
        self._fail(~holding, _NO_STOCK)
        self._fail(np.count_nonzero(available, axis=1) == 0, _HELD_BACK)

    def by_band(self, service: ServiceBands) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """The nodes left within the service's last band, and their band."""
        rows = np.flatnonzero(self.reason == 0)
        band = service.band_of(self.distances[rows])
        beyond = band == len(service.bands)
        last = service.bands[-1].max_distance_km if service.bands else 0.0
        for row in rows[beyond].tolist():
            km = float(self.distances[row])
            detail = f"{km:.1f} km is beyond the last {self.order.service} band ({last:g} km)"
            self._exclude(row, _BEYOND_LAST_BAND, detail)
        return rows[~beyond], band[~beyond]

    def by_promise(
        self,
        rows: NDArray[np.intp],
        delivered: NDArray[np.int64],
        late: NDArray[np.int64],
        deadline: date,
    ) -> None:
        """A hard SLA: out go the nodes that deliver after ``deadline``."""
        for i in np.flatnonzero((self.reason[rows] == 0) & (late > 0)).tolist():
            when = date.fromordinal(int(delivered[i])).isoformat()
            detail = f"delivers {when}, {int(late[i])} day(s) after {deadline}"
            self._exclude(int(rows[i]), _LATE, detail)

    def by_capacity(
        self, rows: NDArray[np.intp], shipped: NDArray[np.int64], used: CapacityUsed
    ) -> None:
        """Out go the nodes whose order slots of their own ship date are all taken."""
        ids = self.arrays.node_ids
        capacity = self.arrays.capacity[rows]
        for i in np.flatnonzero((self.reason[rows] == 0) & (capacity >= 0)).tolist():
            row, limit = int(rows[i]), int(capacity[i])
            if limit and ids[row] not in used.nodes:
                continue  # none of its slots is taken, on any day
            on = date.fromordinal(int(shipped[i]))
            taken = used.used(ids[row], on)
            if taken >= limit:
                detail = f"{taken} of {limit} orders taken on {on.isoformat()}, its ship date"
                self._exclude(row, _NO_CAPACITY, detail)

    def _describe(self, row: int, code: int) -> str:
        """The detail of ``row``'s exclusion, the stored one or one made here."""
        if code == _DOES_NOT_SHIP:
            return "node does not ship parcels"
        if code == _NO_STOCK:
            return "no available unit of any line"
        if code == _NODE_FILTER:
            assert self.nodes_kept is not None
            return self.nodes_kept.detail(row)
        if code == _OTHER_COUNTRY:
            country, wanted = self.arrays.country[row], self.order.ship_to.country
            return f"filters.same_country: in {country}, not {wanted}"
        if code == _BEYOND_RADIUS:
            km, radius = float(self.distances[row]), self.policy.max_distance_km
            return f"filters.max_distance_km: {km:.1f} km is beyond {radius:g} km"
        if code == _HELD_BACK:
            return self.held_back(row)
        return self.detailed[row]

    def excluded(self) -> tuple[Exclusion, ...]:
        """Every node left out, with its reason, detail and distance to the destination."""
        out = np.flatnonzero(self.reason)
        ids = self.arrays.node_ids
        return tuple(
            Exclusion(ids[row], _REASONS[code], self._describe(row, code), km)
            for row, code, km in zip(
                out.tolist(), self.reason[out].tolist(), self.distances[out].tolist(), strict=True
            )
        )


def _hold_back(
    order: Order,
    network: Network,
    arrays: NetworkArrays,
    policy: Policy,
    available: NDArray[np.int64],
) -> Callable[[int], str]:
    """Take from ``available`` (in place) what the policy's stock filters hold back.

    ``min_buffer_by_node_type`` keeps that many units of each SKU at nodes of a type;
    ``capabilities`` zeroes a line at nodes without the tag its SKU's attribute needs;
    ``blocked`` zeroes (node, sku) pairs. Returns, for a node left with nothing, why.
    """
    held: list[tuple[NDArray[np.bool_], str]] = []  # (rows a rule took stock from, the rule)
    if policy.min_buffer_by_node_type:
        buffer = np.array(
            [policy.min_buffer_by_node_type.get(t, 0) for t in arrays.types], dtype=np.int64
        )[arrays.type_index]
        np.subtract(available, buffer[:, None], out=available)
        np.maximum(available, 0, out=available)
        held.append((buffer > 0, "filters.min_buffer_by_node_type"))
    for line_no, line in enumerate(order.lines):
        needed = network.skus[line.sku].attributes & policy.capabilities
        if needed:
            unable = np.array([not needed <= n.tags for n in arrays.nodes], dtype=np.bool_)
            available[unable, line_no] = 0
            held.append((unable, f"filters.capabilities ({line.sku} needs {sorted(needed)})"))
    if policy.blocked:
        lines_of: dict[str, list[int]] = {}
        for line_no, line in enumerate(order.lines):
            lines_of.setdefault(line.sku, []).append(line_no)
        for node_id, sku in sorted(policy.blocked):
            row = arrays.row.get(node_id)
            if row is not None and sku in lines_of:
                available[row, lines_of[sku]] = 0
                only = np.zeros(len(arrays.nodes), dtype=np.bool_)
                only[row] = True
                held.append((only, f"filters.blocked ({node_id}/{sku})"))

    def why(row: int) -> str:
        rules = "; ".join(dict.fromkeys(rule for rows, rule in held if rows[row]))
        return f"its stock of the order's SKUs is held back by {rules}"

    return why


def _matrices(
    order: Order,
    policy: Policy,
    arrays: NetworkArrays,
    weights: list[float],
    *,
    prices: StockPrices | None,
    rows: NDArray[np.intp],
    band: NDArray[np.intp],
    at_counter: NDArray[np.bool_],
    distances: NDArray[np.float64],
    available: NDArray[np.int64],
    shipped: NDArray[np.int64],
    delivered: NDArray[np.int64],
    late: NDArray[np.int64],
) -> Matrices:
    """The terms of the candidate nodes ``rows`` (ascending, so in node id order).

    ``band``, ``at_counter`` and the date arrays are per candidate; ``distances`` and
    ``available`` per network row. ``prices`` (with the policy's ``opportunity_cost``)
    add each unit's look-ahead price to its unit cost.
    """
    service = arrays.services[order.service]
    n_bands = len(service.bands)
    unit_penalty = np.array(
        [money_units(policy.unit_penalty_by_node_type.get(t, 0.0)) for t in arrays.types],
        dtype=np.int64,
    )
    per_unit = arrays.handling_per_unit[rows] + unit_penalty[arrays.type_index[rows]]
    # Node penalties per shipment: priority points below the top, and distance.
    penalty = np.zeros(len(rows), dtype=np.int64)
    if policy.priority_bonus and len(rows):
        below_top = arrays.priority.max() - arrays.priority[rows]
        penalty += money_units(policy.priority_bonus) * below_top
    if policy.distance_cost_per_km:
        per_km = policy.distance_cost_per_km * MONEY_SCALE
        penalty += np.rint(distances[rows] * per_km).astype(np.int64)
    # Weight cost of a unit of each line per band; the extra last row (zeros) is the counter.
    per_kg = np.zeros((n_bands + 1, len(weights)), dtype=np.int64)
    carrier_band = np.where(at_counter, n_bands, band)
    for b in set(band[~at_counter].tolist()):
        per_kg[b] = [weight_units(service.bands[b].cost_per_kg, w) for w in weights]
    unit = (per_unit[:, None] + per_kg[carrier_band]).astype(np.int64)
    if prices is not None and policy.opportunity_cost > 0 and len(rows):
        scale = policy.opportunity_cost * MONEY_SCALE
        for line_no, line in enumerate(order.lines):
            price = price_rows(prices, arrays, line.sku)
            if price is not None:
                unit[:, line_no] += np.rint(price[rows] * scale).astype(np.int64)
    services = [order.service] * len(rows)
    for i in np.flatnonzero(at_counter).tolist():
        services[i] = "pickup"
    return Matrices(
        node_ids=tuple(map(arrays.node_ids.__getitem__, rows.tolist())),
        id_rank=np.arange(len(rows), dtype=np.int64),
        priority=arrays.priority[rows].astype(np.int64),
        handling=arrays.handling_per_shipment[rows].astype(np.int64),
        shipping=np.where(at_counter, 0, service.base_units[band]).astype(np.int64),
        lateness=money_units(policy.lateness_penalty_per_day) * late.astype(np.int64),
        penalty=penalty,
        unit=unit,
        available=available[rows],
        distance=distances[rows],
        services=tuple(services),
        ship=shipped.astype(np.int64),
        delivery=delivered.astype(np.int64),
        late=late.astype(np.int64),
        band_km=np.where(at_counter, 0.0, service.limits[band]),
        transit=np.where(at_counter, 0, service.transit_days[band]).astype(np.int64),
    )


_DOES_NOT_SHIP, _NODE_FILTER, _OTHER_COUNTRY, _BEYOND_RADIUS, _NO_STOCK = 1, 2, 3, 4, 5
_HELD_BACK, _BEYOND_LAST_BAND, _LATE, _NO_CAPACITY = 6, 7, 8, 9
_REASONS = {
    _DOES_NOT_SHIP: ExclusionReason.DOES_NOT_SHIP,
    _NODE_FILTER: ExclusionReason.FILTERED_BY_RULE,
    _OTHER_COUNTRY: ExclusionReason.FILTERED_BY_RULE,
    _BEYOND_RADIUS: ExclusionReason.FILTERED_BY_RULE,
    _NO_STOCK: ExclusionReason.NO_AVAILABLE_STOCK,
    _HELD_BACK: ExclusionReason.FILTERED_BY_RULE,
    _BEYOND_LAST_BAND: ExclusionReason.BEYOND_LAST_BAND,
    _LATE: ExclusionReason.CANNOT_MEET_SLA,
    _NO_CAPACITY: ExclusionReason.OUT_OF_CAPACITY,
}
"""Exclusion codes, in the order the checks run (0: a candidate), and their reasons."""
