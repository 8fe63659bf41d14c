"""The HTTP/JSON intake gateway: FastAPI in front of the gRPC router, holding no routing logic.

Bodies are the proto messages in the proto3 JSON mapping (lowerCamelCase or original field
names in, lowerCamelCase out). Each request is parsed into its proto message, its ship-to
addresses get coordinates (:mod:`router.intake.addresses`), and it is forwarded over one
``grpc.aio`` channel with the request's deadline. Errors of every kind are answered in the
``google.rpc.Status`` JSON shape of :mod:`router.intake.errors`.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import grpc
import grpc.aio
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from models.errors import FieldViolation, Violations
from router.intake import addresses, schemas
from router.intake.config import IntakeConfig
from router.intake.errors import (
    GatewayError,
    detail_json,
    from_rpc_error,
    internal,
    invalid_argument,
    invalid_field,
    parse_error_description,
    status_name_of_http,
    unavailable,
)
from router.v1 import router_pb2, router_pb2_grpc

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

MAX_REQUEST_ID_CHARS = 200
"""The longest Idempotency-Key, and the longest request_id a batch order is routed under."""
GRPC_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 5000),
]

JSONL_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json-lines",
    }
)
CSV_COLUMNS = (
    "order_id",
    "created_at",
    "service",
    "latitude",
    "longitude",
    "country",
    "postal_code",
    "region",
    "sku",
    "quantity",
    "line_id",
    "unit_price",
)
"""The columns of a batch CSV, one row per order line; rows of one order_id form one order."""
REQUIRED_CSV_COLUMNS = ("order_id", "sku", "quantity")


Timeout = Annotated[
    float | None,
    Header(
        alias="X-Request-Timeout",
        gt=0,
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


@dataclass
class _Stubs:
    routing: Any = None
    inventory: Any = None


# ---------------------------------------------------------------------------------------------
# Back-pressure


class InFlightLimit:
    """At most ``limit`` API requests at once; the next one is 429 at once, Retry-After: 1."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.count = 0  # the event loop is single-threaded: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 429 when full, else count the request while it runs."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.count >= self.limit:
            retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1))
            error = GatewayError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self.limit} requests in flight already; retry after 1 s",
                [detail_json(retry)],
                headers={"Retry-After": "1"},
            )
            await _error_response(error)(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


def _error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.http, headers=error.headers)


