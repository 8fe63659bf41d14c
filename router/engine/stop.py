"""The stop signal a caller hands the solver: a deadline plus cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Stop:
    """Tells a running solve to finish: at a deadline, or as soon as :meth:`set` is called.

    The gRPC servicer builds one from the RPC's deadline and sets it when the client
    cancels; the engine reads :meth:`remaining_s` for the solver's time limit and registers
    the solver's own stop function with :meth:`on_stop`.
    """

    def __init__(self, time_limit_s: float | None = None) -> None:
        self._deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def remaining_s(self, cap_s: float) -> float:
        """Seconds left before the deadline, at most ``cap_s`` and never below zero."""
        if self._event.is_set():
            return 0.0
        if self._deadline is None:
            return cap_s
        return max(0.0, min(cap_s, self._deadline - time.monotonic()))

    def is_set(self) -> bool:
        """True once the solve should stop (cancelled or past the deadline)."""
        return self._event.is_set() or (
            self._deadline is not None and time.monotonic() >= self._deadline
        )

    def set(self) -> None:
        """Ask the solve to stop now; runs every registered callback once."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register ``callback`` for :meth:`set`; returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return remove
        callback()
        return lambda: None
