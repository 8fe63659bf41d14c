"""What every route of the gateway shares: the gRPC stubs, the limits, deadlines and bodies.

One :class:`Gateway` per app, made by :func:`~router.intake.app.create_app` and opened
with the app (:meth:`Gateway.connect`, one ``grpc.aio`` channel); routes receive it as a
typed dependency (:data:`GatewayDep`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

import grpc
import grpc.aio
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from models.errors import Violations
from router.intake import addresses
from router.intake.batch import JSONL_TYPES, BatchOrder, csv_orders, jsonl_orders
from router.intake.config import IntakeConfig
from router.intake.errors import (
    GatewayError,
    from_rpc_error,
    invalid_argument,
    invalid_field,
    unavailable,
)
from router.intake.protojson import parse, pop_either
from router.service.limits import REQUEST_ID_BYTES
from router.v1 import router_pb2_grpc

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

GRPC_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 5000),
]


AUTHORIZATION: ContextVar[str] = ContextVar("authorization", default="")
"""The HTTP request's ``Authorization`` header, passed on to the service with every call:
the service authenticates and authorises (docs/security.md); the gateway holds no secrets."""


MAX_AUTHORIZATION_CHARS = 4096
"""The longest ``Authorization`` header passed on (a token is about 70 characters)."""


async def forward_authorization(request: Request, call_next: Any) -> Any:
    """Middleware: keep the request's ``Authorization`` header for :meth:`Gateway.call`.

    A header gRPC could not carry (not printable ASCII, or over
    :data:`MAX_AUTHORIZATION_CHARS`) is answered 401 here: gRPC would fail the call with an
    error that is not an RPC status.
    """
    header = request.headers.get("authorization", "")
    if len(header) > MAX_AUTHORIZATION_CHARS or not all(" " <= c <= "~" for c in header):
        refused = GatewayError(
            grpc.StatusCode.UNAUTHENTICATED,
            f"authorization: must be printable ASCII of at most {MAX_AUTHORIZATION_CHARS} "
            "characters",
        )
        return JSONResponse(refused.body(), status_code=refused.http)
    token = AUTHORIZATION.set(header)
    try:
        return await call_next(request)
    finally:
        AUTHORIZATION.reset(token)


class Gateway:
    """The gateway's configuration, geocoder and gRPC stubs, and the steps routes share."""

    def __init__(self, config: IntakeConfig) -> None:
        """A gateway for ``config``; a bad ``geocoder`` raises ValueError here."""
        self.config = config
        self.geocoder = addresses.make_geocoder(config.geocoder, config.geocoder_user_agent)
        self._routing: router_pb2_grpc.RoutingServiceAsyncStub | None = None
        self._inventory: router_pb2_grpc.InventoryServiceAsyncStub | None = None
        self._health: health_pb2_grpc.HealthStub | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        """Open the channel to the gRPC service for as long as the app runs.

        Every call carries the current trace context (W3C ``traceparent``) and gets a client
        span: the OpenTelemetry gRPC client instrumentation.
        """
        c = self.config
        traced = aio_client_interceptors()  # type: ignore[no-untyped-call]
        if c.service_ca is not None or c.service_cert is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=None if c.service_ca is None else c.service_ca.read_bytes(),
                private_key=None if c.service_key is None else c.service_key.read_bytes(),
                certificate_chain=None if c.service_cert is None else c.service_cert.read_bytes(),
            )
            opened = grpc.aio.secure_channel(
                c.target, credentials, options=GRPC_CHANNEL_OPTIONS, interceptors=traced
            )
        else:
            opened = grpc.aio.insecure_channel(
                c.target, options=GRPC_CHANNEL_OPTIONS, interceptors=traced
            )
        async with opened as channel:
            self._routing = router_pb2_grpc.RoutingServiceStub(channel)
            self._inventory = router_pb2_grpc.InventoryServiceStub(channel)
            self._health = health_pb2_grpc.HealthStub(channel)
            yield

    @property
    def routing(self) -> router_pb2_grpc.RoutingServiceAsyncStub:
        """The RoutingService stub (once the app has started)."""
        assert self._routing is not None, "the app has not started"
        return self._routing

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        """The service's standard health check stub (once the app has started)."""
        assert self._health is not None, "the app has not started"
        return self._health

    @property
    def inventory(self) -> router_pb2_grpc.InventoryServiceAsyncStub:
        """The InventoryService stub (once the app has started)."""
        assert self._inventory is not None, "the app has not started"
        return self._inventory

    def deadline(self, timeout: float | None) -> float:
        """When a request must be answered: the gateway's deadline, or the header's if sooner."""
        limit = self.config.deadline_s
        seconds = limit if timeout is None else min(limit, timeout)
        return time.monotonic() + seconds

    async def read_body(self, request: Request, end: float) -> bytes:
        """The body, 413 when over the limit (by Content-Length, or counted while reading).

        Reading it counts against the request's deadline: a body still arriving when the
        deadline passes is 504, so a slow sender cannot hold an in-flight slot for ever.
        """
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(int(declared), limit)
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(max(0.0, end - time.monotonic())):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise too_large(total, limit)
                    chunks.append(chunk)
        except TimeoutError:
            raise deadline_exceeded("while reading the body") from None
        return b"".join(chunks)

    async def call(self, method: Any, request: Message, end: float) -> Message:
        """``method(request)`` with the time left; its RPC error as a gateway error."""
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise deadline_exceeded()
        credentials = AUTHORIZATION.get()
        metadata = (("authorization", credentials),) if credentials else None
        try:
            answer: Message = await method(request, timeout=remaining, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return answer

    async def with_coordinates(self, body: dict[str, Any], end: float) -> None:
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
                    self.geocoder,
                    timeout=timeout,
                )
        except TimeoutError:
            raise deadline_exceeded("while looking the address up") from None
        except addresses.GeocoderUnavailableError as error:
            logger.warning("geocoder failed: %s", error)
            raise unavailable("the geocoder is unavailable; retry later") from None
        if v:
            raise invalid_argument(v.items)
        order.pop("shipTo", None)
        order["ship_to"] = filled

    async def prepare(self, body: dict[str, Any], cls: type[M], end: float) -> M:
        """``body`` as a ``cls`` with its ship-to located; 400 naming every bad field."""
        await run_in_threadpool(parse, body, cls)  # types first: paths of ParseDict's complaints
        await self.with_coordinates(body, end)
        return await run_in_threadpool(parse, body, cls)

    async def read_batch(self, request: Request, end: float) -> list[BatchOrder]:
        """The batch's orders; 413 beyond ``max_batch_orders``."""
        orders = await self._read_orders(request, end)
        limit = self.config.max_batch_orders
        if len(orders) > limit:
            raise invalid_field(
                "body",
                f"has {len(orders)} orders, more than --max-batch-orders {limit}; split the batch",
                http=413,
            )
        return orders

    async def _read_orders(self, request: Request, end: float) -> list[BatchOrder]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media in JSONL_TYPES:
            return await run_in_threadpool(jsonl_orders, await self.read_body(request, end))
        if media in ("text/csv", "application/csv"):
            data = await self.read_body(request, end)
            return await run_in_threadpool(csv_orders, data, "file.csv")
        if media == "multipart/form-data":
            data = await self.read_body(request, end)

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": data, "more_body": False}

            async with Request(request.scope, replay).form() as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise invalid_field("file", "is required: a CSV or JSON lines upload")
                content = await upload.read()
                name = upload.filename or "file.csv"
            if name.endswith((".jsonl", ".ndjson")):
                return await run_in_threadpool(jsonl_orders, content)
            return await run_in_threadpool(csv_orders, content, name)
        raise invalid_field(
            "Content-Type",
            f"is {media or 'missing'}; send application/x-ndjson, text/csv or "
            "multipart/form-data with a file",
            http=415,
        )


