"""What myopia can cost: orders routed alone on the initial stock bound every replay below.

The worked stream is tests/whatif/test_lookahead.py's: X at 0° holds 1 unit of
A, Y at −4° holds 5; o1 wants 1 A at 0°, then o2 wants 1 A at 12°, which only X reaches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.myopia import alone_costs, by_seed, main, per_stream
from models.rules import RuleSet
from router.whatif.lookahead import LookAheadPolicy
from router.whatif.policies import EnginePolicy
from router.whatif.replay import replay
from router.whatif.run import Stream, records_frame
from router.whatif.run import main as whatif
from tests.engine.conftest import order
from tests.whatif.test_lookahead import HALF, O1, O2, _scenario


def test_alone_each_order_takes_the_initial_stock_and_myopia_is_what_the_engine_lost():
    """Alone, o1 ships from X (7) and so does o2 (11): 18. The engine replays 7 + 60 = 67.

    An order of a SKU nobody holds is backordered whole alone (60 a unit).

    Myopia cost the engine 67 − 18 = 49; look-ahead (forecast file, weight 0.5, prices
    unbounded) replays 9 + 11 = 20, 47 less than the engine; one order better (o2), one
    worse (o1).
    """
    scenario = _scenario()
    alone = alone_costs(scenario, (O1, O2))
    assert alone == pytest.approx({"o1": 7.0, "o2": 11.0})
    nowhere = dataclasses.replace(order(("B", 2)), order_id="o3")  # nobody holds B
    assert alone_costs(scenario, (nowhere,)) == {"o3": 120.0}  # backordered whole, 60 a unit
    engine = replay(scenario, EnginePolicy(RuleSet()), scenario_name="w", seed=1)
    ahead = replay(scenario, LookAheadPolicy(RuleSet(), HALF), scenario_name="w", seed=1)
    records = records_frame([*engine, *ahead])
    table = by_seed(records, _alone("w", 1, alone), other="look-ahead")
    assert table.iloc[0].to_dict() == {
        "scenario": "w", "seed": 1, "orders": 2, "base_cost": 67.0, "other_cost": 20.0,
        "alone_cost": 18.0, "myopia": 49.0, "difference": -47.0, "orders_better": 1,
        "orders_worse": 1,
    }  # fmt: skip


def test_records_of_other_streams_are_refused():
    """An order the engine replayed for less than alone, or a missing order: ValueError."""
    scenario = _scenario()
    engine = records_frame(replay(scenario, EnginePolicy(RuleSet()), scenario_name="w", seed=1))
    records = pd.concat([engine, engine.assign(run="look-ahead")])
    with pytest.raises(ValueError, match=r"o2 \(seed 1\) costs the engine less than alone"):
        by_seed(records, _alone("w", 1, {"o1": 7.0, "o2": 61.0}), other="look-ahead")
    with pytest.raises(ValueError, match="same orders"):
        by_seed(records, _alone("w", 1, {"o1": 7.0}), other="look-ahead")


def test_no_order_of_a_replayed_sample_stream_costs_less_than_alone():
    """Stock only shrinks and capacity only fills: every order costs the engine at least alone.

    The first order sees the initial stock, so it costs exactly alone.
    """
    stream = Stream("standard", 7, n_orders=200)
    scenario = stream.build()
    engine = replay(
        scenario, EnginePolicy(scenario.rules), scenario_name="standard", seed=7,
        orders=stream.orders(),
    )  # fmt: skip
    alone = alone_costs(scenario, stream.orders())
    assert len(alone) == len(engine) == 200
    assert all(r.cost >= alone[r.order_id] - 1e-6 for r in engine)
    assert engine[0].cost == pytest.approx(alone[engine[0].order_id])


def _alone(scenario: str, seed: int, costs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [(scenario, seed, order_id, cost) for order_id, cost in costs.items()],
        columns=["scenario", "seed", "order_id", "alone"],
    )


def test_command_writes_a_row_per_stream_and_the_plot(tmp_path: Path, capsys):
    """``python -m benchmarks.myopia OUT`` on a what-if run of two 40-order streams."""
    flags = ["--policies", "engine", "look-ahead", "--no-bound", "--orders", "40"]
    assert whatif([*flags, "--seeds", "7", "8", "--out", str(tmp_path), "--min-orders", "10"]) == 0
    assert main([str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "myopia.csv")
    assert list(table["seed"]) == [7, 8] and set(table["orders"]) == {40}
    assert (table["myopia"] >= -1e-6).all()
    records = pd.read_csv(tmp_path / "records.csv")
    engine = records[records["run"] == "engine"].groupby("seed")["cost"].sum()
    assert table["base_cost"].tolist() == pytest.approx(engine.tolist())
    assert (tmp_path / "myopia.png").read_bytes()[:4] == b"\x89PNG"
    assert "2 streams: myopia" in capsys.readouterr().out


def test_per_stream_interval_is_over_streams_and_seeded():
    """Differences 1, 2, 3, 4 per stream: mean 2.5, an interval inside [1, 4], repeatable."""
    table = pd.DataFrame({"difference": [1.0, 2.0, 3.0, 4.0]})
    mean, low, high = per_stream(table)
    assert mean == 2.5 and 1.0 <= low < 2.5 < high <= 4.0
    assert per_stream(table) == (mean, low, high)
    assert per_stream(pd.DataFrame({"difference": [2.0] * 5})) == (2.0, 2.0, 2.0)


def test_command_refuses_records_without_the_compared_run(tmp_path: Path, capsys):
    """A records file without ``--other``'s run exits 2 naming it."""
    pd.DataFrame(
        {"run": ["engine"], "scenario": ["standard"], "seed": [7], "order_id": ["o"], "cost": [1.0]}
    ).to_csv(tmp_path / "records.csv", index=False)
    assert main([str(tmp_path)]) == 2
    assert "no run look-ahead" in capsys.readouterr().err
