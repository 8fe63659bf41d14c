from __future__ import annotations

from dataclasses import replace
from datetime import time

import numpy as np
import pandas as pd
import pytest

from models.network import Network, Node, NodeType, RateCard
from router.whatif import kpis as k
from router.whatif.kpis import (
    KPI_COLUMNS,
    comparisons,
    kpis,
    kpis_long,
    node_utilisation,
    order_table,
    paired,
)
from router.whatif.records import COLUMNS, OrderRecord


def node(node_id: str, kind: NodeType, lat: float, lon: float) -> Node:
    return Node(node_id, kind, lat, lon, "US", "America/Chicago", 1.0, 0.1, 4.0, time(17), None)


def tiny_network() -> Network:
    return Network(
        nodes=(
            node("DC-1", NodeType.DC, 41.88, -87.63),  # Chicago
            node("ST-1", NodeType.STORE, 32.78, -96.80),  # Dallas
            node("ST-2", NodeType.STORE, 33.75, -84.39),  # Atlanta
            node("3P-1", NodeType.THREE_PL, 39.53, -119.81),  # Reno
            node("DS-1", NodeType.DARK_STORE, 40.71, -74.01),  # New York, never ships here
        ),
        skus={},
        rates=RateCard.of([]),
    )


def rec(run: str, seq: int, order_id: str, **values: object) -> OrderRecord:
    row: dict[str, object] = {
        "run": run,
        "policy": run,
        "setting": "",
        "scenario": "tiny",
        "seed": 1,
        "seq": seq,
        "order_id": order_id,
        "status": "OPTIMAL",
        **values,
    }
    return OrderRecord(**row)  # type: ignore[arg-type]


def frame(records: list[OrderRecord]) -> pd.DataFrame:
    return pd.DataFrame([r.row() for r in records], columns=list(COLUMNS))


def tiny_records() -> pd.DataFrame:
    """Two runs over the same three orders; every KPI is worked out in test_kpis_by_hand."""
    z = {"dc_units": 0, "store_units": 0, "other_units": 0}
    return frame(
        [
            # engine
            rec("engine", 0, "O1", cost=10.0, shipments=1, units_ordered=2, units_shipped=2,
                units_backordered=0, on_time=True, distance_km=100.0, **{**z, "dc_units": 2},
                node_units="DC-1:2", latency_s=0.001),
            rec("engine", 1, "O2", cost=20.0, shipments=2, units_ordered=3, units_shipped=3,
                units_backordered=0, on_time=False, distance_km=200.0,
                **{**z, "dc_units": 1, "store_units": 2}, node_units="DC-1:1;ST-1:2",
                latency_s=0.002),
            rec("engine", 2, "O3", cost=66.0, shipments=1, units_ordered=2, units_shipped=1,
                units_backordered=1, on_time=None, distance_km=50.0, **{**z, "other_units": 1},
                node_units="3P-1:1", latency_s=0.003),
            # greedy
            rec("greedy", 0, "O1", cost=12.0, shipments=2, units_ordered=2, units_shipped=2,
                units_backordered=0, on_time=True, distance_km=300.0,
                **{**z, "store_units": 2}, node_units="ST-1:1;ST-2:1", latency_s=0.0005),
            rec("greedy", 1, "O2", cost=25.0, shipments=3, units_ordered=3, units_shipped=3,
                units_backordered=0, on_time=True, distance_km=100.0,
                **{**z, "dc_units": 1, "store_units": 2}, node_units="DC-1:1;ST-1:1;ST-2:1",
                latency_s=0.0005),
            rec("greedy", 2, "O3", cost=130.0, shipments=0, units_ordered=2, units_shipped=0,
                units_backordered=2, on_time=None, distance_km=0.0, **z, node_units="",
                latency_s=0.0005),
        ]
    )  # fmt: skip


