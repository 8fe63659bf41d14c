"""The registry of named, seeded benchmark scenarios.

Each entry builds a :class:`Scenario` from a seed; ``make test`` smoke-runs every entry at
its ``smoke`` size so that benchmarks never rot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.scenario import Scenario
from router.sample import sample_scenario


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
    )
}
