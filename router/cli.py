"""The ``router`` command: serve the gRPC API, write the sample, plan orders, import stock."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from models.errors import InvalidArgumentError, Violations
from models.scenario import Scenario
from router.engine import plan_order
from router.engine.solve import DEFAULT_TIME_LIMIT_S, ENGINES, FAST
from router.ledger import DEFAULT_LEDGER_URL


def _scenario(directory: Path | None, orders: Path | None, rules: Path | None) -> Scenario:
    """The scenario in ``directory``, or the built-in sample network when none is given."""
    from router.scenario import read_rules, read_scenario

    if directory is not None:
        return read_scenario(directory, orders_file=orders, rules_file=rules)
    from router.sample import sample_scenario

    sample = sample_scenario()
    return sample if rules is None else replace(sample, rules=read_rules(rules))


def _serve(args: argparse.Namespace) -> int:
    from router.service.server import ServerConfig, serve

    scenario = _scenario(args.scenario, None, args.rules)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_workers=args.workers,
        default_time_limit_s=args.time_limit,
        engine=args.engine,
        ledger_url=args.ledger,
    )
    serve(config, scenario)
    return 0


def _stock_import(args: argparse.Namespace) -> int:
    from router.ledger import open_ledger
    from router.scenario import read_stock

    network = None
    if args.scenario is not None:
        network = _scenario(args.scenario, None, None).network
    stock = read_stock(args.file, network)
    by_node: dict[str, list[tuple[str, int, int]]] = {}
    for (node_id, sku), p in sorted(stock.positions.items()):
        by_node.setdefault(node_id, []).append((sku, p.on_hand, p.safety_stock))
    sequence = args.sequence if args.sequence is not None else time.time_ns() // 1_000_000
    outcomes: dict[str, int] = {}
    clamped = 0
    with open_ledger(args.ledger) as ledger:
        for node_id, positions in by_node.items():
            result = ledger.apply_snapshot(args.feed, sequence, node_id, positions)
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
            clamped += result.clamped_units
    summary = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "no nodes"
    print(
        f"imported {len(stock.positions)} positions of {len(by_node)} nodes as snapshots of "
        f"feed {args.feed!r} sequence {sequence}: {summary}; {clamped} units clamped",
        file=sys.stderr,
    )
    if not outcomes.get("applied"):  # every snapshot stale or duplicate: say so to scripts
        print("nothing applied: every snapshot was stale or a duplicate", file=sys.stderr)
        return 2
    return 0


def _sample(args: argparse.Namespace) -> int:
    from router.sample import sample_scenario
    from router.scenario import write_scenario

    scenario = sample_scenario(
        args.seed,
        n_dcs=args.dcs,
        n_stores=args.stores,
        n_skus=args.skus,
        n_orders=args.orders,
    )
    write_scenario(scenario, args.out)
    print(
        f"wrote {args.out}: {len(scenario.network.nodes)} nodes, {len(scenario.network.skus)} "
        f"skus, {len(scenario.stock.positions)} stock positions, {len(scenario.orders)} orders",
        file=sys.stderr,
    )
    return 0


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        yield handle


def _plan(args: argparse.Namespace) -> int:
    from router.service.convert import (
        alternatives_wanted,
        check_counterfactual_nodes,
        check_top_k,
        plan_to_json,
    )

    scenario = _scenario(args.scenario, args.orders, args.rules)
    # The same limits as PlanOrder's top_k and counterfactual_node_ids, named by the flags.
    v = Violations()
    check_top_k(args.top_k, v, "--top-k")
    check_counterfactual_nodes(args.counterfactual, scenario.network, v, "--counterfactual")
    v.raise_if_any()
    alternatives = alternatives_wanted(args.top_k, explain=args.explain)
    statuses: dict[str, int] = {}
    with _output(args.out) as out:
        # On a terminal a live bar; in a log, a line every few seconds.
        interval = 0.1 if sys.stderr.isatty() else 5.0
        progress = tqdm(
            scenario.orders, desc="planning", unit="order", file=sys.stderr, mininterval=interval
        )
        for order in progress:
            plan = plan_order(
                order,
                scenario.network,
                scenario.stock,
                scenario.rules,
                time_limit_s=args.time_limit,  # one budget for plan, alternatives, counterfactuals
                engine=args.engine,
                alternatives=alternatives,
                counterfactual_nodes=args.counterfactual,
            )
            statuses[plan.status] = statuses.get(plan.status, 0) + 1
            out.write(json.dumps(plan_to_json(plan, explain=args.explain)) + "\n")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    print(f"planned {len(scenario.orders)} orders: {summary or 'none'}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``router`` command."""
    root = argparse.ArgumentParser(prog="router", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC routing service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    serve.add_argument(
        "--scenario", type=Path, help="scenario directory (default: the built-in sample)"
    )
    serve.add_argument("--rules", type=Path, help="rules.yaml overriding the scenario's")
    serve.add_argument("--workers", type=int, default=8, help="concurrent RPCs")
    serve.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help="seconds a solve may take at most (the RPC deadline may cut it shorter)",
    )
    serve.add_argument("--engine", choices=ENGINES, default=FAST, help="engine for every request")
    serve.add_argument(
        "--ledger",
        default=DEFAULT_LEDGER_URL,
        help="ledger URL: sqlite://PATH, memory:// or postgresql://… (default: %(default)s; "
        "an empty ledger is seeded from the scenario)",
    )
    serve.set_defaults(run=_serve)

    stock = commands.add_parser("stock", help="manage the stock in a ledger")
    stock_commands = stock.add_subparsers(dest="stock_command", required=True)
    stock_import = stock_commands.add_parser(
        "import", help="load a stock.csv into a ledger, one snapshot per node"
    )
    stock_import.add_argument("--ledger", required=True, help="ledger URL (as for serve)")
    stock_import.add_argument(
        "--file", type=Path, required=True, help="stock.csv (its reserved column is ignored)"
    )
    stock_import.add_argument(
        "--scenario", type=Path, help="check nodes and SKUs against this scenario's network"
    )
    stock_import.add_argument("--feed", default="import", help="feed name (default: import)")
    stock_import.add_argument(
        "--sequence",
        type=int,
        help="snapshot sequence, above the feed's last one per node (default: now in ms)",
    )
    stock_import.set_defaults(run=_stock_import)

    sample = commands.add_parser("sample", help="write the built-in sample scenario")
    sample.add_argument("--out", type=Path, required=True, help="directory to write")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--dcs", type=int, default=8)
    sample.add_argument("--stores", type=int, default=400)
    sample.add_argument("--skus", type=int, default=3000)
    sample.add_argument("--orders", type=int, default=1000)
    sample.set_defaults(run=_sample)

    plan = commands.add_parser(
        "plan", help="plan every order of a file, each on its own, against the scenario stock"
    )
    plan.add_argument("--scenario", type=Path, required=True, help="scenario directory")
    plan.add_argument("--orders", type=Path, help="orders.jsonl (default: the scenario's)")
    plan.add_argument("--rules", type=Path, help="rules.yaml (default: the scenario's)")
    plan.add_argument(
        "--explain", action="store_true", help="add the model, exclusions and the runner-up"
    )
    plan.add_argument("--out", type=Path, help="JSON lines output (default: stdout)")
    plan.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help="seconds per order for the plan, its alternatives and counterfactuals together",
    )
    plan.add_argument("--engine", choices=ENGINES, default=FAST, help="engine that plans")
    plan.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="N",
        help="return the N best plans in all: the plan and N-1 alternatives (at most 10)",
    )
    plan.add_argument(
        "--counterfactual",
        action="append",
        default=[],
        metavar="NODE_ID",
        help="price the best plan that ships from NODE_ID (repeatable, at most 20)",
    )
    plan.set_defaults(run=_plan)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``router`` command; bad input files exit 2 with every violation listed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except InvalidArgumentError as error:
        print(f"invalid input ({len(error.violations)} problems):", file=sys.stderr)
        for violation in error.violations:
            print(f"  {violation}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
