from __future__ import annotations

import importlib.util
import pickle

import pandas as pd
import pytest

from models.errors import Violations
from models.replenishment import Replenishment
from models.rules import RuleSet
from router.cli import main as router_main
from router.scenario.registry import REGISTRY
from router.whatif import run
from router.whatif.kpis import METRICS
from router.whatif.policies import POLICIES
from router.whatif.records import COLUMNS, DETERMINISTIC
from router.whatif.replay import arrival_order
from router.whatif.report import read_table
from router.whatif.run import DEFAULT_POLICIES

SMOKE_ORDERS = "8"

TABLES = ("records", "kpis", "kpis_long", "paired")


def _replenishment(tmp_path) -> tuple[Replenishment, ...]:
    """Two arrivals read from a CSV file: one at the start of the stream, one later."""
    network = run.scenario_for("standard", 7, True).network
    skus = sorted(network.skus)
    path = tmp_path / "arrivals.csv"
    path.write_text(
        "at,node_id,sku,units\n"
        f"2020-01-01T00:00:00Z,DC-01,{skus[0]},50\n"
        f"2026-11-20T18:00:00+01:00,DC-02,{skus[1]},7\n",
        encoding="utf-8",
    )
    return run.read_replenishment(path, network)


def test_local_and_ray_engines_give_identical_records_and_bounds(tmp_path):
    """Local with 1 worker (in-process), with 2 worker processes, and Ray agree exactly.

    A smoke run of three policies (engine, full-model, greedy-nearest) x 2 seeds, with a
    replenishment CSV and the hindsight bound of each stream, through ``run_all`` on each
    engine; Ray on a local runtime of 2 CPUs. Every DETERMINISTIC column (all but the
    machine-dependent ``latency_s``) is equal, row for row, and the rows come sorted by
    run, scenario, seed, seq; every solve is proven (so no time limit can change a plan);
    the bounds are equal (value, status, size). Ray is shut down afterwards.
    """
    import ray

    arrivals = _replenishment(tmp_path)
    specs = [
        run.RunSpec(run.Stream("standard", seed, 6, arrivals, smoke=True), policy)
        for seed in (7, 8)
        for policy in ("engine", "full-model", "greedy-nearest")
    ]
    one, bounds_one = run.run_all(specs, bounds=True, executor="local", workers=1, progress=False)
    two, bounds_two = run.run_all(specs, bounds=True, executor="local", workers=2, progress=False)
    try:
        on_ray, bounds_ray = run.run_all(
            specs, bounds=True, executor="ray", workers=2, progress=False
        )
    finally:
        ray.shutdown()
    assert list(one.columns) == list(COLUMNS)
    assert len(one) == 3 * 2 * 6
    assert set(one["run"]) == {"engine", "full-model", "greedy-nearest"}
    assert one.equals(one.sort_values(run.SORT_KEYS, ignore_index=True))
    assert run.unproven(one).empty
    columns = list(DETERMINISTIC)
    pd.testing.assert_frame_equal(one[columns], two[columns])
    pd.testing.assert_frame_equal(one[columns], on_ray[columns])
    assert set(bounds_one) == {("standard", 7), ("standard", 8)}

    def same(b: dict) -> dict:
        return {k: (v.value, v.status, v.variables, v.constraints) for k, v in b.items()}

    assert same(bounds_one) == same(bounds_two) == same(bounds_ray)
    assert all(b.status == "OPTIMAL" for b in bounds_one.values())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_scenario_smoke_runs_through_the_command(name, tmp_path, capsys):
    """``main --smoke --scenario NAME`` replays the default policies, bounds, writes everything.

    The defaults are every policy but look-ahead, which runs only when named.

    The command end to end at smoke size on the first orders: exit 0, the KPI table printed
    (one row per policy, every cost at least the hindsight bound: the bound is a lower
    bound of every replay), the tables as CSV and Parquet, and the report.
    """
    out = tmp_path / name
    argv = ["--smoke", "--scenario", name, "--orders", SMOKE_ORDERS, "--workers", "1"]
    assert run.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in printed
    assert f"hindsight bound {name} seed 7:" in printed
    for policy in DEFAULT_POLICIES:
        assert f"| {policy} | {SMOKE_ORDERS} |" in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    for table in TABLES:
        assert (out / f"{table}.csv").stat().st_size > 0
        pd.testing.assert_frame_equal(
            read_table(out / f"{table}.csv"), read_table(out / f"{table}.parquet"),
            check_dtype=False,
        )  # fmt: skip
    records = read_table(out / "records.parquet")
    assert list(records.columns) == list(COLUMNS)
    assert len(records) == len(DEFAULT_POLICIES) * int(SMOKE_ORDERS)
    kpis = read_table(out / "kpis.csv")
    assert list(kpis["run"]) == sorted(DEFAULT_POLICIES)
    assert set(POLICIES) - set(DEFAULT_POLICIES) == {"look-ahead"}
    assert (kpis["cost_ratio_to_bound"] >= 1 - 1e-9).all()
    long = read_table(out / "kpis_long.csv")
    assert list(long.columns) == ["run", "policy", "setting", "scenario", "metric", "value"]
    assert set(long["scenario"]) == {name}
    paired = read_table(out / "paired.csv")
    assert set(paired["base"]) == {"engine"}
    assert set(paired["metric"]) == set(METRICS)


