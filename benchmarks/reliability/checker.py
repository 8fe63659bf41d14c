"""The history checker: from the clients' history and the final ledger, prove nothing went wrong.

:func:`check` is a pure function of the recorded attempts (:mod:`.history`), the stock the
ledger was seeded with and a :class:`Snapshot` of the ledger's rows taken after the load
(and after one sweep interval, so that lapsed reservations had their chance to expire). It
returns every :class:`Violation` it can prove; none means the run kept these promises:

- **acknowledged reservations**: each reservation a RouteOrder answered exists in the
  ledger, for that order, with exactly the acknowledged lines;
- **one reservation per request id** (and per order: each request id routes its own order):
  every answer for a request id names the same reservation, the ledger's idempotency record
  says so too, an answer without a reservation leaves none behind, no order has two, and a
  request id whose every attempt was refused has none; indeterminate attempts included;
- **settlements**: an acknowledged confirm left the reservation CONFIRMED, an acknowledged
  release RELEASED; no reservation is both; none is CONFIRMED or RELEASED without a call
  that could have done it; no confirm succeeded that began after the reservation lapsed;
  none is EXPIRED before its ``expires_at``; none is still HELD a sweep after it lapsed;
- **balances per position** (the "bank" invariants): on hand = initial − units of the
  CONFIRMED reservations; reserved = initial reserved + units of the HELD ones; held +
  shipped never exceed what was available (on hand − reserved − safety stock at the
  start), safety stock unchanged, no position made or lost;
- **no unit held twice, at any time**: from the history alone, each acknowledged
  reservation certainly held its units from the end of its RouteOrder until the first
  confirm or release of it began or it lapsed (for ever, once a confirm of it succeeded);
  at no instant may the units certainly held at a position exceed what was available.
  This catches an oversell that a later release or expiry hid from the final balance.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.reliability.history import Call, Line, Op, Outcome

Key = tuple[str, str]
"""A position: (node_id, sku)."""

HELD, CONFIRMED, RELEASED, EXPIRED = "HELD", "CONFIRMED", "RELEASED", "EXPIRED"
#: Route outcomes whose answer is stored for replay (a CUT_SHORT one is planned again).
_REPLAYED_OUTCOMES = frozenset({"RESERVED", "NOTHING_TO_RESERVE"})


@dataclass(frozen=True, slots=True)
class Position:
    """A stock position's counts."""

    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def available(self) -> int:
        """Units that may be promised: on hand − reserved − safety stock."""
        return self.on_hand - self.reserved - self.safety_stock


