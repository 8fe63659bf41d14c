"""Requests that are not the message they claim to be: one WARNING line, rate-limited.

grpc logs every request it cannot deserialize at ERROR with a full traceback (logger
``grpc._common``, message ``Exception deserializing message!``), and answers the client
itself. Garbage sent in a loop then floods the log. :func:`install` puts a
:class:`UndecodableRequests` filter on that logger: the first such request of a kind (its
request type, so one per method) in :data:`INTERVAL_S` is logged as one WARNING line
naming the type; the others are counted, and the count is given on the next line logged
for that type. Every other grpc record passes as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

GRPC_LOGGER = "grpc._common"
"""The logger grpc reports an undecodable request on."""
GRPC_MESSAGE = "Exception deserializing message!"
"""grpc's message for it (grpc gives no code: the message is all there is to match)."""
INTERVAL_S = 60.0
"""At most one line per request type in this many seconds."""
MAX_KINDS = 64
"""Request types tracked one by one; any beyond them share one count (bounded memory)."""
_DETAIL_CHARS = 200
_OTHER = "other undecodable requests"


class UndecodableRequests(logging.Filter):
    """Turns grpc's ERROR traceback for an undecodable request into a rate-limited WARNING."""

    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[str, tuple[float, int]] = {}  # kind → (last line at, suppressed)

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass every other record; rewrite or drop grpc's undecodable-request record."""
        if record.msg != GRPC_MESSAGE:
            return True
        error = record.exc_info[1] if record.exc_info else None
        kind = " ".join(str(error).split())[:_DETAIL_CHARS] if error else "no detail"
        admitted = self.admit(kind)
        if admitted is None:
            return False
        kind, suppressed = admitted
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg = "undecodable request refused: %s (%d more suppressed since the last line)"
        record.args = (kind, suppressed)
        record.exc_info = record.exc_text = record.stack_info = None
        return True

    def admit(self, kind: str) -> tuple[str, int] | None:
        """Whether a line about ``kind`` may be written now.

        Returns (kind, lines suppressed since the last one), or None when this one is
        suppressed (and counted).
        """
        now = self._clock()
        with self._lock:
            if kind not in self._kinds and len(self._kinds) >= MAX_KINDS:
                kind = _OTHER
            last = self._kinds.get(kind)
            if last is not None and now - last[0] < self.interval_s:
                self._kinds[kind] = (last[0], last[1] + 1)
                return None
            self._kinds[kind] = (now, 0)
            return kind, 0 if last is None else last[1]


def report(kind: str) -> None:
    """One rate-limited WARNING line for an undecodable request of ``kind`` (a request type).

    For requests the access interceptor refuses itself (it answers INVALID_ARGUMENT where
    grpc would answer INTERNAL); shares the limit of the installed filter.
    """
    admitted = install().admit(kind)
    if admitted is not None:
        logging.getLogger(__name__).warning(
            "undecodable request refused: %s (%d more suppressed since the last line)", *admitted
        )


_installed: UndecodableRequests | None = None
_install_lock = threading.Lock()


def install() -> UndecodableRequests:
    """Put the filter on grpc's logger, once per process; the filter in place."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = UndecodableRequests()
            logging.getLogger(GRPC_LOGGER).addFilter(_installed)
        return _installed
