"""Replay an order stream under one policy on depleting stock: one record per order.

Orders are routed one at a time in arrival order (:func:`arrival_order`: ``created_at``,
then order id). Before each order, the replenishments due by its ``created_at`` arrive (on
hand grows; a replenishment at ``at`` is there for every order with ``created_at >= at``;
a :class:`~router.whatif.policies.StockAware` policy is told what arrived). For each
order replay builds the *evaluation model*, the canonical model under the evaluation
rules (the scenario's own, a single strategy) on the current stock and the capacity used
so far, asks the policy for its decision, checks that the decision keeps that model
(:func:`check_decision`), prices it on that model, and then takes the shipped units off on
hand and counts an order against the daily capacity of every node that ships, on that
node's ship date (the day its shipment leaves, in its calendar), as the service does.
Every replay is therefore a feasible integer point of the hindsight bound's model
(:mod:`router.whatif.bound`), and costs at least the bound.

What an order costs beyond its own decision is the size of what it changed. Stock stays
a frozen :class:`~models.network.Stock`: after each order
:meth:`~models.network.Stock.replaced` lays the changed positions over the previous stock
(nothing is copied whole), every SKU not touched keeps its tuple of positions and with it
its per-SKU arrays (:mod:`router.engine.arrays`), and an engine routing by the evaluation
rules is handed the evaluation model already built (``build_model`` keeps the last
models it built), so it is priced on the model it solved.
``python -m benchmarks.replay`` measures the cost against independent planning.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from models.capacity import CapacityUsed
from models.money import from_units
from models.network import Network, NodeType, Stock, StockPosition
from models.order import Order
from models.replenishment import Replenishment, check_replenishment
from models.rules import Policy, RuleSet
from models.scenario import Scenario
from router.engine.candidates import build_model
from router.engine.terms import BuiltModel
from router.whatif.decision import RoutingPolicy, StockAware
from router.whatif.records import OrderRecord

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
    progress_every: int = 0,
) -> list[OrderRecord]:
    """Route ``orders`` (default: the scenario's) under ``policy``; one record per order.

    ``evaluation`` (default: the scenario's rules) must be a rule set of exactly one
    strategy: its policy prices every decision. ``run`` defaults to the policy's name,
    followed by ``setting`` when there is one. ``seq`` is the order's place in arrival
    order (:func:`arrival_order`), from 0. The scenario itself is not changed.

    Every decision is checked against the evaluation model (:func:`check_decision`):
    one that breaks it raises ``ValueError`` naming the order and the constraint, so no
    replay is priced on a plan the evaluation model forbids (which could cost less than
    the hindsight bound). A bad replenishment raises
    :class:`~models.errors.InvalidArgumentError` (:func:`check_replenishment`).

    With ``progress_every`` > 0, a line ``"{run} {scenario} seed {seed}: {k}/{n} orders"``
    goes to stderr (flushed) after every ``progress_every`` orders.
    """
    if progress_every < 0:
        raise ValueError(f"progress_every must be >= 0, got {progress_every}")
    eval_policy = _pricing_policy(scenario.rules if evaluation is None else evaluation)
    network = scenario.network
    check_replenishment(replenishment, network)
    stream = arrival_order(scenario.orders if orders is None else orders)
    arrivals = sorted(replenishment, key=lambda r: r.at)
    due = 0
    name = run if run is not None else (f"{policy.name} {setting}" if setting else policy.name)
    stock = scenario.stock
    capacity: dict[tuple[str, date], int] = {}  # orders per (node, ship date)
    records: list[OrderRecord] = []
    for seq, order in enumerate(stream):
        arrived, due = _arrived_by(arrivals, due, order.created_at)
        if arrived:
            stock = _moved(stock, arrived)
            if isinstance(policy, StockAware):
                policy.arrived(arrived)
        used = CapacityUsed(dict(capacity))
        built = build_model(order, network, stock, eval_policy, used)
        started = time.perf_counter()
        decision = policy.decide(order, built, network, stock, used)
        latency = time.perf_counter() - started
        assignment = check_decision(decision, built, order_id=order.order_id, policy=policy.name)
        records.append(
            _record(
                order,
                built,
                network,
                assignment,
                status=str(decision.status),
                run=name,
                policy=policy.name,
                setting=setting,
                scenario=scenario_name,
                seed=seed,
                seq=seq,
                latency=latency,
                price_version=decision.price_version,
            )
        )
        stock = _ship(stock, capacity, built, assignment, order.order_id)
        if progress_every and (seq + 1) % progress_every == 0:
            print(
                f"{name} {scenario_name} seed {seed}: {seq + 1}/{len(stream)} orders",
                file=sys.stderr,
                flush=True,
            )
    return records


def _pricing_policy(rules: RuleSet) -> Policy:
    """The one strategy's policy every decision is priced by; ValueError unless exactly one."""
    if len(rules.strategies) != 1:
        names = ", ".join(s.name for s in rules.strategies) or "none"
        raise ValueError(
            f"the evaluation rule set {rules.label} must have exactly one strategy to price "
            f"every order by; it has {len(rules.strategies)} ({names})"
        )
    return rules.strategies[0].policy


def _arrived_by(
    arrivals: Sequence[Replenishment], due: int, now: datetime
) -> tuple[dict[tuple[str, str], int], int]:
    """Units per (node, SKU) of the arrivals from ``due`` on that came by ``now``; next due."""
    arrived: dict[tuple[str, str], int] = {}
    while due < len(arrivals) and arrivals[due].at <= now:
        r = arrivals[due]
        arrived[(r.node_id, r.sku)] = arrived.get((r.node_id, r.sku), 0) + r.units
        due += 1
    return arrived, due


def _ship(
    stock: Stock,
    capacity: dict[tuple[str, date], int],
    built: BuiltModel,
    assignment: Mapping[tuple[int, int], int],
    order_id: str,
) -> Stock:
    """The stock after ``assignment`` shipped; each shipping node's slot on its ship date taken."""
    shipped: dict[tuple[str, str], int] = {}
    node_ids = built.matrices.node_ids
    for (j, line), units in assignment.items():
        key = (node_ids[j], built.lines[line].sku)
        shipped[key] = shipped.get(key, 0) - units
    if not shipped:
        return stock
    stock = _moved(stock, shipped, order_id=order_id)
    for j in {j for j, _ in assignment}:
        slot = (node_ids[j], date.fromordinal(int(built.matrices.ship[j])))
        capacity[slot] = capacity.get(slot, 0) + 1
    return stock


def arrival_order(orders: Iterable[Order], n: int | None = None) -> tuple[Order, ...]:
    """``orders`` in arrival order: by ``created_at``, then order id; the first ``n`` (all if None).

    The one order every part of what-if replays and bounds a stream in.
    """
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0 or None, got {n}")
    ordered = sorted(orders, key=lambda o: (o.created_at, o.order_id))
    return tuple(ordered if n is None else ordered[:n])


def check_decision(
    decision: Mapping[tuple[int, int], int], built: BuiltModel, *, order_id: str, policy: str
) -> dict[tuple[int, int], int]:
    """The decision's positive entries, after checking that it keeps the evaluation model.

    A decision (units per (candidate, line)) keeps ``built`` when:

    - every key is a candidate and a line of the model and every unit count is >= 0;
    - no line ships more than it orders;
    - *availability*: at each candidate, the lines of one SKU together ship at most the
      units of it available there (``a_lj``; the lines of a SKU share the node's stock);
    - *max shipments*: it ships from at most ``max_shipments`` candidates, and from one
      when the model must ship complete (``ship_complete``);
    - *all or nothing*: when anything ships, every line that does not allow partial
      fulfilment ships in full (an empty decision, all backordered, is always allowed:
      it is the engine's answer to an order no plan fits).

    Daily node capacity needs no check here: a node whose capacity is used up is not a
    candidate of the evaluation model. Raises ``ValueError`` naming the order, the policy
    and the broken constraint.
    """
    m = built.matrices
    n_candidates, n_lines = len(m.node_ids), len(built.lines)

    def refuse(what: str) -> ValueError:
        return ValueError(f"order {order_id}: policy {policy!r} {what}")

    out: dict[tuple[int, int], int] = {}
    shipped = [0] * n_lines
    per_sku: dict[tuple[int, str], int] = {}
    for (j, line), units in decision.items():
        if not (0 <= j < n_candidates and 0 <= line < n_lines) or units < 0:
            raise refuse(
                f"assigned {units} unit(s) to (candidate {j}, line {line}); the model has "
                f"{n_candidates} candidates and {n_lines} lines, and units must be >= 0"
            )
        if units:
            out[(j, line)] = units
            shipped[line] += units
            key = (j, built.lines[line].sku)
            per_sku[key] = per_sku.get(key, 0) + units
    for line, terms in enumerate(built.lines):
        if shipped[line] > terms.quantity:
            raise refuse(
                f"ships {shipped[line]} unit(s) of line {terms.line_id}, which orders "
                f"{terms.quantity}"
            )
    first_line: dict[str, int] = {}
    for line, terms in enumerate(built.lines):
        first_line.setdefault(terms.sku, line)
    for (j, sku), units in per_sku.items():
        available = int(m.available[j, first_line[sku]])
        if units > available:
            raise refuse(
                f"ships {units} unit(s) of {sku} from {m.node_ids[j]}, which has {available} "
                "available (availability: lines of one SKU share a node's stock)"
            )
    nodes = sorted({j for j, _ in out})
    limits = [(built.max_shipments, "max_shipments")] if built.max_shipments is not None else []
    if built.ship_complete:
        limits.append((1, "ship_complete"))
    for limit, constraint in limits:
        if len(nodes) > limit:
            shipping = ", ".join(m.node_ids[j] for j in nodes)
            raise refuse(
                f"ships from {len(nodes)} nodes ({shipping}); the evaluation model allows "
                f"at most {limit} ({constraint})"
            )
    if out:
        for line, terms in enumerate(built.lines):
            if not terms.allow_partial and shipped[line] < terms.quantity:
                raise refuse(
                    f"ships {shipped[line]} of {terms.quantity} unit(s) of line "
                    f"{terms.line_id}, which does not allow partial fulfilment (all or "
                    "nothing: every unit ships, or nothing of the order does)"
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
    price_version: str = "",
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
    # On time in full: dated orders only; every unit ships and no shipment is late.
    on_time: bool | None = None
    if order.deliver_by is not None:
        on_time = shipped == ordered and all(int(m.late[j]) == 0 for j in per_node)
    distance = (
        sum(float(m.distance[j]) * units for j, units in per_node.items()) / shipped
        if shipped
        else math.nan
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
        price_version=price_version,
    )


def objective(built: BuiltModel, assignment: Mapping[tuple[int, int], int]) -> int:
    """``built.model.objective(assignment)`` (solver units), from the arrays.

    The same sum as :meth:`~models.plan.ExplainedModel.objective`, without making the
    explained model (a few hundred candidate objects, which cost more than the replay
    step itself). Each shipping candidate's fixed cost is the model's own ``F_j``
    (:attr:`~router.engine.terms.Matrices.shipment`), not a re-sum of its terms.
    """
    m = built.matrices
    used = sorted({j for (j, _), units in assignment.items() if units > 0})
    total = built.offset + built.split_penalty * max(0, len(used) - 1)
    if used:
        total += int(m.shipment[used].sum())  # F_j of every shipping candidate
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
