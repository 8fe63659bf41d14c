"""The HTTP/JSON intake gateway: FastAPI in front of the gRPC router, holding no routing logic.

Bodies are the proto messages in the proto3 JSON mapping (lowerCamelCase or original field
names in, lowerCamelCase out). Each request is parsed into its proto message
(:mod:`~router.intake.protojson`), its ship-to addresses get coordinates
(:mod:`~router.intake.addresses`), and it is forwarded over one ``grpc.aio`` channel with
the request's deadline (:mod:`~router.intake.gateway`, :mod:`~router.intake.routes`;
batches: :mod:`~router.intake.batch`). Errors of every kind are answered in the
``google.rpc.Status`` JSON shape of :mod:`router.intake.errors`; the OpenAPI document is
:mod:`router.intake.openapi`'s.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import start_http_server
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from models.errors import FieldViolation
from router.intake.config import MAX_HEAD_BYTES, IntakeConfig
from router.intake.errors import (
    GatewayError,
    detail_json,
    internal,
    invalid_argument,
    status_name_of_http,
)
from router.intake.gateway import Gateway, forward_authorization
from router.intake.observe import PROBES, HttpMetrics, ObserveMiddleware, probes
from router.intake.openapi import openapi_document
from router.intake.routes import router
from router.telemetry import configure_tracing

logger = logging.getLogger(__name__)


def create_app(config: IntakeConfig) -> FastAPI:
    """The gateway app for ``config``; the gRPC channel opens when the app starts."""
    gateway = Gateway(config)  # a bad --geocoder raises here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway.connect():
            yield

    app = FastAPI(
        title="order router intake",
        version="1",
        description="HTTP/JSON in front of the router.v1 gRPC services; see docs/intake.md.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.metrics = HttpMetrics()
    app.add_middleware(InFlightLimit, limit=config.max_in_flight)
    app.middleware("http")(forward_authorization)
    app.add_middleware(ObserveMiddleware, metrics=app.state.metrics)  # outermost: sees all
    _handle_errors(app)
    app.include_router(router)
    app.include_router(probes)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    # A server span per request (the caller's traceparent its parent), around everything.
    FastAPIInstrumentor.instrument_app(app, excluded_urls=",".join(PROBES))
    return app


def _handle_errors(app: FastAPI) -> None:
    """Answer every error, of the gateway, of FastAPI or unexpected, as google.rpc.Status."""

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        violations = []
        for item in exc.errors():
            loc = [str(part) for part in item.get("loc", ())]
            path = ".".join(loc[1:] if len(loc) > 1 else loc) or "body"
            violations.append(FieldViolation(path, str(item.get("msg", "is invalid"))))
        return error_response(invalid_argument(violations))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = grpc.StatusCode[status_name_of_http(exc.status_code)]
        error = GatewayError(code, str(exc.detail), http=exc.status_code)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(internal())


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
            await error_response(error)(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


def error_response(error: GatewayError) -> JSONResponse:
    """``error`` as its JSON response: status, body and headers."""
    return JSONResponse(error.body(), status_code=error.http, headers=error.headers)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    config: IntakeConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    tls: tuple[Path, Path] | None = None,
) -> None:
    """Run the gateway until SIGINT or SIGTERM; print its address first (port 0 is resolved).

    With ``tls`` (certificate chain, key) it serves HTTPS. Metrics are served at
    :attr:`IntakeConfig.metrics_port` (unless None), traces exported when
    :attr:`IntakeConfig.otlp_endpoint` (or the standard variables) says where.
    """
    import uvicorn

    app = create_app(config)  # a bad --geocoder fails here, before anything is printed
    tracing = configure_tracing("router-intake", config.otlp_endpoint)
    if config.metrics_port is not None:
        httpd, _ = start_http_server(
            config.metrics_port, addr=config.metrics_host, registry=app.state.metrics.registry
        )
        logger.info("metrics at http://%s:%d/metrics", config.metrics_host, httpd.server_port)
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    address = f"{host}:{bound_port}"
    print(usage(address, config, https=tls is not None), flush=True)
    cert, key = tls if tls is not None else (None, None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            timeout_graceful_shutdown=5,
            ssl_certfile=cert,
            ssl_keyfile=key,
            http="h11",  # the parser the head limit applies to (httptools has none)
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            access_log=False,  # ObserveMiddleware logs each request, as JSON
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        tracing.shutdown()  # the spans still buffered go out


def usage(address: str, config: IntakeConfig, *, https: bool = False) -> str:
    """The first line names the address (last word); then where to read about the API."""
    url = f"{'https' if https else 'http'}://{address}"
    return "\n".join(
        [
            f"router intake (HTTP) listening on {address}",
            f"Forwarding to the gRPC service at {config.target}; OpenAPI: {url}/openapi.json",
            f"Try: curl -s '{url}/v1/stock?sku=SKU-1'",
            'A server with authentication on wants: -H "Authorization: Bearer $ROUTER_TOKEN"',
        ]
    )