def test_kpis_by_hand():
    """Every KPI of both runs equals its hand-computed value; the bound adds the cost ratio."""
    table = kpis(tiny_records(), {("tiny", 1): 80.0})
    assert list(table.columns) == [*KPI_COLUMNS, "cost_ratio_to_bound"]
    assert list(table["run"]) == ["engine", "greedy"]
    engine, greedy = (table.iloc[i].to_dict() for i in range(2))
    expected_engine = {
        "orders": 3,
        "total_cost": 96.0,  # 10 + 20 + 66
        "cost_per_order": 32.0,  # 96 / 3
        "shipments_per_order": 4 / 3,  # (1 + 2 + 1) / 3
        "split_rate": 1 / 3,  # only O2 has >= 2 shipments
        "on_time_rate": 0.5,  # O1 True, O2 False, O3 null (left out)
        "mean_distance_km": 850 / 6,  # (100*2 + 200*3 + 50*1) / (2 + 3 + 1) units
        "fill_rate": 6 / 7,  # shipped 2+3+1 of ordered 2+3+2
        "backordered_units": 1,
        "backorder_rate": 1 / 3,  # O3
        "store_share": 2 / 6,  # store units 0+2+0 of 6 shipped
        "dc_share": 3 / 6,  # DC units 2+1+0 of 6 shipped
        "nodes_used": 3,  # DC-1, ST-1, 3P-1
        "p50_latency_ms": 2.0,  # median of 1, 2, 3 ms
        "p99_latency_ms": 2.98,  # linear: 2 + 0.98 * (3 - 2)
        "cost_ratio_to_bound": 1.2,  # 96 / 80
    }
    expected_greedy = {
        "orders": 3,
        "total_cost": 167.0,  # 12 + 25 + 130
        "cost_per_order": 167 / 3,
        "shipments_per_order": 5 / 3,  # (2 + 3 + 0) / 3
        "split_rate": 2 / 3,  # O1, O2
        "on_time_rate": 1.0,  # O1, O2 True; O3 null
        "mean_distance_km": 180.0,  # (300*2 + 100*3) / 5 units
        "fill_rate": 5 / 7,  # shipped 2+3+0 of 7
        "backordered_units": 2,
        "backorder_rate": 1 / 3,  # O3
        "store_share": 4 / 5,  # 2+2 of 5
        "dc_share": 1 / 5,  # 1 of 5
        "nodes_used": 3,  # ST-1, ST-2, DC-1
        "p50_latency_ms": 0.5,
        "p99_latency_ms": 0.5,
        "cost_ratio_to_bound": 167 / 80,
    }
    for got, want in ((engine, expected_engine), (greedy, expected_greedy)):
        for key, value in want.items():
            assert got[key] == pytest.approx(value), key
    assert "cost_ratio_to_bound" not in kpis(tiny_records()).columns


def test_kpis_of_a_run_with_no_dated_or_shipped_orders_are_nan_not_errors():
    """A run where nothing shipped and no order has a date: unit ratios and on-time are NaN."""
    records = tiny_records()
    only = records[(records["run"] == "greedy") & (records["order_id"] == "O3")]
    row = kpis(only).iloc[0]
    assert np.isnan(row["on_time_rate"]) and np.isnan(row["mean_distance_km"])
    assert np.isnan(row["store_share"]) and row["fill_rate"] == 0.0 and row["nodes_used"] == 0


