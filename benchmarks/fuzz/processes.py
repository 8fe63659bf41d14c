"""Servers in child processes: started until they print their address, stopped by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 120.0
"""How long a server may take to print its address."""


def start(
    command: list[str], log: Path, marker: str = "listening on", cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``command`` until its stdout's first line has ``marker``; it and its last word.

    Stdout goes to a file beside ``log``, stderr to ``log``. A process that exits, or
    prints no such line in time, is stopped and the end of its log raised (RuntimeError).
    """
    out = log.with_suffix(".out")
    process = subprocess.Popen(command, cwd=cwd, stdout=out.open("w"), stderr=log.open("w"))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        first = out.read_text().splitlines()[:1]
        if first and marker in first[0]:
            return process, first[0].rsplit(" ", 1)[1].strip()
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{' '.join(command[:4])} did not start:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(command: list[str], log: Path, marker: str = "listening on") -> Iterator[str]:
    """:func:`start` ``command`` for the block; the address it printed."""
    process, address = start(command, log, marker)
    try:
        yield address
    finally:
        stop(process)
