"""Conversion between router.v1 messages and the domain, both ways.

Incoming orders go through the domain's own validation (:meth:`Order.from_raw` with the
network) via the proto3 JSON mapping, so a request and a line of
``orders.jsonl`` are checked by the same code and report the same field paths. Money leaves
the domain in solver units and enters messages in currency units (:func:`from_units`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, json_format

from models.calendar import Calendar, CalendarKind
from models.decision import DecisionKind, DecisionQuery
from models.errors import Violations
from models.money import from_units
from models.network import Network, Stock
from models.order import Order
from models.plan import (
    Alternative,
    CandidateTerms,
    Counterfactual,
    Exclusion,
    ExclusionReason,
    ExplainedModel,
    ExplainLevel,
    ExplanationSummary,
    LineTerms,
    Plan,
    Shipment,
    Unfulfilled,
    alternatives_wanted,
)
from models.reservation import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FeedResult,
    PlanAcceptance,
    Reservation,
    ReservationLine,
    ReservationQuery,
    ReservationStatus,
    RouteOutcome,
)
from models.rule_versions import RuleActivation, RuleVersion
from router.engine.explain import summarise
from router.rules.golden import CaseResult
from router.rules.lint import Finding
from router.service.limits import MAX_COUNTERFACTUALS, MAX_TOP_K, MAX_TTL_S
from router.v1 import router_pb2

DEFAULT_TTL_S = 15 * 60.0
"""How long a RouteOrder reservation is held when the request sets no ``ttl``."""


@dataclass(frozen=True, slots=True)
class PlanOrderArgs:
    """A validated PlanOrder request in domain terms."""

    order: Order
    explain: ExplainLevel
    time_limit_s: float | None
    """The request's cap on solve time in seconds; ``None`` when it sets none."""
    alternatives: int = 0
    """How many next best plans to ask the engine for (see :func:`alternatives_wanted`)."""
    counterfactual_node_ids: tuple[str, ...] = ()
    """Nodes of the network to price, in the order asked."""


def plan_order_args_from_proto(
    request: router_pb2.PlanOrderRequest, network: Network
) -> PlanOrderArgs:
    """Validate and convert a PlanOrder request.

    Raises :class:`InvalidArgumentError` with every violation, paths relative to the
    request (``order.lines[0].quantity``, ``time_limit``, ``top_k``,
    ``counterfactual_node_ids[2]``, ``explain_level``).
    """
    order, order_v = _order(request.order, network)
    v = Violations()
    v.extend(order_v.items)
    time_limit_s = _time_limit_s(request.time_limit, v) if request.HasField("time_limit") else None
    check_top_k(request.top_k, v, "top_k")
    node_ids = tuple(request.counterfactual_node_ids)
    check_counterfactual_nodes(node_ids, network, v, "counterfactual_node_ids")
    explain = explain_level_from_proto(request.explain, request.explain_level, v)
    v.raise_if_any()
    assert order is not None
    return PlanOrderArgs(
        order=order,
        explain=explain,
        time_limit_s=time_limit_s,
        alternatives=alternatives_wanted(request.top_k, explain=explain is not ExplainLevel.NONE),
        counterfactual_node_ids=node_ids,
    )


@dataclass(frozen=True, slots=True)
class PlanWaveArgs:
    """A validated PlanWave request in domain terms."""

    orders: tuple[Order, ...]
    explain: ExplainLevel
    time_limit_s: float | None
    """The request's cap on the wave's solve time in seconds; ``None`` when it sets none."""


def plan_wave_args_from_proto(
    request: router_pb2.PlanWaveRequest, network: Network
) -> PlanWaveArgs:
    """Validate and convert a PlanWave request (the count of orders is checked before).

    Raises :class:`InvalidArgumentError` with every violation, paths relative to the
    request (``orders[3].lines[0].sku``, ``orders[4].order_id`` for an id used twice,
    ``time_limit``, ``explain_level``).
    """
    v = Violations()
    orders: list[Order] = []
    first_of: dict[str, int] = {}
    for i, msg in enumerate(request.orders):
        found = Violations(f"orders[{i}]")
        order = Order.from_raw(_order_dict(msg), found, network)
        v.extend(found.items)
        if msg.order_id in first_of:
            v.add(f"orders[{i}].order_id", f"is orders[{first_of[msg.order_id]}]'s order_id too")
        first_of.setdefault(msg.order_id, i)
        if order is not None:
            orders.append(order)
    if not request.orders:
        v.add("orders", "must hold at least one order")
    time_limit_s = _time_limit_s(request.time_limit, v) if request.HasField("time_limit") else None
    explain = explain_level_from_proto(False, request.explain_level, v)
    v.raise_if_any()
    return PlanWaveArgs(tuple(orders), explain, time_limit_s)


