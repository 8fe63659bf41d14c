"""The ``router`` command: serve, intake, sample, plan, wave, route, import stock, rule sets."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tqdm import tqdm

from models.decision import DecisionRetention
from models.engines import DEFAULT_TIME_LIMIT_S, ENGINES, FAST
from models.errors import FieldViolation, InvalidArgumentError, Violations
from models.plan import ExplainLevel
from models.reservation import PlanAcceptance
from models.scenario import Scenario
from router.cli_decisions import add_decisions_command
from router.cli_ledger import add_ledger_flags, ledger_url_of
from router.cli_reservations import add_reservations_command
from router.cli_security import (
    add_client_flags,
    add_serve_flags,
    add_tokens_command,
    client_channel,
    rpc_failed,
    serve_security,
)
from router.cli_wave import add_wave_command
from router.intake import command as intake_command
from router.intake.config import DEFAULT_TARGET
from router.ledger import DEFAULT_LEDGER_URL
from router.rules.document import read_rules_file
from router.service.config import (
    DEFAULT_METRICS_PORT,
    MAX_EXPIRING_WINDOW_S,
    PriceSettings,
    ServerConfig,
)
from router.telemetry import add_telemetry_flags, configure_logging, metrics_port_problem

if TYPE_CHECKING:
    from router.v1 import router_pb2


def _scenario(directory: Path | None, orders: Path | None, rules: Path | None) -> Scenario:
    """The scenario in ``directory``, or the built-in sample network when none is given."""
    from router.scenario import read_rules, read_scenario

    if directory is not None:
        return read_scenario(directory, orders_file=orders, rules_file=rules)
    from router.sample import sample_scenario

    sample = sample_scenario()
    return sample if rules is None else replace(sample, rules=read_rules(rules))


def _serve_flag_problems(args: argparse.Namespace) -> list[FieldViolation]:
    """What is wrong with ``router serve``'s own numeric flags (prices and security aside)."""
    bad: list[FieldViolation] = []
    bad_port = metrics_port_problem(args.metrics_port)
    if bad_port is not None:
        bad.append(FieldViolation("--metrics-port", bad_port))
    if not 0 < args.expiring_window <= MAX_EXPIRING_WINDOW_S:
        bad.append(
            FieldViolation(
                "--expiring-window",
                f"must be above 0 and at most {MAX_EXPIRING_WINDOW_S:g}, "
                f"got {args.expiring_window}",
            )
        )
    for flag, value in (
        ("--drain", args.drain),
        ("--decisions-max-age-days", args.decisions_max_age_days),
        ("--decisions-max-count", args.decisions_max_count),
        ("--max-rejections", args.max_rejections),
    ):
        if not value >= 0:  # NaN too
            bad.append(FieldViolation(flag, f"must be 0 or more, got {value}"))
    return bad


