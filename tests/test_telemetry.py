"""Done when: a process's log lines are JSON objects with their trace ids and tracebacks.

Logging is set up in a child process as ``router serve`` sets it up
(:func:`router.telemetry.configure_logging`, :func:`~router.telemetry.configure_tracing`),
so the handoff to the writing thread and the exit are real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import logging
    from opentelemetry import trace
    from router.telemetry import configure_logging, configure_tracing

    configure_logging("json", "INFO")
    configure_tracing("test")
    log = logging.getLogger("child")
    with trace.get_tracer("t").start_as_current_span("request") as span:
        log.info("inside %s", "a span", extra={"order_id": "O-1"})
        print(trace.format_trace_id(span.get_span_context().trace_id), flush=True)
    log.debug("not written at INFO")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("it failed")
    """
)


def test_log_lines_carry_trace_ids_extras_and_tracebacks():
    """Three lines: the span's trace id on the one inside it, the traceback on the last.

    Every line reaches stderr before the process exits (the writer is flushed at exit).
    """
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    trace_id = done.stdout.strip()
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["inside a span", "it failed"]
    inside, failed = lines
    assert inside["trace_id"] == trace_id and len(inside["span_id"]) == 16
    assert inside["order_id"] == "O-1" and inside["logger"] == "child"
    assert "trace_id" not in failed
    assert failed["level"] == "ERROR" and "ZeroDivisionError" in failed["exception"]
