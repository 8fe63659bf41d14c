"""The gateway's routes: each parses its body, forwards it over gRPC and answers its reply.

Every handler receives the app's :class:`~router.intake.gateway.Gateway` as a typed
dependency; none holds routing logic.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.concurrency import run_in_threadpool

from models.reservation import MAX_PAGE_SIZE
from router.intake.batch import BATCH_REQUEST_ID_OVERHEAD, batch_request_id, rewrite_paths
from router.intake.errors import GatewayError, invalid_field
from router.intake.gateway import (
    Gateway,
    GatewayDep,
    answer,
    check_request_id,
    deadline_exceeded,
    idempotency_key,
)
from router.intake.openapi import batch_body, body, responses
from router.intake.protojson import json_object, parse, pop_either
from router.intake.schemas import TIMESTAMP
from router.service.limits import ID_BYTES, MAX_TTL_S, REQUEST_ID_BYTES
from router.v1 import router_pb2

router = APIRouter()

Timeout = Annotated[
    float | None,
    Header(
        alias="X-Request-Timeout",
        gt=0,
        allow_inf_nan=False,
        description="Seconds this request may take; lowers the gateway's --deadline.",
    ),
]
"""The X-Request-Timeout header: seconds, lowering the gateway's deadline."""
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="The request_id of the call: a retry with the same key is safe.",
    ),
]
"""The Idempotency-Key header: the request_id of the call it is sent with."""


@router.post(
    "/v1/orders:plan",
    summary="Plan one order (no side effects)",
    openapi_extra=body("PlanOrderRequest"),
    responses=responses("PlanOrderResponse"),
)
async def plan_order(
    request: Request, gateway: GatewayDep, timeout: Timeout = None
) -> JSONResponse:
    """PlanOrder: the body is a PlanOrderRequest."""
    end = gateway.deadline(timeout)
    fields = await run_in_threadpool(json_object, await gateway.read_body(request, end))
    message = await gateway.prepare(fields, router_pb2.PlanOrderRequest, end)
    return answer(await gateway.call(gateway.routing.PlanOrder, message, end))


@router.post(
    "/v1/orders:route",
    summary="Plan one order and reserve its stock (Idempotency-Key required)",
    openapi_extra=body("RouteOrderRequest"),
    responses=responses("RouteOrderResponse"),
)
async def route_order(
    request: Request, gateway: GatewayDep, key: IdempotencyKey = None, timeout: Timeout = None
) -> JSONResponse:
    """RouteOrder: the body is a RouteOrderRequest; its request_id is the Idempotency-Key."""
    end = gateway.deadline(timeout)
    request_id = idempotency_key(key)
    fields = await run_in_threadpool(json_object, await gateway.read_body(request, end))
    check_request_id(fields, request_id)
    message = await gateway.prepare(fields, router_pb2.RouteOrderRequest, end)
    return answer(await gateway.call(gateway.routing.RouteOrder, message, end))


def _reservation_route(
    action: str, rpc: str, request_cls: type[Message], summary: str = "", *, required: bool = False
) -> None:
    """``POST /v1/reservations/{reservation_id}:ACTION``, forwarded to ``RoutingService.RPC``.

    ``required``: the call needs a body (a reject names its node).
    """

    async def handler(
        request: Request,
        reservation_id: str,
        gateway: GatewayDep,
        key: IdempotencyKey = None,
        timeout: Timeout = None,
    ) -> JSONResponse:
        method = getattr(gateway.routing, rpc)
        reply = await _reservation_call(
            gateway, request, reservation_id, key, timeout, request_cls, method
        )
        return answer(reply)

    router.add_api_route(
        f"/v1/reservations/{{reservation_id}}:{action}",
        handler,
        methods=["POST"],
        name=f"{action}_reservation",
        summary=summary or f"{action.capitalize()} a held reservation (Idempotency-Key required)",
        description=f"{rpc} of the reservation the path names.",
        openapi_extra=body(f"{rpc}Request", required=required),
        responses=responses(f"{rpc}Response"),
    )


