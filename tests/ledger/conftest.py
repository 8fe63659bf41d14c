"""Ledgers for the tests: every backend on a tiny network, PostgreSQL in a schema of its own.

The PostgreSQL fixture connects to the server on loopback. It skips only when no server
answers and ``CI`` is not ``"true"``; under ``CI=true`` an unreachable server fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import psycopg
import pytest

from models.network import Network, Node, NodeType, RateCard, Sku, Stock, StockPosition
from router.ledger import Ledger, open_ledger

PG_URL = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)
BACKENDS = ("memory", "sqlite", "postgres")


def node(node_id: str, capacity: int | None = None) -> Node:
    """A node that only matters to the ledger: its id and daily order capacity."""
    return Node(node_id, NodeType.DC, 0.0, 0.0, "US", "UTC", 1.0, 0.0, 0.0, time(23, 59), capacity)


def scenario(
    positions: list[tuple[str, str, int, int]], capacities: dict[str, int | None]
) -> tuple[Network, Stock]:
    """A network of the named nodes and stock of (node_id, sku, on_hand, safety_stock)."""
    skus = {p[1]: Sku(p[1], 1.0) for p in positions}
    network = Network(tuple(node(n, c) for n, c in capacities.items()), skus, RateCard({}))
    stock = Stock.of(StockPosition(n, s, q, safety) for n, s, q, safety in positions)
    return network, stock


#: The standard tiny scenario: N1 unlimited, N2 two orders a day.
POSITIONS = [("N1", "A", 10, 2), ("N1", "B", 5, 0), ("N2", "A", 4, 0)]
CAPACITIES: dict[str, int | None] = {"N1": None, "N2": 2}


def _server_reachable() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as e:
        return str(e)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL URL; skip (or fail under CI=true) when no server answers."""
    problem = _server_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL at {PG_URL} is unreachable: {problem}")
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {problem}")
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A ledger URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_server else "?"
    yield f"{pg_server}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def ledger_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty ledger of ``backend``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ledger's URL, once per backend."""
    return ledger_url(str(request.param), tmp_path, request)


@pytest.fixture
def ledger(backend_url: str) -> Iterator[Ledger]:
    """A ledger of each backend loaded with the standard tiny scenario."""
    with open_ledger(backend_url) as opened:
        opened.load(*scenario(POSITIONS, CAPACITIES))
        yield opened


def position(ledger: Ledger, node_id: str, sku: str) -> tuple[int, int, int]:
    """(on_hand, reserved, available) of one position."""
    p = ledger.stock().positions[(node_id, sku)]
    return p.on_hand, p.reserved, p.available


def used_on(ledger: Ledger, day: date) -> dict[str, int]:
    """Order slots taken per node on ``day`` (nodes with none absent), by capacity_used."""
    return {n: used for (n, d), used in ledger.capacity_used(day, day).slots.items() if d == day}
