"""The server's thread pool: calls that do not solve go ahead of those that do.

gRPC hands every call to its executor in arrival order; behind a flood of large orders a
health check would wait for every solve queued before it. :class:`PriorityPool` keeps two
queues: *urgent* work (every method but the solving ones, and refusals made by the access
interceptor) is taken first; solving work when no urgent work waits. Which method a piece
of work serves is read from the call gRPC passes with it (``rpc_event.call_details``); work
that does not show one is urgent, so nothing depends on that detail to be served.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection
from concurrent import futures
from typing import Any

_Work = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class PriorityPool(futures.Executor):
    """``workers`` threads; work for ``deferred`` methods waits while other work is queued."""

    def __init__(self, workers: int, deferred: Collection[str]) -> None:
        self._deferred = frozenset(m.encode() for m in deferred)
        self._urgent: deque[_Work] = deque()
        self._later: deque[_Work] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"rpc-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        """Queue ``fn(*args, **kwargs)``: urgent unless it serves a deferred method."""
        future: futures.Future[Any] = futures.Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("cannot submit after shutdown")
            queue = self._later if self._defers(args) else self._urgent
            queue.append((future, fn, args, kwargs))
            self._ready.notify()
        return future

    def _defers(self, args: tuple[Any, ...]) -> bool:
        """Whether the work serves a deferred method (and is not a refusal)."""
        for arg in args[:4]:
            details = getattr(arg, "call_details", None)
            if details is not None:
                method = getattr(details, "method", b"")
                behaviour = next((a for a in args if getattr(a, "urgent", False)), None)
                return method in self._deferred and behaviour is None
        return False

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._urgent and not self._later and not self._stopping:
                    self._ready.wait()
                if not self._urgent and not self._later:
                    return  # stopping, and nothing left
                future, fn, args, kwargs = (self._urgent or self._later).popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; run what is queued (or cancel it) and end the threads."""
        with self._ready:
            self._stopping = True
            if cancel_futures:
                for future, *_ in (*self._urgent, *self._later):
                    future.cancel()
                self._urgent.clear()
                self._later.clear()
            self._ready.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()