@dataclass(frozen=True, slots=True)
class RouteOrderArgs:
    """A validated RouteOrder request in domain terms."""

    request_id: str
    order: Order
    explain: ExplainLevel
    ttl_s: float
    time_limit_s: float | None
    """The request's cap on each attempt's solve time in seconds; ``None`` when unset."""
    accept: PlanAcceptance = PlanAcceptance.PROVEN
    """Which plans may be reserved."""
    max_gap: float = 0.0
    """The largest gap accepted with :attr:`PlanAcceptance.WITHIN_GAP`; 0 otherwise."""


def route_order_args_from_proto(
    request: router_pb2.RouteOrderRequest, network: Network
) -> RouteOrderArgs:
    """Validate and convert a RouteOrder request.

    Raises :class:`InvalidArgumentError` with every violation (``request_id``,
    ``order.lines[0].sku``, ``ttl``, ``time_limit``, ``explain_level``, ``accept``,
    ``max_gap``).
    """
    order, order_v = _order(request.order, network)
    v = Violations()
    if not request.request_id.strip():
        v.add("request_id", "must not be empty")
    v.extend(order_v.items)
    ttl_s = _positive_s(request.ttl, "ttl", v) if request.HasField("ttl") else DEFAULT_TTL_S
    if ttl_s is not None and ttl_s > MAX_TTL_S:
        v.add("ttl", f"must be at most {MAX_TTL_S:g}s (7 days), got {ttl_s:g}s")
        ttl_s = None
    time_limit_s = _time_limit_s(request.time_limit, v) if request.HasField("time_limit") else None
    explain = explain_level_from_proto(request.explain, request.explain_level, v)
    accept = _PLAN_ACCEPTANCE.get(request.accept)
    if accept is None:
        v.add("accept", f"unknown value {request.accept}")
    max_gap = request.max_gap
    if accept is PlanAcceptance.WITHIN_GAP:
        if not 0.0 <= max_gap < math.inf:  # also refuses NaN
            v.add("max_gap", f"must be a number >= 0, got {max_gap}")
    elif max_gap != 0.0:
        v.add("max_gap", f"is read only with accept PLAN_ACCEPTANCE_WITHIN_GAP, got {max_gap}")
    v.raise_if_any()
    assert order is not None and ttl_s is not None and accept is not None
    return RouteOrderArgs(
        request_id=request.request_id,
        order=order,
        explain=explain,
        ttl_s=ttl_s,
        time_limit_s=time_limit_s,
        accept=accept,
        max_gap=max_gap,
    )


@dataclass(frozen=True, slots=True)
class RejectShipmentArgs:
    """A validated RejectShipment request in domain terms.

    ``units`` are the rejected units per (node_id, sku) at ``node_id``; empty: every unit
    the reservation holds there.
    """

    request_id: str
    reservation_id: str
    node_id: str
    units: dict[tuple[str, str], int]
    reason: str
    corrected_on_hand: int | None
    time_limit_s: float | None


