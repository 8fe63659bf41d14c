from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import compare
from benchmarks.compare import Engines, Sweep
from benchmarks.orders import orders_of_size
from router.engine.solve import FAST, FULL_MODEL, HIGHS_FULL
from router.scenario.registry import REGISTRY

TINY_SWEEP = Sweep(nodes=(20, 30), lines=(1, 3), per_cell=3, n_skus=100, n_orders=20)
TINY_DENSE = Sweep(compare.DENSE, nodes=(30,), lines=(5, 20), per_cell=2, n_skus=60, n_orders=10)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_scenario_smoke_runs_on_all_engines(name):
    """Every scenario builds at its smoke size; the three engines agree on all its orders.

    The fast engine proves every order; a baseline may run out of time on a dense one, but
    no proof may contradict another answer, and where all three prove, they agree.
    """
    table = compare.run_scenario(name, [1], None, Engines(), smoke=True)
    n_orders = len(REGISTRY[name].smoke(1).orders)
    assert n_orders > 0
    assert len(table) == 3 * n_orders
    assert set(table["engine"]) == {FAST, FULL_MODEL, HIGHS_FULL}
    assert set(table[table["role"] == compare.FAST_ROLE]["status"]) <= {"OPTIMAL", "INFEASIBLE"}
    assert compare.mismatches(table).empty
    proven = table.groupby("order_id").filter(
        lambda rows: rows["status"].isin(compare.PROVEN).all()
    )
    assert (proven.groupby("order_id")["objective"].nunique(dropna=False) == 1).all()


