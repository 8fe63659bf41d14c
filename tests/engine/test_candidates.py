from __future__ import annotations

from datetime import date, time

from models.capacity import CapacityUsed
from models.money import to_units
from models.network import NodeType, Stock, StockPosition
from models.plan import ExclusionReason
from models.rules import Policy, SlaMode
from router.engine import candidates
from router.engine.arrays import stock_arrays
from router.engine.candidates import build_model
from tests.engine.conftest import network, node, order, stock


def reasons(built) -> dict[str, ExclusionReason]:
    return {e.node_id: e.reason for e in built.excluded}


def test_every_node_is_either_candidate_or_excluded():
    """Each node of the network appears exactly once: as a candidate or with a reason."""
    net = network(node("N1", 1), node("N2", 2), node("N3", 3, ships=False))
    built = build_model(order(("A", 1)), net, stock(("N1", "A", 5)), Policy())
    ids = [c.node_id for c in built.model.candidates] + [e.node_id for e in built.excluded]
    assert sorted(ids) == ["N1", "N2", "N3"]


def test_does_not_ship():
    """A node with ships=false is excluded with DOES_NOT_SHIP even when it has stock."""
    net = network(node("N1", 1, ships=False))
    built = build_model(order(("A", 1)), net, stock(("N1", "A", 5)), Policy())
    assert reasons(built) == {"N1": ExclusionReason.DOES_NOT_SHIP}


def test_filtered_by_node_type_and_radius():
    """Rules exclude nodes of disallowed types and nodes beyond the radius."""
    net = network(node("DC", 1), node("ST", 1, type=NodeType.STORE), node("FAR", 4))
    rules = Policy(node_types=frozenset({NodeType.DC}), max_distance_km=300)
    # FAR is 4 × 111.2 = 444.8 km away, beyond the 300 km radius.
    built = build_model(
        order(("A", 1)), net, stock(("DC", "A", 1), ("ST", "A", 1), ("FAR", "A", 1)), rules
    )
    assert reasons(built) == {
        "ST": ExclusionReason.FILTERED_BY_RULE,
        "FAR": ExclusionReason.FILTERED_BY_RULE,
    }


def test_no_available_stock_counts_reserved_and_safety_stock():
    """Available is on hand − reserved − safety stock; a node with none of it is excluded."""
    from models.network import Stock, StockPosition

    net = network(node("N1", 1), node("N2", 1))
    positions = Stock.of(
        [StockPosition("N1", "A", 5, safety_stock=3, reserved=2), StockPosition("N2", "A", 5, 1, 1)]
    )
    built = build_model(order(("A", 1)), net, positions, Policy())
    assert reasons(built) == {"N1": ExclusionReason.NO_AVAILABLE_STOCK}
    assert built.model.candidates[0].available == (3,)


def test_beyond_last_band():
    """A node farther than the service's last band (1,500 km) cannot ship it."""
    # 14 degrees = 1,556.7 km > 1,500 km.
    net = network(node("N1", 14))
    built = build_model(order(("A", 1)), net, stock(("N1", "A", 5)), Policy())
    assert reasons(built) == {"N1": ExclusionReason.BEYOND_LAST_BAND}


def test_hard_sla_excludes_late_node_soft_sla_charges_it():
    """With a hard SLA a late node is excluded; with a soft one it pays per day late."""
    # Created 2026-11-20 12:00Z; N1 ships the 20th, 3-day band (6 degrees = 667 km) → the
    # 23rd, one day after the 22nd.
    net = network(node("N1", 6))
    o = order(("A", 1), deliver_by=date(2026, 11, 22))
    hard = build_model(o, net, stock(("N1", "A", 5)), Policy(sla=SlaMode.HARD))
    assert reasons(hard) == {"N1": ExclusionReason.CANNOT_MEET_SLA}
    soft = build_model(o, net, stock(("N1", "A", 5)), Policy(lateness_penalty_per_day=7))
    (cand,) = soft.model.candidates
    assert (cand.delivery_date, cand.days_late, cand.lateness_cost) == (
        date(2026, 11, 23),
        1,
        to_units(7),
    )


def test_cutoff_moves_ship_and_delivery_date():
    """A node whose cutoff has passed ships, and so delivers, one day later."""
    net = network(node("EARLY", 1, cutoff=time(11)), node("LATE", 1, cutoff=time(13)))
    built = build_model(order(("A", 1)), net, stock(("EARLY", "A", 1), ("LATE", "A", 1)), Policy())
    dates = {c.node_id: (c.ship_date, c.delivery_date) for c in built.model.candidates}
    assert dates == {
        "EARLY": (date(2026, 11, 21), date(2026, 11, 22)),
        "LATE": (date(2026, 11, 20), date(2026, 11, 21)),
    }


