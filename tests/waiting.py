"""Waiting in tests for what another thread or process does: polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(read: Callable[[], T], timeout_s: float = 20.0) -> T:
    """``read()``'s value once it stops raising AssertionError or OSError.

    The last error is raised when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read()
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