# ---------------------------------------------------------------------------------------------
# Parsing


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _is_plain_message(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return (
        mt is not None
        and not mt.full_name.startswith("google.protobuf.")
        and not mt.GetOptions().map_entry
    )


def _locate(value: Any, descriptor: Any, path: str, out: list[FieldViolation]) -> None:
    """Append a violation, with its field path, for every part of ``value`` ParseDict refuses."""
    if not isinstance(value, dict):
        kind = type(value).__name__
        out.append(FieldViolation(path or "body", f"must be a JSON object, got {kind}"))
        return
    by_name: dict[str, FieldDescriptor] = {}
    for known in descriptor.fields:
        by_name[known.name] = known
        by_name[known.json_name] = known
    for key, item in value.items():
        fd = by_name.get(key)
        sub = f"{path}.{fd.name if fd else key}" if path else (fd.name if fd else key)
        if fd is None:
            out.append(FieldViolation(sub, f"is not a field of {descriptor.name}"))
            continue
        if item is None:
            continue
        if _is_plain_message(fd):
            assert fd.message_type is not None
            if fd.is_repeated:
                if not isinstance(item, list):
                    out.append(FieldViolation(sub, "must be a JSON array"))
                    continue
                for i, element in enumerate(item):
                    _locate(element, fd.message_type, f"{sub}[{i}]", out)
            else:
                _locate(item, fd.message_type, sub, out)
            continue
        try:
            json_format.ParseDict({key: item}, _message_class(descriptor)())
        except json_format.ParseError as error:
            out.append(FieldViolation(sub, parse_error_description(str(error))))


def parse(value: dict[str, Any], cls: type[M], prefix: str = "") -> M:
    """``value`` (proto3 JSON) as a ``cls``; INVALID_ARGUMENT naming each bad field if not."""
    try:
        return json_format.ParseDict(value, cls())
    except RecursionError:
        raise invalid_field(prefix or "body", "nested too deeply") from None
    except json_format.ParseError as error:
        found: list[FieldViolation] = []
        try:
            _locate(value, cls.DESCRIPTOR, prefix, found)
        except RecursionError:
            raise invalid_field(prefix or "body", "nested too deeply") from None
        if not found:
            found.append(FieldViolation(prefix or "body", parse_error_description(str(error))))
        raise invalid_argument(found) from None


def _json_object(data: bytes, field: str = "body") -> dict[str, Any]:
    if not data.strip():
        raise invalid_field(field, "is empty; expected a JSON object")
    try:
        value = json.loads(data)
    except RecursionError:
        raise invalid_field(field, "nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_field(field, f"is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise invalid_field(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _pop_either(value: dict[str, Any], name: str, json_name: str) -> Any:
    """Remove the field under either spelling; the value (None when absent)."""
    found = value.pop(name, None)
    other = value.pop(json_name, None)
    return found if found is not None else other


def _idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise invalid_field("Idempotency-Key", "header is required: the request's request_id")
    key = key.strip()
    if len(key) > MAX_REQUEST_ID_CHARS:
        raise invalid_field(
            "Idempotency-Key", f"is {len(key)} characters, at most {MAX_REQUEST_ID_CHARS}"
        )
    return key


def batch_request_id(key: str, order_id: str) -> str:
    """The request_id a routed batch order is sent under: unambiguous for every key and id.

    ``batch/`` + 32 hex digits of SHA-256 of the key + ``/`` + the order_id: the key part
    has a fixed length (so no key/order_id split is ambiguous) and never contains the
    order_id's characters, and single-order keys are not expected to look like it.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"batch/{digest}/{order_id}"


BATCH_REQUEST_ID_OVERHEAD = len(batch_request_id("", ""))
"""How many characters of a batch request_id are not the order_id."""


def _check_request_id(body: dict[str, Any], key: str) -> None:
    """A body request_id must equal the Idempotency-Key; the key becomes the request_id."""
    given = _pop_either(body, "request_id", "requestId")
    if given not in (None, "", key):
        raise invalid_field(
            "request_id", f"is {given!r} but the Idempotency-Key header is {key!r}; drop it"
        )
    body["request_id"] = key


# ---------------------------------------------------------------------------------------------
# Path rewriting for batch orders

_LINE = re.compile(r"^order\.lines\[(\d+)\](?:\.(.*))?$")


def _jsonl_path(index: int) -> Callable[[str], str]:
    def rewrite(path: str) -> str:
        if path == "order" or path.startswith(("order.", "order[")):
            return f"orders[{index}]{path[len('order') :]}"
        return path

    return rewrite


def _csv_path(name: str, first: int, lines: list[int]) -> Callable[[str], str]:
    def rewrite(path: str) -> str:
        match = _LINE.match(path)
        if match and int(match.group(1)) < len(lines):
            rest = match.group(2)
            row = lines[int(match.group(1))]
            return f"{name}:{row}:{rest}" if rest else f"{name}:{row}"
        for head in ("order.ship_to.", "order."):
            if path.startswith(head):
                return f"{name}:{first}:{path[len(head) :]}"
        if path == "order":
            return f"{name}:{first}"
        return path

    return rewrite


def _rewrite(error: GatewayError, rewrite: Callable[[str], str]) -> GatewayError:
    """``error`` with every field path of its BadRequest details rewritten."""
    message = error.message
    details = []
    every: list[FieldViolation] = []
    for detail in error.details:
        violations = detail.get("fieldViolations")
        if isinstance(violations, list):
            renamed = []
            for fv in violations:
                new = rewrite(str(fv.get("field", "")))
                renamed.append({**fv, "field": new})
                every.append(FieldViolation(new, str(fv.get("description", ""))))
            detail = {**detail, "fieldViolations": renamed}
        details.append(detail)
    if every:
        message = "; ".join(str(v) for v in every)  # as invalid_argument words it
    return GatewayError(error.code, message, details, http=error.http, headers=error.headers)


# ---------------------------------------------------------------------------------------------
# The app


@dataclass
class _Order:
    """One order of a batch: its id, its proto3 JSON (None if unreadable), how to name paths."""

    order_id: str
    raw: dict[str, Any] | None
    rewrite: Callable[[str], str]
    error: GatewayError | None = None


def create_app(config: IntakeConfig) -> FastAPI:
    """The gateway app for ``config``; the gRPC channel opens when the app starts."""
    stubs = _Stubs()
    geocoder = addresses.make_geocoder(config.geocoder, config.geocoder_user_agent)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with grpc.aio.insecure_channel(
            config.target, options=GRPC_CHANNEL_OPTIONS
        ) as channel:
            stubs.routing = router_pb2_grpc.RoutingServiceStub(channel)
            stubs.inventory = router_pb2_grpc.InventoryServiceStub(channel)
            yield

    app = FastAPI(
        title="order router intake",
        version="1",
        description="HTTP/JSON in front of the router.v1 gRPC services; see docs/intake.md.",
        lifespan=lifespan,
    )
    app.add_middleware(InFlightLimit, limit=config.max_in_flight)

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        violations = []
        for item in exc.errors():
            loc = [str(part) for part in item.get("loc", ())]
            path = ".".join(loc[1:] if len(loc) > 1 else loc) or "body"
            violations.append(FieldViolation(path, str(item.get("msg", "is invalid"))))
        return _error_response(invalid_argument(violations))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = grpc.StatusCode[status_name_of_http(exc.status_code)]
        error = GatewayError(code, str(exc.detail), http=exc.status_code)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(internal())

    # -- helpers closing over config and stubs ------------------------------------------------

    def deadline(timeout: float | None) -> float:
        seconds = config.deadline_s if timeout is None else min(config.deadline_s, timeout)
        return time.monotonic() + seconds

    async def read_body(request: Request, end: float) -> bytes:
        """The body, 413 when over the limit (by Content-Length, or counted while reading).

        Reading it counts against the request's deadline: a body still arriving when the
        deadline passes is 504, so a slow sender cannot hold an in-flight slot for ever.
        """
        limit = config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(max(0.0, end - time.monotonic())):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(total, limit)
                    chunks.append(chunk)
        except TimeoutError:
            raise _deadline_exceeded("while reading the body") from None
        return b"".join(chunks)

    async def call(method: Any, request: Message, end: float) -> Message:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _deadline_exceeded()
        try:
            answer: Message = await method(request, timeout=remaining)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return answer

    async def with_coordinates(body: dict[str, Any], end: float) -> None:
        """Fill ``body["order"]``'s ship-to coordinates in place; 400 naming bad fields."""
        order = body.get("order")
        if not isinstance(order, dict):
            return
        key = "ship_to" if "ship_to" in order else "shipTo"
        ship_to = order.get(key)
        pickup = order.get("pickup_node_id") or order.get("pickupNodeId")
        if ship_to is None and pickup:
            return  # collected at a node: no address needed
        v = Violations()
        timeout = max(0.1, min(addresses.GEOCODE_TIMEOUT_S, end - time.monotonic()))
        try:
            async with asyncio.timeout(max(0.0, end - time.monotonic())):
                filled = await run_in_threadpool(
                    addresses.normalise_ship_to,
                    ship_to if ship_to is not None else {},
                    "order.ship_to",
                    v,
                    geocoder,
                    timeout=timeout,
                )
        except TimeoutError:
            raise _deadline_exceeded("while looking the address up") from None
        except addresses.GeocoderUnavailableError as error:
            logger.warning("geocoder failed: %s", error)
            raise unavailable("the geocoder is unavailable; retry later") from None
        if v:
            raise invalid_argument(v.items)
        order.pop("shipTo", None)
        order["ship_to"] = filled

    async def prepare(body: dict[str, Any], cls: type[M], end: float) -> M:
        await run_in_threadpool(parse, body, cls)  # types first: paths of ParseDict's complaints
        await with_coordinates(body, end)
        return await run_in_threadpool(parse, body, cls)

    def answer(message: Message) -> JSONResponse:
        return JSONResponse(json_format.MessageToDict(message))

    # -- endpoints ------------------------------------------------------------------------------

    @app.post(
        "/v1/orders:plan",
        summary="Plan one order (no side effects)",
        openapi_extra=_body("PlanOrderRequest"),
        responses=_responses("PlanOrderResponse"),
    )
    async def plan_order(request: Request, timeout: Timeout = None) -> JSONResponse:
        end = deadline(timeout)
        body = await run_in_threadpool(_json_object, await read_body(request, end))
        message = await prepare(body, router_pb2.PlanOrderRequest, end)
        return answer(await call(stubs.routing.PlanOrder, message, end))

    @app.post(
        "/v1/orders:route",
        summary="Plan one order and reserve its stock (Idempotency-Key required)",
        openapi_extra=_body("RouteOrderRequest"),
        responses=_responses("RouteOrderResponse"),
    )
    async def route_order(
        request: Request, key: IdempotencyKey = None, timeout: Timeout = None
    ) -> JSONResponse:
        end = deadline(timeout)
        request_id = _idempotency_key(key)
        body = await run_in_threadpool(_json_object, await read_body(request, end))
        _check_request_id(body, request_id)
        message = await prepare(body, router_pb2.RouteOrderRequest, end)
        return answer(await call(stubs.routing.RouteOrder, message, end))

    async def reservation_call(
        request: Request,
        reservation_id: str,
        key: str | None,
        timeout: float | None,
        cls: Any,
        method: Any,
    ) -> Message:
        end = deadline(timeout)
        request_id = _idempotency_key(key)
        data = await read_body(request, end)
        body = await run_in_threadpool(_json_object, data) if data.strip() else {}
        _check_request_id(body, request_id)
        given = _pop_either(body, "reservation_id", "reservationId")
        if given not in (None, "", reservation_id):
            raise invalid_field("reservation_id", f"is {given!r} but the path names it")
        body["reservation_id"] = reservation_id
        message = await run_in_threadpool(parse, body, cls)
        return await call(method, message, end)

    @app.post(
        "/v1/reservations/{reservation_id}:confirm",
        summary="Confirm a held reservation (Idempotency-Key required)",
        openapi_extra=_body("ConfirmReservationRequest", required=False),
        responses=_responses("ConfirmReservationResponse"),
    )
    async def confirm_reservation(
        request: Request, reservation_id: str, key: IdempotencyKey = None, timeout: Timeout = None
    ) -> JSONResponse:
        cls, method = router_pb2.ConfirmReservationRequest, stubs.routing.ConfirmReservation
        return answer(await reservation_call(request, reservation_id, key, timeout, cls, method))

    @app.post(
        "/v1/reservations/{reservation_id}:release",
        summary="Release a held reservation (Idempotency-Key required)",
        openapi_extra=_body("ReleaseReservationRequest", required=False),
        responses=_responses("ReleaseReservationResponse"),
    )
    async def release_reservation(
        request: Request, reservation_id: str, key: IdempotencyKey = None, timeout: Timeout = None
    ) -> JSONResponse:
        cls, method = router_pb2.ReleaseReservationRequest, stubs.routing.ReleaseReservation
        return answer(await reservation_call(request, reservation_id, key, timeout, cls, method))

    @app.get(
        "/v1/stock",
        summary="Live stock positions, optionally of some SKUs and nodes",
        responses=_responses("GetStockResponse"),
    )
    async def get_stock(
        sku: Annotated[list[str] | None, Query(description="repeatable")] = None,
        node_id: Annotated[list[str] | None, Query(description="repeatable")] = None,
        timeout: Timeout = None,
    ) -> JSONResponse:
        end = deadline(timeout)
        message = router_pb2.GetStockRequest(skus=sku or [], node_ids=node_id or [])
        return answer(await call(stubs.inventory.GetStock, message, end))

    @app.post(
        "/v1/orders:batch",
        summary="Plan or route many orders (JSON lines or CSV); one result per order",
        openapi_extra=_batch_body(),
        responses=_responses("BatchResponse"),
    )
    async def batch(
        request: Request,
        mode: Annotated[Literal["plan", "route"], Query()] = "plan",
        explain: Annotated[bool, Query()] = False,
        explain_level: Annotated[Literal["none", "summary", "full"] | None, Query()] = None,
        accept: Annotated[Literal["proven", "within_gap", "any"] | None, Query()] = None,
        max_gap: Annotated[float | None, Query()] = None,
        key: IdempotencyKey = None,
        timeout: Timeout = None,
    ) -> JSONResponse:
        end = deadline(timeout)
        batch_key = _idempotency_key(key) if mode == "route" else None
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
        orders = await read_batch(request, end)
        results = []
        seen: set[str] = set()
        for order in orders:
            result: dict[str, Any] = {"orderId": order.order_id}
            try:
                if time.monotonic() >= end:
                    raise _deadline_exceeded("before this order was sent")
                if order.error is not None:
                    raise order.error
                assert order.raw is not None
                if batch_key is not None and order.order_id in seen:
                    raise invalid_field("order.order_id", "appears twice in the batch")
                seen.add(order.order_id)
                body: dict[str, Any] = {"order": order.raw, **fields}
                if batch_key is not None:
                    body["request_id"] = batch_request_id(batch_key, order.order_id)
                    if len(body["request_id"]) > MAX_REQUEST_ID_CHARS:
                        longest = MAX_REQUEST_ID_CHARS - BATCH_REQUEST_ID_OVERHEAD
                        raise invalid_field(
                            "order.order_id", f"is longer than {longest} characters"
                        )
                    message: Message = await prepare(body, router_pb2.RouteOrderRequest, end)
                    reply = await call(stubs.routing.RouteOrder, message, end)
                else:
                    message = await prepare(body, router_pb2.PlanOrderRequest, end)
                    reply = await call(stubs.routing.PlanOrder, message, end)
                result["httpStatus"] = 200
                result.update(json_format.MessageToDict(reply))
            except GatewayError as error:
                failed = _rewrite(error, order.rewrite)
                result["httpStatus"] = failed.http
                result["error"] = failed.error()
            results.append(result)
        return JSONResponse({"results": results})

    async def read_batch(request: Request, end: float) -> list[_Order]:
        orders = await read_orders(request, end)
        if len(orders) > config.max_batch_orders:
            raise invalid_field(
                "body",
                f"has {len(orders)} orders, more than --max-batch-orders "
                f"{config.max_batch_orders}; split the batch",
                http=413,
            )
        return orders

    async def read_orders(request: Request, end: float) -> list[_Order]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media in JSONL_TYPES:
            return await run_in_threadpool(_jsonl_orders, await read_body(request, end))
        if media in ("text/csv", "application/csv"):
            data = await read_body(request, end)
            return await run_in_threadpool(_csv_orders, data, "file.csv")
        if media == "multipart/form-data":
            data = await read_body(request, end)

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": data, "more_body": False}

            async with Request(request.scope, replay).form() as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise invalid_field("file", "is required: a CSV or JSON lines upload")
                content = await upload.read()
                name = upload.filename or "file.csv"
            if name.endswith((".jsonl", ".ndjson")):
                return await run_in_threadpool(_jsonl_orders, content)
            return await run_in_threadpool(_csv_orders, content, name)
        raise invalid_field(
            "Content-Type",
            f"is {media or 'missing'}; send application/x-ndjson, text/csv or "
            "multipart/form-data with a file",
            http=415,
        )

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
                for parameter in operation.get("parameters", []):
                    _drop_null(parameter)
                    if parameter["name"] == "Idempotency-Key":
                        # as _idempotency_key checks it; required except for batches
                        parameter["required"] = not path.endswith(":batch")
                        parameter["schema"] = {
                            **parameter["schema"],
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_REQUEST_ID_CHARS,
                            "pattern": r"\S",
                        }
        components.update(schemas.openapi_components())
        components.update(_LOCAL_SCHEMAS)
        app.openapi_schema = spec
        return spec

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def _drop_null(parameter: dict[str, Any]) -> None:
    """Strip the ``null`` branch FastAPI gives optional parameters: absent is not null."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    parameter["schema"] = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


def _deadline_exceeded(when: str = "") -> GatewayError:
    text = f"Deadline Exceeded {when}" if when else "Deadline Exceeded"
    return GatewayError(grpc.StatusCode.DEADLINE_EXCEEDED, text)


def _too_large(size: int, limit: int) -> GatewayError:
    return invalid_field("body", f"is at least {size} bytes, more than {limit}", http=413)


# ---------------------------------------------------------------------------------------------
# Batch input


def _order_id(raw: Any) -> str:
    if isinstance(raw, dict):
        value = raw.get("order_id", raw.get("orderId"))
        if isinstance(value, str):
            return value
    return ""


def _jsonl_orders(data: bytes) -> list[_Order]:
    """One order per non-blank line, each a proto3 JSON Order; paths ``orders[i].…``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field("body", f"is not UTF-8: {error}") from None
    orders: list[_Order] = []
    for line in text.split("\n"):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        index = len(orders)
        rewrite = _jsonl_path(index)
        try:
            raw = json.loads(line)
        except RecursionError:
            bad = invalid_field(f"orders[{index}]", "nested too deeply")
            orders.append(_Order("", None, rewrite, bad))
            continue
        except ValueError as error:
            bad = invalid_field(f"orders[{index}]", f"is not valid JSON: {error}")
            orders.append(_Order("", None, rewrite, bad))
            continue
        if not isinstance(raw, dict):
            bad = invalid_field(f"orders[{index}]", "must be a JSON object (an Order)")
            orders.append(_Order("", None, rewrite, bad))
            continue
        orders.append(_Order(_order_id(raw), raw, rewrite))
    if not orders:
        raise invalid_field("body", "has no orders")
    return orders


def _csv_orders(data: bytes, name: str) -> list[_Order]:
    """Rows grouped by order_id into orders; paths ``NAME:LINE:column``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field(name, f"is not UTF-8: {error}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _csv_groups(reader, name)
    except csv.Error as error:
        # line_num counts the lines of the records read whole: the bad one is the next
        raise invalid_field(f"{name}:{reader.line_num + 1}", str(error)) from None


def _csv_groups(reader: csv.DictReader[str], name: str) -> list[_Order]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if missing:
        raise invalid_argument(
            FieldViolation(f"{name}:1:{c}", f"column is missing; columns: {', '.join(CSV_COLUMNS)}")
            for c in missing
        )
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    v = Violations()
    for row in reader:
        line = reader.line_num
        cells = {(k or "").strip(): (val or "").strip() for k, val in row.items() if k is not None}
        order_id = cells.get("order_id", "")
        if not order_id:
            v.add(f"{name}:{line}:order_id", "is required")
            continue
        groups.setdefault(order_id, []).append((line, cells))
    if v:
        raise invalid_argument(v.items)
    if not groups:
        raise invalid_field(name, "has no rows")
    orders = []
    for order_id, rows in groups.items():
        lines = [line for line, _ in rows]
        rewrite = _csv_path(name, lines[0], lines)
        raw, problems = _csv_order(order_id, rows, name)
        bad = invalid_argument(problems) if problems else None
        orders.append(_Order(order_id, None if problems else raw, rewrite, bad))
    return orders


def _csv_order(
    order_id: str, rows: list[tuple[int, dict[str, str]]], name: str
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The proto3 JSON Order of one order's rows, and the cells that are not numbers."""
    problems: list[FieldViolation] = []

    def number(line: int, cells: dict[str, str], column: str, kind: type) -> Any:
        text = cells.get(column, "")
        if not text:
            return None
        try:
            value = kind(text)
        except ValueError:
            problems.append(FieldViolation(f"{name}:{line}:{column}", f"is not a number: {text!r}"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(FieldViolation(f"{name}:{line}:{column}", "must be finite"))
            return None
        return value

    first_line, first = rows[0]
    ship_to: dict[str, Any] = {}
    for column in ("latitude", "longitude"):
        value = number(first_line, first, column, float)
        if value is not None:
            ship_to[column] = value
    for column in ("country", "postal_code", "region"):
        if first.get(column):
            ship_to[column] = first[column]
    order: dict[str, Any] = {"order_id": order_id, "ship_to": ship_to}
    for column in ("created_at", "service"):
        if first.get(column):
            order[column] = first[column]
    lines = []
    for k, (line, cells) in enumerate(rows):
        item: dict[str, Any] = {"line_id": cells.get("line_id") or str(k + 1)}
        if cells.get("sku"):
            item["sku"] = cells["sku"]
        quantity = number(line, cells, "quantity", int)
        if quantity is not None:
            item["quantity"] = quantity
        price = number(line, cells, "unit_price", float)
        if price is not None:
            item["unit_price"] = price
        lines.append(item)
    order["lines"] = lines
    return order, problems


# ---------------------------------------------------------------------------------------------
# OpenAPI


def _ref(name: str) -> dict[str, str]:
    return {"$ref": schemas.REF_PREFIX + name}


def _body(name: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": _ref(name)}},
        }
    }


def _batch_body() -> dict[str, Any]:
    jsonl = {"type": "string", "description": "one proto3 JSON Order per line"}
    csv_text = {"type": "string", "description": "CSV: " + ", ".join(CSV_COLUMNS)}
    upload = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": jsonl},
                "text/csv": {"schema": csv_text},
                "multipart/form-data": {"schema": upload},
            },
        }
    }


_ERROR_STATUSES = {
    400: "INVALID_ARGUMENT or FAILED_PRECONDITION: bad input; fieldViolations name each field",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS (Idempotency-Key reused with another body) or ABORTED",
    405: "UNIMPLEMENTED: no such method on this path",
    413: "INVALID_ARGUMENT: body larger than --max-body-bytes, or a batch of more than "
    "--max-batch-orders orders",
    415: "INVALID_ARGUMENT: a batch Content-Type other than JSON lines, CSV or multipart",
    429: "more than --max-in-flight requests at once; Retry-After: 1",
    503: "UNAVAILABLE: the gRPC service (or the geocoder) is down; Retry-After: 1",
    504: "DEADLINE_EXCEEDED",
}


def _responses(name: str) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": _ref(name)}}}
    }
    for status, text in _ERROR_STATUSES.items():
        out[status] = {
            "description": text,
            "content": {"application/json": {"schema": _ref("ErrorResponse")}},
        }
    return out


