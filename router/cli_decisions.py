"""``router decisions get|list|replay``: read the decision log of a running server.

``get`` shows one decision and what it was decided from, ``list`` the decisions of an
order, reservation, node, status, kind or time span (newest first, every page up to
``--limit``), ``replay`` solves one again from its stored inputs and says whether the plan
is the logged one (and, with ``--compare-now``, what the order would get now and why).
A readable summary by default; with ``--json`` the proto3 JSON answer, one per line
(docs/api.md, GetDecision, ListDecisions, ReplayDecision; docs/decisions.md).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from router.cli_lookups import add_lookup_flags, add_page_flags, call, list_pages, print_json

STATUSES = ("optimal", "feasible", "infeasible", "no_solution", "rejected")
KINDS = ("route", "plan", "reroute")


def instant(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 instant from the command line; UTC when it names no offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an instant, e.g. 2026-11-20T15:00:00Z or 2026-11-20"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_decisions_command(commands: Any) -> None:
    """``router decisions get ID``, ``list [filters]`` and ``replay ID [--compare-now]``."""
    decisions = commands.add_parser(
        "decisions", help="read and replay the decision log of a running server (docs/api.md)"
    )
    sub = decisions.add_subparsers(dest="decisions_command", required=True)
    get = sub.add_parser("get", help="one decision by id, with what it was decided from")
    get.add_argument("decision_id")
    get.set_defaults(run=_get)
    listing = sub.add_parser(
        "list", help="decisions by order, reservation, node, status, kind or time, newest first"
    )
    listing.add_argument("--order", default="", help="only this order's")
    listing.add_argument("--reservation", default="", help="only those that made or changed it")
    listing.add_argument("--node", default="", help="only those whose plan ships from it")
    listing.add_argument("--status", choices=STATUSES, help="only plans of this status")
    listing.add_argument("--kind", choices=KINDS, help="only decisions of this kind of call")
    listing.add_argument(
        "--decided-from",
        type=instant,
        metavar="INSTANT",
        help="only those made at or after it (ISO 8601; UTC unless an offset is given)",
    )
    listing.add_argument(
        "--decided-before", type=instant, metavar="INSTANT", help="only those made before it"
    )
    add_page_flags(listing)
    listing.set_defaults(run=_list)
    replay = sub.add_parser(
        "replay", help="solve a decision again from its inputs: is the plan the logged one?"
    )
    replay.add_argument("decision_id")
    replay.add_argument(
        "--compare-now",
        action="store_true",
        help="also plan the order against the ledger, rules and prices of now, and say why "
        "the plan moved",
    )
    replay.add_argument(
        "--changes",
        type=int,
        default=5,
        metavar="N",
        help="inputs that moved to show, the largest first (default: %(default)s)",
    )
    replay.set_defaults(run=_replay)
    for command in (get, listing, replay):
        add_lookup_flags(command)


def _get(args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.GetDecisionRequest(decision_id=args.decision_id)
    return call(args, "GetDecision", request, lambda got: _show_one(got.decision, args.json))


def _show_one(decision: Any, as_json: bool) -> None:
    """The decision's line, then what it was decided from (or its proto3 JSON)."""
    if as_json:
        print_json(decision)
        return
    _print(decision, as_json=False)
    i = decision.inputs
    rules = f"v{i.rule_version}" if i.rule_version else "the scenario's"
    prices = i.price_version or "none"
    print(
        f"  inputs: engine={i.engine or '-'} rules={rules} prices={prices} "
        f"stock={len(i.stock.node_ids)} position(s) capacity={len(i.capacity_used)} day(s) "
        f"calendars=r{i.calendar_revision}"
    )
    if i.excluded_node_ids:
        print(f"  excluded: {','.join(i.excluded_node_ids)}")


def _list(args: argparse.Namespace) -> int:
    """Every page until the last or ``--limit``; says so when it stopped early."""
    from router.v1 import router_pb2

    request = router_pb2.ListDecisionsRequest(
        order_id=args.order,
        reservation_id=args.reservation,
        node_id=args.node,
        page_size=args.page_size,
    )
    if args.status is not None:
        request.status = router_pb2.SolveStatus.Value(f"SOLVE_STATUS_{args.status.upper()}")
    if args.kind is not None:
        request.kind = router_pb2.DecisionKind.Value(f"DECISION_KIND_{args.kind.upper()}")
    if args.decided_from is not None:
        request.decided_from.FromDatetime(args.decided_from)
    if args.decided_before is not None:
        request.decided_before.FromDatetime(args.decided_before)
    return list_pages(
        args,
        "decisions list",
        "ListDecisions",
        request,
        "decisions",
        lambda decision: _print(decision, as_json=args.json),
    )


def _replay(args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.ReplayDecisionRequest(
        decision_id=args.decision_id, compare_now=args.compare_now
    )
    return call(args, "ReplayDecision", request, lambda answer: _show_replay(answer, args))


def _show_replay(answer: Any, args: argparse.Namespace) -> None:
    """Identical or the differences; with --compare-now the plan now, why, the top changes."""
    if args.json:
        print_json(answer)
        return
    _print(answer.decision, as_json=False)
    if answer.identical:
        print(f"replayed: identical ({_plan(answer.replayed)})")
    else:
        print(f"replayed: DIFFERS ({_plan(answer.replayed)})")
        for difference in answer.differences:
            print(f"  - {difference}")
    if not args.compare_now:
        return
    print(f"now: {_plan(answer.now)}")
    if answer.explanation:
        print(f"  {answer.explanation}")
    changes = list(answer.changes)
    if not changes:
        print("inputs: none moved")
        return
    top = changes[: max(args.changes, 0)]
    shown = f" (the {len(top)} largest)" if len(top) < len(changes) else ""
    print(f"inputs moved: {len(changes)}{shown}")
    for change in top:
        key = f" {change.key}" if change.key else ""
        print(f"  {change.kind}{key}: {change.then or '-'} -> {change.now or '-'}")


def _print(decision: Any, *, as_json: bool) -> None:
    """One line: id, kind, order, plan, when, reservation, outcome, parent, owner."""
    if as_json:
        print_json(decision)
        return
    from router.v1 import router_pb2

    kind = router_pb2.DecisionKind.Name(decision.kind).removeprefix("DECISION_KIND_")
    decided = decision.decided_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
    extra = ""
    if decision.reservation_id:
        extra += f" reservation={decision.reservation_id}"
    if decision.outcome:
        outcome = router_pb2.RouteOutcome.Name(decision.outcome).removeprefix("ROUTE_OUTCOME_")
        extra += f" outcome={outcome}"
    if decision.parent_decision_id:
        extra += f" parent={decision.parent_decision_id}"
    if decision.owner:
        extra += f" owner={decision.owner}"
    print(
        f"{decision.decision_id} {kind} order={decision.order_id} {_plan(decision.plan)} "
        f"decided={decided}{extra}"
    )


def _plan(plan: Any) -> str:
    """A plan in a few words: status, cost, where it ships from, what is left unfulfilled."""
    from router.v1 import router_pb2

    status = router_pb2.SolveStatus.Name(plan.status).removeprefix("SOLVE_STATUS_")
    cost = f" cost={plan.objective:.2f}" if plan.HasField("objective") else ""
    ships = ",".join(s.node_id for s in plan.shipments) or "-"
    short = sum(line.quantity for line in plan.unfulfilled)
    unfulfilled = f" unfulfilled={short}" if short else ""
    return f"{status}{cost} ships={ships}{unfulfilled}"
