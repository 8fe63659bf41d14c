"""Logs and traces of a router process (``router serve``, ``router intake``): set up once.

Logs are one JSON object per line by default (``--log-format json``; ``text`` for a person
at a terminal, ``auto`` picks by whether stderr is one): the fields of :class:`JsonFormatter`
plus whatever a call passes in ``extra`` (the request lines of
:mod:`router.service.observe` and of the gateway).

Traces: the process gets an OpenTelemetry SDK tracer provider, so every request has a trace
id (carried into the log lines, and from the gateway to the service in the W3C
``traceparent`` header); spans leave the process only when an OTLP endpoint is configured
(``--otlp-endpoint`` or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Nothing is exported by default. docs/operations.md
says more.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import json
import logging
import logging.handlers
import os
import queue
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

LOG_FORMATS = ("auto", "json", "text")
"""The choices of ``--log-format``."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""The line of ``--log-format text``."""
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""The standard variables that configure the OTLP exporter (either turns export on)."""

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, the extras, exception.

    ``time`` is UTC ISO 8601 with milliseconds; the trace and span ids of the span current
    when the line was logged are added as ``trace_id``/``span_id`` unless the line carries
    its own; values JSON cannot hold are written as their ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if "trace_id" not in line:
            line.update(current_trace_ids())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def current_trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` (hex, as W3C writes them) of the current span; {} if none."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Send this process's logs to stderr as JSON lines or text (see the module docstring).

    A process whose logging is set up already (its root logger has a handler) keeps it.

    Lines are written by a thread of their own: a request thread (or the gateway's event
    loop) only hands its record over, and never waits for a slow reader of stderr. The
    trace ids are stamped on the record by the thread that logs it, where the request's span
    is current.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    root = logging.getLogger()
    if root.handlers:  # configured already (a test's capture, an embedding program): keep it
        return
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handoff = _Handoff(records)
    handoff.addFilter(_with_trace_ids)
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)  # the lines still queued are written at exit
    logging.basicConfig(level=level, handlers=[handoff])


def _with_trace_ids(record: logging.LogRecord) -> bool:
    """Stamp the current span's ids on a record (before it leaves the logging thread)."""
    if not hasattr(record, "trace_id"):
        for name, value in current_trace_ids().items():
            setattr(record, name, value)
    return True


class _Handoff(logging.handlers.QueueHandler):
    """Hands records to the writing thread as they are (the formatter runs there)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record itself, its message and exception text made final first."""
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def configure_tracing(service_name: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install this process's tracer provider; export over OTLP/HTTP when an endpoint is set.

    ``otlp_endpoint`` is the traces URL (``http://collector:4318/v1/traces``); without it
    the standard variables (:data:`OTLP_ENDPOINT_VARIABLES`) decide. With an endpoint the
    sampler is the SDK's (``OTEL_TRACES_SAMPLER``; parent-based, always on by default);
    without one only a caller's sampled trace is recorded, but every span has ids. Call
    :meth:`TracerProvider.shutdown` at exit to flush.
    """
    # Imported here: only the two services trace; the other commands skip the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    resource = Resource.create({SERVICE_NAME: service_name})
    if not (otlp_endpoint or any(os.environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)):
        # Nothing to export to: record nothing of our own. Spans still get ids (the log
        # lines' trace ids, the traceparent the gateway sends on) without the cost of
        # recording; a trace the caller sampled is recorded, so its flag passes on.
        provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
        trace.set_tracer_provider(provider)
        return provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=resource)  # the sampler of OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def add_telemetry_flags(parser: argparse.ArgumentParser, metrics_port: int) -> None:
    """``--metrics-port``, ``--metrics-host``, ``--log-format`` and ``--otlp-endpoint``."""
    group = parser.add_argument_group("metrics, logs and traces (docs/operations.md)")
    group.add_argument(
        "--metrics-port",
        type=int,
        default=metrics_port,
        metavar="PORT",
        help="serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (default: "
        "%(default)s; 0: off; give each process on one host its own)",
    )
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address metrics listen on (default: %(default)s; 0.0.0.0 for a remote scraper)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="log lines as JSON objects or text (default: auto, text on a terminal)",
    )
    group.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="least level logged (default: %(default)s; DEBUG adds health checks and probes)",
    )
    group.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="export traces over OTLP/HTTP, e.g. http://collector:4318/v1/traces (default: "
        "none, unless OTEL_EXPORTER_OTLP_ENDPOINT is set)",
    )


def metrics_port_problem(port: int) -> str | None:
    """Why ``--metrics-port`` is bad (what it must be), or None."""
    return None if 0 <= port <= 65535 else f"must be 0 (off) to 65535, got {port}"
