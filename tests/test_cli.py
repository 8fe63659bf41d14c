from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from benchmarks.fuzz import processes
from models.errors import InvalidArgumentError
from models.money import to_units
from models.plan import CandidateTerms, ExplainedModel, LineTerms
from router.cli import main
from router.ledger import open_ledger
from tests.engine.test_independent import highs_optimum
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)

TINY = Path(__file__).parent / "data" / "tiny"
TRAP = Path(__file__).parent / "data" / "trap"
ROUTER = Path(sys.executable).parent / "router"
FULL = ("--explain-level", "full")


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample scenario written by the installed ``router sample`` command."""
    out = tmp_path_factory.mktemp("sample")
    args = ["sample", "--out", str(out), "--seed", "3", "--stores", "40", "--skus", "300"]
    subprocess.run([str(ROUTER), *args, "--orders", "40"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def plans(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """``router plan --explain-level full`` output for every order of the sample."""
    out = tmp_path_factory.mktemp("plans") / "plans.jsonl"
    assert main(["plan", "--scenario", str(sample_dir), *FULL, "--out", str(out)]) == 0
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
    assert main(["plan", "--scenario", str(sample_dir), *FULL, "--out", str(out)]) == 0
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
    rules.write_text("name: strict\nstrategies:\n  - name: s\n    constraints: {sla: hard}\n")
    assert _scenario(None, None, rules).rules.name == "strict"
    rules.write_text("name: strict\nstrategies:\n  - name: s\n    constraints: {sla: firm}\n")
    with pytest.raises(
        InvalidArgumentError, match=r"rules\.yaml:strategies\[0\]\.constraints\.sla"
    ):
        _scenario(None, None, rules)


def test_explain_adds_the_runner_up(plans: list[dict]):
    """An explanation alone adds the runner-up: one alternative, never cheaper than the plan.

    Every optimal plan of the sample has one (its orders allow backordering, always another
    plan); no counterfactuals are computed.
    """
    for plan in plans:
        assert plan["counterfactuals"] == []
        assert len(plan["alternatives"]) <= 1
        if plan["status"] == "SOLVE_STATUS_OPTIMAL":
            [runner_up] = plan["alternatives"]
            assert runner_up["objective"] >= plan["objective"] - 1e-9


def _plan_tiny(tmp_path: Path, *flags: str) -> list[dict]:
    out = tmp_path / "plans.jsonl"
    assert main(["plan", "--scenario", str(TINY), "--out", str(out), *flags]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("engine", ["fast", "cpsat-full"])
def test_plan_flags_add_alternatives_and_counterfactuals(tmp_path: Path, engine: str):
    """``--top-k``, ``--counterfactual`` and ``--engine`` show in the JSON output.

    ``--top-k 3`` gives up to 2 alternatives, best first over distinct node sets; each
    ``--counterfactual`` is priced in order (delta ≥ 0 and a shipment from the node, or
    INFEASIBLE with a reason); ``engine`` is the ``--engine`` asked for.
    """
    flags = ["--engine", engine, "--top-k", "3"]
    plans = _plan_tiny(
        tmp_path, *flags, "--counterfactual", "DC-WEST", "--counterfactual", "ST-CHI"
    )
    assert [p["order_id"] for p in plans] == ["O-1", "O-2", "O-3"]
    for plan in plans:
        assert plan["engine"] == engine
        assert len(plan["alternatives"]) <= 2
        costs = [plan.get("objective", 0.0), *(a["objective"] for a in plan["alternatives"])]
        assert costs == sorted(costs)
        node_sets = [
            frozenset(s["node_id"] for s in p["shipments"]) for p in [plan, *plan["alternatives"]]
        ]
        assert len(set(node_sets)) == len(node_sets)
        assert [c["node_id"] for c in plan["counterfactuals"]] == ["DC-WEST", "ST-CHI"]
        for counterfactual in plan["counterfactuals"]:
            if "delta" in counterfactual:
                assert counterfactual["delta"] >= -1e-9
                assert counterfactual["node_id"] in {
                    s["node_id"] for s in counterfactual["shipments"]
                }
            else:
                assert counterfactual["status"] == "SOLVE_STATUS_INFEASIBLE"
                assert counterfactual["detail"]
    # O-1's only other plan backorders all; O-3 (no partial, one node with stock) has none.
    assert [len(p["alternatives"]) for p in plans] == [1, 2, 0]


def test_plan_without_flags_has_empty_explanation_lists(tmp_path: Path):
    """By default the engine is fast and no alternatives or counterfactuals are computed."""
    for plan in _plan_tiny(tmp_path):
        assert plan["engine"] == "fast"
        assert plan["alternatives"] == [] and plan["counterfactuals"] == []


def test_plan_explain_is_the_summary_and_full_adds_the_model(tmp_path: Path):
    """``--explain`` writes the summary only; ``--explain-level full`` adds model and exclusions.

    The summary names each shipping node's terms; on these 3 orders it is the shorter line.
    (``excluded`` prints as ``[]`` below full: the JSON keeps empty repeated fields.)
    """
    summaries = _plan_tiny(tmp_path, "--explain")
    full = _plan_tiny(tmp_path, *FULL)
    for short, long in zip(summaries, full, strict=True):
        assert "model" not in short["explain"] and short["explain"]["excluded"] == []
        assert {"summary", "model", "excluded"} <= set(long["explain"])
        assert short["explain"]["summary"] == long["explain"]["summary"]
        chosen = [c["node_id"] for c in short["explain"]["summary"]["chosen"]]
        assert chosen == [s["node_id"] for s in short["shipments"]]
        assert len(json.dumps(short)) < len(json.dumps(long))


def test_bad_plan_flags_exit_2_naming_the_flags(tmp_path: Path, capsys):
    """A bad ``--top-k`` or ``--counterfactual`` exits 2, each named by its flag.

    ``--top-k`` must be within 0..10; an unknown node is named with its position.
    """
    out = tmp_path / "plans.jsonl"
    args = ["plan", "--scenario", str(TINY), "--out", str(out), "--top-k", "11"]
    assert main([*args, "--counterfactual", "DC-EAST", "--counterfactual", "NOWHERE"]) == 2
    err = capsys.readouterr().err
    assert "--top-k: must be between 0 and 10, got 11" in err
    assert "--counterfactual[1]: no node 'NOWHERE'" in err
    assert not out.exists()


def test_engine_flag_refuses_unknown_engines(capsys):
    """``--engine`` accepts only the engines there are, for plan and serve alike."""
    for command in (["plan", "--scenario", str(TINY)], ["serve"]):
        with pytest.raises(SystemExit) as caught:
            main([*command, "--engine", "magic"])
        assert caught.value.code == 2
        assert "fast" in capsys.readouterr().err


def test_stock_import_loads_snapshots_per_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """``router stock import`` applies stock.csv as one snapshot per node.

    A rerun with the same sequence is a duplicate; bad rows exit 2 naming file, line, field.
    """
    from router.ledger import open_ledger

    url = f"sqlite://{tmp_path / 'ledger.db'}"
    args = ["stock", "import", "--ledger", url, "--file", str(TINY / "stock.csv")]
    assert main([*args, "--scenario", str(TINY), "--sequence", "3"]) == 0
    assert "3 applied" in capsys.readouterr().err
    with open_ledger(url) as ledger:
        positions = ledger.stock().positions
        assert positions[("DC-EAST", "SKU-1")].on_hand == 100
        assert positions[("DC-EAST", "SKU-1")].safety_stock == 5
        assert ledger.feed_stats()["applied"] == 3
    assert main([*args, "--sequence", "3"]) == 2  # nothing applied: a script must notice
    assert "duplicate" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("node_id,sku,on_hand\nDC-EAST,SKU-1,-1\nNOPE,SKU-1,1\n")
    code = main(["stock", "import", "--ledger", url, "--file", str(bad), "--scenario", str(TINY)])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.csv:2:on_hand" in err and "bad.csv:3:node_id" in err


def test_the_ledger_url_comes_from_a_file_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    """``--ledger-url-file`` and $ROUTER_LEDGER_URL name the ledger (no URL in ``ps``).

    ``--ledger`` wins over the environment; it and the file exclude each other; nothing
    at all, an unreadable or an empty file exit 2 naming the flag, never quoting the file.
    """
    stock = ["--file", str(TINY / "stock.csv"), "--sequence", "3"]
    by_file, by_env, by_flag = (f"sqlite://{tmp_path / n}.db" for n in ("file", "env", "flag"))
    secret = tmp_path / "ledger-url"
    secret.write_text(by_file + "\n")
    monkeypatch.setenv("ROUTER_LEDGER_URL", by_env)
    assert main(["stock", "import", "--ledger-url-file", str(secret), *stock]) == 0
    assert main(["stock", "import", *stock]) == 0
    assert main(["stock", "import", "--ledger", by_flag, *stock]) == 0
    for url in (by_file, by_env, by_flag):
        with open_ledger(url) as ledger:
            assert ledger.feed_stats()["applied"] == 3, url
    capsys.readouterr()

    with pytest.raises(SystemExit) as caught:
        main(["stock", "import", "--ledger", by_flag, "--ledger-url-file", str(secret), *stock])
    assert caught.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    monkeypatch.delenv("ROUTER_LEDGER_URL")
    assert main(["stock", "import", *stock]) == 2
    assert "ROUTER_LEDGER_URL" in capsys.readouterr().err
    secret.write_text("  \n")
    assert main(["stock", "import", "--ledger-url-file", str(secret), *stock]) == 2
    assert "--ledger-url-file" in capsys.readouterr().err
    missing = tmp_path / "no-such-file"
    assert main(["stock", "import", "--ledger-url-file", str(missing), *stock]) == 2
    assert "--ledger-url-file: cannot read" in capsys.readouterr().err


def test_tokens_take_the_ledger_url_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``router tokens`` opens the ledger $ROUTER_LEDGER_URL or --ledger-url-file names."""
    by_env, by_file = f"sqlite://{tmp_path / 'env.db'}", f"sqlite://{tmp_path / 'file.db'}"
    secret = tmp_path / "ledger-url"
    secret.write_text(by_file)
    monkeypatch.setenv("ROUTER_LEDGER_URL", by_env)
    assert main(["tokens", "issue", "oms-env", "--role", "oms"]) == 0
    assert (
        main(["tokens", "issue", "oms-file", "--role", "oms", "--ledger-url-file", str(secret)])
        == 0
    )
    for url, name in ((by_env, "oms-env"), (by_file, "oms-file")):
        with open_ledger(url) as ledger:
            assert [t.name for t in ledger.tokens()] == [name]