def test_node_utilisation_parses_node_units_per_run():
    """Units and orders per node and run, shares of the run's units, types from the network."""
    use = node_utilisation(tiny_records(), tiny_network())
    got: dict[tuple[str, str], tuple[object, ...]] = {
        (str(r["run"]), str(r["node_id"])): (r["units"], r["orders"], r["share"], r["type"])
        for r in use.to_dict("records")
    }
    assert got == {
        ("engine", "DC-1"): (3, 2, pytest.approx(3 / 6), "dc"),
        ("engine", "ST-1"): (2, 1, pytest.approx(2 / 6), "store"),
        ("engine", "3P-1"): (1, 1, pytest.approx(1 / 6), "3pl"),
        ("greedy", "ST-1"): (2, 2, pytest.approx(2 / 5), "store"),
        ("greedy", "ST-2"): (2, 2, pytest.approx(2 / 5), "store"),
        ("greedy", "DC-1"): (1, 1, pytest.approx(1 / 5), "dc"),
    }
    # per run, most units first, ties by node id
    assert list(use["node_id"]) == ["DC-1", "ST-1", "3P-1", "ST-1", "ST-2", "DC-1"]


def shifted(base_cost: np.ndarray, other_cost: np.ndarray, *, seed: int = 1) -> pd.DataFrame:
    """Runs "base" and "other" over the same orders with the given per-order costs."""
    rows = []
    for run, costs in (("base", base_cost), ("other", other_cost)):
        for i, cost in enumerate(costs):
            rows.append(
                rec(run, i, f"O{i}", cost=float(cost), shipments=1, units_ordered=1,
                    units_shipped=1, units_backordered=0, on_time=True, distance_km=10.0,
                    dc_units=1, store_units=0, other_units=0, node_units="DC-1:1",
                    latency_s=0.001, seed=seed)
            )  # fmt: skip
    return frame(rows)


def test_paired_exact_shift_gives_a_degenerate_significant_interval():
    """Other = base + 2.0 on every order: mean difference 2, interval [2, 2], significant."""
    base = np.arange(50) * 1.5  # exact in binary, so every difference is exactly 2.0
    result = paired(shifted(base, base + 2.0), "base", "other", "cost")
    assert (result.n, result.mean_difference, result.low, result.high) == (50, 2.0, 2.0, 2.0)
    assert result.significant and result.metric == "cost"
    assert (result.base, result.other) == ("base", "other")


def test_paired_noisy_shift_interval_covers_the_shift_and_excludes_zero():
    """Shift 5, noise sd 1, 400 orders: the 95% interval contains 5, excludes 0, ~±0.1 wide."""
    rng = np.random.default_rng(42)
    base = rng.uniform(10, 100, 400)
    result = paired(shifted(base, base + 5.0 + rng.normal(0, 1, 400)), "base", "other", "cost")
    assert result.low < 5.0 < result.high
    assert result.low > 0 and result.significant
    assert 0.1 < result.high - result.low < 0.3  # 2 * 1.96 / sqrt(400) ≈ 0.196
    assert result.low < result.mean_difference < result.high


def test_paired_zero_mean_interval_contains_zero():
    """Differences +1, −1 alternately (mean exactly 0): the interval contains 0, not significant."""
    base = np.full(200, 30.0)
    other = base + np.where(np.arange(200) % 2 == 0, 1.0, -1.0)
    result = paired(shifted(base, other), "base", "other", "cost")
    assert result.mean_difference == 0.0
    assert result.low < 0 < result.high and not result.significant


def test_paired_is_deterministic_for_a_seed_and_vectorised_in_blocks(monkeypatch):
    """Same seed, same interval; drawing the index matrix in small blocks changes nothing else."""
    rng = np.random.default_rng(3)
    base = rng.uniform(10, 20, 300)
    records = shifted(base, base + rng.normal(0.5, 2, 300))
    first = paired(records, "base", "other", "cost", seed=7)
    assert paired(records, "base", "other", "cost", seed=7) == first
    assert paired(records, "base", "other", "cost", seed=8) != first
    monkeypatch.setattr(k, "_CHUNK_CELLS", 1000)  # 3 resamples of 300 orders at a time
    blocked = paired(records, "base", "other", "cost", seed=7)
    assert blocked == paired(records, "base", "other", "cost", seed=7)
    assert blocked.low < blocked.mean_difference == first.mean_difference < blocked.high


