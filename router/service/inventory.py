"""The InventoryService servicer: live stock positions and stock feeds, through the ledger."""

from __future__ import annotations

import time

import grpc

from router.ledger.stock import StockStore
from router.service.convert import feed_outcome_to_proto, stock_to_proto
from router.service.errors import abort_on_error
from router.service.metrics import ServiceMetrics
from router.service.prices import PriceBoard
from router.v1 import router_pb2, router_pb2_grpc


class InventoryServicer(router_pb2_grpc.InventoryServiceServicer):
    """Reads stock positions and applies feed snapshots and deltas to ``ledger``.

    Applied feed updates are reported to ``prices``, whose refresher re-prices the stock
    early after a snapshot or when deltas move many units; every update is counted in
    ``metrics`` by its outcome.
    """

    def __init__(
        self,
        ledger: StockStore,
        prices: PriceBoard | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._ledger = ledger
        self._prices = prices
        self._metrics = metrics or ServiceMetrics()  # without: counted where none looks

    def GetStock(
        self, request: router_pb2.GetStockRequest, context: grpc.ServicerContext
    ) -> router_pb2.GetStockResponse:
        """The positions at ``node_ids`` of ``skus`` (each filter empty: no filter)."""
        with abort_on_error(context):
            stock = self._ledger.stock(list(request.skus) or None)
            return router_pb2.GetStockResponse(
                positions=stock_to_proto(stock, tuple(request.node_ids))
            )

    def ApplyStockSnapshot(
        self, request: router_pb2.ApplyStockSnapshotRequest, context: grpc.ServicerContext
    ) -> router_pb2.ApplyStockSnapshotResponse:
        """Replace one node's stock (see :meth:`StockStore.apply_snapshot`)."""
        with abort_on_error(context):
            result = self._ledger.apply_snapshot(
                request.feed,
                request.sequence,
                request.node_id,
                [(p.sku, p.on_hand, p.safety_stock) for p in request.positions],
            )
            self._metrics.count_feed("snapshot", request.feed, result.outcome, time.time())
            if result.applied and self._prices is not None:
                self._prices.snapshot_applied()
            return router_pb2.ApplyStockSnapshotResponse(
                applied=result.applied,
                outcome=feed_outcome_to_proto(result),
                clamped_units=result.clamped_units,
            )

    def ApplyStockDelta(
        self, request: router_pb2.ApplyStockDeltaRequest, context: grpc.ServicerContext
    ) -> router_pb2.ApplyStockDeltaResponse:
        """Change one node's on hand (see :meth:`StockStore.apply_delta`)."""
        with abort_on_error(context):
            result = self._ledger.apply_delta(
                request.feed,
                request.sequence,
                request.node_id,
                [(d.sku, d.on_hand_change) for d in request.deltas],
            )
            self._metrics.count_feed("delta", request.feed, result.outcome, time.time())
            if result.applied and self._prices is not None:
                self._prices.stock_moved((d.sku, d.on_hand_change) for d in request.deltas)
            return router_pb2.ApplyStockDeltaResponse(
                applied=result.applied,
                outcome=feed_outcome_to_proto(result),
                clamped_units=result.clamped_units,
            )
