"""What the clients did and saw: one :class:`Call` per RPC attempt, recorded as it ends.

An attempt ends in one of three outcomes. ``OK``: the server answered. ``FAIL``: it answered
with an error that means the call changed nothing (a refusal such as FAILED_PRECONDITION,
ABORTED or RESOURCE_EXHAUSTED). ``UNKNOWN``: no answer can tell (a deadline passed, the
connection or the database went away: UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, UNKNOWN,
INTERNAL), so the call may or may not have taken effect. The checker treats them so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

import grpc

#: One held or shipped quantity: (node_id, sku, units).
Line = tuple[str, str, int]


class Op(StrEnum):
    """The RPC an attempt made."""

    ROUTE = "RouteOrder"
    CONFIRM = "ConfirmReservation"
    RELEASE = "ReleaseReservation"


class Outcome(StrEnum):
    """What an attempt is known to have done (see the module docstring)."""

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


#: Status codes after which a call may have taken effect or not.
INDETERMINATE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def outcome_of(code: grpc.StatusCode) -> Outcome:
    """The outcome an error code stands for."""
    return Outcome.UNKNOWN if code in INDETERMINATE else Outcome.FAIL


@dataclass(frozen=True, slots=True)
class Call:
    """One RPC attempt: what was asked of which replica, when, and what came back.

    Times are wall-clock seconds (``time.time()``), comparable with ``expires_at``, which
    the servers set from the same clock. A RouteOrder names its ``order_id`` (one order per
    request_id); an OK one also the ``reservation_id`` answered (empty: none), the
    acknowledged ``lines`` and ``expires_at``, and in ``status`` the answer's route outcome
    (``RESERVED``, ``CUT_SHORT``, …). A confirm or release names its ``reservation_id``; an
    OK one the status answered. ``code`` is the gRPC status name (``OK`` when answered).
    """

    op: Op
    request_id: str
    replica: int
    start: float
    end: float
    outcome: Outcome
    code: str = "OK"
    order_id: str = ""
    reservation_id: str = ""
    lines: tuple[Line, ...] = ()
    expires_at: float | None = None
    status: str = ""
    detail: str = ""


class History:
    """Every attempt of every client, appended from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def add(self, call: Call) -> None:
        """Record one finished attempt."""
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[Call]:
        """The attempts recorded so far, in the order they ended."""
        with self._lock:
            return list(self._calls)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