def test_a_bad_ledger_url_is_not_echoed(capsys: pytest.CaptureFixture[str]):
    """A URL of an unknown scheme exits 2 without quoting it (it may hold a password)."""
    url = "mysql://admin:hunter2@db/ledger"
    assert main(["stock", "import", "--ledger", url, "--file", str(TINY / "stock.csv")]) == 2
    err = capsys.readouterr().err
    assert "mysql://" in err and "hunter2" not in err


def test_a_seeded_ledger_is_not_reseeded(tmp_path: Path):
    """The server seeds an empty ledger from the scenario, and leaves a live one alone."""
    from router.scenario import read_scenario
    from router.service.server import open_seeded_ledger

    scenario = read_scenario(TINY)
    url = f"sqlite://{tmp_path / 'sub' / 'ledger.db'}"
    with open_seeded_ledger(url, scenario) as ledger:
        assert ledger.stock() == scenario.stock
        ledger.apply_delta("wms", 1, "DC-EAST", [("SKU-1", -40)])
    with open_seeded_ledger(url, scenario) as ledger:
        assert ledger.stock().positions[("DC-EAST", "SKU-1")].on_hand == 60


# --- router rules ------------------------------------------------------------------------

HEAVIER = """\
# tiny, with dearer splits
name: tiny
strategies:
  - name: default
    filters:
      node_types: [dc, store]
    weights:
      split_penalty: 7.5
      unit_penalty_by_node_type:
        store: 0.5
    constraints:
      sla: hard
      max_shipments: 2
"""
UNREACHABLE = "name: tiny\nstrategies:\n  - name: all\n  - name: never\n"
ORDER = {
    "order_id": "D-1",
    "created_at": "2026-11-20T14:05:00Z",
    "ship_to": {"latitude": 40.7128, "longitude": -74.006, "country": "US"},
    "service": "ground",
    "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2}],
}
GOLDEN = """\
cases:
  - name: east ships SKU-1
    order: {order_id: G1, created_at: "2026-11-20T14:05:00Z",
            ship_to: {latitude: 40.7128, longitude: -74.006, country: US},
            service: ground, lines: [{line_id: "1", sku: SKU-1, quantity: 2}]}
    expect: {lines: {"1": DC-EAST}, strategy: default, step: primary}
"""
GOLDEN_FAILS = GOLDEN.replace("DC-EAST", "DC-WEST")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rules_validate_exits_0_or_2_listing_every_violation(tmp_path: Path, capsys):
    """``router rules validate`` accepts the tiny rules; a bad file exits 2 with each path."""
    assert main(["rules", "validate", str(TINY / "rules.yaml"), "--scenario", str(TINY)]) == 0
    assert "valid rule set 'tiny': default" in capsys.readouterr().out
    bad = _write(
        tmp_path,
        "bad.yaml",
        "name: x\nstrategies:\n  - name: a\n    filters: {max_distance_km: -1, nodes: [NOPE]}\n",
    )
    assert main(["rules", "validate", str(bad), "--scenario", str(TINY)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:strategies[0].filters.max_distance_km" in err
    assert "bad.yaml:strategies[0].filters.nodes: unknown node 'NOPE'" in err
    # Without --scenario the built-in sample's network is used: DC-EAST is not one of it.
    east = _write(
        tmp_path, "east.yaml", "name: e\nstrategies:\n  - name: a\n    filters: {nodes: DC-EAST}\n"
    )
    assert main(["rules", "validate", str(east), "--scenario", str(TINY)]) == 0
    assert main(["rules", "validate", str(east)]) == 2
    assert (
        "east.yaml:strategies[0].filters.nodes: unknown node 'DC-EAST'" in capsys.readouterr().err
    )


def test_rules_lint_exits_1_on_errors(tmp_path: Path, capsys):
    """Lint errors exit 1 and are printed with their path and code; warnings alone exit 0."""
    unreachable = _write(tmp_path, "unreachable.yaml", UNREACHABLE)
    assert main(["rules", "lint", str(unreachable), "--scenario", str(TINY)]) == 1
    out = capsys.readouterr().out
    assert "error: strategies[1]:" in out and "[unreachable-strategy]" in out
    args = ["rules", "lint", str(TINY / "rules.yaml"), "--scenario", str(TINY)]
    assert main([*args, "--orders", str(TINY / "orders.jsonl")]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_rules_test_exits_1_when_a_golden_case_fails(tmp_path: Path, capsys):
    """Every case is printed PASS or FAIL with what it missed; a failure exits 1."""
    rules, args = str(TINY / "rules.yaml"), ["--scenario", str(TINY)]
    golden = _write(tmp_path, "golden.yaml", GOLDEN)
    assert main(["rules", "test", rules, "--golden", str(golden), *args]) == 0
    assert "PASS east ships SKU-1" in capsys.readouterr().out
    failing = _write(tmp_path, "failing.yaml", GOLDEN_FAILS)
    assert main(["rules", "test", rules, "--golden", str(failing), *args]) == 1
    out = capsys.readouterr().out
    assert "FAIL east ships SKU-1" in out and "expected DC-WEST" in out
    broken = _write(tmp_path, "broken.yaml", "cases: []\n")
    assert main(["rules", "test", rules, "--golden", str(broken), *args]) == 2
    assert "broken.yaml:cases" in capsys.readouterr().err


def test_rules_drive_prints_the_plan_and_every_trial(tmp_path: Path, capsys):
    """A drive prints the plan, the strategy and step, and each strategy's trial.

    --explain adds the summary (the nearest excluded node per reason, no full model);
    --explain-level full adds every candidate and exclusion. With --stock the given stock
    replaces the scenario's; a bad order exits 2 naming its fields as the RPC does
    (``order.lines[0].sku``).
    """
    unreachable = _write(tmp_path, "unreachable.yaml", UNREACHABLE)
    order = _write(tmp_path, "order.json", json.dumps(ORDER))
    args = ["rules", "drive", str(unreachable), "--order", str(order), "--scenario", str(TINY)]
    assert main([*args, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "rules tiny@draft, strategy all step primary" in out
    assert "  all: APPLIED" in out and "  never: NOT_REACHED" in out
    assert "ship from DC-EAST" in out and "  chosen DC-EAST: shipment cost" in out
    assert "excluded NO_AVAILABLE_STOCK: 1, nearest:\n    ST-CHI (1144 km)" in out
    assert "candidates:" not in out
    assert main([*args, *FULL]) == 0
    out = capsys.readouterr().out
    assert "candidates:\n  DC-EAST: shipment cost" in out and "excluded:\n  ST-CHI" in out
    stock = _write(tmp_path, "stock.csv", "node_id,sku,on_hand\nDC-WEST,SKU-1,9\n")
    assert main([*args, "--stock", str(stock)]) == 0
    out = capsys.readouterr().out
    assert "ship from DC-WEST" in out and "explanation:" not in out
    bad = _write(tmp_path, "bad.json", json.dumps({**ORDER, "lines": [{"line_id": "1"}]}))
    assert main(["rules", "drive", str(unreachable), "--order", str(bad), "--scenario", str(TINY)])
    err = capsys.readouterr().err
    assert "order.lines[0].sku" in err and "order.lines[0].quantity" in err


def _serve(scenario: Path, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``router serve`` process for ``scenario``; its address.

    Its ledger is a SQLite file or a fresh PostgreSQL schema (the real server; skipped when
    unreachable, unless CI=true), as the fixture's parameter says. Neither URL is on its
    command line: SQLite's comes in $ROUTER_LEDGER_URL, PostgreSQL's in --ledger-url-file.
    """
    command = [
        str(ROUTER),
        "serve",
        "--scenario",
        str(scenario),
        "--port",
        "0",
        "--metrics-port",
        "0",
    ]
    env = dict(os.environ)
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.db'}"
        env["ROUTER_LEDGER_URL"] = url
    else:
        url = request.getfixturevalue("pg_url")
        (tmp_path / "ledger-url").write_text(url)
        command += ["--ledger-url-file", str(tmp_path / "ledger-url")]
    assert url not in " ".join(command)
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "serve.log").open("w"),
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "router.v1.RoutingService listening on host:port"
        assert "listening on" in first, (tmp_path / "serve.log").read_text()
        if request.param == "sqlite":  # it seeded the ledger it was given, not the default
            with open_ledger(url) as ledger:
                assert ledger.stock().positions
        else:
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM positions").fetchone() != (0,)
        yield first.rsplit(" ", 1)[1].strip()
    finally:
        processes.stop(process)


@pytest.fixture(params=["sqlite", "postgres"])
def served_tiny(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``router serve`` process for the tiny scenario; its address."""
    yield from _serve(TINY, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def served_trap(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``router serve`` process for the trap scenario (tests/data/trap); its address."""
    yield from _serve(TRAP, request, tmp_path)


@pytest.mark.timeout(120)
def test_rules_publish_activate_rollback_list_show_diff_on_a_server(
    served_tiny: str, tmp_path: Path, capsys
):
    """The remote commands against a real ``router serve`` process, SQLite and PostgreSQL.

    Publish makes v2 (not active), activate switches to it, list marks it, diff shows the
    new weight, show prints the document as published, rollback returns to v1; refusals
    and bad requests print the code and details and exit 1 (2 for INVALID_ARGUMENT).
    """
    target = ["--target", served_tiny]
    who = ["--actor", "ana", "--reason", "dearer splits"]
    heavier = _write(tmp_path, "heavier.yaml", HEAVIER)
    golden = _write(tmp_path, "golden.yaml", GOLDEN)
    assert main(["rules", "publish", str(heavier), "--golden", str(golden), *who, *target]) == 0
    out = capsys.readouterr().out
    assert "as v2" in out and "PASS east ships SKU-1" in out
    assert main(["rules", "activate", "2", *who, *target]) == 0
    assert "#2 activate v2 (was v1)" in capsys.readouterr().out
    assert main(["rules", "list", *target]) == 0
    out = capsys.readouterr().out
    assert "* v2  tiny" in out and "  v1  tiny" in out and "by router serve" in out
    assert main(["rules", "diff", "1", "2", *target]) == 0
    out = capsys.readouterr().out
    assert "-    split_penalty: 5.0" in out and "+    split_penalty: 7.5" in out
    assert main(["rules", "show", "2", *target]) == 0
    assert capsys.readouterr().out == HEAVIER
    assert main(["rules", "rollback", *who, *target]) == 0
    assert "#3 rollback v1 (was v2)" in capsys.readouterr().out

    unreachable = _write(tmp_path, "unreachable.yaml", UNREACHABLE)
    assert main(["rules", "publish", str(unreachable), *who, *target]) == 1
    err = capsys.readouterr().err
    assert "error: FAILED_PRECONDITION" in err and "  LINT strategies[1]:" in err
    failing = _write(tmp_path, "failing.yaml", GOLDEN_FAILS)
    assert main(["rules", "publish", str(heavier), "--golden", str(failing), *who, *target]) == 1
    assert "  GOLDEN east ships SKU-1:" in capsys.readouterr().err
    blank = ["--actor", " ", "--reason", "why"]
    assert main(["rules", "activate", "2", *blank, *target]) == 2
    err = capsys.readouterr().err
    assert "error: INVALID_ARGUMENT" in err and "  actor: must not be empty" in err
    assert main(["rules", "activate", "9", *who, *target]) == 1
    assert "error: NOT_FOUND" in capsys.readouterr().err
    assert main(["rules", "list", *target]) == 0
    out = capsys.readouterr().out
    assert "* v1  tiny" in out and "v3" not in out.split("activations:")[0]


@pytest.mark.timeout(120)
def test_serve_with_rules_that_fail_lint_exits_1_listing_each_error(tmp_path: Path):
    """``router serve --rules FILE`` publishes only what passes lint: else it exits 1 at once.

    The message names the file and each lint error with its path and code; the ledger
    gets no version of it.
    """
    unreachable = _write(tmp_path, "unreachable.yaml", UNREACHABLE)
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    args = ["serve", "--scenario", str(TINY), "--ledger", url, "--port", "0", "--metrics-port", "0"]
    try:
        done = subprocess.run(
            [str(ROUTER), *args, "--rules", str(unreachable)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("router serve started with rules that fail lint")
    assert done.returncode == 1, done.stderr
    assert "listening on" not in done.stdout
    assert f"cannot start: {unreachable} fails lint (1 error(s)):" in done.stderr
    assert "  LINT strategies[1]:" in done.stderr and "[unreachable-strategy]" in done.stderr
    from router.ledger import open_ledger

    with open_ledger(url) as ledger:
        assert ledger.rule_versions() == ()


@pytest.mark.timeout(120)
def test_route_reserves_only_what_it_accepts_on_a_server(served_trap: str, tmp_path: Path, capsys):
    """``router route`` against a real server: a plan cut short exits 3 and holds nothing.

    The trap order solved for 1 ns: the greedy plan, HUB alone, FEASIBLE (the optimum
    ships from WEST and EAST; tests/data/trap/README.md). Proven plans only (the default):
    CUT_SHORT, exit 3; retried under the same request id with ``--accept any``: reserved,
    exit 0. A ``--max-gap`` without ``--accept within_gap`` exits 2 naming ``max_gap``.
    """
    order = _write(tmp_path, "order.json", (TRAP / "orders.jsonl").read_text().splitlines()[0])
    args = ["route", "--order", str(order), "--target", served_trap, "--time-limit", "1e-9"]
    assert main([*args, "--request-id", "r1"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("CUT_SHORT after 1 attempt(s): not reserved") and "reservation" not in out
    assert main([*args, "--request-id", "r1", "--accept", "any", "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("RESERVED after 1 attempt(s)\nreservation R-")
    assert "ship from HUB" in out and "  chosen HUB" in out
    assert main([*args, "--request-id", "r2", "--max-gap", "0.1"]) == 2
    assert "max_gap" in capsys.readouterr().err