def reject_shipment_args_from_proto(
    request: router_pb2.RejectShipmentRequest,
) -> RejectShipmentArgs:
    """Validate and convert a RejectShipment request.

    Raises :class:`InvalidArgumentError` with every violation (``request_id``,
    ``reservation_id``, ``node_id``, ``lines[i]``, ``corrected_on_hand``, ``time_limit``;
    the reason's length is bounded by :mod:`router.service.limits`). Whether the
    reservation holds the units is checked against it.
    """
    v = Violations()
    for field in ("request_id", "reservation_id", "node_id"):
        if not getattr(request, field).strip():
            v.add(field, "must not be empty")
    node_id = request.node_id
    units: dict[tuple[str, str], int] = {}
    for i, line in enumerate(request.lines):
        if line.node_id not in ("", node_id):
            v.add(f"lines[{i}].node_id", f"must be empty or {node_id!r}, got {line.node_id!r}")
        elif not line.sku:
            v.add(f"lines[{i}].sku", "must not be empty")
        elif line.quantity < 1:
            v.add(f"lines[{i}].quantity", f"must be at least 1, got {line.quantity}")
        elif (node_id, line.sku) in units:
            v.add(f"lines[{i}].sku", f"names {line.sku!r} again: one line per SKU")
        else:
            units[node_id, line.sku] = line.quantity
    corrected = request.corrected_on_hand if request.HasField("corrected_on_hand") else None
    if corrected is not None and corrected < 0:
        v.add("corrected_on_hand", f"must not be negative, got {corrected}")
    time_limit_s = _time_limit_s(request.time_limit, v) if request.HasField("time_limit") else None
    v.raise_if_any()
    return RejectShipmentArgs(
        request_id=request.request_id,
        reservation_id=request.reservation_id,
        node_id=node_id,
        units=dict(sorted(units.items())),
        reason=request.reason,
        corrected_on_hand=corrected,
        time_limit_s=time_limit_s,
    )


def explain_level_from_proto(
    explain: bool, level: router_pb2.ExplainLevel.ValueType, v: Violations
) -> ExplainLevel:
    """The level asked by a request's ``explain`` and ``explain_level``; conflicts go in ``v``.

    ``explain_level`` unset follows ``explain`` (false: none, true: the summary).
    """
    if level == router_pb2.EXPLAIN_LEVEL_UNSPECIFIED:
        return ExplainLevel.SUMMARY if explain else ExplainLevel.NONE
    asked = _EXPLAIN_LEVEL.get(level)
    if asked is None:
        v.add("explain_level", f"unknown value {level}")
    elif asked is ExplainLevel.NONE and explain:
        v.add("explain_level", "is EXPLAIN_LEVEL_NONE but explain is true")
    return asked or ExplainLevel.NONE


_EXPLAIN_LEVEL = {
    router_pb2.EXPLAIN_LEVEL_NONE: ExplainLevel.NONE,
    router_pb2.EXPLAIN_LEVEL_SUMMARY: ExplainLevel.SUMMARY,
    router_pb2.EXPLAIN_LEVEL_FULL: ExplainLevel.FULL,
}
"""The wire's explanation levels, unset aside (it follows ``explain``)."""
_PLAN_ACCEPTANCE = {
    router_pb2.PLAN_ACCEPTANCE_UNSPECIFIED: PlanAcceptance.PROVEN,
    router_pb2.PLAN_ACCEPTANCE_PROVEN: PlanAcceptance.PROVEN,
    router_pb2.PLAN_ACCEPTANCE_WITHIN_GAP: PlanAcceptance.WITHIN_GAP,
    router_pb2.PLAN_ACCEPTANCE_ANY: PlanAcceptance.ANY,
}
"""The wire's plan acceptances; unset is the default, proven plans only."""


def route_outcome_to_proto(outcome: RouteOutcome) -> router_pb2.RouteOutcome.ValueType:
    """The wire enum of what RouteOrder did with a plan."""
    return router_pb2.RouteOutcome.Value(f"ROUTE_OUTCOME_{outcome.name}")


def calendar_from_proto(
    msg: router_pb2.Calendar, network: Network, path: str = "calendar"
) -> tuple[CalendarKind, str, Calendar]:
    """The owner and closed days of a calendar message, checked against ``network``.

    The owner (``node_id`` or ``service``) must be a node or a service of the network;
    every closed day a weekday or a date (:meth:`Calendar.parse`). Raises
    InvalidArgumentError naming each bad field under ``path`` (``calendar.closed_days[1]``).
    """
    v = Violations(path)
    which = msg.WhichOneof("owner")
    kind, owner = CalendarKind.NODE, ""
    if which is None:
        v.add("", "set node_id or service")
    else:
        kind = CalendarKind.NODE if which == "node_id" else CalendarKind.SERVICE
        owner = msg.node_id if which == "node_id" else msg.service
        unknown = network.unknown_owner(kind, owner)
        if unknown:
            v.add(which, unknown)
    calendar = Calendar.parse(list(msg.closed_days), "closed_days", v)
    v.raise_if_any()
    assert calendar is not None
    return kind, owner, calendar


