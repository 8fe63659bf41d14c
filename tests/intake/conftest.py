"""Real processes on loopback: ``router serve`` for the tiny scenario and gateways before it.

One gRPC service (SQLite ledger in a temporary directory) runs for the session; three
``router intake`` gateways front it: the main one (64 KiB body limit), a ``tight`` one that
lets one request in at a time, and a ``down`` one pointed at a closed port. A second
service for the ``trap`` scenario (an order a stopped solve cannot prove) has its own
gateway, started only by the tests that use it.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest

from benchmarks.fuzz import processes

TINY = Path(__file__).parent.parent / "data" / "tiny"
TRAP = Path(__file__).parent.parent / "data" / "trap"
ROUTER = Path(sys.executable).parent / "router"
MAX_BODY_BYTES = 65536


def tiny_orders() -> list[dict[str, Any]]:
    """The tiny scenario's orders as proto3 JSON (original field names)."""
    lines = (TINY / "orders.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _start(args: list[str], log: Path, marker: str = "listening on") -> tuple[Popen[bytes], str]:
    """Start ``router ARGS`` with stdout to a file beside ``log``; wait for its address line."""
    return processes.start([str(ROUTER), *args], log, marker)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("intake")


@pytest.fixture(scope="session")
def grpc_target(workdir: Path) -> Iterator[str]:
    """The address of a ``router serve`` process for the tiny scenario."""
    ledger = f"sqlite://{workdir / 'ledger.db'}"
    args = [
        "serve",
        "--scenario",
        str(TINY),
        "--ledger",
        ledger,
        "--port",
        "0",
        "--metrics-port",
        "0",
    ]
    process, address = _start(args, workdir / "serve.log")
    try:
        yield address
    finally:
        processes.stop(process)


@pytest.fixture(scope="session")
def trap_target(workdir: Path) -> Iterator[str]:
    """The address of a ``router serve`` process for the trap scenario."""
    ledger = f"sqlite://{workdir / 'trap.db'}"
    args = [
        "serve",
        "--scenario",
        str(TRAP),
        "--ledger",
        ledger,
        "--port",
        "0",
        "--metrics-port",
        "0",
    ]
    process, address = _start(args, workdir / "serve-trap.log")
    try:
        yield address
    finally:
        processes.stop(process)


@pytest.fixture(scope="session")
def start_gateway(workdir: Path) -> Iterator[Callable[..., str]]:
    """Start a ``router intake`` process with the given flags; its base URL."""
    started: list[Popen[bytes]] = []

    def start(name: str, target: str, *flags: str) -> str:
        args = ["intake", "--port", "0", "--target", target, "--metrics-port", "0", *flags]
        process, address = _start(args, workdir / f"intake-{name}.log")
        started.append(process)
        return f"http://{address}"

    try:
        yield start
    finally:
        for process in started:
            processes.stop(process)


@pytest.fixture(scope="session")
def gateway(start_gateway: Callable[..., str], grpc_target: str) -> str:
    """The main gateway's base URL."""
    return start_gateway("main", grpc_target, "--max-body-bytes", str(MAX_BODY_BYTES))


@pytest.fixture(scope="session")
def roomy_gateway(start_gateway: Callable[..., str], grpc_target: str) -> str:
    """A gateway taking 1 MiB bodies but batches of at most 3 orders."""
    return start_gateway(
        "roomy", grpc_target, "--max-body-bytes", str(1 << 20), "--max-batch-orders", "3"
    )


@pytest.fixture(scope="session")
def tight_gateway(start_gateway: Callable[..., str], grpc_target: str) -> str:
    """A gateway that lets one request in at a time."""
    return start_gateway("tight", grpc_target, "--max-in-flight", "1")


@pytest.fixture(scope="session")
def down_gateway(start_gateway: Callable[..., str]) -> str:
    """A gateway whose gRPC target is a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return start_gateway("down", f"127.0.0.1:{port}")


@pytest.fixture(scope="session")
def trap_client(start_gateway: Callable[..., str], trap_target: str) -> Iterator[httpx.Client]:
    """An HTTP client of a gateway before the trap scenario's service."""
    with httpx.Client(base_url=start_gateway("trap", trap_target), timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def client(gateway: str) -> Iterator[httpx.Client]:
    """An HTTP client of the main gateway."""
    with httpx.Client(base_url=gateway, timeout=30) as http:
        yield http
