"""The built-in sample scenario: sizes, determinism and invariants of a realistic network."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest
from geopy.distance import great_circle

from models.errors import Violations
from models.network import NodeType
from models.order import Order
from models.rules import RuleSet
from models.scenario import Scenario
from router.sample import DC_SEPARATION_KM, START, US_BOUNDS, dense_scenario, sample_scenario
from router.scenario import order_to_json

SMALL = {"n_dcs": 4, "n_stores": 60, "n_skus": 400, "n_orders": 300}


@pytest.fixture(scope="module")
def standard() -> Scenario:
    """The standard scenario (the defaults)."""
    return sample_scenario()


def test_same_seed_gives_an_equal_scenario() -> None:
    """Generation is deterministic in the seed."""
    assert sample_scenario(11, **SMALL) == sample_scenario(11, **SMALL)


def test_different_seeds_differ() -> None:
    """Another seed gives other stock and orders."""
    one, two = sample_scenario(1, **SMALL), sample_scenario(2, **SMALL)
    assert one.stock != two.stock
    assert one.orders != two.orders


def test_standard_sizes(standard: Scenario) -> None:
    """The standard scenario has several hundred nodes, thousands of SKUs, 1000 orders."""
    types = Counter(node.type for node in standard.network.nodes)
    assert types == {
        NodeType.DC: 8,
        NodeType.STORE: 400,
        NodeType.DARK_STORE: 8,
        NodeType.THREE_PL: 2,
        NodeType.DROPSHIP: 2,
    }
    assert len(standard.network.skus) == 3000
    assert len(standard.orders) == 1000
    assert standard.rules == RuleSet()


def test_small_sizes_follow_the_arguments() -> None:
    """Sizes follow the arguments, and every node type is present even when small."""
    scenario = sample_scenario(5, **SMALL)
    types = Counter(node.type for node in scenario.network.nodes)
    assert types[NodeType.DC] == 4
    assert types[NodeType.STORE] == 60
    assert set(types) == set(NodeType)
    assert len(scenario.network.skus) == 400
    assert len(scenario.orders) == 300


def test_ids_are_unique(standard: Scenario) -> None:
    """Node ids and order ids are unique; every line id is unique within its order."""
    node_ids = [node.node_id for node in standard.network.nodes]
    assert len(set(node_ids)) == len(node_ids)
    order_ids = [order.order_id for order in standard.orders]
    assert len(set(order_ids)) == len(order_ids)
    for order in standard.orders:
        assert len({line.line_id for line in order.lines}) == len(order.lines)


def test_dcs_are_spread_across_the_country(standard: Scenario) -> None:
    """The standard scenario's DCs are pairwise at least the separation apart."""
    dcs = [n for n in standard.network.nodes if n.type is NodeType.DC]
    for a, b in itertools.combinations(dcs, 2):
        distance = great_circle((a.latitude, a.longitude), (b.latitude, b.longitude)).km
        assert distance >= DC_SEPARATION_KM, (a.node_id, b.node_id)


def test_node_parameters_follow_their_type(standard: Scenario) -> None:
    """DCs cut off 18:00-20:00 and process 4-12 h; stores cut off 15:00-17:00, cost more."""
    for node in standard.network.nodes:
        if node.type is NodeType.DC:
            assert 18 <= node.cutoff_local_time.hour <= 20
            assert 4 <= node.processing_hours <= 12
            assert node.ships
        elif node.type is NodeType.STORE:
            assert 15 <= node.cutoff_local_time.hour <= 17
            assert node.handling_cost_per_unit >= 0.8
        else:
            assert not node.pickup
        if not node.ships:
            assert node.pickup, f"{node.node_id} neither ships nor offers pickup"
    nodes = standard.network.nodes
    assert any(n.pickup for n in nodes)
    assert any(not n.ships for n in nodes)
    assert any(n.daily_order_capacity is not None for n in nodes)


def test_nodes_are_inside_the_contiguous_us(standard: Scenario) -> None:
    """Every node lies inside the contiguous-US bounding box, in a US time zone."""
    south, north, west, east = US_BOUNDS
    for node in standard.network.nodes:
        assert south <= node.latitude <= north
        assert west <= node.longitude <= east
        assert node.timezone.startswith("America/")


def test_catalogue_is_realistic(standard: Scenario) -> None:
    """Weights lie in 0.1-30 kg, a few percent are hazmat, every SKU has a category tag."""
    skus = list(standard.network.skus.values())
    assert skus[0].sku == "SKU-00001"
    assert all(0.1 <= sku.weight_kg <= 30 for sku in skus)
    assert 0.01 <= sum(sku.hazmat for sku in skus) / len(skus) <= 0.06
    assert all(sku.tags for sku in skus)