def calendar_to_proto(kind: CalendarKind, owner: str, calendar: Calendar) -> router_pb2.Calendar:
    """The message of ``owner``'s calendar, closed days as :attr:`Calendar.closed_days`."""
    days = calendar.closed_days
    if kind is CalendarKind.NODE:
        return router_pb2.Calendar(node_id=owner, closed_days=days)
    return router_pb2.Calendar(service=owner, closed_days=days)


def reservation_to_proto(reservation: Reservation, owner: str = "") -> router_pb2.Reservation:
    """Convert a domain reservation to its message (``owner`` only for the lookups)."""
    msg = router_pb2.Reservation(
        reservation_id=reservation.reservation_id,
        order_id=reservation.order_id,
        status=router_pb2.ReservationStatus.Value(f"RESERVATION_STATUS_{reservation.status.value}"),
        lines=[
            router_pb2.ReservationLine(node_id=line.node_id, sku=line.sku, quantity=line.quantity)
            for line in reservation.lines
        ],
        slots=[
            router_pb2.ReservationSlot(node_id=node_id, ship_date=day.isoformat())
            for node_id, day in reservation.capacity
        ],
        owner=owner,
    )
    msg.expires_at.FromDatetime(reservation.expires_at)
    msg.created_at.FromDatetime(reservation.created_at)
    return msg


def reservation_lines_from_proto(
    lines: Sequence[router_pb2.ReservationLine],
) -> tuple[ReservationLine, ...]:
    """The lines of a partial confirm or release (checked by the ledger, naming ``lines``)."""
    return tuple(ReservationLine(x.node_id, x.sku, x.quantity) for x in lines)


def reservation_query_from_proto(
    request: router_pb2.ListReservationsRequest, now: datetime, owner: str | None
) -> ReservationQuery:
    """Validate and convert a ListReservations request, as of ``now``, for ``owner``'s eyes.

    ``owner`` None lists everyone's. Raises :class:`InvalidArgumentError` naming every bad
    field (``status``, ``expiring_within``, ``page_size``, ``page_token``).
    """
    v = Violations()
    status = None
    if request.status != router_pb2.RESERVATION_STATUS_UNSPECIFIED:
        if request.status not in router_pb2.ReservationStatus.values():
            v.add("status", f"unknown value {request.status}")
        else:
            name = router_pb2.ReservationStatus.Name(request.status)
            status = ReservationStatus(name.removeprefix("RESERVATION_STATUS_"))
    expires_before = None
    if request.HasField("expiring_within"):
        within = request.expiring_within
        seconds = within.seconds + within.nanos / 1e9
        if not 0 <= seconds <= MAX_TTL_S:  # checked before any timedelta could overflow
            v.add("expiring_within", f"must be 0s to {MAX_TTL_S:g}s, got {seconds:g}s")
        else:
            expires_before = now + timedelta(seconds=seconds)
    size, after = _page(request.page_size, request.page_token, "ListReservations", v)
    v.raise_if_any()
    return ReservationQuery(
        order_id=request.order_id,
        node_id=request.node_id,
        status=status,
        expires_before=expires_before,
        ships_before=now.astimezone(UTC).date() if request.past_ship_date else None,
        owner=owner,
        page_size=size,
        after=after,
    )


DECISION_KIND_TO_PROTO = {
    DecisionKind.ROUTE: router_pb2.DECISION_KIND_ROUTE,
    DecisionKind.PLAN: router_pb2.DECISION_KIND_PLAN,
    DecisionKind.REROUTE: router_pb2.DECISION_KIND_REROUTE,
}
_DECISION_KIND_OF_PROTO = {wire: kind for kind, wire in DECISION_KIND_TO_PROTO.items()}


