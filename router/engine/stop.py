"""The stop signal a caller hands the solver: a deadline plus cancellation.

The one object a time budget travels as: built once at the edge (a request's limit, the
server's default, the RPC deadline, the client's cancellation; or
:data:`~models.engines.DEFAULT_TIME_LIMIT_S` when a caller gives none) and passed alone
down to the solver adapters, which read :meth:`Stop.remaining_s`.
"""

from __future__ import annotations

import math
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
        """Stop ``time_limit_s`` seconds from now (never, when None) or when :meth:`set`."""
        self.time_limit_s = time_limit_s
        """The limit it was built with (None: none), as a decision log records it."""
        self._deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def remaining_s(self) -> float:
        """Seconds left before the deadline (infinite without one), never below zero."""
        if self._event.is_set():
            return 0.0
        if self._deadline is None:
            return math.inf
        return max(0.0, self._deadline - time.monotonic())

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