def _serve(args: argparse.Namespace) -> int:
    from models.errors import RulesRefusedError, RuleVersionStateError
    from router.service.server import serve

    prices = PriceSettings(
        refresh_interval_s=args.price_refresh,
        stock_change_fraction=args.price_stock_change,
        forecast_window_hours=args.forecast_window_hours,
        forecast_horizon_hours=args.forecast_horizon_hours,
        forecast_min_orders=args.forecast_min_orders,
        forecast_min_hours=args.forecast_min_hours,
        forecast_prior_hours=args.forecast_prior_hours,
        max_price_ratio=args.max_price_ratio,
    )
    bad_flags = prices.check() + _serve_flag_problems(args)
    auth, tls, admission, security_problems = serve_security(args)
    bad_flags += [FieldViolation("", p) for p in security_problems]
    if bad_flags:
        for bad in bad_flags:
            print(f"router serve: {bad}", file=sys.stderr)
        return 2
    scenario = _scenario(args.scenario, None, args.rules)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_workers=args.workers,
        default_time_limit_s=args.time_limit,
        engine=args.engine,
        ledger_url=ledger_url_of(args, DEFAULT_LEDGER_URL),
        rules_file=args.rules,
        prices=prices,
        forecast_file=args.forecast,
        metrics_port=args.metrics_port or None,
        metrics_host=args.metrics_host,
        otlp_endpoint=args.otlp_endpoint,
        drain_s=args.drain,
        expiring_window_s=args.expiring_window,
        decision_retention=DecisionRetention(
            max_age_s=args.decisions_max_age_days * 86400.0 or None,
            max_count=args.decisions_max_count or None,
        ),
        max_rejections=args.max_rejections,
        auth=auth,
        tls=tls,
        admission=admission,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
    )
    try:
        serve(config, scenario)
    except RulesRefusedError as refused:  # the rules to publish fail lint: say which
        source = args.rules or "the scenario's rules"
        problems = len(refused.refusals)
        print(
            f"router serve: cannot start: {source} fails lint ({problems} error(s)):",
            file=sys.stderr,
        )
        for refusal in refused.refusals:
            print(f"  {refusal}", file=sys.stderr)
        return 1
    except RuleVersionStateError as error:  # the active version does not fit this network
        print(f"router serve: cannot start: {error}", file=sys.stderr)
        return 1
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
    with open_ledger(ledger_url_of(args, None)) as ledger:
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
    from router.sample import dense_scenario, sample_scenario
    from router.scenario import write_scenario

    if args.dense is not None:
        scenario = dense_scenario(
            args.seed,
            n_nodes=args.dense,
            n_skus=200 if args.skus is None else args.skus,
            n_orders=200 if args.orders is None else args.orders,
        )
    else:
        scenario = sample_scenario(
            args.seed,
            n_dcs=args.dcs,
            n_stores=args.stores,
            n_skus=3000 if args.skus is None else args.skus,
            n_orders=1000 if args.orders is None else args.orders,
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
    from models.plan import alternatives_wanted
    from router.engine import Stop, route_order
    from router.service.convert import (
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
    explain = ExplainLevel(args.explain_level.upper())
    alternatives = alternatives_wanted(args.top_k, explain=explain is not ExplainLevel.NONE)
    statuses: dict[str, int] = {}
    with _output(args.out) as out:
        # On a terminal a live bar; in a log, a line every few seconds.
        interval = 0.1 if sys.stderr.isatty() else 5.0
        progress = tqdm(
            scenario.orders, desc="planning", unit="order", file=sys.stderr, mininterval=interval
        )
        for order in progress:
            plan = route_order(
                order,
                scenario.network,
                scenario.stock,
                scenario.rules,
                stop=Stop(args.time_limit),  # one budget: plan, alternatives, counterfactuals
                engine=args.engine,
                alternatives=alternatives,
                counterfactual_nodes=args.counterfactual,
            )
            statuses[plan.status] = statuses.get(plan.status, 0) + 1
            out.write(json.dumps(plan_to_json(plan, explain=explain)) + "\n")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    print(f"planned {len(scenario.orders)} orders: {summary or 'none'}", file=sys.stderr)
    return 0


def _route(args: argparse.Namespace) -> int:
    """RouteOrder on a server: 0 when reserved or nothing to reserve, 3 when cut short."""
    import grpc

    from router.v1 import router_pb2, router_pb2_grpc

    request = router_pb2.RouteOrderRequest(
        request_id=args.request_id,
        order=_read_order(args.order),
        explain_level=router_pb2.ExplainLevel.Value(f"EXPLAIN_LEVEL_{args.explain_level.upper()}"),
        accept=router_pb2.PlanAcceptance.Value(f"PLAN_ACCEPTANCE_{args.accept.upper()}"),
        max_gap=args.max_gap,
    )
    if args.ttl is not None:
        request.ttl.FromNanoseconds(round(args.ttl * 1e9))
    if args.time_limit is not None:
        request.time_limit.FromNanoseconds(round(args.time_limit * 1e9))
    try:
        with client_channel(args) as channel:
            stub = router_pb2_grpc.RoutingServiceStub(channel)
            answer = stub.RouteOrder(request, timeout=args.timeout)
    except grpc.RpcError as error:
        return rpc_failed(error)
    outcome = router_pb2.RouteOutcome.Name(answer.outcome).removeprefix("ROUTE_OUTCOME_")
    why = f": {answer.detail}" if answer.detail else ""
    print(f"{outcome} after {answer.attempts} attempt(s){why}")
    if answer.HasField("reservation"):
        held = answer.reservation
        units = ", ".join(f"{x.quantity}x{x.sku}@{x.node_id}" for x in held.lines)
        print(f"reservation {held.reservation_id} held until {_when(held.expires_at)}: {units}")
    _print_plan(answer.plan)
    return 3 if answer.outcome == router_pb2.ROUTE_OUTCOME_CUT_SHORT else 0


# --- router rules -----------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """A file's text; a missing or unreadable file is invalid input (exit 2)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError([FieldViolation(str(path), f"cannot be read: {exc}")]) from exc


class _CaseOutcome(Protocol):
    """A golden case's outcome as printed: the domain's CaseResult or the wire's."""

    @property
    def name(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def failures(self) -> Sequence[str]: ...


def _print_results(results: Sequence[_CaseOutcome]) -> None:
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.name}")
        for failure in result.failures:
            print(f"  {failure}")
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} golden cases passed")


def _print_plan(plan: router_pb2.Plan) -> None:
    """A plan in lines: status and cost, shipments, unfulfilled units, every trial."""
    from router.v1 import router_pb2

    status = router_pb2.SolveStatus.Name(plan.status).removeprefix("SOLVE_STATUS_")
    cost = f" objective {plan.objective:.2f}" if plan.HasField("objective") else ""
    made = f"strategy {plan.strategy or '-'} step {plan.step or '-'}"
    print(f"order {plan.order_id}: {status}{cost}; rules {plan.rule_version}, {made}")
    if plan.detail:
        print(f"  {plan.detail}")
    for shipment in plan.shipments:
        units = ", ".join(f"{ln.quantity}x{ln.sku} (line {ln.line_id})" for ln in shipment.lines)
        late = f", {shipment.days_late} day(s) late" if shipment.days_late else ""
        print(
            f"  ship from {shipment.node_id} ({shipment.service}, {shipment.distance_km:.0f} km,"
            f" ships {shipment.ship_date}, delivers {shipment.delivery_date}{late},"
            f" cost {shipment.cost:.2f}): {units}"
        )
    for left in plan.unfulfilled:
        reason = router_pb2.UnfulfilledReason.Name(left.reason).removeprefix("UNFULFILLED_REASON_")
        print(f"  unfulfilled {left.quantity}x{left.sku} (line {left.line_id}): {reason}")
    print("trials:")
    for trial in plan.trials:
        outcome = router_pb2.StrategyOutcome.Name(trial.outcome).removeprefix("STRATEGY_OUTCOME_")
        print(f"  {trial.strategy}: {outcome}" + (f": {trial.detail}" if trial.detail else ""))
    if not plan.HasField("explain"):
        return
    summary = plan.explain.summary
    print(f"explanation: {summary.candidate_count} candidates, {summary.excluded_count} excluded")
    for c in summary.chosen:
        print(f"  chosen {_candidate_line(c)}")
    for a in plan.alternatives[:1]:
        nodes = ", ".join(s.node_id for s in a.shipments) or "nothing"
        more = f" (+{summary.runner_up_delta:.2f})" if summary.HasField("runner_up_delta") else ""
        print(f"  runner-up: objective {a.objective:.2f}{more}, ships from {nodes}")
    for c in summary.runner_up:
        print(f"    {_candidate_line(c)}")
    for group in summary.excluded:
        reason = router_pb2.ExclusionReason.Name(group.reason).removeprefix("EXCLUSION_REASON_")
        print(f"  excluded {reason}: {group.count}, nearest:")
        for e in group.nearest:
            print(f"    {_exclusion_line(e)}")
    if plan.explain.HasField("model"):
        print("candidates:")
        for c in plan.explain.model.candidates:
            print(f"  {_candidate_line(c)}")
        print("excluded:")
        for e in plan.explain.excluded:
            print(f"  {_exclusion_line(e)}")


def _exclusion_line(e: router_pb2.Exclusion) -> str:
    """One excluded node on one line: its distance, reason and detail."""
    from router.v1 import router_pb2

    reason = router_pb2.ExclusionReason.Name(e.reason).removeprefix("EXCLUSION_REASON_")
    return f"{e.node_id} ({e.distance_km:.0f} km): {reason}" + (f": {e.detail}" if e.detail else "")


def _candidate_line(c: router_pb2.Candidate) -> str:
    """One candidate's terms on one line."""
    return (
        f"{c.node_id}: shipment cost {c.shipment_cost:.2f}, {c.distance_km:.0f} km,"
        f" delivers {c.delivery_date}"
        + "".join(
            f"; line {cl.line_id} {cl.unit_cost:.2f}/unit, {cl.available} available"
            for cl in c.lines
        )
    )


def _when(stamp: Any) -> str:
    from datetime import UTC

    return str(stamp.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds"))


def _print_version(version: router_pb2.RuleVersion, *, active: bool = False) -> None:
    mark = "*" if active else " "
    print(
        f"{mark} v{version.version}  {version.name}  {_when(version.published_at)}"
        f"  by {version.published_by}: {version.reason}  sha256:{version.digest[:12]}"
    )
    for warning in filter(None, version.lint.splitlines()):
        print(f"      lint {warning}")


def _print_activation(activation: router_pb2.RuleActivation) -> None:
    was = f" (was v{activation.previous})" if activation.HasField("previous") else ""
    print(
        f"  #{activation.seq} {activation.action} v{activation.version}{was}"
        f"  {_when(activation.at)}  by {activation.by}: {activation.reason}"
    )


def _rules_validate(args: argparse.Namespace) -> int:
    from router.rules.document import canonical_text

    scenario = _scenario(args.scenario, None, None)
    rules = read_rules_file(args.file, scenario.network)
    strategies = ", ".join(s.name for s in rules.strategies)
    print(f"{args.file}: valid rule set {rules.name!r}: {strategies}")
    if args.canonical:
        print(canonical_text(rules), end="")
    return 0


def _rules_lint(args: argparse.Namespace) -> int:
    from router.rules.lint import Severity, lint_rules
    from router.scenario import read_orders

    scenario = _scenario(args.scenario, None, None)
    rules = read_rules_file(args.file, scenario.network)
    orders = read_orders(args.orders, scenario.network) if args.orders is not None else ()
    findings = lint_rules(rules, scenario.network, scenario.stock, orders)
    for finding in findings:
        print(f"{finding.severity.value}: {finding.path}: {finding.message} [{finding.code}]")
    errors = sum(f.severity is Severity.ERROR for f in findings)
    print(f"{args.file}: {errors} error(s), {len(findings) - errors} warning(s)")
    return 1 if errors else 0


def _rules_test(args: argparse.Namespace) -> int:
    from router.rules.golden import load_suite, run_suite

    scenario = _scenario(args.scenario, None, None)
    v = Violations()
    rules = suite = None
    try:
        rules = read_rules_file(args.file, scenario.network)
    except InvalidArgumentError as error:
        v.extend(error.violations)
    try:
        suite = load_suite(_read_text(args.golden), args.golden.name, scenario.network)
    except InvalidArgumentError as error:
        v.extend(error.violations)
    v.raise_if_any()
    assert rules is not None and suite is not None
    results = run_suite(suite, rules, scenario.network, scenario.stock)
    _print_results(results)
    return 0 if all(r.passed for r in results) else 1


def _read_order(path: Path) -> router_pb2.Order:
    """The one proto3 JSON ``Order`` in ``path``; InvalidArgumentError naming it if not one."""
    from google.protobuf import json_format

    from router.v1 import router_pb2

    try:
        return json_format.ParseDict(json.loads(_read_text(path)), router_pb2.Order())
    except (json.JSONDecodeError, json_format.ParseError) as error:
        problem = FieldViolation(str(path), f"is not a proto3 JSON Order: {error}")
        raise InvalidArgumentError([problem]) from error


def _rules_drive(args: argparse.Namespace) -> int:
    from router.rules.drive import drive_order
    from router.scenario import read_stock
    from router.service.convert import order_from_proto, plan_to_proto

    scenario = _scenario(args.scenario, None, None)
    v = Violations()
    rules = order = None
    try:
        rules = read_rules_file(args.file, scenario.network)
    except InvalidArgumentError as error:
        v.extend(error.violations)
    try:
        # the RPC's checks, paths order.…
        order = order_from_proto(_read_order(args.order), scenario.network)
    except InvalidArgumentError as error:
        v.extend(error.violations)
    stock = scenario.stock
    if args.stock is not None:
        try:
            stock = read_stock(args.stock, scenario.network)
        except InvalidArgumentError as error:
            v.extend(error.violations)
    v.raise_if_any()
    assert rules is not None and order is not None
    explain = ExplainLevel(args.explain_level.upper())
    plan = drive_order(order, scenario.network, stock, rules, explain)  # as TestDrive does
    _print_plan(plan_to_proto(plan, explain=explain))
    return 0


@contextmanager
def _rules_stub(args: argparse.Namespace) -> Iterator[Any]:

    from router.v1 import router_pb2_grpc

    with client_channel(args) as channel:
        yield router_pb2_grpc.RulesServiceStub(channel)


def _remote(call: Any) -> Any:
    """Wrap a ``router rules`` command that calls the server: RPC errors exit 1 or 2."""

    def run(args: argparse.Namespace) -> int:
        import grpc

        try:
            with _rules_stub(args) as stub:
                return int(call(stub, args))
        except grpc.RpcError as error:
            return rpc_failed(error)

    return run


def _rules_publish(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.PublishRulesRequest(
        document=_read_text(args.file),
        golden=_read_text(args.golden) if args.golden is not None else "",
        actor=args.actor,
        reason=args.reason,
    )
    answer = stub.PublishRules(request, timeout=args.timeout)
    print(f"published {args.file} as v{answer.version.version} (not active until activated):")
    _print_version(answer.version)
    if answer.results:
        _print_results(answer.results)
    return 0


def _rules_activate(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.ActivateRulesRequest(
        version=args.version, actor=args.actor, reason=args.reason
    )
    _print_activation(stub.ActivateRules(request, timeout=args.timeout).activation)
    return 0


def _rules_rollback(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.RollbackRulesRequest(
        to_version=args.to, actor=args.actor, reason=args.reason
    )
    _print_activation(stub.RollbackRules(request, timeout=args.timeout).activation)
    return 0


def _rules_list(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    answer = stub.ListRuleVersions(router_pb2.ListRuleVersionsRequest(), timeout=args.timeout)
    print(f"versions (* active: v{answer.active_version or '-'}):")
    for version in answer.versions:
        _print_version(version, active=version.version == answer.active_version)
    print("activations:")
    for activation in answer.activations:
        _print_activation(activation)
    return 0


def _rules_show(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.GetRuleVersionRequest(version=args.version)
    version = stub.GetRuleVersion(request, timeout=args.timeout).version
    with contextlib.redirect_stdout(sys.stderr):  # the header; the document alone on stdout
        _print_version(version)
    sys.stdout.write(version.document)
    return 0


def _rules_diff(stub: Any, args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.DiffRuleVersionsRequest(from_version=args.old, to_version=args.new)
    diff = stub.DiffRuleVersions(request, timeout=args.timeout).diff
    sys.stdout.write(diff or f"v{args.old} and v{args.new} are the same rules\n")
    return 0


def _add_explain_flags(cmd: argparse.ArgumentParser) -> None:
    """``--explain`` (the summary) and ``--explain-level``, as the requests' explain fields."""
    cmd.add_argument(
        "--explain",
        dest="explain_level",
        action="store_const",
        const="summary",
        default="none",
        help="add the explanation's summary and the runner-up (= --explain-level summary)",
    )
    cmd.add_argument(
        "--explain-level",
        dest="explain_level",
        choices=[level.lower() for level in ExplainLevel],
        default="none",
        help="none (default); summary: the chosen nodes' terms, the runner-up, the nearest "
        "excluded nodes per reason, counts; full: also the whole model and every exclusion",
    )


def _add_rules_commands(commands: Any) -> None:
    rules = commands.add_parser(
        "rules",
        help="check rule sets locally; publish, activate and roll back them on a server",
    )
    sub = rules.add_subparsers(dest="rules_command", required=True)

    def local(name: str, text: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("file", type=Path, help="the rules.yaml to check")
        cmd.add_argument(
            "--scenario", type=Path, help="scenario directory (default: the built-in sample)"
        )
        return cmd

    validate = local("validate", "validate a rule set against the network (exit 2 if invalid)")
    validate.add_argument("--canonical", action="store_true", help="print the canonical form")
    validate.set_defaults(run=_rules_validate)
    lint = local("lint", "lint a rule set (exit 1 on errors, 2 if invalid)")
    lint.add_argument("--orders", type=Path, help="orders.jsonl to check the weights against")
    lint.set_defaults(run=_rules_lint)
    test = local("test", "run a golden-order suite (exit 1 when a case fails, 2 if invalid)")
    test.add_argument("--golden", type=Path, required=True, help="the golden suite (YAML)")
    test.set_defaults(run=_rules_test)
    drive = local("drive", "plan one order with the rule set; print the plan and the trials")
    drive.add_argument("--order", type=Path, required=True, help="one proto3 JSON Order")
    drive.add_argument("--stock", type=Path, help="stock.csv (default: the scenario's stock)")
    _add_explain_flags(drive)
    drive.set_defaults(run=_rules_drive)

    def remote(name: str, text: str, call: Any, *, change: bool = False) -> Any:
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument(
            "--target", default=DEFAULT_TARGET, help="server host:port (default: %(default)s)"
        )
        add_client_flags(cmd)
        cmd.add_argument("--timeout", type=float, default=60.0, help="RPC deadline in seconds")
        if change:
            cmd.add_argument("--actor", required=True, help="who makes the change")
            cmd.add_argument("--reason", required=True, help="why")
        cmd.set_defaults(run=_remote(call))
        return cmd

    publish = remote(
        "publish", "validate, lint, test and store as the next version", _rules_publish, change=True
    )
    publish.add_argument("file", type=Path, help="the rules.yaml to publish")
    publish.add_argument("--golden", type=Path, help="golden suite it must pass (YAML)")
    activate = remote("activate", "make a published version active", _rules_activate, change=True)
    activate.add_argument("version", type=int, metavar="N")
    rollback = remote(
        "rollback", "go back to the version active before (or --to N)", _rules_rollback, change=True
    )
    rollback.add_argument("--to", type=int, metavar="N", help="the version to go back to")
    remote("list", "list versions and activations", _rules_list)
    show = remote("show", "print a version's document (header on stderr)", _rules_show)
    show.add_argument("version", type=int, metavar="N")
    diff = remote("diff", "unified diff of two versions' canonical documents", _rules_diff)
    diff.add_argument("old", type=int, metavar="A")
    diff.add_argument("new", type=int, metavar="B")


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``router`` command."""
    root = argparse.ArgumentParser(prog="router", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    _add_serve_command(commands)
    _add_intake_command(commands)
    _add_stock_command(commands)
    _add_sample_command(commands)
    _add_plan_command(commands)
    add_wave_command(commands)
    _add_route_command(commands)
    _add_rules_commands(commands)
    add_reservations_command(commands)
    add_decisions_command(commands)
    _add_whatif_command(commands)
    add_tokens_command(commands, DEFAULT_LEDGER_URL)
    return root


def _add_serve_command(commands: Any) -> None:
    """``router serve``: the gRPC service and its look-ahead prices."""
    server, prices = ServerConfig(), PriceSettings()
    serve = commands.add_parser("serve", help="run the gRPC routing service")
    serve.add_argument("--host", default=server.host)
    serve.add_argument("--port", type=int, default=server.port, help="0 picks a free port")
    serve.add_argument(
        "--scenario", type=Path, help="scenario directory (default: the built-in sample)"
    )
    serve.add_argument("--rules", type=Path, help="rules.yaml overriding the scenario's")
    serve.add_argument("--workers", type=int, default=server.max_workers, help="concurrent RPCs")
    serve.add_argument(
        "--time-limit",
        type=float,
        default=server.default_time_limit_s,
        help="seconds a solve may take at most (the RPC deadline may cut it shorter)",
    )
    serve.add_argument(
        "--engine", choices=ENGINES, default=server.engine, help="engine for every request"
    )
    add_ledger_flags(serve, server.ledger_url, "; an empty ledger is seeded from the scenario")
    _add_price_flags(serve, prices)
    serve.add_argument(
        "--expiring-window",
        type=float,
        default=server.expiring_window_s,
        metavar="SECONDS",
        help="router_reservations_expiring counts HELD reservations lapsing within this "
        "window (default: %(default)s)",
    )
    retention = server.decision_retention
    serve.add_argument(
        "--decisions-max-age-days",
        type=float,
        default=(retention.max_age_s or 0) / 86400.0,
        metavar="DAYS",
        help="the decision log keeps decisions this many days; 0: for ever (default: %(default)s)",
    )
    serve.add_argument(
        "--decisions-max-count",
        type=int,
        default=retention.max_count or 0,
        metavar="N",
        help="the decision log keeps the newest N decisions at most; 0: no bound (default: "
        "%(default)s)",
    )
    serve.add_argument(
        "--max-rejections",
        type=int,
        default=server.max_rejections,
        metavar="N",
        help="rejections (RejectShipment) an order may have re-routed; later ones are "
        "backordered (default: %(default)s)",
    )
    serve.add_argument(
        "--drain",
        type=float,
        default=server.drain_s,
        metavar="SECONDS",
        help="on SIGTERM, answer health NOT_SERVING but keep serving this long before "
        "stopping, so a load balancer drains the replica (default: %(default)s)",
    )
    add_telemetry_flags(serve, DEFAULT_METRICS_PORT)
    add_serve_flags(serve, server.admission, server.max_concurrent_rpcs)
    serve.set_defaults(run=_serve)


def _add_price_flags(serve: argparse.ArgumentParser, prices: PriceSettings) -> None:
    """``router serve``'s look-ahead price flags, defaulting to ``prices``."""
    lookahead = serve.add_argument_group(
        "look-ahead stock prices (docs/lookahead-service.md; computed only while a strategy "
        "of the active rules has opportunity_cost > 0)"
    )
    lookahead.add_argument(
        "--forecast",
        type=Path,
        metavar="FILE",
        help="expected demand as CSV (region,sku,units,latitude,longitude), read at start-up; "
        "default: a forecast from the orders RouteOrder routed recently",
    )
    lookahead.add_argument(
        "--price-refresh",
        type=float,
        default=prices.refresh_interval_s,
        metavar="SECONDS",
        help="seconds between price refreshes (default: %(default)s)",
    )
    lookahead.add_argument(
        "--price-stock-change",
        type=float,
        default=prices.stock_change_fraction,
        metavar="FRACTION",
        help="refresh early once stock moves exceed this fraction of the priced SKUs' "
        "available units, or newly routed units this fraction of the forecast window's "
        "(default: %(default)s); any feed snapshot does too",
    )
    lookahead.add_argument(
        "--forecast-window-hours",
        type=float,
        default=prices.forecast_window_hours,
        metavar="HOURS",
        help="routed orders of the last HOURS make the forecast (default: %(default)s)",
    )
    lookahead.add_argument(
        "--forecast-horizon-hours",
        type=float,
        default=prices.forecast_horizon_hours,
        metavar="HOURS",
        help="demand is expected over the next HOURS (default: %(default)s)",
    )
    lookahead.add_argument(
        "--forecast-min-orders",
        type=int,
        default=prices.forecast_min_orders,
        metavar="N",
        help="no prices from routed orders until the window holds N orders (default: %(default)s)",
    )
    lookahead.add_argument(
        "--forecast-min-hours",
        type=float,
        default=prices.forecast_min_hours,
        metavar="HOURS",
        help="and gathered over at least HOURS (default: %(default)s)",
    )
    lookahead.add_argument(
        "--forecast-prior-hours",
        type=float,
        default=prices.forecast_prior_hours,
        metavar="HOURS",
        help="shrink the routed orders' rates toward zero demand with the weight of HOURS of "
        "orders (default: %(default)s)",
    )
    lookahead.add_argument(
        "--max-price-ratio",
        type=float,
        default=prices.max_price_ratio,
        metavar="RATIO",
        help="a unit's price is at most RATIO times its own cost to its nearest forecast "
        "demand; inf: no bound (default: %(default)s)",
    )


def _add_intake_command(commands: Any) -> None:
    """``router intake``: the HTTP/JSON gateway."""
    intake = commands.add_parser(
        "intake",
        help="run the HTTP/JSON intake gateway in front of the gRPC service (docs/intake.md)",
    )
    intake_command.add_arguments(intake)


def _add_stock_command(commands: Any) -> None:
    """``router stock``: stock in a ledger."""
    stock = commands.add_parser("stock", help="manage the stock in a ledger")
    stock_commands = stock.add_subparsers(dest="stock_command", required=True)
    stock_import = stock_commands.add_parser(
        "import", help="load a stock.csv into a ledger, one snapshot per node"
    )
    add_ledger_flags(stock_import, None)
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


def _add_sample_command(commands: Any) -> None:
    """``router sample``: the built-in sample."""
    sample = commands.add_parser("sample", help="write the built-in sample scenario")
    sample.add_argument("--out", type=Path, required=True, help="directory to write")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--dcs", type=int, default=8)
    sample.add_argument("--stores", type=int, default=400)
    sample.add_argument("--skus", type=int, help="SKUs (default: 3000, dense 200)")
    sample.add_argument("--orders", type=int, help="orders (default: 1000, dense 200)")
    sample.add_argument(
        "--dense",
        type=int,
        metavar="NODES",
        help="a dense ship-from-store network of NODES nodes instead: every SKU at 30–60%% "
        "of them, orders of 1, 5, 20 and 50 lines (the benchmarks' dense family)",
    )
    sample.set_defaults(run=_sample)


def _add_plan_command(commands: Any) -> None:
    """``router plan``: planning a file of orders."""
    plan = commands.add_parser(
        "plan", help="plan every order of a file, each on its own, against the scenario stock"
    )
    plan.add_argument("--scenario", type=Path, required=True, help="scenario directory")
    plan.add_argument("--orders", type=Path, help="orders.jsonl (default: the scenario's)")
    plan.add_argument("--rules", type=Path, help="rules.yaml (default: the scenario's)")
    _add_explain_flags(plan)
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


def _add_route_command(commands: Any) -> None:
    """``router route``: routing one order."""
    route = commands.add_parser(
        "route",
        help="route one order on a server: plan it and reserve its stock (RouteOrder); "
        "exit 3 when the solve was cut short and nothing was reserved",
    )
    route.add_argument("--order", type=Path, required=True, help="one proto3 JSON Order")
    route.add_argument(
        "--request-id", required=True, help="the call's key; reuse it to retry the same call"
    )
    route.add_argument("--ttl", type=float, help="seconds the reservation is held (default 900)")
    route.add_argument("--time-limit", type=float, help="seconds each attempt may solve")
    route.add_argument(
        "--accept",
        choices=[acceptance.lower() for acceptance in PlanAcceptance],
        default="proven",
        help="plans that may be reserved: proven (default), within_gap (--max-gap) or any",
    )
    route.add_argument(
        "--max-gap", type=float, default=0.0, help="with --accept within_gap: the largest gap"
    )
    _add_explain_flags(route)
    route.add_argument(
        "--target", default=DEFAULT_TARGET, help="server host:port (default: %(default)s)"
    )
    add_client_flags(route)
    route.add_argument("--timeout", type=float, default=60.0, help="RPC deadline in seconds")
    route.set_defaults(run=_route)


def _add_whatif_command(commands: Any) -> None:
    """``router whatif``: what-if (its own flags)."""
    # Every word after ``whatif`` is the what-if command's own (router/whatif/run.py,
    # imported only when it runs). A prefix character no flag uses makes argparse read its
    # flags as plain words, which REMAINDER then collects whatever they look like.
    whatif = commands.add_parser(
        "whatif",
        help="what-if benchmarks: replay a scenario under policies, rule sets and settings "
        "(same flags as python -m router.whatif; router whatif --help)",
        add_help=False,
        prefix_chars="\x00",
    )
    whatif.add_argument("whatif_args", nargs=argparse.REMAINDER)
    whatif.set_defaults(run=_whatif)


def _whatif(args: argparse.Namespace) -> int:
    from router.whatif import missing_extra, not_installed

    missing = missing_extra()
    if missing:
        print(f"router whatif: {not_installed(missing)}", file=sys.stderr)
        return 2
    from router.whatif.run import main as whatif

    return whatif(args.whatif_args, prog="router whatif")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``router`` command; bad input files exit 2 with every violation listed."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in ("serve", "intake"):  # a service's logs: JSON lines by default
        configure_logging(args.log_format, args.log_level)
    elif args.command != "whatif":  # what-if prints its own progress, not log lines
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return int(args.run(args))
    except InvalidArgumentError as error:
        print(f"invalid input ({len(error.violations)} problems):", file=sys.stderr)
        for violation in error.violations:
            print(f"  {violation}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
