"""The benchmark in the product's domain: its instance as a Network, its orders as Orders.

The greedy and look-ahead policies decide through the product (``plan_order``, fast
engine, the priced model with :class:`~models.lookahead.StockPrices`); this module only
translates. The mapping, which makes the product's canonical model charge what the
benchmark charges (docs: benchmarks/README.md, "Through the product"):

- centre k → a :class:`~models.network.Node` with its name as ``node_id`` at its real
  coordinates, no handling costs; the dummy centre (unserved items) → the node
  :data:`DUMMY_NODE` at the South Pole, farther from every city than any centre, holding
  T units of every item (an order holds an item at most once, so it never runs out);
- item i → the SKU ``ITEM-0007`` (i = 7) weighing 1 kg, so a band's cost per kg is a cost per item;
- the costs → the rate card of the service :data:`SERVICE`: every (centre or dummy, city)
  pair's great-circle distance lies in a band of its own, whose ``base_cost`` (per
  shipment) is the pair's box cost and ``cost_per_kg`` its item cost. The box cost per
  distinct centre, the per-mile item cost and the dummy's city-dependent costs are thus
  the canonical model's ``F_j`` and ``c_lj``, each rounded once to the solver's unit
  (1/10,000; :mod:`models.money`), and nothing else is charged: split penalty 0, no
  deadline, no partial fulfilment (every item goes to a centre or to the dummy);
- stock[k, i] → the stock position (centre k, item i); an arrival (q, j) → an
  :class:`~models.order.Order` of one unit of each item of q, shipped to city j;
- look-ahead → the DLP's stock duals as :class:`~models.lookahead.StockPrices` and a
  policy with ``opportunity_cost`` 1: the product adds ``round(price × 10,000)`` solver
  units to each unit's cost. The ``lookahead-lp`` policy prices with the product's own
  pricing LP instead (:func:`~router.engine.prices.price_stock`), over the expected
  demand of the periods left as a :class:`~models.lookahead.Forecast` (one region per
  city, at the city).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

import numpy as np
from numpy.typing import NDArray

from benchmarks.fulfillment.instance import Instance
from models.lookahead import Forecast, RegionDemand, StockPrices
from models.network import Network, Node, NodeType, RateBand, RateCard, Sku, Stock, StockPosition
from models.order import Order, OrderLine, ShipTo
from models.plan import Plan, SolveStatus
from models.rules import Policy
from router.engine import plan_order
from router.engine.geo import great_circle_km
from router.engine.prices import price_stock
from router.engine.solve import FAST

SERVICE = "benchmark"
"""The one service of the rate card: the benchmark's cost table."""

DUMMY_NODE = "DUMMY"
"""The node of the dummy centre: an item planned from it goes unserved."""

DUMMY_POINT = (-90.0, 0.0)
"""Where the dummy node stands: the South Pole, farther from every city than any centre."""

ORDERED_AT = datetime(2026, 1, 1, tzinfo=UTC)
"""Creation time of every order (no deadlines, so it changes no cost)."""

GREEDY = Policy(split_penalty=0.0)
"""The benchmark's costs and nothing else: no split penalty (every box is in ``F_j``)."""

LOOK_AHEAD = Policy(split_penalty=0.0, opportunity_cost=1.0)
""":data:`GREEDY` with each unit's full look-ahead price added to its cost."""

LAST_BAND_KM = 40_000.0
"""Where the last band ends: beyond any distance on Earth."""

MIN_GAP_KM = 1e-6
"""Two (node, city) distances closer than this cannot get bands of their own: an error."""


def sku_of(item: int) -> str:
    """The SKU of item ``item``."""
    return f"ITEM-{item:04d}"