def test_comparison_smoke_runs_with_a_sweep_and_writes_every_output(tmp_path, capsys):
    """The command end to end at tiny sizes: identical objectives, tables and plots written."""
    argv = ["--smoke", "--out", str(tmp_path), "--per-cell", str(TINY_SWEEP.per_cell)]
    argv += ["--nodes", *map(str, TINY_SWEEP.nodes), "--lines", *map(str, TINY_SWEEP.lines)]
    argv += ["--sweep-skus", str(TINY_SWEEP.n_skus)]
    argv += ["--dense-nodes", *map(str, TINY_DENSE.nodes)]
    argv += ["--dense-lines", *map(str, TINY_DENSE.lines)]
    argv += ["--dense-per-cell", str(TINY_DENSE.per_cell), "--dense-skus", str(TINY_DENSE.n_skus)]
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "0 mismatches" in printed
    assert "standard: fast is " in printed
    for name in ("orders.csv", "summary.csv", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    for name in ("latency_vs_nodes", "latency_vs_lines", "dense_vs_nodes", "dense_vs_lines"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "orders.csv")
    sweep = table[table["scenario"] == compare.SWEEP]
    assert sorted(set(sweep["nodes"])) == list(TINY_SWEEP.nodes)
    assert sorted(set(sweep["lines"])) == list(TINY_SWEEP.lines)
    assert len(sweep) == 3 * len(TINY_SWEEP.nodes) * len(TINY_SWEEP.lines) * 3
    dense = table[table["scenario"] == compare.DENSE]
    assert len(dense) == 3 * len(TINY_DENSE.lines) * TINY_DENSE.per_cell
    assert sorted(set(dense["lines"])) == list(TINY_DENSE.lines)
    stats = pd.read_csv(tmp_path / "summary.csv")
    assert set(stats["engine"]) == {FAST, FULL_MODEL, HIGHS_FULL}
    cells = 1 + len(TINY_SWEEP.nodes) * len(TINY_SWEEP.lines) + len(TINY_DENSE.lines)
    assert len(stats) == 3 * cells
    assert (stats["proven"] == stats["orders"]).all() and (stats["worse"] == 0).all()
    assert "| sweep | 30 | 3 | cpsat-full |" in (tmp_path / "summary.md").read_text()
    goals = (tmp_path / "goals.md").read_text()
    assert goals.count("\n") == 2 + len(TINY_DENSE.lines)
    assert "| 30 | 20 | 2 | 100% | 0.00% |" in goals


def test_a_mismatch_is_reported_and_fails_the_run(tmp_path, capsys, monkeypatch):
    """A baseline whose proven optimum another engine beats is printed; exit status 1."""
    real = compare.route_order

    def off_by_one(*args, engine, **kwargs):
        plan = real(*args, engine=engine, **kwargs)
        if engine == FULL_MODEL and plan.objective is not None:
            object.__setattr__(plan, "objective", plan.objective + 1)
        return plan

    monkeypatch.setattr(compare, "route_order", off_by_one)
    argv = ["--smoke", "--orders", "2", "--per-cell", "0", "--dense-per-cell", "0"]
    assert compare.main([*argv, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert printed.count("MISMATCH standard seed 7") == 2
    assert printed.count(f"{FULL_MODEL} OPTIMAL") == 2
    assert "identical objectives on 0/2 orders" in printed


def test_an_unknown_engine_stops_the_run_before_timing(tmp_path, capsys):
    assert compare.main(["--smoke", "--fast", "no-such-engine", "--out", str(tmp_path)]) == 2
    assert "no-such-engine" in capsys.readouterr().err
    assert not (tmp_path / "orders.csv").exists()


@pytest.mark.parametrize("nodes", [13, 50, 100, 420, 1000])
def test_sweep_networks_have_exactly_the_asked_number_of_nodes(nodes):
    assert compare.stores_for(nodes) + 8 + max(1, compare.stores_for(nodes) // 50) + 4 == nodes


def test_generated_orders_are_valid_seeded_and_of_the_asked_size():
    scenario = compare.sweep_network(20, 1, TINY_SWEEP)
    orders = orders_of_size(scenario, 3, 5, seed=4)
    assert orders == orders_of_size(scenario, 3, 5, seed=4)
    assert orders != orders_of_size(scenario, 3, 5, seed=5)
    ship_tos = {o.ship_to for o in scenario.orders}
    for order in orders:
        assert len(order.lines) == 3
        assert len({line.sku for line in order.lines}) == 3
        assert order.ship_to in ship_tos
        assert all(line.sku in scenario.network.skus for line in order.lines)


def test_rules_benchmark_smoke_runs_every_variant(capsys):
    """The rules benchmark runs all three variants on every order and prints their ratios."""
    from benchmarks import rules

    times = rules.measure(12, smoke=True)
    assert set(times) == {"bare", "default", "example"}
    assert all(len(v) == 12 and min(v) > 0 for v in times.values())
    assert rules.main(["--orders", "5", "--smoke"]) == 0
    table = capsys.readouterr().out
    assert "| example |" in table and "p50 / bare" in table


def test_explain_size_benchmark_smoke_runs_every_level(capsys):
    """The explanation-size benchmark measures every level; a summary is smaller than full."""
    from benchmarks import explain_size

    rows = explain_size.measure([2], smoke=True)
    assert [row["level"] for row in rows] == ["none", "summary", "full"]
    none, summary, full = (int(str(row["json_bytes"])) for row in rows)
    assert none < summary < full
    assert explain_size.main(["--lines", "2", "--smoke"]) == 0
    assert "| summary |" in capsys.readouterr().out


def test_calendars_benchmark_smoke_runs_both_variants(capsys):
    """The calendars benchmark times both networks on every order and prints their ratios.

    Its calendars do move some order's ship dates.
    """
    from benchmarks import calendars
    from router.engine.candidates import build_model
    from router.sample import sample_scenario

    times = calendars.measure(12, smoke=True)
    assert set(times) == {"open", "calendars"}
    assert all(len(v) == 12 and min(v) > 0 for v in times.values())
    assert calendars.main(["--orders", "5", "--smoke"]) == 0
    table = capsys.readouterr().out
    assert "| calendars |" in table and "p50 / open" in table
    scenario = sample_scenario(n_orders=40, n_stores=50, n_skus=200)
    closed = calendars.with_calendars(scenario.network, scenario.orders)
    policy = scenario.rules.strategies[0].policy

    def ship_dates(network):
        return [
            c.ship_date
            for o in scenario.orders
            for c in build_model(o, network, scenario.stock, policy).model.candidates
        ]

    assert ship_dates(closed) != ship_dates(scenario.network)


def test_a_baseline_that_crashes_is_recorded_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    """A baseline raising (HiGHS once ran out of memory) is a CRASHED row, not a lost run.

    The engine under test raising would still stop the run: that is a bug.
    """
    real = compare.route_order
    calls = {HIGHS_FULL: 0}

    def crashing(*args, engine, **kwargs):
        if engine == HIGHS_FULL:
            calls[engine] += 1
            if calls[engine] > 1:  # the warm-up call passes, the timed ones crash
                raise MemoryError("std::bad_alloc")
        return real(*args, engine=engine, **kwargs)

    monkeypatch.setattr(compare, "route_order", crashing)
    argv = ["--smoke", "--orders", "2", "--per-cell", "0", "--dense-per-cell", "0"]
    assert compare.main([*argv, "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "orders.csv")
    highs = table[table["engine"] == HIGHS_FULL]
    assert list(highs["status"]) == [compare.CRASHED, compare.CRASHED]
    assert highs["objective"].isna().all()
    assert "highs-full raised on" in capsys.readouterr().err
    assert not (tmp_path / "orders.partial.csv").exists()


def test_replay_benchmark_smoke_runs_every_family(capsys):
    """One row per family with both timings and their ratio."""
    from benchmarks import replay

    assert replay.main(["--smoke", "--rounds", "1"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "x |" in r]
    assert [r.split(" | ")[0][2:] for r in rows] == list(replay.FAMILIES)
    for row in rows:
        plan, replayed, ratio = (float(c.rstrip("x |")) for c in row.split(" | ")[2:5])
        assert plan > 0 and replayed > 0
        assert ratio == pytest.approx(replayed / plan, rel=0.05, abs=0.01)
