"""Server bootstrap: the routing service with health checking, reflection and graceful stop."""

from __future__ import annotations

import json
import logging
import shlex
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from models.order import Order, OrderLine, ShipTo
from models.scenario import Scenario
from router.scenario import order_to_json
from router.service.routing import RoutingServicer
from router.v1 import router_pb2, router_pb2_grpc

logger = logging.getLogger(__name__)

ROUTING_SERVICE = router_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name
"""``router.v1.RoutingService``: the name health checks and reflection know it by."""


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens, how many RPCs it runs at once, its time limits and engine."""

    host: str = "127.0.0.1"
    port: int = 50051
    """0 picks a free port (tests); :func:`create_server` returns the one bound."""
    max_workers: int = 8
    default_time_limit_s: float = 10.0
    """Most solve time per request; a request's time_limit and deadline can only lower it."""
    grace_period_s: float = 5.0
    """How long in-flight RPCs may run on after a stop is requested."""
    engine: str = "fast"
    """The engine that plans every request: ``fast`` or ``cpsat-full`` (``ENGINES``)."""


def create_server(config: ServerConfig, scenario: Scenario) -> tuple[grpc.Server, int]:
    """Build the server (not started) and bind it; returns it with the bound port.

    Health reports SERVING overall and for ``router.v1.RoutingService``.
    """
    server, port, _ = _create(config, scenario)
    return server, port


def _create(
    config: ServerConfig, scenario: Scenario
) -> tuple[grpc.Server, int, health.HealthServicer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.max_workers))
    router_pb2_grpc.add_RoutingServiceServicer_to_server(
        RoutingServicer(
            scenario, default_time_limit_s=config.default_time_limit_s, engine=config.engine
        ),
        server,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", ROUTING_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (ROUTING_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    return server, port, health_servicer


def serve(config: ServerConfig, scenario: Scenario) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully.

    On a signal, health turns NOT_SERVING first (so load balancers drain the replica), then
    in-flight RPCs get :attr:`ServerConfig.grace_period_s` to finish.
    """
    server, port, health_servicer = _create(config, scenario)
    server.start()
    address = f"{config.host}:{port}"
    logger.info("router.v1.RoutingService listening on %s", address)
    print(usage(address, scenario), flush=True)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("stopping: health NOT_SERVING, %.1fs grace for RPCs", config.grace_period_s)
    health_servicer.enter_graceful_shutdown()
    server.stop(config.grace_period_s).wait()
    logger.info("stopped")


def usage(address: str, scenario: Scenario) -> str:
    """How to call the server at ``address`` with ``buf curl`` (which reads its reflection)."""
    # buf ships in the dev extras next to this interpreter; fall back to a buf on PATH.
    bundled = Path(sys.executable).parent / "buf"
    curl = f"{bundled if bundled.exists() else 'buf'} curl --protocol grpc --http2-prior-knowledge"
    url = f"http://{address}"
    order = order_to_json(_example_order(scenario))  # an orders.jsonl line is a proto3 JSON Order
    body = shlex.quote(json.dumps({"order": order}, separators=(",", ":")))
    return "\n".join(
        [
            f"router.v1.RoutingService listening on {address}",
            "List services:",
            f"  {curl} --list-services {url}",
            "Check health:",
            f"  {curl} {url}/grpc.health.v1.Health/Check",
            "Plan an order:",
            f"  {curl} -d {body} {url}/{ROUTING_SERVICE}/PlanOrder",
        ]
    )


def _example_order(scenario: Scenario) -> Order:
    """The scenario's first order, or a one-unit order of a catalogue SKU when it has none."""
    if scenario.orders:
        return scenario.orders[0]
    network = scenario.network
    node = network.nodes[0]
    return Order(
        order_id="example-1",
        created_at=datetime.now(UTC).replace(microsecond=0),
        ship_to=ShipTo(node.latitude, node.longitude, node.country),
        service=network.rates.services[0],
        lines=(OrderLine("1", next(iter(network.skus)), 1),),
    )
