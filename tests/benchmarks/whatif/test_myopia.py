"""What myopia can cost: orders routed alone on the initial stock bound every replay below.

The worked stream is tests/benchmarks/whatif/test_lookahead.py's: X at 0° holds 1 unit of
A, Y at −4° holds 5; o1 wants 1 A at 0°, then o2 wants 1 A at 12°, which only X reaches.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.whatif.lookahead import LookAhead, LookAheadPolicy
from benchmarks.whatif.myopia import alone_cost, by_seed, main, per_stream
from benchmarks.whatif.policies import EnginePolicy
from benchmarks.whatif.replay import replay
from benchmarks.whatif.run import Stream, records_frame
from benchmarks.whatif.run import main as whatif
from models.rules import RuleSet
from tests.benchmarks.whatif.test_lookahead import FORECAST, O1, O2, _scenario


def test_alone_each_order_takes_the_initial_stock_and_myopia_is_what_the_engine_lost():
    """Alone, o1 ships from X (7) and so does o2 (11): 18. The engine replays 7 + 60 = 67.

    Myopia cost the engine 67 − 18 = 49; look-ahead (forecast file, weight 0.5) replays
    9 + 11 = 20, winning back 47 of the 49; one order better (o2), one worse (o1).
    """
    scenario = _scenario()
    assert alone_cost(scenario, (O1, O2)) == pytest.approx(18.0)
    engine = replay(scenario, EnginePolicy(RuleSet()), scenario_name="w", seed=1)
    config = LookAhead(opportunity_cost=0.5, forecast=FORECAST, refresh_orders=1)
    ahead = replay(scenario, LookAheadPolicy(RuleSet(), config), scenario_name="w", seed=1)
    table = by_seed(records_frame([*engine, *ahead]), {("w", 1): 18.0}, other="look-ahead")
    row = table.iloc[0].to_dict()
    assert row == {
        "scenario": "w", "seed": 1, "orders": 2, "base_cost": 67.0, "other_cost": 20.0,
        "alone_cost": 18.0, "myopia": 49.0, "saving": 47.0, "orders_better": 1,
        "orders_worse": 1,
    }  # fmt: skip


def test_no_replay_of_a_sample_stream_costs_less_than_its_orders_alone():
    """Stock only shrinks and capacity only fills: the engine's total is at least alone's."""
    stream = Stream("standard", 8, n_orders=150)
    engine = replay(
        stream.build(), EnginePolicy(stream.build().rules), scenario_name="standard", seed=8,
        orders=stream.orders(),
    )  # fmt: skip
    alone = alone_cost(stream.build(), stream.orders())
    assert alone <= sum(r.cost for r in engine) + 1e-6
    assert alone > 0


def test_command_writes_a_row_per_seed_and_the_plot(tmp_path: Path, capsys):
    """``python -m benchmarks.whatif.myopia OUT`` on a what-if run of two 40-order streams."""
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
    """Savings 1, 2, 3, 4 per stream: mean 2.5, an interval inside [1, 4] around it, repeatable."""
    table = pd.DataFrame({"saving": [1.0, 2.0, 3.0, 4.0]})
    mean, low, high = per_stream(table)
    assert mean == 2.5 and 1.0 <= low < 2.5 < high <= 4.0
    assert per_stream(table) == (mean, low, high)
    assert per_stream(pd.DataFrame({"saving": [2.0] * 5})) == (2.0, 2.0, 2.0)


def test_command_refuses_records_without_the_compared_run(tmp_path: Path, capsys):
    """A records file without ``--other``'s run exits 2 naming it."""
    pd.DataFrame({"run": ["engine"], "scenario": ["standard"], "seed": [7]}).to_csv(
        tmp_path / "records.csv", index=False
    )
    assert main([str(tmp_path)]) == 2
    assert "no run look-ahead" in capsys.readouterr().err
