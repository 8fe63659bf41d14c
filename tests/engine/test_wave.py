"""The wave engine: joint plans against shared stock and node capacity, certified gaps.

Hand-worked tiny waves pin the joint optimum; random small waves are re-solved as one
MILP by HiGHS (scipy's ``milp``, the per-order matrix model of ``router.engine.highs``
block by block, with the coupling rows written here) to check that the wave's bound is
below the optimum, its objective above it, and equal to it when the wave says OPTIMAL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from models.capacity import CapacityUsed
from models.network import Network, Stock
from models.order import Order, OrderLine, ShipTo
from models.plan import Plan, SolveStatus
from models.rules import Policy, RuleSet
from router.engine.candidates import build_model
from router.engine.highs import MatrixModel
from router.engine.stop import Stop
from router.engine.wave import plan_wave
from tests.engine.conftest import CREATED, network, node, stock

UNIT = 10_000
"""Solver units per currency unit."""

RULES = RuleSet()


def wave_order(
    order_id: str,
    lon: float,
    *lines: tuple[str, int],
    minutes: int = 0,
    deliver_by: date | None = None,
    ship_complete: bool = False,
    allow_partial: bool = True,
    max_shipments: int | None = None,
) -> Order:
    """An order to (0, ``lon``) created ``minutes`` after CREATED."""
    return Order(
        order_id=order_id,
        created_at=CREATED + timedelta(minutes=minutes),
        ship_to=ShipTo(0.0, lon, "US", "00000"),
        service="ground",
        lines=tuple(OrderLine(f"l{i + 1}", s, q) for i, (s, q) in enumerate(lines)),
        deliver_by=deliver_by,
        ship_complete=ship_complete,
        allow_partial=allow_partial,
        max_shipments=max_shipments,
    )


def test_the_contested_unit_goes_to_the_order_that_saves_more() -> None:
    """Two orders want NEAR's one unit of A; the joint optimum gives it to the larger saving.

    A weighs 1 kg; every node charges 1 per shipment; ground costs 5 + 1/kg up to 500 km
    (1 day) and 8 + 2/kg up to 1,500 km (3 days); lateness costs 6 a day. Orders ship on
    11-20.

    * o1 to lon 0, due 11-21: NEAR (0 km) 1 + 5 + 1 = 7; FAR (1,112 km) 1 + 8 + 2 = 11,
      delivered 11-23, 2 days late: + 12 = 23. Saving of NEAR: 16.
    * o2 to lon 4, no due date: NEAR (445 km) 7; FAR (667 km) 11. Saving of NEAR: 4.

    o2 arrives first, so one by one it takes NEAR: 7 + 23 = 30. Jointly o1 gets NEAR and o2
    ships from FAR: 7 + 11 = 18, the optimum (the other assignment costs 30), proven.
    """
    net = network(node("NEAR", 0.0), node("FAR", 10.0))
    on_hand = stock(("NEAR", "A", 1), ("FAR", "A", 5))
    o2 = wave_order("o2", 4.0, ("A", 1))
    o1 = wave_order("o1", 0.0, ("A", 1), minutes=5, deliver_by=date(2026, 11, 21))
    wave = plan_wave([o2, o1], net, on_hand, RULES)
    assert wave.status is SolveStatus.OPTIMAL
    assert (wave.objective, wave.bound) == (18 * UNIT, 18 * UNIT)
    by_id = {p.order_id: p for p in wave.plans}
    assert [s.node_id for s in by_id["o1"].shipments] == ["NEAR"]
    assert [s.node_id for s in by_id["o2"].shipments] == ["FAR"]
    assert [p.order_id for p in wave.plans] == ["o2", "o1"]  # plans follow the orders


def test_a_one_slot_node_ships_the_order_that_saves_more() -> None:
    """STORE has stock for both orders but one order slot on 11-20; DC has no limit.

    The terms are those of the test above with STORE for NEAR and DC for FAR: o1 pays 7 at
    STORE or 23 at DC, o2 7 or 11. One slot: o1 at STORE, o2 at DC, 18 (not 7 + 23 = 30).
    With the slot already taken (``capacity_used``) both ship from DC: 23 + 11 = 34.
    """
    net = network(node("STORE", 0.0, capacity=1), node("DC", 10.0))
    on_hand = stock(("STORE", "A", 5), ("DC", "A", 5))
    o2 = wave_order("o2", 4.0, ("A", 1))
    o1 = wave_order("o1", 0.0, ("A", 1), minutes=5, deliver_by=date(2026, 11, 21))
    wave = plan_wave([o2, o1], net, on_hand, RULES)
    assert (wave.status, wave.objective, wave.bound) == (SolveStatus.OPTIMAL, 18 * UNIT, 18 * UNIT)
    assert [s.node_id for p in wave.plans for s in p.shipments] == ["DC", "STORE"]
    taken = CapacityUsed({("STORE", date(2026, 11, 20)): 1})
    full = plan_wave([o2, o1], net, on_hand, RULES, capacity_used=taken)
    assert (full.status, full.objective) == (SolveStatus.OPTIMAL, 34 * UNIT)
    assert {s.node_id for p in full.plans for s in p.shipments} == {"DC"}


def test_an_order_that_must_ship_in_full_is_left_out_whole_when_the_stock_cannot() -> None:
    """Two no-partial orders of 2 A each; the network holds 3 A (NEAR 3).

    Only one can ship in full. Each costs 1 + 5 + 2·1 = 8 shipped, or its backorder
    2 × 60 = 120 left out. Joint optimum: one ships (8), the other is left out (120):
    128. The one left out is INFEASIBLE with every unit unfulfilled.

    The Lagrangian bound alone cannot prove it (an integrality gap): with a price λ per
    unit of NEAR's A, each order costs min(8 + 2λ, 120), so L(λ) = 2·min(8 + 2λ, 120) − 3λ,
    at most 16 + 56 = 72 (λ = 56). The exact sub-wave (both orders in one MILP) proves 128.
    """
    net = network(node("NEAR", 0.0))
    on_hand = stock(("NEAR", "A", 3))
    orders = [
        wave_order("o1", 0.0, ("A", 2), allow_partial=False),
        wave_order("o2", 0.0, ("A", 2), allow_partial=False, minutes=1),
    ]
    wave = plan_wave(orders, net, on_hand, RULES)
    assert (wave.status, wave.objective, wave.bound) == (
        SolveStatus.OPTIMAL,
        128 * UNIT,
        128 * UNIT,
    )
    statuses = sorted(p.status for p in wave.plans)
    assert statuses == [SolveStatus.INFEASIBLE, SolveStatus.OPTIMAL]
    left_out = next(p for p in wave.plans if p.status is SolveStatus.INFEASIBLE)
    assert not left_out.shipments and sum(u.quantity for u in left_out.unfulfilled) == 2


def test_a_wave_stopped_before_it_starts_still_returns_a_feasible_plan_and_a_true_bound() -> None:
    """With the time already up the wave still plans every order, within the stock."""
    net = network(node("NEAR", 0.0), node("FAR", 10.0))
    on_hand = stock(("NEAR", "A", 1), ("FAR", "A", 5))
    orders = [wave_order(f"o{i}", float(i), ("A", 1), minutes=i) for i in range(4)]
    wave = plan_wave(orders, net, on_hand, RULES, stop=Stop(0.0))
    assert wave.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert wave.bound <= wave.objective
    assert_feasible(wave.plans, net, on_hand, CapacityUsed())
    assert len(wave.plans) == 4


@pytest.mark.parametrize("engine", ["highs-full", "cpsat-full"])
def test_a_wave_stopped_before_its_solver_proved_anything_is_not_called_optimal(
    engine: str,
) -> None:
    """Solvers stopped before they start prove no bound: the wave says FEASIBLE.

    (It said OPTIMAL, "proven", once: a solve cut short without a bound counted its
    plan's cost, or the cost of leaving the order out, as a proven least cost.) The bound
    it gives must still be below the true optimum, here the unstopped wave's.
    """
    net = network(node("NEAR", 0.0), node("FAR", 10.0))
    on_hand = stock(("NEAR", "A", 1), ("FAR", "A", 5))
    orders = [wave_order(f"o{i}", float(i), ("A", 1), minutes=i) for i in range(4)]
    optimum = plan_wave(orders, net, on_hand, RULES, engine=engine)
    assert optimum.status is SolveStatus.OPTIMAL
    stopped = Stop(60.0)
    stopped.set()
    wave = plan_wave(orders, net, on_hand, RULES, stop=stopped, engine=engine)
    assert wave.status is SolveStatus.FEASIBLE
    assert wave.bound <= optimum.objective <= wave.objective


@st.composite
def waves(draw: st.DrawFn) -> tuple[Network, Stock, list[Order]]:
    """2–4 nodes on the equator (some with 1–2 order slots a day), scarce stock, 2–6 orders."""
    n_nodes = draw(st.integers(2, 4))
    nodes = [
        node(
            f"N{j}",
            draw(st.floats(0.0, 12.0)),
            per_shipment=draw(st.sampled_from([0.5, 1.0, 2.0])),
            per_unit=draw(st.sampled_from([0.0, 0.25])),
            capacity=draw(st.none() | st.integers(1, 2)),
        )
        for j in range(n_nodes)
    ]
    rows = [(f"N{j}", s, draw(st.integers(0, 3))) for j in range(n_nodes) for s in "AB"]
    orders = []
    for o in range(draw(st.integers(2, 6))):
        skus = draw(st.lists(st.sampled_from("AB"), min_size=1, max_size=2))
        orders.append(
            wave_order(
                f"o{o}",
                draw(st.floats(0.0, 12.0)),
                *((s, draw(st.integers(1, 3))) for s in skus),
                minutes=o,
                deliver_by=draw(st.none() | st.just(date(2026, 11, 21))),
                ship_complete=draw(st.booleans()),
                allow_partial=draw(st.booleans()),
                max_shipments=draw(st.none() | st.integers(1, 2)),
            )
        )
    return network(*nodes), stock(*rows), orders


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(waves())
def test_random_waves_agree_with_one_highs_milp(
    wave_input: tuple[Network, Stock, list[Order]],
) -> None:
    """Bound ≤ the joint MILP optimum ≤ objective; equal when OPTIMAL; plans feasible, exact.

    The MILP is every order's canonical model (one block each) with the shared rows: the
    units of a (node, SKU) over all orders at most its stock, the orders shipping from a
    node with a capacity on one ship date at most its slots.
    """
    net, on_hand, orders = wave_input
    wave = plan_wave(orders, net, on_hand, RULES)
    optimum = joint_milp(orders, net, on_hand)
    assert wave.bound <= optimum + 1e-6 <= wave.objective + 2e-6
    if wave.status is SolveStatus.OPTIMAL:
        assert wave.objective == round(optimum)
    assert_feasible(wave.plans, net, on_hand, CapacityUsed())
    assert_exact(wave.plans, orders, net, on_hand)
    assert sum(charged(p) for p in wave.plans) == wave.objective


def charged(plan: Plan) -> int:
    """What the wave charges for a plan: its objective, or all its units' backorder."""
    if plan.status is SolveStatus.INFEASIBLE:
        return sum(line.backorder_cost * line.quantity for line in plan.model.lines)
    assert plan.objective is not None
    return plan.objective


def joint_milp(orders: Sequence[Order], net: Network, on_hand: Stock) -> float:
    """The wave's optimum by HiGHS: each order's MILP block plus the coupling rows.

    An order that may not ship in part gets a binary ``w`` (left out whole) after all the
    blocks, with ``u_l = q_l·w`` for each of its lines.
    """
    models = [MatrixModel.of(build_model(o, net, on_hand, Policy())) for o in orders]
    blocks = [m.constraints() for m in models]
    whole = [k for k, o in enumerate(orders) if not o.allow_partial]
    size = sum(len(m.objective) for m in models)
    matrix = sp.hstack(
        [
            sp.block_diag([b.A for b in blocks], format="csr"),
            sp.csr_array((matrix_rows(blocks), len(whole))),
        ],
        format="csr",
    )
    low = [np.concatenate([b.lb for b in blocks])]
    high = [np.concatenate([b.ub for b in blocks])]
    upper = np.concatenate([*(m.bounds().ub for m in models), np.ones(len(whole))])
    firsts = np.cumsum([0] + [len(m.objective) for m in models])
    left_out = []
    for w, k in enumerate(whole):
        m = models[k]
        for line, terms in enumerate(m.built.lines):
            u = firsts[k] + m.n_nodes + len(m.node) + line
            upper[u] = terms.quantity
            row = np.zeros(size + len(whole))
            row[u], row[size + w] = 1.0, -terms.quantity
            left_out.append(row)
    if left_out:
        matrix = sp.vstack([matrix, sp.csr_array(np.array(left_out))], format="csr")
        low.append(np.zeros(len(left_out)))
        high.append(np.zeros(len(left_out)))
    stock_rows: dict[tuple[str, str], list[int]] = {}
    slot_rows: dict[tuple[str, int], list[int]] = {}
    start = 0
    for m in models:
        built = m.built
        for k, (j, line) in enumerate(zip(m.node.tolist(), m.line.tolist(), strict=True)):
            key = (built.matrices.node_ids[j], built.lines[line].sku)
            stock_rows.setdefault(key, []).append(start + m.n_nodes + k)
        for j, node_id in enumerate(built.matrices.node_ids):
            if net.nodes[net.node_index[node_id]].daily_order_capacity:
                slot_rows.setdefault((node_id, int(built.matrices.ship[j])), []).append(start + j)
        start += len(m.objective)
    coupling, limits = [], []
    for (node_id, sku), cols in stock_rows.items():
        coupling.append(cols)
        limits.append(on_hand.available(node_id, sku))
    for (node_id, _), cols in slot_rows.items():
        coupling.append(cols)
        limits.append(net.nodes[net.node_index[node_id]].daily_order_capacity or 0)
    if coupling:
        r = np.concatenate([np.full(len(c), i) for i, c in enumerate(coupling)])
        c = np.concatenate([np.array(c) for c in coupling])
        rows = sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(coupling), start + len(whole)))
        matrix = sp.vstack([matrix, rows], format="csr")
        low.append(np.full(len(coupling), -np.inf))
        high.append(np.array(limits, dtype=np.float64))
    result = milp(
        np.concatenate([*(m.objective for m in models), np.zeros(len(whole))]),
        integrality=np.concatenate([*(m.integrality() for m in models), np.ones(len(whole))]),
        bounds=Bounds(np.zeros(len(upper)), upper),
        constraints=LinearConstraint(matrix, np.concatenate(low), np.concatenate(high)),
        options={"mip_rel_gap": 0.0},
    )
    assert result.status == 0, result.message
    return float(result.fun)