@dataclass(frozen=True, slots=True)
class ProductInstance:
    """One instance in the product's domain; built once per instance, shared by sequences.

    ``rows`` maps each node id to the benchmark's row (centre k, or K for the dummy);
    ``orders[q, j]`` is the order of an arrival of type q (not the empty one) at city j:
    one unit of each item of q, line ``p`` (``line_id`` ``"p"``) the type's ``p``-th item.
    """

    instance: Instance
    network: Network
    rows: Mapping[str, int]
    orders: Mapping[tuple[int, int], Order] = field(repr=False)

    @staticmethod
    def of(instance: Instance) -> ProductInstance:
        """The network of ``instance``: nodes, SKUs and the rate card of its costs."""
        geo = instance.geography
        points = np.vstack([geo.centre_points, [DUMMY_POINT]])
        ids = (*geo.centres, DUMMY_NODE)
        nodes = tuple(
            Node(
                node_id=node_id,
                type=NodeType.DC,
                latitude=float(lat),
                longitude=float(lon),
                country="US",
                timezone="UTC",
                handling_cost_per_shipment=0.0,
                handling_cost_per_unit=0.0,
                processing_hours=0.0,
                cutoff_local_time=time(23, 59),
                daily_order_capacity=None,
            )
            for node_id, (lat, lon) in zip(ids, points.tolist(), strict=True)
        )
        skus = {sku_of(i): Sku(sku_of(i), 1.0) for i in range(instance.stock.shape[1])}
        network = Network(nodes, skus, _rate_card(instance, points))
        orders = {
            (q, j): Order(
                order_id=f"type-{q}-{geo.cities[j]}",
                created_at=ORDERED_AT,
                ship_to=ShipTo(lat, lon, "US"),
                service=SERVICE,
                lines=tuple(OrderLine(str(p), sku_of(i), 1) for p, i in enumerate(items)),
                allow_partial=False,
            )
            for q, items in enumerate(instance.types)
            if items
            for j, (lat, lon) in enumerate(geo.city_points.tolist())
        }
        return ProductInstance(instance, network, {n: k for k, n in enumerate(ids)}, orders)

    def stock(self, stock: NDArray[np.int64]) -> Stock:
        """The product's stock for the benchmark's ``stock[k, i]``, the dummy's T units added."""
        centres = self.instance.geography.centres
        dummy = self.instance.periods
        return Stock.of(
            [
                StockPosition(centres[k], sku_of(i), int(units))
                for (k, i), units in np.ndenumerate(stock)
            ]
            + [StockPosition(DUMMY_NODE, sku_of(i), dummy) for i in range(stock.shape[1])]
        )

    def dlp_prices(self, duals: NDArray[np.float64], version: int, periods: int) -> StockPrices:
        """``duals[k, i]`` (currency units per unit) as the product's stock prices.

        ``version`` counts the re-solves of a sequence; ``periods`` are the periods the
        duals look ahead (the horizon, in periods rather than hours).
        """
        centres = self.instance.geography.centres
        return StockPrices(
            version=version,
            computed_at=ORDERED_AT,
            source=f"the benchmark's DLP over {periods} periods",
            horizon_hours=float(periods),
            prices={
                (centres[k], sku_of(i)): float(duals[k, i])
                for k, i in np.argwhere(duals > 0).tolist()
            },
        )

    def forecast(self, periods: int) -> Forecast:
        """The expected demand of the next ``periods`` arrivals: units of each (city, item).

        City j orders item i at ``Σ_q rate[q, j]`` over the types q holding it, per period;
        the region is the city's name and its point the city's.
        """
        instance, geo = self.instance, self.instance.geography
        per_period = np.zeros((instance.stock.shape[1], len(geo.cities)))
        for q, items in enumerate(instance.types):
            per_period[list(items)] += instance.rate[q]
        return Forecast(
            tuple(
                RegionDemand(geo.cities[j], sku_of(i), periods * float(per_period[i, j]), *point)
                for j, point in enumerate(geo.city_points.tolist())
                for i in np.flatnonzero(per_period[:, j]).tolist()
            ),
            horizon_hours=float(periods),
            source=f"the benchmark's expected demand over {periods} periods",
        )

    def lp_prices(self, stock: Stock, version: int, periods: int) -> StockPrices:
        """The product's own prices: :func:`~router.engine.prices.price_stock` on ``stock``.

        Over :meth:`forecast` of the next ``periods`` arrivals, under the look-ahead
        policy, every node (the dummy too) open to every city, with the product's defaults
        otherwise (a box spread over ``UNITS_PER_SHIPMENT`` units, each price at most
        ``MAX_PRICE_RATIO`` × the unit's own cost).
        """
        forecast = self.forecast(periods)
        return StockPrices(
            version=version,
            computed_at=ORDERED_AT,
            source=forecast.source,
            horizon_hours=forecast.horizon_hours,
            prices=price_stock(
                self.network, stock, forecast, LOOK_AHEAD, service=SERVICE, nearest=len(self.rows)
            ),
        )

    def plan(self, q: int, j: int, stock: Stock, prices: StockPrices | None) -> Plan:
        """The product's plan for the arrival (q, j) on ``stock``, priced when ``prices`` is set.

        Raises ``RuntimeError`` unless the plan is proven optimal and serves every item
        (the dummy always can, so anything else is a fault, not a decision).
        """
        plan = plan_order(
            self.orders[q, j],
            self.network,
            stock,
            GREEDY if prices is None else LOOK_AHEAD,
            engine=FAST,
            prices=prices,
        )
        if plan.status is not SolveStatus.OPTIMAL or plan.unfulfilled:
            raise RuntimeError(f"order {plan.order_id}: {plan.status}: {plan.detail}")
        return plan

    def centres(self, plan: Plan) -> NDArray[np.int64]:
        """The benchmark's row (centre, or K for the dummy) of each item of ``plan``'s order."""
        out = np.empty(sum(len(s.lines) for s in plan.shipments), dtype=np.int64)
        for shipment in plan.shipments:
            row = self.rows[shipment.node_id]
            for line in shipment.lines:
                out[int(line.line_id)] = row
        return out