def test_paired_pairs_by_order_not_by_row_order():
    """Shuffling one run's rows leaves the paired result unchanged."""
    rng = np.random.default_rng(5)
    base = rng.uniform(10, 20, 100)
    records = shifted(base, base + rng.normal(1, 1, 100))
    shuffled = pd.concat(
        [records[records["run"] == "base"], records[records["run"] == "other"].sample(frac=1.0)]
    )
    assert paired(shuffled, "base", "other", "cost") == paired(records, "base", "other", "cost")


def test_paired_pairs_within_scenario_and_seed():
    """The same order id under two seeds is two pairs, each within its own seed."""
    one = shifted(np.array([10.0, 20.0]), np.array([11.0, 21.0]), seed=1)
    two = shifted(np.array([10.0, 20.0]), np.array([13.0, 23.0]), seed=2)
    result = paired(pd.concat([one, two]), "base", "other", "cost")
    assert result.n == 4 and result.mean_difference == 2.0  # (1 + 1 + 3 + 3) / 4


def test_paired_refuses_runs_over_different_orders():
    """Runs that do not cover the same orders: ValueError naming both runs."""
    records = shifted(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    records = records.drop(records.index[-1])  # other lacks O2
    with pytest.raises(ValueError, match=r"'base' and 'other' do not cover the same orders"):
        paired(records, "base", "other", "cost")
    with pytest.raises(ValueError, match="no records of run 'nope'"):
        paired(records, "base", "nope", "cost")
    with pytest.raises(ValueError, match="unknown metric"):
        paired(records, "base", "other", "speed")


def test_paired_metrics_on_the_tiny_table():
    """Each metric's mean difference greedy − engine, by hand; on_time only pairs dated orders."""
    records = tiny_records()
    expected = {
        "cost": (3, (2 + 5 + 64) / 3),  # 12-10, 25-20, 130-66
        "shipments": (3, (1 + 1 - 1) / 3),
        "split": (3, (1 + 0 + 0) / 3),  # O1 becomes split; O2 split in both; O3 in neither
        "on_time": (2, (0 + 1) / 2),  # O3 null in both: left out; O2 False -> True
        "distance_km": (3, (200 - 100 - 50) / 3),
        "backordered": (3, (0 + 0 + 1) / 3),
    }
    for metric, (n, mean) in expected.items():
        result = paired(records, "engine", "greedy", metric)
        assert result.n == n and result.mean_difference == pytest.approx(mean), metric


def test_comparisons_is_tidy_one_row_per_other_run_and_metric():
    """Every other run against the base, one row per (run, metric), in first-appearance order."""
    records = pd.concat(
        [tiny_records(), tiny_records().query("run == 'greedy'").assign(run="greedy-2")]
    )
    table = comparisons(records, "engine", ["cost", "split"], resamples=200)
    assert list(table.columns) == list(k.PAIRED_COLUMNS)
    assert list(zip(table["other"], table["metric"], strict=True)) == [
        ("greedy", "cost"), ("greedy", "split"), ("greedy-2", "cost"), ("greedy-2", "split"),
    ]  # fmt: skip
    assert set(table["base"]) == {"engine"}


def two_seeds() -> pd.DataFrame:
    """tiny_records on seed 1 and again on seed 2 with every cost doubled."""
    one = tiny_records()
    return pd.concat([one, one.assign(seed=2, cost=one["cost"] * 2)], ignore_index=True)


def test_bound_ratio_sums_the_bounds_of_the_streams_a_row_covers():
    """Per run over both seeds: total cost / (bound 1 + bound 2); per seed: its own bound.

    A stream without a bound leaves NaN where it is covered, never a ratio over part of it.
    """
    records = two_seeds()
    bounds = {("tiny", 1): 80.0, ("tiny", 2): 160.0}
    overall = kpis(records, bounds).set_index("run")
    assert overall.loc["engine", "total_cost"] == 96.0 * 3
    assert overall.loc["engine", "cost_ratio_to_bound"] == pytest.approx(288 / 240)
    by_seed = kpis(records, bounds, by=("scenario", "seed", "run"))
    assert list(by_seed.columns[:5]) == ["scenario", "seed", "run", "policy", "setting"]
    assert list(zip(by_seed["seed"], by_seed["run"], strict=True)) == [
        (1, "engine"), (1, "greedy"), (2, "engine"), (2, "greedy"),
    ]  # fmt: skip
    assert by_seed["cost_ratio_to_bound"].tolist() == pytest.approx(
        [96 / 80, 167 / 80, 192 / 160, 334 / 160]
    )
    assert by_seed["nodes_used"].tolist() == [3, 3, 3, 3]
    partial = kpis(records, {("tiny", 1): 80.0})
    assert partial["cost_ratio_to_bound"].isna().all()
    per_seed = kpis(records, {("tiny", 1): 80.0}, by=("scenario", "seed", "run"))
    assert per_seed["cost_ratio_to_bound"].notna().tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="positive cost"):
        kpis(records, {("tiny", 1): 0.0})
    with pytest.raises(ValueError, match="by must name run"):
        kpis(records, by=("seed",))