def decision_query_from_proto(
    request: router_pb2.ListDecisionsRequest, owner: str | None
) -> DecisionQuery:
    """Validate and convert a ListDecisions request for ``owner``'s eyes (None: everyone's).

    Raises :class:`InvalidArgumentError` naming every bad field (``status``, ``kind``,
    ``decided_from``, ``decided_before``, ``page_size``, ``page_token``).
    """
    v = Violations()
    status = ""
    if request.status != router_pb2.SOLVE_STATUS_UNSPECIFIED:
        if request.status not in router_pb2.SolveStatus.values():
            v.add("status", f"unknown value {request.status}")
        else:
            status = router_pb2.SolveStatus.Name(request.status).removeprefix("SOLVE_STATUS_")
    kind = None
    if request.kind != router_pb2.DECISION_KIND_UNSPECIFIED:
        kind = _DECISION_KIND_OF_PROTO.get(request.kind)
        if kind is None:
            v.add("kind", f"unknown value {request.kind}")
    instants: dict[str, datetime | None] = {}
    for name in ("decided_from", "decided_before"):
        instants[name] = None
        if request.HasField(name):
            try:
                instants[name] = getattr(request, name).ToDatetime(UTC)
            except (ValueError, OverflowError):
                v.add(name, "is not a valid timestamp")
    size, after = _page(request.page_size, request.page_token, "ListDecisions", v)
    v.raise_if_any()
    return DecisionQuery(
        order_id=request.order_id,
        reservation_id=request.reservation_id,
        node_id=request.node_id,
        status=status,
        kind=kind,
        decided_from=instants["decided_from"],
        decided_before=instants["decided_before"],
        owner=owner,
        page_size=size,
        after=after,
    )


def _page(
    page_size: int, token: str, method: str, v: Violations
) -> tuple[int, tuple[datetime, str] | None]:
    """A list request's page size (0: the default) and position; problems go in ``v``."""
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        bounds = f"0 (for {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}"
        v.add("page_size", f"must be {bounds}, got {page_size}")
    after = None
    if token:
        after = _page_position(token)
        if after is None:
            v.add("page_token", f"is not a next_page_token of {method}")
    return size, after


def page_token(after: tuple[datetime, str] | None) -> str:
    """The next_page_token of a page ending at ``after`` ("" for the last page)."""
    if after is None:
        return ""
    text = f"{after[0].astimezone(UTC).isoformat()}|{after[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _page_position(token: str) -> tuple[datetime, str] | None:
    """The (instant, id) a :func:`page_token` names; None for anything else."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        instant, reservation_id = text.split("|", 1)
        expires = datetime.fromisoformat(instant)
        if expires.tzinfo is None or not reservation_id:
            return None
        return expires.astimezone(UTC), reservation_id  # years 1 and 9999 overflow here
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def stock_to_proto(stock: Stock, node_ids: Sequence[str] = ()) -> list[router_pb2.StockPosition]:
    """The positions of ``stock`` (only at ``node_ids`` when given), sorted, with availability."""
    wanted = set(node_ids)
    return [
        router_pb2.StockPosition(
            node_id=p.node_id,
            sku=p.sku,
            on_hand=p.on_hand,
            reserved=p.reserved,
            safety_stock=p.safety_stock,
            available=p.available,
        )
        for _, p in sorted(stock.positions.items())
        if not wanted or p.node_id in wanted
    ]


def feed_outcome_to_proto(result: FeedResult) -> router_pb2.FeedOutcome.ValueType:
    """The wire enum of a feed update's outcome."""
    return router_pb2.FeedOutcome.Value(f"FEED_OUTCOME_{result.outcome.name}")


def check_top_k(top_k: int, v: Violations, field: str) -> None:
    """Report in ``v`` at ``field`` a ``top_k`` outside 0..:data:`MAX_TOP_K`."""
    if not 0 <= top_k <= MAX_TOP_K:
        v.add(field, f"must be between 0 and {MAX_TOP_K}, got {top_k}")


def check_counterfactual_nodes(
    node_ids: Sequence[str], network: Network, v: Violations, field: str
) -> None:
    """Report in ``v`` too many ids (at ``field``) and each id not in ``network`` (``field[i]``)."""
    if len(node_ids) > MAX_COUNTERFACTUALS:
        v.add(field, f"at most {MAX_COUNTERFACTUALS} nodes, got {len(node_ids)}")
    for i, node_id in enumerate(node_ids):
        if network.node(node_id) is None:
            v.add(f"{field}[{i}]", f"no node {node_id!r} in the network")


_DURATION_SECONDS_MAX = 315_576_000_000
"""The seconds of the longest ``google.protobuf.Duration`` (10,000 years), either sign."""
_NANOS_PER_SECOND = 1_000_000_000


def _time_limit_s(limit: duration_pb2.Duration, v: Violations) -> float | None:
    """``limit`` in seconds when it is a valid Duration and > 0; else ``None``, reported in ``v``.

    Counted in nanoseconds, so that a limit of 1 ns is valid and > 0.
    """
    return _positive_s(limit, "time_limit", v)