def matrix_rows(blocks: Sequence[LinearConstraint]) -> int:
    """Rows of the blocks stacked."""
    return sum(b.A.shape[0] for b in blocks)


def assert_feasible(
    plans: Sequence[Plan], net: Network, on_hand: Stock, used: CapacityUsed
) -> None:
    """No position ships more than it holds; no node takes more orders a day than it may."""
    units: Counter[tuple[str, str]] = Counter()
    slots: Counter[tuple[str, date]] = Counter()
    for plan in plans:
        for shipment in plan.shipments:
            slots[shipment.node_id, shipment.ship_date] += 1
            for line in shipment.lines:
                units[shipment.node_id, line.sku] += line.quantity
    for (node_id, sku), q in units.items():
        assert q <= on_hand.available(node_id, sku), (node_id, sku, q)
    for (node_id, day), n in slots.items():
        limit = net.nodes[net.node_index[node_id]].daily_order_capacity
        if limit is not None:
            assert n + used.used(node_id, day) <= limit, (node_id, day, n)


def assert_exact(
    plans: Sequence[Plan], orders: Sequence[Order], net: Network, on_hand: Stock
) -> None:
    """Each plan's objective is the per-order engine's cost of its shipments and backorders."""
    for plan, order in zip(plans, orders, strict=True):
        built = build_model(order, net, on_hand, Policy())
        ids = built.matrices.node_ids
        line_of = {t.line_id: k for k, t in enumerate(built.lines)}
        assignment = {
            (ids.index(s.node_id), line_of[x.line_id]): x.quantity
            for s in plan.shipments
            for x in s.lines
        }
        cost = built.objective(assignment)
        if plan.status is SolveStatus.INFEASIBLE:
            assert not assignment
        else:
            assert plan.objective == cost
            assert sum(s.cost for s in plan.shipments) <= cost


def test_plans_name_the_rule_set_strategy_and_step() -> None:
    """A wave plan names the rules it was made under, their strategy and the step ``wave``."""
    net = network(node("NEAR", 0.0))
    plan = plan_wave([wave_order("o1", 0.0, ("A", 1))], net, stock(("NEAR", "A", 1)), RULES).plans[
        0
    ]
    assert (plan.rule_version, plan.strategy, plan.step) == (RULES.label, "default", "wave")