_LOCAL_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object",
        "description": "Every error body: google.rpc.Status in JSON.",
        "required": ["error"],
        "properties": {"error": _ref("Error")},
    },
    "Error": {
        "type": "object",
        "description": "google.rpc.Status in JSON, its code being the HTTP status.",
        "required": ["code", "message", "status", "details"],
        "properties": {
            "code": {"type": "integer", "description": "HTTP status"},
            "message": {"type": "string"},
            "status": {"type": "string", "description": "gRPC status code name"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": True,
                },
            },
        },
    },
    "BatchResult": {
        "type": "object",
        "description": "One order's outcome: the PlanOrderResponse or RouteOrderResponse "
        "fields (plan, reservation, attempts) or error.",
        "required": ["orderId", "httpStatus"],
        "properties": {
            "orderId": {"type": "string"},
            "httpStatus": {"type": "integer"},
            "plan": _ref("Plan"),
            "reservation": _ref("Reservation"),
            "attempts": {"type": "integer"},
            "error": _ref("Error"),
        },
    },
    "BatchResponse": {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("BatchResult")}},
    },
}


# ---------------------------------------------------------------------------------------------
# Running


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(config: IntakeConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the gateway until SIGINT or SIGTERM; print its address first (port 0 is resolved)."""
    import uvicorn

    app = create_app(config)  # a bad --geocoder fails here, before anything is printed
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    address = f"{host}:{bound_port}"
    print(usage(address, config), flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


def usage(address: str, config: IntakeConfig) -> str:
    """The first line names the address (last word); then where to read about the API."""
    url = f"http://{address}"
    return "\n".join(
        [
            f"router intake (HTTP) listening on {address}",
            f"Forwarding to the gRPC service at {config.target}; OpenAPI: {url}/openapi.json",
            f"Try: curl -s '{url}/v1/stock?sku=SKU-1'",
        ]
    )
