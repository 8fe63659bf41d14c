"""Replenishment: units that arrive on hand at a node at a given time (what-if inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models.errors import Violations, quoted
from models.network import Network


@dataclass(frozen=True, slots=True)
class Replenishment:
    """``units`` of ``sku`` arrive on hand at ``node_id`` at ``at`` (timezone-aware)."""

    at: datetime
    node_id: str
    sku: str
    units: int


def check_replenishment(replenishment: Sequence[Replenishment], network: Network) -> None:
    """Refuse replenishments that ``network`` cannot take, naming every bad row.

    Each row must name a node and a SKU of ``network``, bring ``units`` >= 0 and arrive at
    a timezone-aware time. Raises :class:`~models.errors.InvalidArgumentError` with one
    violation per bad field, pathed ``replenishment[i].field`` (e.g.
    ``replenishment[2].node_id: unknown node 'X'``).
    """
    v = Violations("replenishment")
    for i, r in enumerate(replenishment):
        row = Violations(v.path(f"[{i}]"))
        if network.node(r.node_id) is None:
            row.add("node_id", f"unknown node {quoted(r.node_id)}")
        if r.sku not in network.skus:
            row.add("sku", f"unknown sku {quoted(r.sku)}")
        if r.units < 0:
            row.add("units", f"must be >= 0, got {r.units}")
        if r.at.tzinfo is None or r.at.utcoffset() is None:
            row.add("at", f"must be timezone-aware, got {r.at.isoformat()}")
        v.extend(row.items)
    v.raise_if_any()
