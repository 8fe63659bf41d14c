"""How the gateway runs: where the gRPC service is and the limits it enforces.

The one source of the gateway's defaults: :class:`IntakeConfig` and ``router intake``'s
flags (:mod:`router.intake.command`) both read them here. Nothing heavy is imported, so
the command line can show them without loading the web stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TARGET = "127.0.0.1:50051"
"""The gRPC service's address when none is given (``router serve``'s default port)."""
DEFAULT_DEADLINE_S = 5.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_MAX_BATCH_ORDERS = 1000
DEFAULT_METRICS_PORT = 9465
"""The gateway's metrics port (``--metrics-port``), next to the service's 9464."""
MAX_HEAD_BYTES = 64 * 1024
"""The longest request line and headers together; a longer request is refused (400) and
its connection closed before anything of it is read further."""


@dataclass(frozen=True)
class IntakeConfig:
    """How the gateway runs: where the gRPC service is and the limits it enforces."""

    target: str = DEFAULT_TARGET
    deadline_s: float = DEFAULT_DEADLINE_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_batch_orders: int = DEFAULT_MAX_BATCH_ORDERS
    geocoder: str | None = None
    geocoder_user_agent: str | None = None
    service_ca: Path | None = None
    """CA to verify the gRPC service by (its TLS); None: plaintext to the service."""
    service_cert: Path | None = None
    """Client certificate the gateway presents to the service (mTLS), with service_key."""
    service_key: Path | None = None
    metrics_port: int | None = None
    """Where ``/metrics`` is served (``--metrics-port``, default :data:`DEFAULT_METRICS_PORT`
    from the command line); None: nowhere."""
    metrics_host: str = "127.0.0.1"
    otlp_endpoint: str | None = None
    """Where spans are exported over OTLP/HTTP; None: the standard variables decide."""