def test_out_of_capacity_on_its_own_ship_date():
    """A node is out of capacity when the slots of *its own* ship date are taken.

    The order is created on 2026-11-20 at 12:00 UTC. N1 (cutoff 23:59) ships that day;
    N2 and N3 (cutoff 11:00, passed) ship on the 21st. N1 has taken 2 of 2 slots on the
    20th, its ship date: out, the detail naming the date. N2 is full on the 20th too, the
    creation day, but ships on the 21st, where it has taken 1 of 2: a candidate. N3 is
    full on the 21st only, its ship date: out.
    """
    net = network(
        node("N1", 1, capacity=2),
        node("N2", 1, capacity=2, cutoff=time(11)),
        node("N3", 1, capacity=1, cutoff=time(11)),
    )
    today, tomorrow = date(2026, 11, 20), date(2026, 11, 21)
    used = CapacityUsed(
        {("N1", today): 2, ("N2", today): 2, ("N2", tomorrow): 1, ("N3", tomorrow): 1}
    )
    on_hand = stock(("N1", "A", 1), ("N2", "A", 1), ("N3", "A", 1))
    built = build_model(order(("A", 1)), net, on_hand, Policy(), used)
    assert {e.node_id: (e.reason, e.detail) for e in built.excluded} == {
        "N1": (ExclusionReason.OUT_OF_CAPACITY, "2 of 2 orders taken on 2026-11-20, its ship date"),
        "N3": (ExclusionReason.OUT_OF_CAPACITY, "1 of 1 orders taken on 2026-11-21, its ship date"),
    }
    assert [(c.node_id, c.ship_date) for c in built.model.candidates] == [("N2", tomorrow)]


def test_capacity_zero_is_always_out():
    """A node with a daily capacity of 0 is out of capacity even with no slot taken."""
    net = network(node("N1", 1, capacity=0))
    built = build_model(order(("A", 1)), net, stock(("N1", "A", 1)), Policy())
    assert [(e.reason, e.detail) for e in built.excluded] == [
        (ExclusionReason.OUT_OF_CAPACITY, "0 of 0 orders taken on 2026-11-20, its ship date")
    ]


def test_cost_terms():
    """F_j and c_lj follow the rate band, handling and weight, in exact solver units."""
    # N1 at 1 degree (111 km): band 1 (base 5, 1/kg). F = 1.25 + 5; c(B, 2 kg) = 0.1 + 2·1.
    net = network(node("N1", 1, per_shipment=1.25, per_unit=0.1))
    built = build_model(order(("B", 3)), net, stock(("N1", "B", 9)), Policy())
    (cand,) = built.model.candidates
    assert cand.shipment_cost == to_units(6.25)
    assert cand.unit_costs == (to_units(2.1),)


def test_a_model_asked_for_twice_with_the_same_objects_is_built_once():
    """build_model hands the same model out again for the very same (frozen) inputs only.

    Equal but distinct inputs, another SLA relaxation or other prices build anew, and the
    model built anew equals the one kept.
    """
    net = network(node("N1", 1.0), node("N2", 3.0))
    held = stock(("N1", "A", 2), ("N2", "A", 5))
    o = order(("A", 3), deliver_by=date(2026, 11, 21))
    used = CapacityUsed({})
    policy = Policy()
    first = build_model(o, net, held, policy, used)
    assert build_model(o, net, held, policy, used) is first
    for other in (
        build_model(o, net, held, policy, CapacityUsed({})),
        build_model(o, net, held, Policy(), used),
        build_model(o, net, held, policy, used, relax_sla_days=1),
    ):
        assert other is not first
    fresh = candidates._build(o, net, held, policy, used, 0, None)
    assert fresh is not first
    assert fresh.model == first.model


def test_per_sku_arrays_of_a_replaced_stock_are_those_of_a_fresh_stock():
    """Arrays of SKUs a change did not touch are shared; the touched ones are rebuilt exact."""
    net = network(node("N1", 1.0), node("N2", 3.0), node("N3", 4.0))
    before = stock(("N1", "A", 2), ("N2", "A", 5), ("N2", "B", 1), ("N3", "C", 4))
    after = before.replaced([StockPosition("N2", "A", 3, reserved=1), StockPosition("N3", "B", 6)])
    fresh = Stock.of(after.positions.values())
    for sku in ("A", "B", "C", "D"):
        got, want = stock_arrays(after, net).sku(sku), stock_arrays(fresh, net).sku(sku)
        assert got.rows.tolist() == want.rows.tolist()
        assert got.available.tolist() == want.available.tolist()
        assert got.total == want.total
    assert stock_arrays(after, net).sku("C") is stock_arrays(before, net).sku("C")
    assert stock_arrays(after, net).sku("A").available.tolist() == [2, 2]