def _positive_s(limit: duration_pb2.Duration, field: str, v: Violations) -> float | None:
    """``limit`` (the request's ``field``) in seconds when valid and > 0; else reported."""
    seconds, nanos = limit.seconds, limit.nanos
    if (
        abs(seconds) > _DURATION_SECONDS_MAX
        or abs(nanos) >= _NANOS_PER_SECOND
        or seconds * nanos < 0
    ):
        v.add(
            field,
            f"not a valid Duration: seconds={seconds}, nanos={nanos} (seconds must be within "
            f"±{_DURATION_SECONDS_MAX}, nanos within ±{_NANOS_PER_SECOND - 1}, of one sign)",
        )
        return None
    total_nanos = limit.ToNanoseconds()
    if total_nanos <= 0:
        v.add(field, f"must be > 0, got {total_nanos / _NANOS_PER_SECOND:g}s")
        return None
    return total_nanos / _NANOS_PER_SECOND


def order_from_proto(msg: router_pb2.Order, network: Network) -> Order:
    """Validate an order message against ``network`` and convert it.

    Raises :class:`InvalidArgumentError` listing every bad field under ``order.``.
    """
    order, v = _order(msg, network)
    v.raise_if_any()
    assert order is not None
    return order


def _order(msg: router_pb2.Order, network: Network) -> tuple[Order | None, Violations]:
    """The order of ``msg`` (``None`` when invalid) and every violation found in it."""
    v = Violations("order")
    return Order.from_raw(_order_dict(msg), v, network), v


def _order_dict(msg: router_pb2.Order) -> dict[str, Any]:
    """The proto3 JSON mapping of ``msg``, as :meth:`Order.from_raw` reads it.

    Fields without presence are kept even when zero, so that ``quantity: 0`` is reported as
    out of range rather than missing; unset optional fields (``allow_partial``,
    ``max_shipments``) are left out and so take the domain's defaults.
    """
    try:
        return _to_dict(msg)
    except json_format.SerializeToJsonError:
        pass
    # Only a Timestamp out of its range fails to serialise. The domain gets its raw value,
    # which it reports as it would any malformed timestamp.
    valid = router_pb2.Order()
    valid.CopyFrom(msg)
    valid.ClearField("created_at")
    raw = _to_dict(valid)
    raw["created_at"] = f"seconds={msg.created_at.seconds} nanos={msg.created_at.nanos}"
    return raw