class LiveStock:
    """The product's :class:`Stock` kept equal to a simulation's ``stock[k, i]`` array.

    :meth:`view` replaces only the positions whose units changed since the last call, so
    a decision costs one array comparison, not a new stock of every position.
    """

    def __init__(self, product: ProductInstance, stock: NDArray[np.int64]) -> None:
        self._product = product
        self._seen = stock.copy()
        self._stock = product.stock(stock)

    def view(self, stock: NDArray[np.int64]) -> Stock:
        """The product's stock equal to ``stock`` (which only the simulation changes)."""
        changed = np.argwhere(stock != self._seen)
        if len(changed):
            centres = self._product.instance.geography.centres
            self._stock = self._stock.replaced(
                StockPosition(centres[k], sku_of(i), int(stock[k, i])) for k, i in changed.tolist()
            )
            self._seen[changed[:, 0], changed[:, 1]] = stock[changed[:, 0], changed[:, 1]]
        return self._stock


def _rate_card(instance: Instance, points: NDArray[np.float64]) -> RateCard:
    """One band per distinct (node, city) distance, priced at that pair's box and item cost.

    Distances are the engine's (:func:`~router.engine.geo.great_circle_km`); each band
    ends halfway to the next distance, so the engine finds a pair's own band whatever the
    last bits of its distance. Pairs at one distance share a band when they cost the same;
    raises ``ValueError`` when two pairs of different costs are closer than
    :data:`MIN_GAP_KM`.
    """
    geo = instance.geography
    pairs: dict[float, tuple[float, float]] = {}  # distance → (box, item)
    for j, (lat, lon) in enumerate(geo.city_points.tolist()):
        km = great_circle_km(lat, lon, points[:, 0], points[:, 1]).tolist()
        for k, distance in enumerate(km):
            cost = (float(geo.box[k, j]), float(geo.item[k, j]))
            if pairs.setdefault(distance, cost) != cost:
                raise ValueError(f"two pairs at {distance} km cost {pairs[distance]} and {cost}")
    distances = np.array(sorted(pairs))
    gaps = np.diff(distances)
    if len(gaps) and gaps.min() < MIN_GAP_KM:
        raise ValueError(f"two (node, city) distances are {gaps.min():g} km apart")
    ends = np.append((distances[:-1] + distances[1:]) / 2, LAST_BAND_KM)
    return RateCard.of(
        RateBand(SERVICE, end, *pairs[d], transit_days=0)
        for d, end in zip(distances.tolist(), ends.tolist(), strict=True)
    )
