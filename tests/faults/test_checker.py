"""The history checker flags every broken promise it is shown, and nothing in a clean history.

Each faulty case changes one thing of a small clean history (or of its final ledger) the
way a real bug would, and names the violation the checker must report. The clean world:
position west/H starts with 3 on hand and 1 safety stock (2 available), west/C with 100.
r1 reserves 1 H + 2 C and is confirmed; r2 loses its first reply, is retried on another
replica and released; r3 is answered with nothing to reserve; r4's reservation is
abandoned, lapses at t=6 and a confirm at t=7 is refused. Units of H certainly held over
time: r1 from t=1 for ever, r2 on [1.8, 3), r4 on [4, 6): at most 2, as available.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from benchmarks.reliability.checker import Position, Snapshot, StoredReservation, check, peak_held
from benchmarks.reliability.history import Call, Op, Outcome

H, C = ("west", "H"), ("west", "C")
INITIAL = {H: Position(3, 0, 1), C: Position(100, 0, 0)}
GRACE_S = 5.0


def route(
    request_id: str,
    start: float,
    rid: str = "",
    *lines: tuple[str, str, int],
    expires_at: float | None = None,
    outcome: Outcome = Outcome.OK,
    status: str = "RESERVED",
    code: str = "OK",
) -> Call:
    """A RouteOrder attempt for order SO-<request_id>, ending 0.1 s after ``start``."""
    return Call(
        Op.ROUTE,
        request_id,
        0,
        start,
        start + 0.1,
        outcome,
        code,
        order_id=f"SO-{request_id}",
        reservation_id=rid,
        lines=tuple(lines),
        expires_at=expires_at,
        status=status if outcome is Outcome.OK else "",
    )


def settle(
    op: Op, request_id: str, rid: str, start: float, outcome: Outcome = Outcome.OK, code: str = "OK"
) -> Call:
    """A confirm or release attempt of ``rid``."""
    return Call(op, request_id, 1, start, start + 0.1, outcome, code, reservation_id=rid)


def stored(
    rid: str, request_id: str, status: str, expires_at: float, *lines: tuple[str, str, int]
) -> StoredReservation:
    return StoredReservation(rid, f"SO-{request_id}", status, expires_at, tuple(lines))


CALLS = [
    route("r1", 0.9, "R1", ("west", "H", 1), ("west", "C", 2), expires_at=10.0),
    settle(Op.CONFIRM, "c1", "R1", 2.0),
    route("r2", 1.5, outcome=Outcome.UNKNOWN, code="DEADLINE_EXCEEDED"),
    route("r2", 1.7, "R2", ("west", "H", 1), expires_at=11.0),
    settle(Op.RELEASE, "x2", "R2", 3.0),
    route("r3", 3.5, status="NOTHING_TO_RESERVE"),
    route("r4", 3.9, "R4", ("west", "H", 1), expires_at=6.0),
    settle(Op.CONFIRM, "c4", "R4", 7.0, Outcome.FAIL, "FAILED_PRECONDITION"),
]
FINAL = Snapshot(
    taken_at=20.0,
    positions={H: Position(2, 0, 1), C: Position(98, 0, 0)},
    reservations={
        "R1": stored("R1", "r1", "CONFIRMED", 10.0, ("west", "H", 1), ("west", "C", 2)),
        "R2": stored("R2", "r2", "RELEASED", 11.0, ("west", "H", 1)),
        "R4": stored("R4", "r4", "EXPIRED", 6.0, ("west", "H", 1)),
    },
    requests={"r1": "R1", "r2": "R2", "r3": "", "r4": "R4"},
)


def kinds(calls: list[Call], final: Snapshot) -> set[str]:
    return {v.kind for v in check(calls, INITIAL, final, GRACE_S)}


def test_a_clean_history_has_no_violation():
    """Lost replies retried, confirm, release, expiry, a refused late confirm: all kept."""
    assert check(CALLS, INITIAL, FINAL, GRACE_S) == []


def _with(final: Snapshot, **changes: object) -> Snapshot:
    return replace(final, **changes)  # type: ignore[arg-type]


def _reservations(**changed: StoredReservation | None) -> dict[str, StoredReservation]:
    out = dict(FINAL.reservations)
    for rid, value in changed.items():
        if value is None:
            del out[rid]
        else:
            out[rid] = value
    return out


Case = Callable[[], tuple[list[Call], Snapshot]]

CASES: dict[str, tuple[Case, str]] = {
    # A third hold of H while r1 and r2 hold both available units, released later: the final
    # balance is right, only the timeline shows a unit held twice.
    "unit held twice, hidden by a release": (
        lambda: (
            [
                *CALLS,
                route("r5", 1.9, "R5", ("west", "H", 1), expires_at=12.0),
                settle(Op.RELEASE, "x5", "R5", 2.5),
            ],
            _with(
                FINAL,
                reservations=_reservations(
                    R5=stored("R5", "r5", "RELEASED", 12.0, ("west", "H", 1))
                ),
                requests={**FINAL.requests, "r5": "R5"},
            ),
        ),
        "held-twice",
    ),
    "acknowledged reservation missing": (
        lambda: (CALLS, _with(FINAL, reservations=_reservations(R4=None))),
        "lost",
    ),
    "request id applied twice (a second reservation for its order)": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                reservations=_reservations(
                    R2b=stored("R2b", "r2", "EXPIRED", 11.0, ("west", "H", 1))
                ),
            ),
        ),
        "double-applied",
    ),
    "on hand off by a unit (a confirm applied twice)": (
        lambda: (CALLS, _with(FINAL, positions={**FINAL.positions, H: Position(1, 0, 1)})),
        "balance-on-hand",
    ),
    "reserved off (a release that did not give the units back)": (
        lambda: (CALLS, _with(FINAL, positions={**FINAL.positions, H: Position(2, 1, 1)})),
        "balance-reserved",
    ),
    "shipped beyond what was available (safety stock sold)": (
        lambda: (
            [
                *CALLS,
                route("r6", 8.0, "R6", ("west", "H", 2), expires_at=20.0),
                settle(Op.CONFIRM, "c6", "R6", 9.0),
            ],
            _with(
                FINAL,
                positions={**FINAL.positions, H: Position(0, 0, 1)},
                reservations=_reservations(
                    R6=stored("R6", "r6", "CONFIRMED", 20.0, ("west", "H", 2))
                ),
                requests={**FINAL.requests, "r6": "R6"},
            ),
        ),
        "oversold",
    ),
    "acknowledged confirm not in the ledger": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                positions={**FINAL.positions, H: Position(3, 0, 1), C: Position(100, 0, 0)},
                reservations=_reservations(
                    R1=stored("R1", "r1", "RELEASED", 10.0, ("west", "H", 1), ("west", "C", 2))
                ),
            ),
        ),
        "lost-settlement",
    ),
    "confirmed after it lapsed": (
        lambda: (
            [*CALLS[:-1], settle(Op.CONFIRM, "c4", "R4", 7.0)],
            _with(
                FINAL,
                positions={**FINAL.positions, H: Position(1, 0, 1)},
                reservations=_reservations(
                    R4=stored("R4", "r4", "CONFIRMED", 6.0, ("west", "H", 1))
                ),
            ),
        ),
        "confirmed-after-expiry",
    ),
    "lapsed reservation still holding": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                positions={**FINAL.positions, H: Position(2, 1, 1)},
                reservations=_reservations(R4=stored("R4", "r4", "HELD", 6.0, ("west", "H", 1))),
            ),
        ),
        "not-expired",
    ),
    "answered without a reservation, one left behind": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                reservations=_reservations(R3=stored("R3", "r3", "EXPIRED", 9.0, ("west", "C", 1))),
            ),
        ),
        "held-after-no",
    ),
    "every attempt refused, a reservation left behind": (
        lambda: (
            [*CALLS, route("r7", 8.0, outcome=Outcome.FAIL, code="ABORTED")],
            _with(
                FINAL,
                reservations=_reservations(R7=stored("R7", "r7", "EXPIRED", 9.0, ("west", "C", 1))),
            ),
        ),
        "held-after-refusal",
    ),
    "a retry answered with another reservation": (
        lambda: ([*CALLS, route("r2", 4.0, "R9", ("west", "H", 1), expires_at=11.0)], FINAL),
        "request-split",
    ),
    "ledger lines differ from the acknowledged ones": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                reservations=_reservations(
                    R2=stored("R2", "r2", "RELEASED", 11.0, ("west", "H", 2))
                ),
            ),
        ),
        "wrong-lines",
    ),
    "settled without a call": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                reservations=_reservations(
                    R4=stored("R4", "r4", "RELEASED", 6.0, ("west", "H", 1))
                ),
            ),
        ),
        "phantom-settlement",
    ),
    "a reservation of no call": (
        lambda: (
            CALLS,
            _with(
                FINAL,
                reservations=_reservations(
                    Rx=stored("Rx", "nobody", "EXPIRED", 9.0, ("west", "C", 1))
                ),
            ),
        ),
        "phantom",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_faulty_history_is_flagged(case: str):
    """Each injected bug is reported under its kind."""
    make, kind = CASES[case]
    calls, final = make()
    assert kind in kinds(calls, final)


def test_held_twice_is_caught_only_by_the_timeline():
    """The hidden double hold leaves the final balance right: only the timeline flags it."""
    make, _ = CASES["unit held twice, hidden by a release"]
    calls, final = make()
    assert kinds(calls, final) == {"held-twice"}


def test_indeterminate_attempts_may_have_made_one_reservation():
    """A request whose every attempt was lost may hold one reservation (never reported)."""
    calls = [*CALLS, route("r8", 8.0, outcome=Outcome.UNKNOWN, code="UNAVAILABLE")]
    final = _with(
        FINAL, reservations=_reservations(R8=stored("R8", "r8", "EXPIRED", 9.0, ("west", "C", 1)))
    )
    assert check(calls, INITIAL, final, GRACE_S) == []


def test_a_confirm_replayed_after_expiry_is_not_a_late_confirm():
    """A confirm whose reply was lost before the expiry may be answered by a replay after it."""
    calls = [
        *CALLS[:-1],
        settle(Op.CONFIRM, "c4", "R4", 5.0, Outcome.UNKNOWN, "DEADLINE_EXCEEDED"),
        settle(Op.CONFIRM, "c4", "R4", 7.0),
    ]
    final = _with(
        FINAL,
        positions={**FINAL.positions, H: Position(1, 0, 1)},
        reservations=_reservations(R4=stored("R4", "r4", "CONFIRMED", 6.0, ("west", "H", 1))),
    )
    assert check(calls, INITIAL, final, GRACE_S) == []


def test_peak_held_is_the_most_units_proven_held_at_once():
    """The clean history holds both available units of H from r2's answer (t=1.8) on."""
    assert peak_held(CALLS) == {H: (2, 1.8), C: (2, 1.0)}
