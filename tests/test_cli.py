from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from models.errors import InvalidArgumentError
from models.money import to_units
from models.plan import CandidateTerms, ExplainedModel, LineTerms
from router.cli import main
from tests.engine.test_independent import highs_optimum

TINY = Path(__file__).parent / "data" / "tiny"
ROUTER = Path(sys.executable).parent / "router"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample scenario written by the installed ``router sample`` command."""
    out = tmp_path_factory.mktemp("sample")
    args = ["sample", "--out", str(out), "--seed", "3", "--stores", "40", "--skus", "300"]
    subprocess.run([str(ROUTER), *args, "--orders", "40"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def plans(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """``router plan --explain`` output for every order of the sample."""
    out = tmp_path_factory.mktemp("plans") / "plans.jsonl"
    assert main(["plan", "--scenario", str(sample_dir), "--explain", "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def evaluate(plan: dict) -> float:
    """The explained model's objective at the plan, from the JSON alone."""
    model = plan["explain"]["model"]
    candidates = {c["node_id"]: c for c in model["candidates"]}
    shipped: dict[str, int] = {}
    total = model["offset"] + model["split_penalty"] * max(0, len(plan["shipments"]) - 1)
    for shipment in plan["shipments"]:
        candidate = candidates[shipment["node_id"]]
        unit_cost = {cl["line_id"]: cl["unit_cost"] for cl in candidate["lines"]}
        total += candidate["shipment_cost"]
        for line in shipment["lines"]:
            total += unit_cost[line["line_id"]] * line["quantity"]
            shipped[line["line_id"]] = shipped.get(line["line_id"], 0) + line["quantity"]
    for line in model["lines"]:
        total += line["backorder_cost"] * (line["quantity"] - shipped.get(line["line_id"], 0))
    return total


def model_from_json(model: dict) -> ExplainedModel:
    """Rebuild the canonical model from ``explain.model`` (money back to solver units)."""
    lines = tuple(
        LineTerms(
            line["line_id"],
            line["sku"],
            line["quantity"],
            to_units(line["backorder_cost"]),
            line["allow_partial"],
        )
        for line in model["lines"]
    )
    day = date(2026, 1, 1)
    candidates = []
    for c in model["candidates"]:
        by_line = {cl["line_id"]: cl for cl in c["lines"]}
        candidates.append(
            CandidateTerms(
                c["node_id"], 0.0, "", day, day, 0, to_units(c["shipment_cost"]), 0, 0, 0,
                tuple(to_units(by_line[t.line_id]["unit_cost"]) for t in lines),
                tuple(by_line[t.line_id]["available"] for t in lines),
            )
        )  # fmt: skip
    return ExplainedModel(
        offset=to_units(model["offset"]),
        split_penalty=to_units(model["split_penalty"]),
        candidates=tuple(candidates),
        lines=lines,
        max_shipments=model.get("max_shipments"),
        ship_complete=model["ship_complete"],
    )


def test_plan_writes_the_documented_fields(plans: list[dict]):
    """Each output line carries the fields analysts rely on, with every order planned."""
    assert len(plans) == 40
    for plan in plans:
        assert {"order_id", "status", "shipments", "unfulfilled", "explain"} <= plan.keys()
        assert plan["status"] in {"SOLVE_STATUS_OPTIMAL", "SOLVE_STATUS_INFEASIBLE"}
        for shipment in plan["shipments"]:
            assert {"node_id", "service", "ship_date", "delivery_date", "lines"} <= shipment.keys()
        assert {"model", "excluded"} <= plan["explain"].keys()


def test_objective_equals_the_explained_model_at_the_plan(plans: list[dict]):
    """The reported objective is the explained model's objective evaluated at the plan."""
    for plan in plans:
        if plan["status"] == "SOLVE_STATUS_OPTIMAL":
            assert plan["objective"] == pytest.approx(evaluate(plan), abs=1e-6)


def test_explained_model_resolves_to_the_same_optimum_with_highs(plans: list[dict]):
    """Re-solving the published model with HiGHS gives the reported optimum."""
    for plan in plans:
        optimum = highs_optimum(model_from_json(plan["explain"]["model"]))
        if plan["status"] == "SOLVE_STATUS_INFEASIBLE":
            assert optimum is None
        else:
            assert optimum is not None
            assert plan["objective"] == pytest.approx(optimum / 10_000, abs=1e-6)


def test_plan_is_deterministic(sample_dir: Path, tmp_path: Path, plans: list[dict]):
    """Planning the same file twice gives the same plans (solve times aside)."""
    out = tmp_path / "again.jsonl"
    assert main(["plan", "--scenario", str(sample_dir), "--explain", "--out", str(out)]) == 0
    again = [json.loads(line) for line in out.read_text().splitlines()]
    for first, second in zip(plans, again, strict=True):
        first.pop("solve_time", None), second.pop("solve_time", None)
        assert first == second


def test_bad_files_exit_2_and_list_every_problem(tmp_path: Path, capsys):
    """A scenario with bad fields in two files fails with both, as file:line:field."""
    import shutil

    bad = Path(shutil.copytree(TINY, tmp_path / "bad"))
    nodes = (bad / "nodes.csv").read_text().splitlines()
    nodes[1] = nodes[1].replace(",dc,", ",depot,", 1)
    (bad / "nodes.csv").write_text("\n".join(nodes) + "\n")
    orders = (bad / "orders.jsonl").read_text().replace('"quantity": 2', '"quantity": -1', 1)
    (bad / "orders.jsonl").write_text(orders)
    assert main(["plan", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nodes.csv:2:type" in err and "orders.jsonl:1:lines[0].quantity" in err


def test_rules_file_applies_to_the_built_in_sample(tmp_path: Path):
    """``--rules`` without ``--scenario`` replaces the sample's rules instead of vanishing."""
    from router.cli import _scenario

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: strict\nsla: hard\n")
    assert _scenario(None, None, rules).rules.version == "strict"
    rules.write_text("sla: firm\n")
    with pytest.raises(InvalidArgumentError, match=r"rules\.yaml:sla"):
        _scenario(None, None, rules)
