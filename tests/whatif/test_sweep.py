from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.rules import Policy, SlaMode
from router.whatif import run, sweep
from router.whatif.report import read_table
from router.whatif.sweep import grid, pareto, tradeoff


def test_pareto_on_a_hand_made_table():
    """Rows no other row dominates (min cost, min split, max on-time); ties stay; NaN is out."""
    table = pd.DataFrame(
        {
            "name": ["A", "B", "C", "D", "E", "F", "G"],
            "cost_per_order": [10.0, 12.0, 12.0, 9.0, 10.0, 11.0, 5.0],
            "split_rate": [0.2, 0.1, 0.2, 0.5, 0.2, 0.3, 0.0],
            "on_time_rate": [0.9, 0.9, 0.9, 0.8, 0.9, 0.95, np.nan],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    # A: efficient (E equals it, nothing better). B: lowest split among on-time 0.9.
    # C: dominated by A (cost 10 < 12, split and on-time equal). D: lowest cost.
    # E: equal to A, so efficient too. F: best on-time. G: NaN on-time, never efficient.
    efficient = pareto(table, ["cost_per_order", "split_rate"], ["on_time_rate"])
    assert list(efficient.index) == list(table.index)
    assert dict(zip(table["name"], efficient, strict=True)) == {
        "A": True, "B": True, "C": False, "D": True, "E": True, "F": True, "G": False,
    }  # fmt: skip
    # With cost alone, only the cheapest valid row (G has no NaN there) survives.
    assert list(table["name"][pareto(table, ["cost_per_order"], [])]) == ["G"]
    marked = tradeoff(table)
    assert list(marked["pareto"]) == list(efficient) and "pareto" not in table.columns
    with pytest.raises(ValueError, match="lacks columns"):
        pareto(table, ["nope"], [])


def test_sweepable_fields_are_the_scalar_policy_fields():
    """Weights and the scalar filters/constraints sweep; sets and mappings do not."""
    assert set(sweep.sweepable()) == {
        "split_penalty", "lateness_penalty_per_day", "backorder_cost_per_unit",
        "priority_bonus", "distance_cost_per_km", "opportunity_cost", "max_distance_km",
        "same_country",
        "max_shipments", "ship_complete", "sla", "no_split_below_value",
    }  # fmt: skip
    for name in ("unit_penalty_by_node_type", "node_types", "blocked", "nodes"):
        with pytest.raises(ValueError, match="not a scalar field"):
            grid(name, [1])


def test_grid_holds_the_values_the_rule_language_reads():
    """Each setting is labelled name=value and holds the value as the rules hold it."""
    assert grid("split_penalty", [0, 2, 8.5]) == [
        ("split_penalty=0", {"split_penalty": 0.0}),
        ("split_penalty=2", {"split_penalty": 2.0}),
        ("split_penalty=8.5", {"split_penalty": 8.5}),
    ]
    assert grid("sla", ["hard", "soft"]) == [
        ("sla=hard", {"sla": SlaMode.HARD}),
        ("sla=soft", {"sla": SlaMode.SOFT}),
    ]
    assert grid("ship_complete", [True, False]) == [
        ("ship_complete=true", {"ship_complete": True}),
        ("ship_complete=false", {"ship_complete": False}),
    ]
    assert grid("max_shipments", [1, 3]) == [
        ("max_shipments=1", {"max_shipments": 1}),
        ("max_shipments=3", {"max_shipments": 3}),
    ]
    for _, changes in grid("max_distance_km", [250, 1000]) + grid("sla", ["hard"]):
        policy = replace(Policy(), **changes)  # type: ignore[arg-type]
        assert all(getattr(policy, k) == v for k, v in changes.items())


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("split_penalty", [], "at least one value"),
        ("split_penalty", [-1], "split_penalty=-1: must be >= 0"),
        ("distance_cost_per_km", [101], "distance_cost_per_km=101"),
        ("sla", ["firm"], "sla='firm'"),
        ("max_shipments", [2.5], "max_shipments=2.5"),
        ("split_penalty", [2.0, 2], "split_penalty=2 comes twice"),
        ("split_pennalty", [1], "'split_pennalty' is not a sweepable field"),
    ],
)
def test_grid_refuses_what_the_rule_language_refuses(name, values, message):
    """Limits come from models.rules (RuleSet.from_raw), not from the sweep: same messages."""
    with pytest.raises(ValueError, match=message):
        grid(name, values)


