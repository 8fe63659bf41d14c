"""Replay an order stream under one policy on depleting stock: one record per order.

Orders are routed one at a time in arrival order (``created_at``, then order id). Before
each order, the replenishments due by its ``created_at`` arrive (on hand grows). For each
order replay builds the *evaluation model*, the canonical model under the evaluation rules
(the scenario's own, a single strategy) on the current stock and today's capacity, asks
the policy for its assignment, prices it on that model, and then takes the shipped units
off on hand and counts an order against the daily capacity of every node that ships
(days are UTC days of ``created_at``).

Stock stays a frozen :class:`~models.network.Stock`: after each order a new one is made in
which only the positions that changed are replaced, so an order costs a copy of the
position index, not a regrouping of every position.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from types import MappingProxyType

from tqdm import tqdm

from benchmarks.whatif.policies import HEURISTIC, RoutingPolicy
from benchmarks.whatif.records import OrderRecord
from models.money import from_units
from models.network import Network, NodeType, Stock, StockPosition
from models.order import Order
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.candidates import build_model
from router.engine.terms import BuiltModel


@dataclass(frozen=True, slots=True)
class Replenishment:
    """``units`` of ``sku`` arrive on hand at ``node_id`` at ``at`` (timezone-aware)."""

    at: datetime
    node_id: str
    sku: str
    units: int


STORE_TYPES = frozenset({NodeType.STORE, NodeType.DARK_STORE})
"""Node types whose units count as ``store_units`` (3PL and drop-ship are ``other_units``)."""


def replay(
    scenario: Scenario,
    policy: RoutingPolicy,
    *,
    scenario_name: str,
    seed: int,
    setting: str = "",
    run: str | None = None,
    orders: Sequence[Order] | None = None,
    replenishment: Sequence[Replenishment] = (),
    evaluation: RuleSet | None = None,
    progress: bool = False,
) -> list[OrderRecord]:
    """Route ``orders`` (default: the scenario's) under ``policy``; one record per order.

    ``evaluation`` (default: the scenario's rules) must be a rule set of exactly one
    strategy: its policy prices every decision. ``run`` defaults to the policy's name,
    followed by ``setting`` when there is one. ``seq`` is the order's place in arrival
    order, from 0. The scenario itself is not changed.
    """
    rules = scenario.rules if evaluation is None else evaluation
    if len(rules.strategies) != 1:
        names = ", ".join(s.name for s in rules.strategies) or "none"
        raise ValueError(
            f"the evaluation rule set {rules.label} must have exactly one strategy to price "
            f"every order by; it has {len(rules.strategies)} ({names})"
        )
    eval_policy = rules.strategies[0].policy
    network = scenario.network
    _check_replenishment(replenishment, network)
    stream = sorted(scenario.orders if orders is None else orders, key=_arrival)
    arrivals = sorted(replenishment, key=lambda r: r.at)
    due = 0
    name = run if run is not None else (f"{policy.name} {setting}" if setting else policy.name)
    stock = scenario.stock
    capacity: dict[date, dict[str, int]] = {}
    records: list[OrderRecord] = []
    iterable: Iterable[Order] = tqdm(stream, desc=name, unit="order", disable=not progress)
    for seq, order in enumerate(iterable):
        arrived: dict[tuple[str, str], int] = {}
        while due < len(arrivals) and arrivals[due].at <= order.created_at:
            r = arrivals[due]
            arrived[(r.node_id, r.sku)] = arrived.get((r.node_id, r.sku), 0) + r.units
            due += 1
        if arrived:
            stock = _moved(stock, arrived)
        used = capacity.setdefault(order.created_at.astimezone(UTC).date(), {})
        built = build_model(order, network, stock, eval_policy, used)
        started = time.perf_counter()
        decision = policy.decide(order, built, network, stock, MappingProxyType(used))
        latency = time.perf_counter() - started
        assignment = _checked(decision, built, order, policy.name)
        records.append(
            _record(
                order,
                built,
                network,
                assignment,
                status=str(getattr(decision, "status", HEURISTIC)),
                run=name,
                policy=policy.name,
                setting=setting,
                scenario=scenario_name,
                seed=seed,
                seq=seq,
                latency=latency,
            )
        )
        shipped: dict[tuple[str, str], int] = {}
        node_ids = built.matrices.node_ids
        for (j, line), units in assignment.items():
            key = (node_ids[j], built.lines[line].sku)
            shipped[key] = shipped.get(key, 0) - units
        if shipped:
            stock = _moved(stock, shipped, order_id=order.order_id)
            for node_id in {node for node, _ in shipped}:
                used[node_id] = used.get(node_id, 0) + 1
    return records


def _arrival(order: Order) -> tuple[datetime, str]:
    return order.created_at, order.order_id


def _check_replenishment(replenishment: Sequence[Replenishment], network: Network) -> None:
    for r in replenishment:
        if network.node(r.node_id) is None:
            raise ValueError(f"replenishment at {r.at}: unknown node {r.node_id!r}")
        if r.sku not in network.skus:
            raise ValueError(f"replenishment at {r.at}: unknown sku {r.sku!r}")
        if r.units < 0:
            raise ValueError(f"replenishment at {r.at}: units must be >= 0, got {r.units}")
        if r.at.tzinfo is None:
            raise ValueError(f"replenishment at {r.at}: the time must be timezone-aware")


def _checked(
    decision: Mapping[tuple[int, int], int], built: BuiltModel, order: Order, policy: str
) -> dict[tuple[int, int], int]:
    """The decision's positive entries, after checking that they fit the model."""
    n_candidates, n_lines = len(built.matrices.node_ids), len(built.lines)
    out: dict[tuple[int, int], int] = {}
    shipped = [0] * n_lines
    for (j, line), units in decision.items():
        if not (0 <= j < n_candidates and 0 <= line < n_lines) or units < 0:
            raise ValueError(
                f"order {order.order_id}: policy {policy!r} assigned {units} unit(s) to "
                f"(candidate {j}, line {line}); the model has {n_candidates} candidates "
                f"and {n_lines} lines, and units must be >= 0"
            )
        if units:
            out[(j, line)] = units
            shipped[line] += units
    for line, terms in enumerate(built.lines):
        if shipped[line] > terms.quantity:
            raise ValueError(
                f"order {order.order_id}: policy {policy!r} ships {shipped[line]} unit(s) of "
                f"line {terms.line_id}, which orders {terms.quantity}"
            )
    return out


def _record(
    order: Order,
    built: BuiltModel,
    network: Network,
    assignment: Mapping[tuple[int, int], int],
    *,
    status: str,
    run: str,
    policy: str,
    setting: str,
    scenario: str,
    seed: int,
    seq: int,
    latency: float,
) -> OrderRecord:
    m = built.matrices
    per_node: dict[int, int] = {}
    for (j, _), units in assignment.items():
        per_node[j] = per_node.get(j, 0) + units
    ordered = sum(terms.quantity for terms in built.lines)
    shipped = sum(per_node.values())
    by_type = dict.fromkeys(("dc", "store", "other"), 0)
    for j, units in per_node.items():
        node = network.node(m.node_ids[j])
        assert node is not None
        if node.type is NodeType.DC:
            kind = "dc"
        else:
            kind = "store" if node.type in STORE_TYPES else "other"
        by_type[kind] += units
    on_time: bool | None = None
    if order.deliver_by is not None and per_node:
        deadline = order.deliver_by.toordinal()
        on_time = all(int(m.delivery[j]) <= deadline for j in per_node)
    distance = (
        sum(float(m.distance[j]) * units for j, units in per_node.items()) / shipped
        if shipped
        else 0.0
    )
    node_units = ";".join(
        f"{node_id}:{units}"
        for node_id, units in sorted((m.node_ids[j], u) for j, u in per_node.items())
    )
    return OrderRecord(
        run=run,
        policy=policy,
        setting=setting,
        scenario=scenario,
        seed=seed,
        seq=seq,
        order_id=order.order_id,
        status=status,
        cost=from_units(objective(built, assignment)),
        shipments=len(per_node),
        units_ordered=ordered,
        units_shipped=shipped,
        units_backordered=ordered - shipped,
        on_time=on_time,
        distance_km=distance,
        dc_units=by_type["dc"],
        store_units=by_type["store"],
        other_units=by_type["other"],
        node_units=node_units,
        latency_s=latency,
    )


def objective(built: BuiltModel, assignment: Mapping[tuple[int, int], int]) -> int:
    """``built.model.objective(assignment)`` (solver units), from the arrays.

    The same sum as :meth:`~models.plan.ExplainedModel.objective`, without making the
    explained model (a few hundred candidate objects, which cost more than the replay
    step itself).
    """
    m = built.matrices
    used = sorted({j for (j, _), units in assignment.items() if units > 0})
    total = built.offset + built.split_penalty * max(0, len(used) - 1)
    for j in used:
        total += int(m.handling[j]) + int(m.shipping[j]) + int(m.lateness[j]) + int(m.penalty[j])
    shipped = [0] * len(built.lines)
    for (j, line), units in assignment.items():
        total += int(m.unit[j, line]) * units
        shipped[line] += units
    for line, terms in enumerate(built.lines):
        total += terms.backorder_cost * (terms.quantity - shipped[line])
    return total


def _moved(stock: Stock, change: Mapping[tuple[str, str], int], *, order_id: str = "") -> Stock:
    """``stock`` with ``change[(node_id, sku)]`` units added to on hand (negative: taken)."""
    changed = []
    for (node_id, sku), units in change.items():
        old = stock.positions.get((node_id, sku))
        on_hand = (0 if old is None else old.on_hand) + units
        if on_hand < 0:
            raise ValueError(
                f"order {order_id}: {-units} unit(s) of {sku} shipped from {node_id}, "
                f"which has {0 if old is None else old.on_hand} on hand"
            )
        changed.append(
            StockPosition(node_id, sku, on_hand) if old is None else replace(old, on_hand=on_hand)
        )
    return stock.replaced(changed)