def test_kpis_long_is_the_kpi_table_one_metric_per_row():
    """Tidy: keys, metric, value; every (row, metric) of the wide table once, same value."""
    wide = kpis(tiny_records(), {("tiny", 1): 80.0}, by=("scenario", "run"))
    long = kpis_long(wide)
    assert list(long.columns) == ["run", "policy", "setting", "scenario", "metric", "value"]
    metrics = [c for c in wide.columns if c not in ("run", "policy", "setting", "scenario")]
    assert len(long) == len(wide) * len(metrics)
    back = long.pivot(index="run", columns="metric", values="value")
    for metric in metrics:
        assert back[metric].tolist() == pytest.approx(wide[metric].astype(float).tolist())


def test_node_utilisation_peak_day_against_capacity():
    """Orders per UTC day of each node, at its busiest day, over its daily order capacity.

    DC-1 (capacity 4) ships engine's O1 and O2, both created on 20 Nov UTC (O3, on 21 Nov,
    ships from 3P-1): peak 2 orders, 50% of its capacity; in greedy it ships O2 only (25%).
    Nodes without a capacity have NaN; without the orders table, no peak.
    """
    from datetime import UTC, datetime

    from models.order import Order, ShipTo

    network = tiny_network()
    capped = Network(
        nodes=tuple(
            replace(n, daily_order_capacity=4) if n.node_id == "DC-1" else n for n in network.nodes
        ),
        skus={},
        rates=RateCard.of([]),
    )
    when = {
        "O1": datetime(2026, 11, 20, 1, tzinfo=UTC),
        "O2": datetime(2026, 11, 20, 23, tzinfo=UTC),
        "O3": datetime(2026, 11, 21, 1, tzinfo=UTC),
    }
    orders = [Order(i, at, ShipTo(40.0, -90.0, "US"), "ground", ()) for i, at in when.items()]
    table = order_table(orders, "tiny", 1)
    assert list(table.columns) == ["scenario", "seed", "order_id", "day", "latitude", "longitude"]
    use = node_utilisation(tiny_records(), capped, table).set_index(["run", "node_id"])
    assert use.loc[("engine", "DC-1"), "capacity"] == 4
    assert use.loc[("engine", "DC-1"), "peak_day_orders"] == 2
    assert use.loc[("engine", "DC-1"), "peak_capacity_use"] == 0.5
    assert use.loc[("greedy", "DC-1"), "peak_capacity_use"] == 0.25  # O2 only
    assert np.isnan(use.loc[("engine", "ST-1"), "peak_capacity_use"])
    without = node_utilisation(tiny_records(), capped)
    assert without["peak_capacity_use"].isna().all() and without["capacity"].max() == 4