_reservation_route("confirm", "ConfirmReservation", router_pb2.ConfirmReservationRequest)
_reservation_route("release", "ReleaseReservation", router_pb2.ReleaseReservationRequest)
_reservation_route(
    "reject",
    "RejectShipment",
    router_pb2.RejectShipmentRequest,
    "A node cannot ship units of a held reservation: release, correct, re-route "
    "(Idempotency-Key required)",
    required=True,
)


async def _reservation_call(
    gateway: Gateway,
    request: Request,
    reservation_id: str,
    key: str | None,
    timeout: float | None,
    cls: Any,
    method: Any,
) -> Message:
    """Confirm, release or reject: a body, the id from the path, the key as request_id."""
    end = gateway.deadline(timeout)
    request_id = idempotency_key(key)
    data = await gateway.read_body(request, end)
    fields = await run_in_threadpool(json_object, data) if data.strip() else {}
    check_request_id(fields, request_id)
    given = pop_either(fields, "reservation_id", "reservationId")
    if given not in (None, "", reservation_id):
        raise invalid_field("reservation_id", f"is {given!r} but the path names it")
    fields["reservation_id"] = reservation_id
    message = await run_in_threadpool(parse, fields, cls)
    return await gateway.call(method, message, end)


@router.get(
    "/v1/reservations/{reservation_id}",
    summary="One reservation by id, in whatever status",
    responses=responses("GetReservationResponse"),
)
async def get_reservation(
    reservation_id: str, gateway: GatewayDep, timeout: Timeout = None
) -> JSONResponse:
    """GetReservation of the reservation the path names."""
    end = gateway.deadline(timeout)
    message = router_pb2.GetReservationRequest(reservation_id=reservation_id)
    return answer(await gateway.call(gateway.routing.GetReservation, message, end))


ReservationStatusName = Literal["held", "confirmed", "released", "expired"]


@router.get(
    "/v1/reservations",
    summary="Reservations by order, node, status, expiry or passed ship date, page by page",
    responses=responses("ListReservationsResponse"),
)
async def list_reservations(
    gateway: GatewayDep,
    order_id: Annotated[str, Query()] = "",
    node_id: Annotated[str, Query()] = "",
    status: Annotated[ReservationStatusName | None, Query()] = None,
    expiring_within_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_TTL_S,
            allow_inf_nan=False,
            description="HELD ones lapsing within these seconds",
        ),
    ] = None,
    past_ship_date: Annotated[bool, Query(description="HELD ones whose ship date passed")] = False,
    page_size: Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)] = 0,
    page_token: Annotated[str, Query()] = "",
    timeout: Timeout = None,
) -> JSONResponse:
    """ListReservations with the query's filters (the status timers: expiring, late)."""
    end = gateway.deadline(timeout)
    message = router_pb2.ListReservationsRequest(
        order_id=order_id,
        node_id=node_id,
        past_ship_date=past_ship_date,
        page_size=page_size,
        page_token=page_token,
    )
    if status is not None:
        message.status = router_pb2.ReservationStatus.Value(f"RESERVATION_STATUS_{status.upper()}")
    if expiring_within_s is not None:
        message.expiring_within.FromTimedelta(timedelta(seconds=expiring_within_s))
    return answer(await gateway.call(gateway.routing.ListReservations, message, end))


@router.get(
    "/v1/decisions/{decision_id}",
    summary="One logged decision by id, with everything it was decided from",
    responses=responses("GetDecisionResponse"),
)
async def get_decision(
    decision_id: str, gateway: GatewayDep, timeout: Timeout = None
) -> JSONResponse:
    """GetDecision of the decision the path names."""
    end = gateway.deadline(timeout)
    message = router_pb2.GetDecisionRequest(decision_id=decision_id)
    return answer(await gateway.call(gateway.routing.GetDecision, message, end))