def _to_dict(msg: router_pb2.Order) -> dict[str, Any]:
    return json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def order_to_proto(order: Order) -> router_pb2.Order:
    """Convert a domain order to its message (every optional field set explicitly)."""
    msg = router_pb2.Order(
        order_id=order.order_id,
        channel=order.channel,
        segment=order.segment,
        ship_to=router_pb2.ShipTo(
            latitude=order.ship_to.latitude,
            longitude=order.ship_to.longitude,
            country=order.ship_to.country,
            postal_code=order.ship_to.postal_code,
            region=order.ship_to.region,
        ),
        service=order.service,
        deliver_by=_date(order.deliver_by),
        ship_complete=order.ship_complete,
        allow_partial=order.allow_partial,
        max_shipments=order.max_shipments,
        pickup_node_id=order.pickup_node_id or "",
        lines=[
            router_pb2.OrderLine(
                line_id=line.line_id,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in order.lines
        ],
    )
    msg.created_at.FromDatetime(order.created_at)
    return msg


def plan_to_proto(plan: Plan, *, explain: ExplainLevel) -> router_pb2.Plan:
    """Convert a domain plan to its message, with as much explanation as ``explain`` says."""
    msg = router_pb2.Plan(
        order_id=plan.order_id,
        status=router_pb2.SolveStatus.Value(f"SOLVE_STATUS_{plan.status.name}"),
        objective=plan.objective_amount,
        bound=plan.bound_amount,
        gap=plan.gap,
        shipments=[_shipment(s) for s in plan.shipments],
        unfulfilled=[_unfulfilled(u) for u in plan.unfulfilled],
        rule_version=plan.rule_version,
        engine=plan.engine,
        detail=plan.detail,
        alternatives=[_alternative(a) for a in plan.alternatives],
        counterfactuals=[_counterfactual(c) for c in plan.counterfactuals],
        strategy=plan.strategy,
        step=plan.step,
        trials=[
            router_pb2.StrategyTrial(
                strategy=t.strategy,
                outcome=router_pb2.StrategyOutcome.Value(f"STRATEGY_OUTCOME_{t.outcome.name}"),
                detail=t.detail,
            )
            for t in plan.trials
        ],
        price_version=plan.price_version,
    )
    msg.solve_time.FromTimedelta(timedelta(seconds=plan.solve_seconds))
    if plan.prices_computed_at is not None:
        msg.prices_computed_at.FromDatetime(plan.prices_computed_at)
    if explain is not ExplainLevel.NONE:
        msg.explain.summary.CopyFrom(_summary(summarise(plan)))
    if explain is ExplainLevel.FULL:
        msg.explain.model.CopyFrom(_model(plan.model))
        msg.explain.excluded.extend(_exclusion(e) for e in plan.excluded)
    return msg


def plan_to_json(plan: Plan, *, explain: ExplainLevel) -> dict[str, Any]:
    """The proto3 JSON mapping of :func:`plan_to_proto`, field names as in the proto.

    Zero values are kept (an objective of 0 still prints, ``alternatives`` and
    ``counterfactuals`` are ``[]`` when none were asked for); fields with presence that are
    unset, such as the objective of an infeasible plan, are left out.
    """
    return json_format.MessageToDict(
        plan_to_proto(plan, explain=explain),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def _shipment(shipment: Shipment) -> router_pb2.Shipment:
    return router_pb2.Shipment(
        node_id=shipment.node_id,
        service=shipment.service,
        distance_km=shipment.distance_km,
        ship_date=_date(shipment.ship_date),
        delivery_date=_date(shipment.delivery_date),
        days_late=shipment.days_late,
        cost=from_units(shipment.cost),
        lines=[
            router_pb2.ShipmentLine(line_id=line.line_id, sku=line.sku, quantity=line.quantity)
            for line in shipment.lines
        ],
    )


def _unfulfilled(unfulfilled: Unfulfilled) -> router_pb2.UnfulfilledLine:
    return router_pb2.UnfulfilledLine(
        line_id=unfulfilled.line_id,
        sku=unfulfilled.sku,
        quantity=unfulfilled.quantity,
        reason=router_pb2.UnfulfilledReason.Value(f"UNFULFILLED_REASON_{unfulfilled.reason.name}"),
    )


def _alternative(alternative: Alternative) -> router_pb2.AlternativePlan:
    return router_pb2.AlternativePlan(
        objective=from_units(alternative.objective),
        shipments=[_shipment(s) for s in alternative.shipments],
        unfulfilled=[_unfulfilled(u) for u in alternative.unfulfilled],
    )


def _counterfactual(counterfactual: Counterfactual) -> router_pb2.Counterfactual:
    objective, delta = counterfactual.objective, counterfactual.delta
    return router_pb2.Counterfactual(
        node_id=counterfactual.node_id,
        status=router_pb2.SolveStatus.Value(f"SOLVE_STATUS_{counterfactual.status.name}"),
        objective=None if objective is None else from_units(objective),
        delta=None if delta is None else from_units(delta),
        detail=counterfactual.detail,
        shipments=[_shipment(s) for s in counterfactual.shipments],
        unfulfilled=[_unfulfilled(u) for u in counterfactual.unfulfilled],
        bound=None if counterfactual.bound is None else from_units(counterfactual.bound),
        gap=counterfactual.gap,
    )


def _model(model: ExplainedModel) -> router_pb2.ExplainedModel:
    line_ids = [line.line_id for line in model.lines]
    return router_pb2.ExplainedModel(
        offset=from_units(model.offset),
        split_penalty=from_units(model.split_penalty),
        candidates=[_candidate(c, line_ids) for c in model.candidates],
        lines=[_model_line(line) for line in model.lines],
        max_shipments=model.max_shipments,
        ship_complete=model.ship_complete,
    )


def _summary(summary: ExplanationSummary) -> router_pb2.ExplanationSummary:
    line_ids = [line.line_id for line in summary.lines]
    delta = summary.runner_up_delta
    return router_pb2.ExplanationSummary(
        candidate_count=summary.candidate_count,
        excluded_count=summary.excluded_count,
        split_penalty=from_units(summary.split_penalty),
        lines=[_model_line(line) for line in summary.lines],
        chosen=[_candidate(c, line_ids) for c in summary.chosen],
        runner_up=[_candidate(c, line_ids) for c in summary.runner_up],
        runner_up_delta=None if delta is None else from_units(delta),
        excluded=[
            router_pb2.ExclusionGroup(
                reason=_exclusion_reason(group.reason),
                count=group.count,
                nearest=[_exclusion(e) for e in group.nearest],
            )
            for group in summary.excluded
        ],
    )


def _model_line(line: LineTerms) -> router_pb2.ModelLine:
    return router_pb2.ModelLine(
        line_id=line.line_id,
        sku=line.sku,
        quantity=line.quantity,
        backorder_cost=from_units(line.backorder_cost),
        allow_partial=line.allow_partial,
    )


def _exclusion(exclusion: Exclusion) -> router_pb2.Exclusion:
    return router_pb2.Exclusion(
        node_id=exclusion.node_id,
        reason=_exclusion_reason(exclusion.reason),
        detail=exclusion.detail,
        distance_km=exclusion.distance_km,
    )


def _exclusion_reason(reason: ExclusionReason) -> router_pb2.ExclusionReason.ValueType:
    return router_pb2.ExclusionReason.Value(f"EXCLUSION_REASON_{reason.name}")


def _candidate(candidate: CandidateTerms, line_ids: list[str]) -> router_pb2.Candidate:
    return router_pb2.Candidate(
        node_id=candidate.node_id,
        distance_km=candidate.distance_km,
        service=candidate.service,
        ship_date=_date(candidate.ship_date),
        delivery_date=_date(candidate.delivery_date),
        days_late=candidate.days_late,
        shipment_cost=from_units(candidate.shipment_cost),
        handling_cost=from_units(candidate.handling_cost),
        shipping_cost=from_units(candidate.shipping_cost),
        lateness_cost=from_units(candidate.lateness_cost),
        node_penalty=from_units(candidate.node_penalty),
        priority=candidate.priority,
        band_max_distance_km=candidate.band_max_distance_km,
        transit_days=candidate.transit_days,
        lines=[
            router_pb2.CandidateLine(line_id=line_id, unit_cost=from_units(cost), available=a)
            for line_id, cost, a in zip(
                line_ids, candidate.unit_costs, candidate.available, strict=True
            )
        ],
    )


def _date(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def stock_from_proto(
    positions: Sequence[router_pb2.StockPosition], network: Network, field: str = "stock"
) -> Stock:
    """Validate given stock positions against ``network`` and index them.

    Raises :class:`InvalidArgumentError` naming every bad position field (``stock[1].sku``:
    unknown node or SKU, a negative count, a (node, SKU) pair given twice). ``available`` is
    ignored: it follows from the other counts.
    """
    v = Violations(field)
    rows = [
        json_format.MessageToDict(
            p, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for p in positions
    ]
    stock = Stock.from_rows(rows, v, network)
    v.raise_if_any()
    assert stock is not None
    return stock


def rule_version_to_proto(version: RuleVersion, *, document: bool) -> router_pb2.RuleVersion:
    """A published rule-set version as its message; the document only when ``document``."""
    msg = router_pb2.RuleVersion(
        version=version.version,
        name=version.name,
        document=version.document if document else "",
        digest=version.digest,
        published_by=version.published_by,
        reason=version.reason,
        lint=version.lint,
    )
    msg.published_at.FromDatetime(version.published_at)
    return msg


def rule_activation_to_proto(activation: RuleActivation) -> router_pb2.RuleActivation:
    """One entry of the activation history as its message."""
    msg = router_pb2.RuleActivation(
        seq=activation.seq,
        version=activation.version,
        action=activation.action,
        by=activation.by,
        reason=activation.reason,
        previous=activation.previous,
    )
    msg.at.FromDatetime(activation.at)
    return msg


def lint_finding_to_proto(finding: Finding) -> router_pb2.LintFinding:
    """A lint finding as its message."""
    return router_pb2.LintFinding(
        code=finding.code,
        severity=router_pb2.LintSeverity.Value(f"LINT_SEVERITY_{finding.severity.name}"),
        path=finding.path,
        message=finding.message,
    )


def golden_result_to_proto(result: CaseResult) -> router_pb2.GoldenCaseResult:
    """One golden case's result as its message, with its plan (no explanation)."""
    return router_pb2.GoldenCaseResult(
        name=result.name,
        passed=result.passed,
        failures=list(result.failures),
        plan=plan_to_proto(result.plan, explain=ExplainLevel.NONE),
    )