def test_sweep_values_are_read_as_yaml():
    """``--sweep`` values are YAML scalars: words, booleans, numbers, as in a rule file."""
    assert run._sweep_flag("sla=hard,soft")[1] == grid("sla", ["hard", "soft"])
    assert run._sweep_flag("ship_complete=true,false")[1] == grid("ship_complete", [True, False])
    assert run._sweep_flag("split_penalty=0, 4.5")[1] == grid("split_penalty", [0, 4.5])


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["split_pennalty=0,4"], "'split_pennalty' is not a sweepable field"),
        (["unit_penalty_by_node_type=1"], "not a scalar field"),
        (["split_penalty=0,x"], "split_penalty='x'"),
        (["split_penalty"], "expected FIELD=V1,V2"),
        (["split_penalty=0,4", "split_penalty=8"], "split_penalty is swept twice"),
    ],
)
def test_a_bad_sweep_exits_2_naming_the_problem(flags, named, tmp_path, capsys):
    """A bad ``--sweep`` (or a field swept by two flags) exits 2 before any run."""
    argv = ["--smoke", *(x for flag in flags for x in ("--sweep", flag))]
    assert run.main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--sweep" in err and named in err
    assert not (tmp_path / "out").exists()


def test_settings_are_rule_files_times_sweep_values(tmp_path):
    """Each --rules file is a setting labelled by its stem; a sweep runs on each file."""
    a, b = tmp_path / "tight.yaml", tmp_path / "loose.yaml"
    args = run.parser().parse_args(
        ["--rules", str(a), "--rules", str(b), "--sweep", "sla=hard,soft"]
    )
    assert [(label, path) for label, path, _ in run.settings(args)] == [
        ("tight,sla=hard", a), ("tight,sla=soft", a), ("loose,sla=hard", b), ("loose,sla=soft", b),
    ]  # fmt: skip
    only_files = run.parser().parse_args(["--rules", str(a), "--rules", str(b)])
    assert run.settings(only_files) == [("tight", a, {}), ("loose", b, {})]
    only_sweep = run.parser().parse_args(["--sweep", "max_shipments=1,2"])
    assert run.settings(only_sweep) == [
        ("max_shipments=1", None, {"max_shipments": 1}),
        ("max_shipments=2", None, {"max_shipments": 2}),
    ]


def test_several_rule_files_are_one_run_each(tmp_path, capsys):
    """``--rules a.yaml --rules b.yaml``: runs ``engine a`` and ``engine b`` beside the policies.

    File ``b`` caps every order at one shipment, so its run never splits (a property of the
    rules, whatever the data); both runs are in the trade-off table.
    """
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("name: a\nstrategies:\n  - name: s\n")
    b.write_text("name: b\nstrategies:\n  - name: s\n    constraints: {max_shipments: 1}\n")
    out = tmp_path / "out"
    argv = ["--smoke", "--scenario", "peak-day", "--orders", "6", "--policies", "engine"]
    argv += ["--rules", str(a), "--rules", str(b), "--no-bound", "--workers", "1"]
    assert run.main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    records = read_table(out / "records.parquet")
    assert set(records["run"]) == {"engine", "engine a", "engine b"}
    assert (records.loc[records["run"] == "engine b", "shipments"] <= 1).all()
    assert set(read_table(out / "tradeoff.csv")["setting"]) == {"a", "b"}


def test_a_higher_split_penalty_never_splits_the_first_order_more(tmp_path, capsys):
    """``--sweep split_penalty=0,100``: at each stream's first order, P=100 splits only if P=0 does.

    Why (a property, not a fact of the data): on one order and one stock, the engine
    minimises ``c(plan) + P * e(plan)``, where ``e`` is the number of extra shipments and
    ``c`` every other term (P does not enter it). Let A be optimal at P=0 and B at P=100.
    Optimality gives c(A) <= c(B) and c(B) + 100 e(B) <= c(A) + 100 e(A); adding both,
    e(B) <= e(A), whatever the ties. The first order of a stream meets the same stock in
    both runs, so this holds there whenever both solves are proven optimal (checked).
    Later orders meet stock depleted by different plans, so nothing is claimed for them
    (on the seeded data the stream's split rate also falls, but that is not asserted).
    """
    out = tmp_path / "sweep"
    argv = ["--smoke", "--scenario", "peak-day", "--policies", "engine", "--no-bound"]
    argv += ["--seeds", "7", "8", "9", "--orders", "3", "--base", "split_penalty=0"]
    argv += ["--sweep", "split_penalty=0,100", "--workers", "1", "--out", str(out)]
    assert run.main(argv) == 0
    assert "| pareto |" in capsys.readouterr().out
    trade = read_table(out / "tradeoff.csv")
    assert set(trade["setting"]) == {"split_penalty=0", "split_penalty=100"}
    assert trade["pareto"].dtype == bool and trade["pareto"].any()
    records = read_table(out / "records.parquet")
    first = records[(records["seq"] == 0) & (records["setting"] != "")]
    assert set(first["status"]) == {"OPTIMAL"}
    split = first.assign(split=first["shipments"] >= 2).pivot(
        index="seed", columns="setting", values="split"
    )
    assert len(split) == 3
    assert (split["split_penalty=100"] <= split["split_penalty=0"]).all()
    paired = read_table(out / "paired.csv")
    assert set(paired["base"]) == {"engine split_penalty=0"}
