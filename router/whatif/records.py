"""The tidy record of one order routed in one run: the schema every part of what-if shares.

A *run* replays one order stream under one policy (and one setting of it, in a sweep); it
yields one :class:`OrderRecord` per order, in arrival order. Tables (CSV, Parquet) have
exactly the columns :data:`COLUMNS`, one row per record.

Cost is always the *evaluation* cost: the canonical model's objective (docs/cost-model.md)
of the units the policy shipped, under the scenario's own rules, whatever rules or weights
the policy routed with. So a sweep over the split penalty changes how orders are routed,
never how the result is priced, and every policy is priced alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as one run routed it.

    ``cost`` is in currency units (the evaluation objective at the policy's assignment).
    ``on_time`` is *on time in full*: ``None`` when the order has no deliver-by date;
    otherwise ``True`` only when every unit ordered ships and no shipment is late (the
    evaluation model's ``late`` is 0 for every shipping candidate), and ``False`` when a
    shipment is late, some units are backordered, or nothing ships at all, so
    backordering never counts as on time. ``distance_km`` is the unit-weighted mean
    distance of the shipped units only, and NaN when nothing ships (not 0, which would
    make a backorder look close; the KPIs and paired comparisons leave NaN out).
    ``node_units`` lists the units each shipping node sent, as ``"DC-01:3;ST-0007:1"``
    (sorted by node id). ``latency_s`` is the wall-clock time of the policy's decision
    (a look-ahead decision that re-prices includes the pricing). ``price_version`` names
    the look-ahead stock prices the decision was made with (``prices@v3``; empty for
    other policies and before the first pricing).
    """

    run: str
    policy: str
    setting: str
    scenario: str
    seed: int
    seq: int
    order_id: str
    status: str
    cost: float
    shipments: int
    units_ordered: int
    units_shipped: int
    units_backordered: int
    on_time: bool | None
    distance_km: float
    dc_units: int
    store_units: int
    other_units: int
    node_units: str
    latency_s: float
    price_version: str = ""

    def row(self) -> dict[str, object]:
        """The record as a table row (column → value)."""
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(OrderRecord))
"""The columns of every what-if table, in order."""

DETERMINISTIC: tuple[str, ...] = tuple(c for c in COLUMNS if c != "latency_s")
"""The columns that do not depend on the machine: equal for equal runs, whichever executor."""