SolveStatusName = Literal["optimal", "feasible", "infeasible", "no_solution", "rejected"]
DecisionKindName = Literal["route", "plan", "reroute"]
Instant = Annotated[
    str | None,
    Query(
        pattern=f"^{TIMESTAMP}$",
        description='RFC 3339 with T and Z or an offset, e.g. "2026-11-20T15:00:00Z"',
    ),
]
"""A query parameter that is a Timestamp, spelled as in bodies (docs/intake.md, Limits)."""


@router.get(
    "/v1/decisions",
    summary="Logged decisions by order, reservation, node, status, kind and time, newest first",
    responses=responses("ListDecisionsResponse"),
)
async def list_decisions(
    gateway: GatewayDep,
    order_id: Annotated[str, Query()] = "",
    # As long as a reservation id may be (the schema states ID_BYTES for this name).
    reservation_id: Annotated[str, Query(max_length=ID_BYTES)] = "",
    node_id: Annotated[str, Query(description="decisions whose plan ships from it")] = "",
    status: Annotated[SolveStatusName | None, Query()] = None,
    kind: Annotated[DecisionKindName | None, Query()] = None,
    decided_from: Instant = None,
    decided_before: Instant = None,
    page_size: Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)] = 0,
    page_token: Annotated[str, Query()] = "",
    timeout: Timeout = None,
) -> JSONResponse:
    """ListDecisions with the query's filters (without the decisions' inputs)."""
    end = gateway.deadline(timeout)
    message = router_pb2.ListDecisionsRequest(
        order_id=order_id,
        reservation_id=reservation_id,
        node_id=node_id,
        page_size=page_size,
        page_token=page_token,
    )
    if status is not None:
        message.status = router_pb2.SolveStatus.Value(f"SOLVE_STATUS_{status.upper()}")
    if kind is not None:
        message.kind = router_pb2.DecisionKind.Value(f"DECISION_KIND_{kind.upper()}")
    for name, value in (("decided_from", decided_from), ("decided_before", decided_before)):
        if value is not None:
            try:
                getattr(message, name).FromJsonString(value)
            except ValueError:
                raise invalid_field(name, f"{value!r} is not a valid RFC 3339 instant") from None
    return answer(await gateway.call(gateway.routing.ListDecisions, message, end))


@router.post(
    "/v1/decisions/{decision_id}:replay",
    summary="Solve a logged decision again; with compare_now, also what the order gets now",
    description="ReplayDecision of the decision the path names. No side effects.",
    openapi_extra=body("ReplayDecisionRequest", required=False),
    responses=responses("ReplayDecisionResponse"),
)
async def replay_decision(
    request: Request,
    decision_id: str,
    gateway: GatewayDep,
    compare_now: Annotated[
        bool | None, Query(description="as the body's compareNow; the two must agree")
    ] = None,
    timeout: Timeout = None,
) -> JSONResponse:
    """ReplayDecision: an optional body, the id from the path, compare_now from either."""
    end = gateway.deadline(timeout)
    data = await gateway.read_body(request, end)
    fields = await run_in_threadpool(json_object, data) if data.strip() else {}
    given = pop_either(fields, "decision_id", "decisionId")
    if given not in (None, "", decision_id):
        raise invalid_field("decision_id", f"is {given!r} but the path names it")
    fields["decision_id"] = decision_id
    message = await run_in_threadpool(parse, fields, router_pb2.ReplayDecisionRequest)
    in_body = "compare_now" in fields or "compareNow" in fields
    if compare_now is not None and in_body and message.compare_now != compare_now:
        raise invalid_field("compare_now", "the query and the body disagree")
    if compare_now is not None:
        message.compare_now = compare_now
    return answer(await gateway.call(gateway.routing.ReplayDecision, message, end))


