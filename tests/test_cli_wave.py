"""``router wave``: a wave planned offline from a scenario directory, summary and JSON plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.rules import RuleSet
from models.scenario import Scenario
from router.cli import main
from router.scenario import write_scenario
from tests.engine.conftest import network, node, stock
from tests.service.test_wave_service import O1, O2


@pytest.fixture
def contested(tmp_path: Path) -> Path:
    """The contested scenario of tests/service/test_wave_service.py, written to files.

    NEAR (0°) holds one unit of A, FAR (10°) five; o2 (to lon 4, first) and o1 (to lon 0,
    due 11-21) each want one. Jointly o1 gets NEAR (7) and o2 FAR (11): 18; one by one
    o2 takes NEAR (7) and o1 ships late from FAR (23): 30.
    """
    net = network(node("NEAR", 0.0), node("FAR", 10.0))
    scenario = Scenario(net, stock(("NEAR", "A", 1), ("FAR", "A", 5)), RuleSet(), (O2, O1))
    write_scenario(scenario, tmp_path / "scenario")
    return tmp_path / "scenario"


def test_wave_prints_the_summary_and_beats_one_by_one(
    contested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary gives the wave's cost, bound and status, and one by one's cost (30)."""
    assert main(["wave", "--scenario", str(contested), "--one-by-one"]) == 0
    out = capsys.readouterr().out
    assert "wave of 2 orders: OPTIMAL, objective 18.00, bound 18.00, gap 0.0000%" in out
    assert "one by one: 30.00; the wave saves 12.00 (40.000%)" in out


def test_wave_json_writes_one_plan_per_order_in_order(
    contested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --json stdout holds the plans (o2 from FAR, o1 from NEAR); stderr the summary."""
    assert main(["wave", "--scenario", str(contested), "--json", "--time-limit", "30"]) == 0
    captured = capsys.readouterr()
    plans = [json.loads(line) for line in captured.out.splitlines()]
    assert [(p["order_id"], [s["node_id"] for s in p["shipments"]]) for p in plans] == [
        ("o2", ["FAR"]),
        ("o1", ["NEAR"]),
    ]
    assert "objective 18.00" in captured.err


def test_wave_reads_orders_from_a_file(
    contested: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--orders replaces the scenario's orders: o1 alone takes NEAR, 7."""
    lines = (contested / "orders.jsonl").read_text().splitlines()
    only_o1 = tmp_path / "o1.jsonl"
    only_o1.write_text(next(line for line in lines if '"o1"' in line) + "\n")
    assert main(["wave", "--scenario", str(contested), "--orders", str(only_o1), "--json"]) == 0
    [plan] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert plan["order_id"] == "o1" and plan["objective"] == 7.0


def test_a_bad_orders_file_exits_2_naming_the_problem(
    contested: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An order of an unknown SKU is reported as router plan reports it, exit 2."""
    line = json.loads((contested / "orders.jsonl").read_text().splitlines()[0])
    line["lines"][0]["sku"] = "NOPE"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(line) + "\n")
    assert main(["wave", "--scenario", str(contested), "--orders", str(bad)]) == 2
    assert "NOPE" in capsys.readouterr().err