def gateway_of(request: Request) -> Gateway:
    """The app's :class:`Gateway` (the dependency routes declare with :data:`GatewayDep`)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]
"""A route parameter that receives the app's :class:`Gateway`."""


def answer(message: Message) -> JSONResponse:
    """A reply message as a 200 JSON response (proto3 JSON, lowerCamelCase)."""
    return JSONResponse(json_format.MessageToDict(message))


def idempotency_key(key: str | None) -> str:
    """The Idempotency-Key header, required and at most ``REQUEST_ID_BYTES`` bytes (UTF-8)."""
    if key is None or not key.strip():
        raise invalid_field("Idempotency-Key", "header is required: the request's request_id")
    key = key.strip()
    size = len(key.encode())
    if size > REQUEST_ID_BYTES:
        raise invalid_field("Idempotency-Key", f"is {size} bytes, at most {REQUEST_ID_BYTES}")
    return key


def check_request_id(body: dict[str, Any], key: str) -> None:
    """A body request_id must equal the Idempotency-Key; the key becomes the request_id."""
    given = pop_either(body, "request_id", "requestId")
    if given not in (None, "", key):
        raise invalid_field(
            "request_id", f"is {given!r} but the Idempotency-Key header is {key!r}; drop it"
        )
    body["request_id"] = key


def deadline_exceeded(when: str = "") -> GatewayError:
    """DEADLINE_EXCEEDED (504), saying what the gateway was doing when time ran out."""
    text = f"Deadline Exceeded {when}" if when else "Deadline Exceeded"
    return GatewayError(grpc.StatusCode.DEADLINE_EXCEEDED, text)


def too_large(size: int, limit: int) -> GatewayError:
    """413: a body of at least ``size`` bytes, over ``limit``."""
    return invalid_field("body", f"is at least {size} bytes, more than {limit}", http=413)
