"""``router reservations get|list|reject``: look reservations up on a running server.

``reject`` is RejectShipment: a node cannot ship units it holds for a reservation; they are
released and re-routed to other nodes (docs/decisions.md, "Rejections and re-routing").

``list`` is also the status timers' view (docs/api.md, ListReservations): ``--expiring-within
SECONDS`` lists the HELD reservations about to lapse unconfirmed, ``--past-ship-date`` those
whose ship date passed without a confirmation. One line per reservation, or with ``--json``
one proto3 JSON object per line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, timedelta
from typing import Any

from router.cli_lookups import add_lookup_flags, add_page_flags, call, list_pages, print_json

STATUSES = ("held", "confirmed", "released", "expired")


def add_reservations_command(commands: Any) -> None:
    """``router reservations get ID`` and ``router reservations list [filters]``."""
    reservations = commands.add_parser(
        "reservations", help="look reservations up on a running server (docs/api.md)"
    )
    sub = reservations.add_subparsers(dest="reservations_command", required=True)
    get = sub.add_parser("get", help="one reservation by id")
    get.add_argument("reservation_id")
    get.set_defaults(run=_get)
    listing = sub.add_parser(
        "list", help="reservations by order, node, status, expiry or passed ship date"
    )
    listing.add_argument("--order", default="", help="only this order's")
    listing.add_argument("--node", default="", help="only those holding units at this node")
    listing.add_argument("--status", choices=STATUSES, help="only those in this status")
    listing.add_argument(
        "--expiring-within",
        type=float,
        metavar="SECONDS",
        help="only HELD ones lapsing within SECONDS (a status timer)",
    )
    listing.add_argument(
        "--past-ship-date",
        action="store_true",
        help="only HELD ones whose ship date passed unconfirmed (a status timer)",
    )
    add_page_flags(listing)
    listing.set_defaults(run=_list)
    reject = _add_reject(sub)
    for command in (get, listing, reject):
        add_lookup_flags(command)


def _add_reject(sub: Any) -> Any:
    """``router reservations reject ID --node N [--line SKU=Q ...] [--reason R] [--correct Q]``."""
    reject = sub.add_parser(
        "reject", help="a node cannot ship units of a HELD reservation: re-route them"
    )
    reject.add_argument("reservation_id")
    reject.add_argument("--node", required=True, help="the node that cannot ship")
    reject.add_argument(
        "--line",
        action="append",
        default=[],
        metavar="SKU=QUANTITY",
        help="units it cannot ship (repeat; default: every unit it holds for the reservation)",
    )
    reject.add_argument("--reason", default="", help="why, logged with the re-route")
    reject.add_argument(
        "--correct",
        type=int,
        metavar="ON_HAND",
        help="set the node's on hand of each rejected SKU to this (e.g. 0)",
    )
    reject.add_argument(
        "--request-id", required=True, help="idempotency key: a retry must reuse it"
    )
    reject.set_defaults(run=_reject)
    return reject


def _reject(args: argparse.Namespace) -> int:
    """Print the reservation after, the outcome and where the units went."""
    from router.v1 import router_pb2

    request = router_pb2.RejectShipmentRequest(
        request_id=args.request_id,
        reservation_id=args.reservation_id,
        node_id=args.node,
        reason=args.reason,
    )
    for given in args.line:
        sku, _, quantity = given.rpartition("=")
        if not sku or not quantity.isdigit():
            print(
                f"router reservations reject: --line {given!r} is not SKU=QUANTITY", file=sys.stderr
            )
            return 2
        request.lines.add(node_id=args.node, sku=sku, quantity=int(quantity))
    if args.correct is not None:
        request.corrected_on_hand = args.correct

    def show(answer: router_pb2.RejectShipmentResponse) -> None:
        if args.json:
            print_json(answer)
            return
        _print(answer.reservation, as_json=False)
        outcome = router_pb2.RouteOutcome.Name(answer.outcome).removeprefix("ROUTE_OUTCOME_")
        detail = f": {answer.detail}" if answer.detail else ""
        print(f"{outcome} rejection {answer.rejections} decision {answer.decision_id}{detail}")

    return call(args, "RejectShipment", request, show)


def _get(args: argparse.Namespace) -> int:
    from router.v1 import router_pb2

    request = router_pb2.GetReservationRequest(reservation_id=args.reservation_id)
    return call(
        args, "GetReservation", request, lambda got: _print(got.reservation, as_json=args.json)
    )


def _list(args: argparse.Namespace) -> int:
    """Every page until the last or ``--limit``; says so when it stopped early."""
    from router.v1 import router_pb2

    request = router_pb2.ListReservationsRequest(
        order_id=args.order,
        node_id=args.node,
        past_ship_date=args.past_ship_date,
        page_size=args.page_size,
    )
    if args.status is not None:
        request.status = router_pb2.ReservationStatus.Value(
            f"RESERVATION_STATUS_{args.status.upper()}"
        )
    if args.expiring_within is not None:
        request.expiring_within.FromTimedelta(timedelta(seconds=args.expiring_within))
    return list_pages(
        args,
        "reservations list",
        "ListReservations",
        request,
        "reservations",
        lambda reservation: _print(reservation, as_json=args.json),
    )


def _print(reservation: Any, *, as_json: bool) -> None:
    """One line: id, order, status, expiry, ship dates, units, owner (or proto3 JSON)."""
    if as_json:
        print_json(reservation)
        return
    from router.v1 import router_pb2

    status = router_pb2.ReservationStatus.Name(reservation.status).removeprefix(
        "RESERVATION_STATUS_"
    )
    expires = reservation.expires_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
    ships = ",".join(sorted({slot.ship_date for slot in reservation.slots})) or "-"
    units = " ".join(f"{x.quantity}x{x.sku}@{x.node_id}" for x in reservation.lines)
    owner = f" owner={reservation.owner}" if reservation.owner else ""
    print(
        f"{reservation.reservation_id} order={reservation.order_id} {status} "
        f"expires={expires} ships={ships} {units}{owner}"
    )