@router.get(
    "/v1/stock",
    summary="Live stock positions, optionally of some SKUs and nodes",
    responses=responses("GetStockResponse"),
)
async def get_stock(
    gateway: GatewayDep,
    sku: Annotated[list[str] | None, Query(description="repeatable")] = None,
    node_id: Annotated[list[str] | None, Query(description="repeatable")] = None,
    timeout: Timeout = None,
) -> JSONResponse:
    """GetStock of the SKUs and nodes asked for (all when none)."""
    end = gateway.deadline(timeout)
    message = router_pb2.GetStockRequest(skus=sku or [], node_ids=node_id or [])
    return answer(await gateway.call(gateway.inventory.GetStock, message, end))


@router.post(
    "/v1/orders:batch",
    summary="Plan or route many orders (JSON lines or CSV); one result per order",
    openapi_extra=batch_body(),
    responses=responses("BatchResponse"),
)
async def batch(
    request: Request,
    gateway: GatewayDep,
    mode: Annotated[Literal["plan", "route"], Query()] = "plan",
    explain: Annotated[bool, Query()] = False,
    explain_level: Annotated[Literal["none", "summary", "full"] | None, Query()] = None,
    accept: Annotated[Literal["proven", "within_gap", "any"] | None, Query()] = None,
    max_gap: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    key: IdempotencyKey = None,
    timeout: Timeout = None,
) -> JSONResponse:
    """Each order of the batch planned (or routed) in turn; one result per order, in order."""
    end = gateway.deadline(timeout)
    # A key is checked whenever it is sent, as the schema states it; only routing uses it.
    checked = idempotency_key(key) if key is not None or mode == "route" else None
    batch_key = checked if mode == "route" else None
    # The request fields every order is sent with, in their proto3 JSON form.
    fields: dict[str, Any] = {"explain": True} if explain else {}
    if explain_level is not None:
        fields["explain_level"] = f"EXPLAIN_LEVEL_{explain_level.upper()}"
    if mode == "plan" and (accept is not None or max_gap is not None):
        raise invalid_field("accept" if accept is not None else "max_gap", "needs mode=route")
    if accept is not None:
        fields["accept"] = f"PLAN_ACCEPTANCE_{accept.upper()}"
    if max_gap is not None:
        fields["max_gap"] = max_gap
    orders = await gateway.read_batch(request, end)
    results = []
    seen: set[str] = set()
    for order in orders:
        result: dict[str, Any] = {"orderId": order.order_id}
        try:
            if time.monotonic() >= end:
                raise deadline_exceeded("before this order was sent")
            if order.error is not None:
                raise order.error
            assert order.raw is not None
            if batch_key is not None and order.order_id in seen:
                raise invalid_field("order.order_id", "appears twice in the batch")
            seen.add(order.order_id)
            request_id = None if batch_key is None else batch_request_id(batch_key, order.order_id)
            reply = await _one(gateway, {"order": order.raw, **fields}, request_id, end)
            result["httpStatus"] = 200
            result.update(json_format.MessageToDict(reply))
        except GatewayError as error:
            failed = rewrite_paths(error, order.rewrite)
            result["httpStatus"] = failed.http
            result["error"] = failed.error()
        results.append(result)
    return JSONResponse({"results": results})


async def _one(
    gateway: Gateway, fields: dict[str, Any], request_id: str | None, end: float
) -> Message:
    """One order of a batch: routed under ``request_id`` when the batch routes, else planned."""
    if request_id is None:
        message: Message = await gateway.prepare(fields, router_pb2.PlanOrderRequest, end)
        return await gateway.call(gateway.routing.PlanOrder, message, end)
    if len(request_id.encode()) > REQUEST_ID_BYTES:
        longest = REQUEST_ID_BYTES - BATCH_REQUEST_ID_OVERHEAD
        raise invalid_field("order.order_id", f"is longer than {longest} bytes")
    fields["request_id"] = request_id
    message = await gateway.prepare(fields, router_pb2.RouteOrderRequest, end)
    return await gateway.call(gateway.routing.RouteOrder, message, end)