def test_stock_is_deep_at_dcs_and_thin_at_stores(standard: Scenario) -> None:
    """DCs carry most SKUs with more units per position than stores; stock names known ids."""
    network = standard.network
    carried: Counter[NodeType] = Counter()
    units: Counter[NodeType] = Counter()
    for (node_id, sku), position in standard.stock.positions.items():
        node = network.node(node_id)
        assert node is not None and sku in network.skus
        assert position.on_hand >= 0 and position.safety_stock >= 0
        carried[node.type] += 1
        units[node.type] += position.on_hand
    assert carried[NodeType.DC] / 8 > 0.8 * len(network.skus)
    assert carried[NodeType.STORE] / 400 < 0.1 * len(network.skus)
    assert (
        units[NodeType.DC] / carried[NodeType.DC]
        > 5 * units[NodeType.STORE] / carried[NodeType.STORE]
    )
    assert any(p.safety_stock > 0 for p in standard.stock.positions.values())


def test_orders_reference_the_network(standard: Scenario) -> None:
    """Every order names known SKUs and services, and pickup only at pickup nodes."""
    v = Violations()
    for order in standard.orders:
        assert Order.from_raw(order_to_json(order), v, standard.network) == order
    assert not v.items


def test_orders_look_like_an_order_stream(standard: Scenario) -> None:
    """Orders come in time order from the start, with 1-10 lines, small ones most common."""
    orders = standard.orders
    times = [o.created_at for o in orders]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] - START <= timedelta(days=2)
    sizes = Counter(len(o.lines) for o in orders)
    assert set(sizes) <= set(range(1, 11))
    assert sizes[1] == max(sizes.values())
    assert Counter(o.service for o in orders).most_common(1)[0][0] == "ground"
    share = sum(o.deliver_by is not None for o in orders) / len(orders)
    assert 0.3 <= share <= 0.5
    assert any(o.ship_complete for o in orders)
    assert any(not o.allow_partial for o in orders)
    assert any(o.pickup_node_id for o in orders)


def test_ship_to_is_in_the_us_with_real_postal_codes(standard: Scenario) -> None:
    """Ship-to points are inside the US box; postal codes, where present, are 5 digits."""
    south, north, west, east = US_BOUNDS
    with_code = 0
    for order in standard.orders:
        ship_to = order.ship_to
        assert ship_to.country == "US"
        assert south <= ship_to.latitude <= north
        assert west <= ship_to.longitude <= east
        if ship_to.postal_code:
            with_code += 1
            assert len(ship_to.postal_code) == 5 and ship_to.postal_code.isdigit()
    assert with_code >= 0.7 * len(standard.orders)


def test_popular_skus_are_ordered_most(standard: Scenario) -> None:
    """Demand is skewed: the 10% most ordered SKUs take a large share of the lines."""
    counts = Counter(line.sku for order in standard.orders for line in order.lines)
    top = sum(n for _, n in counts.most_common(len(standard.network.skus) // 10))
    assert top >= 0.4 * sum(counts.values())


def test_bad_sizes_are_refused() -> None:
    """Sizes that make no sample (no DC, no SKU, more stores than cities) are refused."""
    for sizes in ({"n_dcs": 0}, {"n_skus": 0}, {"n_stores": 10**6}):
        with pytest.raises(ValueError):
            sample_scenario(**sizes)


@pytest.fixture(scope="module")
def dense() -> Scenario:
    """A dense network of 400 nodes (the benchmarks' dense-400 at a smaller order count)."""
    return dense_scenario(3, n_nodes=400, n_orders=300)


def test_dense_network_has_the_asked_size_and_time_zones(dense: Scenario) -> None:
    """Exactly the nodes asked for, 8 DCs, over at least four time zones; determinism."""
    nodes = dense.network.nodes
    assert len(nodes) == 400
    assert sum(n.type is NodeType.DC for n in nodes) == 8
    assert len({n.timezone for n in nodes}) >= 4
    assert dense_scenario(3, n_nodes=400, n_orders=300) == dense


def test_every_dense_sku_sits_at_30_to_60_percent_of_the_nodes(dense: Scenario) -> None:
    """Each SKU's holders: a share drawn from 30–60%, so (with 400 nodes) within 25–65%.

    Every position holds at least one available unit (no safety stock).
    """
    holders = Counter(p.sku for p in dense.stock.positions.values() if p.available > 0)
    assert set(holders) == set(dense.network.skus)
    shares = [count / len(dense.network.nodes) for count in holders.values()]
    assert min(shares) > 0.25 and max(shares) < 0.65
    assert all(p.available >= 1 for p in dense.stock.positions.values())


def test_dense_orders_mix_basket_sizes_and_constraints(dense: Scenario) -> None:
    """Orders of 1, 5, 20 and 50 distinct SKUs; some ship complete, capped, not partial."""
    assert {len(o.lines) for o in dense.orders} == {1, 5, 20, 50}
    assert all(len({line.sku for line in o.lines}) == len(o.lines) for o in dense.orders)
    share = {
        "ship_complete": sum(o.ship_complete for o in dense.orders) / len(dense.orders),
        "capped": sum(o.max_shipments is not None for o in dense.orders) / len(dense.orders),
        "no_partial": sum(not o.allow_partial for o in dense.orders) / len(dense.orders),
    }
    assert 0.04 < share["ship_complete"] < 0.18
    assert 0.07 < share["capped"] < 0.25
    assert 0.08 < share["no_partial"] < 0.24
    for o in dense.orders:
        assert Order.from_raw(order_to_json(o), Violations(o.order_id), dense.network) == o