@dataclass(frozen=True, slots=True)
class StoredReservation:
    """A reservation row of the ledger and its lines."""

    reservation_id: str
    order_id: str
    status: str
    expires_at: float
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The ledger's rows at ``taken_at`` (wall-clock seconds).

    ``requests`` maps every reserve request_id of the idempotency records to the
    reservation it made ("" for an answer stored without one).
    """

    taken_at: float
    positions: Mapping[Key, Position]
    reservations: Mapping[str, StoredReservation]
    requests: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken promise: its kind, what it concerns and the evidence."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.detail}"


def _units(lines: Iterable[Line]) -> Counter[Key]:
    """Units per position, the lines at one position added up."""
    total: Counter[Key] = Counter()
    for node_id, sku, units in lines:
        total[node_id, sku] += units
    return total


def check(
    calls: Sequence[Call],
    initial: Mapping[Key, Position],
    final: Snapshot,
    sweep_grace_s: float,
) -> list[Violation]:
    """Every violation the history and the final ledger prove (see the module docstring).

    ``sweep_grace_s``: how long after its ``expires_at`` a reservation may stay HELD (the
    sweep interval and a margin) before that is a violation.
    """
    out: list[Violation] = []
    routes = [c for c in calls if c.op is Op.ROUTE]
    settles = [c for c in calls if c.op is not Op.ROUTE]
    out += _check_requests(routes, final)
    out += _check_settlements(routes, settles, final, sweep_grace_s)
    out += _check_balances(initial, final)
    out += _check_held_over_time(routes, settles, initial)
    return out


def _check_requests(routes: Sequence[Call], final: Snapshot) -> list[Violation]:
    """Acknowledged reservations exist as answered; one reservation per request and order."""
    out: list[Violation] = []
    by_request: dict[str, list[Call]] = defaultdict(list)
    for call in routes:
        by_request[call.request_id].append(call)
    by_order: dict[str, list[str]] = defaultdict(list)
    for stored in final.reservations.values():
        by_order[stored.order_id].append(stored.reservation_id)
    orders_called = {c.order_id for c in routes}
    for order_id, ids in by_order.items():
        if len(ids) > 1:
            out.append(Violation("double-applied", order_id, f"{len(ids)} reservations {ids}"))
        if order_id not in orders_called:
            out.append(Violation("phantom", order_id, f"reservations {ids} of no call"))
    for request_id, attempts in by_request.items():
        order_ids = {c.order_id for c in attempts}
        held = [r for o in order_ids for r in by_order.get(o, [])]
        ok = [c for c in attempts if c.outcome is Outcome.OK]
        answered = {c.reservation_id for c in ok if c.reservation_id}
        stored_none = [c for c in ok if not c.reservation_id and c.status in _REPLAYED_OUTCOMES]
        if len(answered) > 1 or (answered and stored_none):
            out.append(
                Violation(
                    "request-split",
                    request_id,
                    f"answers name {sorted(answered)} "
                    f"and {len(stored_none)} final answers without a reservation",
                )
            )
        if stored_none and held:
            out.append(
                Violation(
                    "held-after-no",
                    request_id,
                    f"answered without a reservation, the ledger holds {held}",
                )
            )
        if not any(c.outcome is not Outcome.FAIL for c in attempts) and held:
            out.append(
                Violation(
                    "held-after-refusal",
                    request_id,
                    f"every attempt refused, the ledger holds {held}",
                )
            )
        recorded = final.requests.get(request_id)
        for reservation_id in answered:
            if recorded is not None and recorded != reservation_id:
                out.append(
                    Violation(
                        "request-split",
                        request_id,
                        f"answered {reservation_id}, its idempotency record names {recorded!r}",
                    )
                )
            if recorded is None:
                out.append(
                    Violation(
                        "lost-request",
                        request_id,
                        f"answered {reservation_id}, no idempotency record",
                    )
                )
        for call in ok:
            if call.reservation_id:
                out += _check_acknowledged(call, final)
    return out


def _check_acknowledged(call: Call, final: Snapshot) -> list[Violation]:
    """The acknowledged reservation of one answer is in the ledger as answered."""
    stored = final.reservations.get(call.reservation_id)
    if stored is None:
        return [
            Violation(
                "lost", call.reservation_id, f"acknowledged to {call.request_id}, not in the ledger"
            )
        ]
    out = []
    if stored.order_id != call.order_id:
        out.append(
            Violation(
                "wrong-order",
                call.reservation_id,
                f"for {stored.order_id}, acknowledged for {call.order_id}",
            )
        )
    if _units(stored.lines) != _units(call.lines):
        out.append(
            Violation(
                "wrong-lines",
                call.reservation_id,
                f"holds {sorted(stored.lines)}, acknowledged {sorted(call.lines)}",
            )
        )
    return out


def _check_settlements(
    routes: Sequence[Call], settles: Sequence[Call], final: Snapshot, sweep_grace_s: float
) -> list[Violation]:
    """Acknowledged confirms and releases are in the ledger, and nothing else settled."""
    out: list[Violation] = []
    tried: dict[str, set[Op]] = defaultdict(set)  # ops that may have taken effect
    won: dict[str, set[Op]] = defaultdict(set)
    expires = {c.reservation_id: c.expires_at for c in routes if c.reservation_id}
    began: dict[str, float] = {}  # a request id's first attempt: a replay answers for it
    for call in settles:
        began[call.request_id] = min(began.get(call.request_id, math.inf), call.start)
    for call in settles:
        if call.outcome is not Outcome.FAIL:
            tried[call.reservation_id].add(call.op)
        if call.outcome is Outcome.OK:
            won[call.reservation_id].add(call.op)
            lapsed = expires.get(call.reservation_id)
            first = began[call.request_id]
            if call.op is Op.CONFIRM and lapsed is not None and first > lapsed:
                out.append(
                    Violation(
                        "confirmed-after-expiry",
                        call.reservation_id,
                        f"confirm {call.request_id} began {first - lapsed:.3f} s after it lapsed",
                    )
                )
    for reservation_id, ops in won.items():
        stored = final.reservations.get(reservation_id)
        status = None if stored is None else stored.status
        if len(ops) > 1:
            out.append(Violation("both-settled", reservation_id, "confirmed and released"))
        for op, want in ((Op.CONFIRM, CONFIRMED), (Op.RELEASE, RELEASED)):
            if op in ops and status != want:
                out.append(
                    Violation(
                        "lost-settlement",
                        reservation_id,
                        f"{op} acknowledged, the ledger says {status}",
                    )
                )
    for stored in final.reservations.values():
        rid, status = stored.reservation_id, stored.status
        if status == CONFIRMED and Op.CONFIRM not in tried[rid]:
            out.append(Violation("phantom-settlement", rid, "CONFIRMED without a confirm"))
        if status == RELEASED and Op.RELEASE not in tried[rid]:
            out.append(Violation("phantom-settlement", rid, "RELEASED without a release"))
        if status == EXPIRED and stored.expires_at > final.taken_at:
            out.append(Violation("early-expiry", rid, "EXPIRED before its expires_at"))
        if status == HELD and stored.expires_at + sweep_grace_s < final.taken_at:
            out.append(
                Violation(
                    "not-expired",
                    rid,
                    f"still HELD {final.taken_at - stored.expires_at:.1f} s after it lapsed",
                )
            )
    return out


def _check_balances(initial: Mapping[Key, Position], final: Snapshot) -> list[Violation]:
    """Per position: on hand, reserved and shipped balance against the reservations."""
    out: list[Violation] = []
    shipped: Counter[Key] = Counter()
    held: Counter[Key] = Counter()
    for stored in final.reservations.values():
        into = {CONFIRMED: shipped, HELD: held}.get(stored.status)
        if into is not None:
            into.update(_units(stored.lines))
    if set(final.positions) != set(initial):
        out.append(
            Violation(
                "positions",
                "ledger",
                f"made {sorted(set(final.positions) - set(initial))}, "
                f"lost {sorted(set(initial) - set(final.positions))}",
            )
        )
    for key, start in initial.items():
        now = final.positions.get(key)
        if now is None:
            continue
        subject = f"{key[0]}/{key[1]}"
        if now.on_hand != start.on_hand - shipped[key]:
            out.append(
                Violation(
                    "balance-on-hand",
                    subject,
                    f"on hand {now.on_hand}, initial {start.on_hand} - shipped {shipped[key]}",
                )
            )
        if now.reserved != start.reserved + held[key]:
            out.append(
                Violation(
                    "balance-reserved",
                    subject,
                    f"reserved {now.reserved}, initial {start.reserved} + held {held[key]}",
                )
            )
        if now.safety_stock != start.safety_stock:
            out.append(
                Violation(
                    "safety-stock", subject, f"{start.safety_stock} became {now.safety_stock}"
                )
            )
        if held[key] + shipped[key] > start.available:
            out.append(
                Violation(
                    "oversold",
                    subject,
                    f"held {held[key]} + shipped {shipped[key]} > available {start.available}",
                )
            )
    return out


def _check_held_over_time(
    routes: Sequence[Call], settles: Sequence[Call], initial: Mapping[Key, Position]
) -> list[Violation]:
    """At no instant do the units certainly held at a position exceed what was available."""
    out = []
    for key, (held, at) in sorted(peak_held([*routes, *settles]).items()):
        limit = initial[key].available if key in initial else 0
        if held > limit:
            out.append(
                Violation(
                    "held-twice",
                    f"{key[0]}/{key[1]}",
                    f"{held} units certainly held at {at:.3f}, {limit} were available",
                )
            )
    return out


def peak_held(calls: Sequence[Call]) -> dict[Key, tuple[int, float]]:
    """Per position, the most units the history proves held (or shipped) at once, and when.

    An acknowledged reservation certainly held its lines from the end of its first
    acknowledged RouteOrder until the first confirm or release of it began or it lapsed,
    and for ever once a confirm of it succeeded.
    """
    first_settle: dict[str, float] = {}
    confirmed: set[str] = set()
    answered: dict[str, Call] = {}  # reservation id -> its first acknowledgement
    for call in calls:
        rid = call.reservation_id
        if call.op is Op.ROUTE:
            acknowledged = call.outcome is Outcome.OK and bool(rid)
            if acknowledged and (rid not in answered or call.end < answered[rid].end):
                answered[rid] = call
            continue
        first_settle[rid] = min(first_settle.get(rid, math.inf), call.start)
        if call.op is Op.CONFIRM and call.outcome is Outcome.OK:
            confirmed.add(rid)
    events: dict[Key, list[tuple[float, int]]] = defaultdict(list)
    for rid, call in answered.items():
        lapsed = math.inf if call.expires_at is None else call.expires_at
        until = math.inf if rid in confirmed else min(first_settle.get(rid, math.inf), lapsed)
        if until <= call.end:
            continue  # settled or lapsed before we knew: no instant certainly held
        for node_id, sku, units in call.lines:
            events[node_id, sku] += [(call.end, units), (until, -units)]
    peaks: dict[Key, tuple[int, float]] = {}
    for key, timeline in events.items():
        held, peak = 0, (0, 0.0)
        for at, units in sorted(timeline):  # at one instant, ends (negative) first
            held += units
            if held > peak[0]:
                peak = (held, at)
        peaks[key] = peak
    return peaks
