"""``router serve`` under a wall-clock stack sampler: where the handler threads' time goes.

py-spy is not part of the dev tools, so this samples in-process: a daemon thread reads
every thread's Python stack (``sys._current_frames``) every ``--interval-ms`` and counts,
for the threads inside a RoutingService handler, each function on the stack (inclusive
time) and the innermost frame (self time: where the thread runs or waits, e.g. in a
``BEGIN IMMEDIATE`` or for a pooled connection). On SIGTERM the server stops as usual and
the counts are written to ``OUT`` as JSON.

    python -m benchmarks.sampler OUT [router serve arguments…]

It is wall-clock time, as py-spy's ``--idle`` is: a thread waiting on a lock or the
database counts as much as one running. The sampler itself takes the GIL briefly each
tick (at 5 ms, well under 1% of a core).
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from pathlib import Path
from types import FrameType

from router.cli import main as router_main

#: Handlers whose threads are sampled: a frame of one of these marks a busy thread.
HANDLERS = frozenset({"RouteOrder", "PlanOrder"})
#: Our own code (a frame's file under one of these) names the "own" innermost frame.
OWN = ("/router/", "/models/")


class Sampler:
    """Counts the stacks of threads inside :data:`HANDLERS`, every ``interval_s``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.ticks = 0
        self.samples: Counter[str] = Counter()  # handler threads seen, by handler
        # By handler: each function once per stack; the innermost frame; the innermost
        # frame of our own code.
        self.inclusive: dict[str, Counter[str]] = {h: Counter() for h in HANDLERS}
        self.leaf: dict[str, Counter[str]] = {h: Counter() for h in HANDLERS}
        self.own_leaf: dict[str, Counter[str]] = {h: Counter() for h in HANDLERS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling, and wait for the last tick."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval_s):
            self.ticks += 1
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self._count(frame)

    def _count(self, frame: FrameType) -> None:
        stack: list[FrameType] = []
        f: FrameType | None = frame
        while f is not None:
            stack.append(f)
            f = f.f_back
        handler = next((s.f_code.co_name for s in stack if s.f_code.co_name in HANDLERS), None)
        if handler is None:
            return
        self.samples[handler] += 1
        seen = {_name(s) for s in stack}
        self.inclusive[handler].update(seen)
        self.leaf[handler][_name(stack[0], line=True)] += 1
        own = next((s for s in stack if any(p in s.f_code.co_filename for p in OWN)), None)
        if own is not None:
            self.own_leaf[handler][_name(own, line=True)] += 1

    def report(self) -> dict[str, object]:
        """The counts, as JSON-ready dicts (the most frequent functions and frames)."""
        return {
            "interval_s": self.interval_s,
            "ticks": self.ticks,
            "samples": dict(self.samples),
            "inclusive": {h: dict(c.most_common(300)) for h, c in self.inclusive.items()},
            "leaf": {h: dict(c.most_common(60)) for h, c in self.leaf.items()},
            "own_leaf": {h: dict(c.most_common(60)) for h, c in self.own_leaf.items()},
        }


def _name(frame: FrameType, *, line: bool = False) -> str:
    """``module-ish path:function`` (and ``:line`` for innermost frames)."""
    path = frame.f_code.co_filename
    for root in ("/router/", "/models/", "/site-packages/", "/lib/python"):
        if root in path:
            path = root.strip("/") + "/" + path.split(root, 1)[1]
            break
    where = f"{path}:{frame.f_code.co_name}"
    return f"{where}:{frame.f_lineno}" if line else where


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out, serve_args = Path(argv[0]), argv[1:]
    sampler = Sampler(0.005)
    sampler.start()
    try:
        return router_main(["serve", *serve_args])
    finally:
        sampler.stop()
        out.write_text(json.dumps(sampler.report(), indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
