"""A small hand-made scenario, a large generated one, and real servers on port 0.

The small network is built with the engine tests' helpers and lies on the equator (one
degree of longitude is 111.195 km): DC ``west`` at 0°, store ``mid`` at 2° (offers
pickup), DC ``east`` at 5°. SKUs A (1 kg) and B (2 kg) are stocked; SKU C (0.5 kg) is in
the catalogue but stocked nowhere.
"""

from __future__ import annotations

import random
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from models.network import Network, Node, NodeType, Sku
from models.order import Order, OrderLine, ShipTo
from models.rules import RuleSet
from models.scenario import Scenario
from router.service.config import ServerConfig
from router.service.server import create_server
from router.v1 import router_pb2_grpc
from tests.engine.conftest import CREATED, RATES, network, node, stock


def _node(node_id: str, lon: float, node_type: NodeType, *, pickup: bool = False) -> Node:
    """A node of :func:`tests.engine.conftest.node` that also charges 0.25 per unit handled."""
    return node(node_id, lon, type=node_type, per_unit=0.25, pickup=pickup)


def bad_request_fields(error: grpc.RpcError) -> list[str]:
    """The field paths of an INVALID_ARGUMENT error's BadRequest, in order.

    The error must carry exactly one detail, a BadRequest whose every violation says why.
    """
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None
    [detail] = status.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    assert all(v.description for v in bad_request.field_violations)
    return [v.field for v in bad_request.field_violations]


def order(*lines: tuple[str, int], allow_partial: bool = True, order_id: str = "o1") -> Order:
    """An order to (0°, 1°) of (sku, quantity) lines named l1, l2 and so on."""
    return Order(
        order_id=order_id,
        created_at=CREATED,
        ship_to=ShipTo(0.0, 1.0, "US", "00000"),
        service="ground",
        lines=tuple(OrderLine(f"l{i + 1}", s, q) for i, (s, q) in enumerate(lines)),
        channel="web",
        allow_partial=allow_partial,
    )


def build_small_scenario() -> Scenario:
    """Three nodes, SKUs A, B (stocked) and C (stocked nowhere), default rules."""
    nodes = (
        _node("west", 0.0, NodeType.DC),
        _node("mid", 2.0, NodeType.STORE, pickup=True),
        _node("east", 5.0, NodeType.DC),
    )
    on_hand = stock(("west", "A", 5), ("mid", "A", 2), ("mid", "B", 3), ("east", "B", 10))
    return Scenario(network(*nodes), on_hand, RuleSet(), (order(("A", 2), ("B", 1)),))


def build_large_scenario() -> Scenario:
    """400 nodes around one region, 60 SKUs scattered thinly, one 40-line order (seed 7)."""
    rng = random.Random(7)
    nodes = tuple(_node(f"n{i:03d}", rng.uniform(-4.0, 4.0), NodeType.STORE) for i in range(400))
    skus = {f"S{k:02d}": Sku(f"S{k:02d}", rng.uniform(0.1, 5.0)) for k in range(60)}
    on_hand = stock(
        *((n.node_id, sku, rng.randint(1, 3)) for n in nodes for sku in rng.sample(sorted(skus), 8))
    )
    lines = tuple((sku, rng.randint(2, 6)) for sku in rng.sample(sorted(skus), 40))
    return Scenario(Network(nodes, skus, RATES), on_hand, RuleSet(), (order(*lines),))


@pytest.fixture(scope="session")
def small_scenario() -> Scenario:
    """The small hand-made scenario."""
    return build_small_scenario()


@pytest.fixture(scope="session")
def large_scenario() -> Scenario:
    """The large generated scenario."""
    return build_large_scenario()


@dataclass(frozen=True)
class Running:
    """A started server and a channel to it over a real socket."""

    port: int
    channel: grpc.Channel

    @property
    def routing(self) -> router_pb2_grpc.RoutingServiceStub:
        """A RoutingService client on the channel."""
        return router_pb2_grpc.RoutingServiceStub(self.channel)

    @property
    def inventory(self) -> router_pb2_grpc.InventoryServiceStub:
        """An InventoryService client on the channel."""
        return router_pb2_grpc.InventoryServiceStub(self.channel)

    @property
    def rules(self) -> router_pb2_grpc.RulesServiceStub:
        """A RulesService client on the channel."""
        return router_pb2_grpc.RulesServiceStub(self.channel)


def run(scenario: Scenario, **config: Any) -> Iterator[Running]:
    """Start a server for ``scenario`` on a free port; stop it when the caller is done."""
    config.setdefault("ledger_url", "memory://")  # never the default file in the repo
    server, port = create_server(ServerConfig(port=0, **config), scenario)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Running(port, channel)
    finally:
        server.stop(0).wait()


@pytest.fixture(scope="module")
def server(small_scenario: Scenario) -> Iterator[Running]:
    """A server for the small scenario."""
    yield from run(small_scenario)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Scraped samples by name and sorted labels."""


def scrape(port: int) -> Samples:
    """``GET http://127.0.0.1:PORT/metrics`` as Prometheus reads it: every sample."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