def test_several_seeds_give_a_kpi_table_per_seed_with_its_own_bound(tmp_path, capsys):
    """With --seeds 7 8, each seed's ratio is over its own bound, the overall over both.

    ``kpis_by_seed`` has a row per (seed, run), its ``cost_ratio_to_bound`` the seed's total
    cost over that stream's printed bound; ``kpis`` divides the total over both seeds by the
    sum of both bounds (the streams are independent, so their bounds add).
    """
    out = tmp_path / "seeds"
    argv = ["--smoke", "--seeds", "7", "8", "--orders", "4", "--policies", "engine"]
    assert run.main([*argv, "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    bounds = {
        int(line.split()[4].rstrip(":")): float(line.split()[5].replace(",", ""))
        for line in printed.splitlines()
        if line.startswith("hindsight bound")
    }
    by_seed = read_table(out / "kpis_by_seed.csv").set_index("seed")
    for seed, bound in bounds.items():
        assert by_seed.loc[seed, "cost_ratio_to_bound"] == pytest.approx(
            by_seed.loc[seed, "total_cost"] / bound, rel=1e-4
        )
    overall = read_table(out / "kpis.csv").iloc[0]
    assert overall["cost_ratio_to_bound"] == pytest.approx(
        overall["total_cost"] / sum(bounds.values()), rel=1e-4
    )


def test_a_bad_replenishment_file_exits_2_listing_every_violation(tmp_path, capsys):
    """Every bad row and field of the CSV is printed as file:line:column; exit 2, no run.

    Values are read by the CSV reader; unknown nodes and SKUs are found by
    replay.check_replenishment and reported at the file's line and column too, even on a
    row whose other fields are bad.
    """
    bad = tmp_path / "arrivals.csv"
    bad.write_text(
        "at,node_id,sku,units\n"
        "2026-11-20T18:00:00Z,DC-01,SKU-00001,5\n"
        "2026-11-20 18:00,NOPE-1,SKU-00001,-2\n"
        "2026-11-21T08:00:00Z,DC-02,SKU-99999,3.5\n",
        encoding="utf-8",
    )
    assert run.main(["--smoke", "--replenishment", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid input (5 problems)" in err
    for problem in (
        "arrivals.csv:3:at: must be an RFC 3339 timestamp",
        "arrivals.csv:3:node_id: unknown node 'NOPE-1'",
        "arrivals.csv:3:units: must be >= 0, got -2",
        "arrivals.csv:4:sku: unknown sku 'SKU-99999'",
        "arrivals.csv:4:units: must be an integer",
    ):
        assert problem in err
    assert not (tmp_path / "o").exists()


def test_a_replenishment_file_missing_a_column_exits_2(tmp_path, capsys):
    """A header without ``node_id`` (and with an unknown ``node``) names both columns."""
    bad = tmp_path / "arrivals.csv"
    bad.write_text("at,node,sku,units\n2026-11-20T18:00:00Z,DC-01,SKU-00001,5\n")
    assert run.main(["--smoke", "--replenishment", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "arrivals.csv:1:node_id: column is missing" in err
    assert "arrivals.csv:1:node: is not a column" in err


def test_a_valid_replenishment_file_is_read_and_replayed(tmp_path):
    """Rows become Replenishments (timezone-aware); a run that gets them replays fine."""
    arrivals = _replenishment(tmp_path)
    assert [(r.node_id, r.units) for r in arrivals] == [("DC-01", 50), ("DC-02", 7)]
    assert all(r.at.tzinfo is not None for r in arrivals)
    stream = run.Stream("standard", 7, 3, arrivals, smoke=True)
    assert len(run.execute(run.RunSpec(stream))) == 3


def test_a_bad_rules_file_exits_2(tmp_path, capsys):
    """A rules file the rule language refuses is invalid input: exit 2, the file named."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("name: x\nstrategies:\n  - name: a\n    weights: {split_penalty: -1}\n")
    assert run.main(["--smoke", "--rules", str(rules), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "rules.yaml:strategies[0].weights.split_penalty: must be >= 0" in err


def test_an_unknown_base_run_exits_2(tmp_path, capsys):
    """``--base`` must name a policy or a setting of the command: exit 2 before any run."""
    argv = ["--smoke", "--policies", "greedy-nearest", "--out", str(tmp_path / "o")]
    assert run.main(argv) == 2
    assert "--base: 'engine' is none of the runs: greedy-nearest" in capsys.readouterr().err


def test_ray_without_the_extra_exits_2(tmp_path, capsys, monkeypatch):
    """``--executor ray`` when ray cannot be imported: exit 2 asking for the whatif extra."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    assert run.main(["--smoke", "--executor", "ray", "--out", str(tmp_path / "o")]) == 2
    assert "install the whatif extra" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_router_whatif_without_the_extra_exits_2_before_loading_it(capsys, monkeypatch):
    """``router whatif`` on a runtime-only install (no matplotlib): exit 2 naming the extra."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    assert router_main(["whatif", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "matplotlib not installed; install the whatif extra" in err


def test_executor_says_where_runs_execute_and_engine_is_not_its_name():
    """``--executor`` chooses local or Ray; ``--engine`` names solvers elsewhere, not here."""
    assert run.parser().parse_args(["--executor", "ray"]).executor == "ray"
    assert run.parser().parse_args([]).executor == "local"
    with pytest.raises(SystemExit):
        run.parser().parse_args(["--engine", "ray"])


def test_router_whatif_runs_the_command(tmp_path, capsys):
    """``router whatif --smoke …`` through router.cli.main: the same command, same flags."""
    out = tmp_path / "via-router"
    argv = ["whatif", "--smoke", "--orders", "4", "--policies", "engine", "ranked-chain"]
    assert router_main([*argv, "--workers", "1", "--no-bound", "--out", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    assert router_main(["whatif", "--policies", "nope"]) == 2
    assert "router whatif: error: argument --policies" in capsys.readouterr().err
    assert router_main(["whatif", "--help"]) == 0
    assert "--executor" in capsys.readouterr().out


def test_run_specs_pickle_and_changes_apply_to_the_routing_rules():
    """Specs cross process boundaries; a setting's changes reach every strategy's policy."""
    stream = run.Stream("standard", 7, smoke=True)
    spec = run.RunSpec(stream, setting="split_penalty=8", changes={"split_penalty": 8.0})
    assert pickle.loads(pickle.dumps(spec)) == spec
    rules = RuleSet.from_raw(
        {"name": "two", "strategies": [{"name": "a"}, {"name": "b"}]}, Violations()
    )
    assert rules is not None
    changed = run.with_changes(rules, spec.changes)
    assert [s.policy.split_penalty for s in changed.strategies] == [8.0, 8.0]
    assert all("split_penalty" in s.overrides for s in changed.strategies)
    assert run.with_changes(rules, {}) is rules
    with pytest.raises(ValueError, match="unknown policy"):
        run.RunSpec(stream, policy="random")
    with pytest.raises(ValueError, match="unknown scenario"):
        run.Stream("nope", 7)


def test_the_stream_is_the_first_orders_in_arrival_order():
    """A stream of n orders replays replay.arrival_order's first n of the scenario."""
    stream = run.Stream("standard", 7, 3, smoke=True)
    scenario = stream.build()
    assert stream.orders() == arrival_order(scenario.orders, 3)
    assert len(stream.orders()) == 3
    assert run.Stream("standard", 7, smoke=True).orders() == arrival_order(scenario.orders)
