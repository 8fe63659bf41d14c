from __future__ import annotations

import pytest

from benchmarks.latency import run, summary
from benchmarks.scenarios import REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_scenario_smoke_runs(name):
    """Every benchmark scenario builds at its smoke size and its orders all plan optimally."""
    table = run(name, seed=1, n_orders=None, smoke=True)
    assert len(table) == len(REGISTRY[name].smoke(1).orders) > 0
    assert set(table["status"]) <= {"OPTIMAL", "INFEASIBLE"}
    stats = summary(table)
    assert list(stats.index) == [(name, "cpsat-full")]
    assert stats["orders"].iloc[0] == len(table)
