"""Done when: every logged decision replays to the very plan it returned, after a restart.

A server on the built-in sample network (420 nodes, 3,000 SKUs) and a SQLite ledger routes
a few hundred of the sample's orders while everything a plan depends on moves under it:
stock (feed updates, and the reservations themselves), the active rule-set version (two
published versions), the look-ahead prices (an injected price function whose prices
change at each refresh, refreshed every fraction of a second) and the calendars (a closure
set mid-run); some PlanOrders are recorded too. Then that server stops, a new
``router serve`` process opens the same ledger, and every decision in the log is replayed
there: each must be identical, field for field (solve time aside).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc
import pytest

from models.lookahead import Forecast
from models.network import Network, Stock
from models.rules import Policy
from router.sample import sample_scenario
from router.service.config import PriceSettings, ServerConfig
from router.service.convert import order_to_proto
from router.service.server import create_server
from router.v1 import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 240
"""RouteOrders made; every eighth order is also planned with ``record``."""
WHO = {"actor": "ana", "reason": "replay test"}
PRICED = "name: default\nstrategies:\n  - name: priced\n    weights:\n      opportunity_cost: {}\n"


class Pricer:
    """Prices every position; the prices change with each refresh (deterministic per call)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, network: Network, stock: Stock, forecast: Forecast, policy: Policy | None
    ) -> Mapping[tuple[str, str], float]:
        self.calls += 1
        k = self.calls
        return {key: ((len(key[0]) * 3 + len(key[1]) + k) % 4) * 0.75 for key in stock.positions}


def _publish(rules: router_pb2_grpc.RulesServiceStub, opportunity_cost: float) -> int:
    """Publish and activate a pricing rule set; its version."""
    document = PRICED.format(opportunity_cost)
    version = rules.PublishRules(
        router_pb2.PublishRulesRequest(document=document, **WHO), timeout=60
    ).version.version
    rules.ActivateRules(router_pb2.ActivateRulesRequest(version=version, **WHO), timeout=30)
    return version


def _route_under_change(channel: grpc.Channel) -> None:
    """Route the sample's first orders while stock, rules, prices and calendars move."""
    routing = router_pb2_grpc.RoutingServiceStub(channel)
    inventory = router_pb2_grpc.InventoryServiceStub(channel)
    network = router_pb2_grpc.NetworkServiceStub(channel)
    rules = router_pb2_grpc.RulesServiceStub(channel)
    _publish(rules, 1.0)
    orders = sample_scenario().orders[:ORDERS]
    for i, order in enumerate(orders):
        msg = order_to_proto(order)
        if i == ORDERS // 2:
            _publish(rules, 0.5)
        if i == ORDERS // 3:
            node = routing.PlanOrder(router_pb2.PlanOrderRequest(order=msg), timeout=60)
            closed = node.plan.shipments[0].node_id if node.plan.shipments else "DC-1"
            network.SetCalendar(
                router_pb2.SetCalendarRequest(
                    calendar=router_pb2.Calendar(node_id=closed, closed_days=["SAT", "SUN"])
                ),
                timeout=30,
            )
        if i % 40 == 20:  # a feed adds units at the nodes holding the order's first SKU
            sku = msg.lines[0].sku
            held = inventory.GetStock(router_pb2.GetStockRequest(skus=[sku]), timeout=30)
            for position in held.positions[:3]:
                inventory.ApplyStockDelta(
                    router_pb2.ApplyStockDeltaRequest(
                        feed=f"replay-{i}",
                        sequence=1,
                        node_id=position.node_id,
                        deltas=[router_pb2.StockDelta(sku=sku, on_hand_change=2)],
                    ),
                    timeout=30,
                )
        routing.RouteOrder(
            router_pb2.RouteOrderRequest(request_id=f"replay-{i}", order=msg), timeout=60
        )
        if i % 8 == 0:
            routing.PlanOrder(
                router_pb2.PlanOrderRequest(order=msg, record=True, top_k=2, explain=True),
                timeout=60,
            )


def _serve(ledger_url: str, log: Path) -> tuple[subprocess.Popen[str], int]:
    """``router serve`` on the built-in sample and ``ledger_url``; the process and its port."""
    command = [sys.executable, "-m", "router.cli", "serve", "--ledger", ledger_url]
    process = subprocess.Popen(
        [*command, "--port", "0", "--metrics-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # "router.v1.RoutingService listening on host:port"
    assert "listening on" in first, log.read_text()
    return process, int(first.rsplit(":", 1)[1])


def test_every_decision_replays_identically_after_a_restart(tmp_path: Path) -> None:
    """All logged decisions (routes and recorded plans) replay to their plans.

    In a new process, though their stock, rules, prices and calendars all moved since.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    prices = PriceSettings(
        refresh_interval_s=0.3, min_gap_s=0.0, forecast_min_orders=0, forecast_min_hours=0.0
    )
    config = ServerConfig(port=0, ledger_url=url, prices=prices, price_function=Pricer())
    server, port = create_server(config, sample_scenario())
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _route_under_change(channel)
    finally:
        server.stop(0).wait()
    process, port = _serve(url, tmp_path / "serve.log")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _replay_all(router_pb2_grpc.RoutingServiceStub(channel))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _replay_all(routing: router_pb2_grpc.RoutingServiceStub) -> None:
    listed = routing.ListDecisions(router_pb2.ListDecisionsRequest(page_size=1000), timeout=60)
    assert not listed.next_page_token
    decisions = listed.decisions
    kinds = [d.kind for d in decisions]
    assert kinds.count(router_pb2.DECISION_KIND_ROUTE) == ORDERS
    assert kinds.count(router_pb2.DECISION_KIND_PLAN) == ORDERS // 8
    seen: dict[str, set[object]] = {"rules": set(), "prices": set(), "calendars": set()}
    for decision in decisions:
        get = router_pb2.GetDecisionRequest(decision_id=decision.decision_id)
        inputs = routing.GetDecision(get, timeout=30).decision.inputs
        seen["rules"].add(inputs.rule_version)
        seen["prices"].add(inputs.price_version)
        seen["calendars"].add(inputs.calendars_digest)
        replay = router_pb2.ReplayDecisionRequest(decision_id=decision.decision_id)
        answer = routing.ReplayDecision(replay, timeout=60)
        assert answer.identical, (decision.decision_id, list(answer.differences))
        assert answer.replayed.shipments == decision.plan.shipments
    assert len(seen["rules"]) == 2
    assert len(seen["prices"]) >= 3
    assert len(seen["calendars"]) == 2  # none, then one closure
