"""The registry of named, seeded benchmark scenarios.

Each entry builds a :class:`Scenario` from a seed; ``make test`` smoke-runs every entry at
its ``smoke`` size so that benchmarks never rot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from models.network import NodeType
from models.scenario import Scenario
from router.sample import dense_scenario, sample_scenario

OUTAGE_DC = "DC-01"
"""The DC the ``dc-outage`` scenario takes down: the one in the largest metro (New York)."""


def dc_outage(scenario: Scenario, node_id: str = OUTAGE_DC) -> Scenario:
    """``scenario`` with ``node_id`` unable to ship (its stock stays, stranded)."""
    network = scenario.network
    node = network.node(node_id)
    if node is None or node.type is not NodeType.DC:
        raise ValueError(f"{node_id!r} is not a DC of the scenario")
    nodes = tuple(replace(n, ships=False) if n.node_id == node_id else n for n in network.nodes)
    return replace(scenario, network=replace(network, nodes=nodes))


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A named scenario: what it is, how to build it full-size and tiny."""

    name: str
    description: str
    build: Callable[[int], Scenario]
    smoke: Callable[[int], Scenario]


REGISTRY: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec(
            "standard",
            "the built-in sample: 8 DCs and ~400 stores in real US cities, 3,000 SKUs, "
            "orders of 1–10 lines whose ship-to points follow population",
            lambda seed: sample_scenario(seed),
            lambda seed: sample_scenario(seed, n_stores=20, n_skus=100, n_orders=10),
        ),
        ScenarioSpec(
            "small",
            "a regional network: 3 DCs, 60 stores, 500 SKUs",
            lambda seed: sample_scenario(seed, n_dcs=3, n_stores=60, n_skus=500),
            lambda seed: sample_scenario(seed, n_dcs=2, n_stores=10, n_skus=50, n_orders=10),
        ),
        ScenarioSpec(
            "more-stores",
            "the standard network with twice the stores (800): more stock close to customers, "
            "thinner per store",
            lambda seed: sample_scenario(seed, n_stores=800),
            lambda seed: sample_scenario(seed, n_stores=40, n_skus=100, n_orders=10),
        ),
        ScenarioSpec(
            "fewer-dcs",
            "the standard network with 3 DCs instead of 8 (New York, Los Angeles, Chicago): "
            "longer hauls, more store fulfilment",
            lambda seed: sample_scenario(seed, n_dcs=3),
            lambda seed: sample_scenario(seed, n_dcs=2, n_stores=20, n_skus=100, n_orders=10),
        ),
        ScenarioSpec(
            "peak-day",
            "peak demand: three times the standard orders (3,000) in the same 36 hours on the "
            "same stock, so popular SKUs run out and later orders split or wait",
            lambda seed: sample_scenario(seed, n_orders=3000),
            lambda seed: sample_scenario(seed, n_stores=20, n_skus=100, n_orders=30),
        ),
        ScenarioSpec(
            "dc-outage",
            f"the standard scenario with {OUTAGE_DC} (New York) down: it ships nothing, its "
            "stock is stranded, the north-east is served from elsewhere",
            lambda seed: dc_outage(sample_scenario(seed)),
            lambda seed: dc_outage(sample_scenario(seed, n_stores=20, n_skus=100, n_orders=10)),
        ),
        ScenarioSpec(
            "dense-400",
            "ship from store: 400 nodes over four time zones, every SKU (200) at 30–60% of "
            "them, orders of 1, 5, 20 or 50 lines, 10% ship complete, 15% at most 2–5 "
            "shipments, 15% no partial fulfilment",
            lambda seed: dense_scenario(seed, n_nodes=400),
            lambda seed: dense_scenario(seed, n_nodes=30, n_skus=60, n_orders=10, lines=(1, 5, 20)),
        ),
        ScenarioSpec(
            "dense-3000",
            "the dense family at retail scale: 3,000 nodes, every SKU at 30–60% of them",
            lambda seed: dense_scenario(seed, n_nodes=3000),
            lambda seed: dense_scenario(seed, n_nodes=60, n_skus=60, n_orders=10, lines=(1, 5, 20)),
        ),
    )
}
