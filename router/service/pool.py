"""The server's thread pool: calls that do not solve go ahead of those that do.

gRPC hands every call to its executor in arrival order; behind a flood of large orders a
health check would wait for every solve queued before it. :class:`PriorityPool` keeps
three queues and always takes from the first that has work: calls that do not solve
(health checks, stock reads, rules reads), then the refusals the access interceptor made
on gRPC's polling thread (cheap, but a flood makes many), then solving calls. The level is
read off the behaviour gRPC submits with the call, as the interceptor tagged it; work that
shows no tag goes first, so nothing depends on the tag to be served. After each call the
behaviour's ``after_run`` hook, if it has one, is called (:func:`_after_run`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any

_Work = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class PriorityPool(futures.Executor):
    """``workers`` threads taking work by level: other calls, refusals, solving calls."""

    def __init__(self, workers: int) -> None:
        self._queues: tuple[deque[_Work], ...] = (deque(), deque(), deque())
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"rpc-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        """Queue ``fn(*args, **kwargs)`` at its level (:meth:`_level`)."""
        future: futures.Future[Any] = futures.Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("cannot submit after shutdown")
            self._queues[self._level(args)].append((future, fn, args, kwargs))
            self._ready.notify()
        return future

    def _level(self, args: tuple[Any, ...]) -> int:
        """0: a call that does not solve (or unknown work); 1: a refusal; 2: a solving call.

        Read off the behaviour gRPC hands over with the call, as the access interceptor
        tagged it (``urgent``: a refusal; ``deferred``: a solving call).
        """
        if any(getattr(a, "urgent", False) for a in args):
            return 1
        if any(getattr(a, "deferred", False) for a in args):
            return 2
        return 0

    def _work(self) -> None:
        while True:
            with self._ready:
                while not any(self._queues) and not self._stopping:
                    self._ready.wait()
                queue = next((q for q in self._queues if q), None)
                if queue is None:
                    return  # stopping, and nothing left
                future, fn, args, kwargs = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                future.set_exception(exc)
            finally:
                _after_run(args)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; run what is queued (or cancel it) and end the threads."""
        with self._ready:
            self._stopping = True
            if cancel_futures:
                for queue in self._queues:
                    for future, *_ in queue:
                        future.cancel()
                    queue.clear()
            self._ready.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


def _after_run(args: tuple[Any, ...]) -> None:
    """Call the ``after_run`` hook of the behaviour handed over with the call, if it has one.

    The observing interceptor (:mod:`router.service.observe`) counts there the calls gRPC
    dropped without running their behaviour (the caller left while they waited).
    """
    for arg in args:
        hook = getattr(arg, "after_run", None)
        if hook is not None:
            hook()
