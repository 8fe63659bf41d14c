"""The ledger interface: stock, reservations, node capacity, calendars and stock feeds.

Every backend (memory, SQLite, PostgreSQL) implements :class:`Ledger` with the same
semantics; docs/ledger.md states them and how each is enforced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from models.calendar import Calendar
from models.capacity import CapacityUsed
from models.errors import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    RouterError,
    RuleVersionStateError,
    Violations,
    quoted,
)
from models.fields import MAX_INT32, MAX_INT64
from models.network import Stock
from models.reservation import ReservationLine
from models.rule_versions import RuleVersion

#: Operations recorded under a request_id; one id serves exactly one operation.
RESERVE = "reserve"
CONFIRM = "confirm"
RELEASE = "release"
REJECT = "reject"

#: The reservation_id of an idempotency record stored by :meth:`Ledger.store_response`.
NO_RESERVATION = ""

#: Feed counter names returned by :meth:`Ledger.feed_stats`.
FEED_COUNTERS = ("applied", "stale", "duplicate", "clamped_units")

MAX_ID_CHARS = 200
"""The longest request_id or reservation_id the ledger takes (characters), checked before
any work: longer ids are refused as INVALID_ARGUMENT (PostgreSQL could not index one much
longer, and no honest client needs one)."""


def check_id(value: str, field: str, v: Violations) -> None:
    """An id is given and at most :data:`MAX_ID_CHARS` characters long."""
    if not value:
        v.add(field, "must not be empty")
    elif len(value) > MAX_ID_CHARS:
        v.add(field, f"must be at most {MAX_ID_CHARS} characters, got {len(value)}")


def check_request_id(request_id: str) -> None:
    """Raise InvalidArgumentError unless ``request_id`` passes :func:`check_id`."""
    v = Violations()
    check_id(request_id, "request_id", v)
    v.raise_if_any()


def check_text(value: str, field: str, v: Violations) -> None:
    """Text the ledger stores must encode as UTF-8: no lone surrogates (YAML escapes them in).

    Neither database could store it, and no reply could carry it.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        v.add(field, f"holds a lone surrogate (U+{ord(value[e.start]):04X}), not a character")


class NoReservationError(RouterError):
    """A reserve call's request_id was recorded by :meth:`Ledger.store_response`.

    The same request was answered without a reservation; its stored response is the answer.
    """

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"request_id: {request_id!r} was answered without a reservation")


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """What planning one order reads from the ledger, read together (:meth:`Ledger.plan_inputs`).

    ``stored_response`` is what a reserve call stored under the request_id asked about
    (None: none asked, or none stored yet).
    """

    calendar_revision: int
    active_rule_version: int | None
    stock: Stock
    capacity_used: CapacityUsed
    stored_response: bytes | None = None


def request_digest(operation: str, payload: bytes) -> str:
    """The fingerprint stored with a request_id: SHA-256 of the operation and the payload."""
    return hashlib.sha256(operation.encode() + b"\0" + payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """A validated reserve call: units needed per position and slots per (node, day), sorted.

    Sorting fixes the order in which every backend locks rows, so two reservations never
    wait on each other in a cycle.
    """

    request_id: str
    digest: str
    order_id: str
    lines: tuple[ReservationLine, ...]
    needs: tuple[tuple[str, str, int], ...]  # (node_id, sku, units), sorted by (node_id, sku)
    capacity: tuple[tuple[str, date], ...]  # distinct (node_id, day), sorted
    created_at: datetime
    expires_at: datetime


def validate_reserve(
    request_id: str,
    payload: bytes,
    order_id: str,
    lines: Sequence[ReservationLine],
    capacity: Sequence[tuple[str, date]],
    ttl_s: float,
    now: datetime,
) -> ReserveRequest:
    """Check a reserve call and aggregate it; raises InvalidArgumentError naming each field."""
    v = Violations()
    check_id(request_id, "request_id", v)
    if not order_id:
        v.add("order_id", "must not be empty")
    if not lines:
        v.add("lines", "must hold at least one line")
    needs: dict[tuple[str, str], int] = {}
    for i, line in enumerate(lines):
        if not line.node_id:
            v.add(f"lines[{i}].node_id", "must not be empty")
        if not line.sku:
            v.add(f"lines[{i}].sku", "must not be empty")
        if line.quantity <= 0:
            v.add(f"lines[{i}].quantity", f"must be positive, got {line.quantity}")
        key = (line.node_id, line.sku)
        needs[key] = needs.get(key, 0) + line.quantity
    for (node_id, sku), units in needs.items():
        if units > MAX_INT32:
            v.add("lines", f"{node_id}/{sku}: {units} units in all, above {MAX_INT32}")
    for i, (node_id, _day) in enumerate(capacity):
        if not node_id:
            v.add(f"capacity[{i}].node_id", "must not be empty")
    if not ttl_s > 0:
        v.add("ttl_s", f"must be positive, got {ttl_s}")
    check_now(now, v)
    v.raise_if_any()
    created = now.astimezone(UTC)
    return ReserveRequest(
        request_id=request_id,
        digest=request_digest(RESERVE, payload),
        order_id=order_id,
        lines=tuple(lines),
        needs=tuple((n, s, q) for (n, s), q in sorted(needs.items())),
        capacity=tuple(sorted(set(capacity))),
        created_at=created,
        expires_at=created + timedelta(seconds=ttl_s),
    )


def check_now(now: datetime, v: Violations | None = None) -> None:
    """``now`` must be timezone-aware: the ledger stores and compares UTC instants."""
    own = v is None
    v = Violations() if v is None else v
    if now.tzinfo is None or now.utcoffset() is None:
        v.add("now", "must be timezone-aware")
    if own:
        v.raise_if_any()


def check_days(first: date, last: date) -> None:
    """A capacity_used range runs forwards."""
    if last < first:
        raise InvalidArgumentError([FieldViolation("last", f"{last} is before first {first}")])


def check_calendar_owner(owner: str) -> None:
    """A set_calendar call names its node or service."""
    if not owner:
        raise InvalidArgumentError([FieldViolation("owner", "must not be empty")])


def calendar_text(calendar: Calendar) -> str:
    """A calendar as the SQL ledgers store it: its closed days ``;``-joined."""
    return ";".join(calendar.closed_days)


def calendar_of_text(text: str) -> Calendar:
    """The calendar stored as ``text`` by :func:`calendar_text`."""
    calendar = Calendar.parse(text.split(";"), "closed_days", Violations())
    assert calendar is not None, f"a stored calendar parses: {text!r}"
    return calendar


def content_digest(content: bytes) -> str:
    """A short digest naming content kept once (the decision log's calendars, networks)."""
    return hashlib.sha256(content).hexdigest()[:32]


def rules_digest(document: str) -> str:
    """The digest a rule-set version carries: SHA-256 hex of its document (UTF-8)."""
    return hashlib.sha256(document.encode()).hexdigest()


def validate_publish(
    name: str, document: str, by: str, reason: str, lint: str, now: datetime
) -> datetime:
    """Check a publish_rules call; the publication instant in UTC."""
    v = Violations()
    if not name.strip():
        v.add("name", "must not be empty")
    if not document.strip():
        v.add("document", "must not be empty")
    if not by.strip():
        v.add("by", "must not be empty")
    for field, value in (("name", name), ("document", document), ("by", by), ("reason", reason)):
        check_text(value, field, v)
    check_text(lint, "lint", v)
    check_now(now, v)
    v.raise_if_any()
    return now.astimezone(UTC)


class Publication(NamedTuple):
    """What :meth:`Ledger.publish_rules` returns: the version, and whether this call stored it.

    ``created`` is False when the document had been published before (same digest): the
    version is the earlier one, as it was first published.
    """

    version: RuleVersion
    created: bool


RuleCheck = Callable[[RuleVersion], object]
"""A check of the version about to become active (activate or rollback), called inside
the ledger's transaction; whatever it raises refuses the change and is raised to the caller."""


def check_version(version: int, field: str = "version", v: Violations | None = None) -> None:
    """A rule-set version number is at least 1."""
    own = v is None
    v = Violations() if v is None else v
    if version < 1:
        v.add(field, f"must be >= 1, got {version}")
    if own:
        v.raise_if_any()


def validate_rule_change(
    by: str, reason: str, now: datetime, version: int | None, field: str = "version"
) -> datetime:
    """Check an activate_rules/rollback_rules call; the instant in UTC.

    ``version`` (named ``field`` in violations) is checked when given.
    """
    v = Violations()
    if version is not None:
        check_version(version, field, v)
    if not by.strip():
        v.add("by", "must not be empty")
    if not reason.strip():
        v.add("reason", "must not be empty")
    check_text(by, "by", v)
    check_text(reason, "reason", v)
    check_now(now, v)
    v.raise_if_any()
    return now.astimezone(UTC)


def no_rule_version(version: int, field: str = "version") -> NotFoundError:
    """The error for a rule-set version that does not exist, naming it."""
    return NotFoundError(f"{field}: no rule set version {version}")


def check_activation(active: int | None, version: int, exists: Callable[[int], bool]) -> None:
    """Raise unless ``version`` exists and is not the ``active`` one."""
    if not exists(version):
        raise no_rule_version(version)
    if version == active:
        raise RuleVersionStateError(f"version {version} is already active")


def rollback_target(
    current: tuple[int, int | None] | None, to: int | None, exists: Callable[[int], bool]
) -> int:
    """The version a rollback activates, given the current (version, previous) activation.

    ``to`` when given (it must exist and not be active), else the version active before
    the current one. Raises RuleVersionStateError when there is nothing to roll back to.
    """
    if current is None:
        raise RuleVersionStateError("no rule set version is active: there is nothing to roll back")
    active, previous = current
    if to is not None:
        if not exists(to):
            raise no_rule_version(to, "to")
        if to == active:
            raise RuleVersionStateError(f"version {to} is already active")
        return to
    if previous is None:
        raise RuleVersionStateError(
            f"version {active} is the first version activated: there is no earlier version "
            "to roll back to (name one with to)"
        )
    return previous


def check_store(request_id: str, now: datetime) -> None:
    """Validate a store_response call."""
    v = Violations()
    check_id(request_id, "request_id", v)
    check_now(now, v)
    v.raise_if_any()


def check_transition(request_id: str, reservation_id: str) -> None:
    """Validate a confirm/release call's ids."""
    v = Violations()
    check_id(request_id, "request_id", v)
    check_id(reservation_id, "reservation_id", v)
    v.raise_if_any()


Units = dict[tuple[str, str], int]
"""Units per (node_id, sku)."""


def check_transition_part(
    request_id: str, reservation_id: str, lines: Sequence[ReservationLine]
) -> Units:
    """Validate a partial confirm/release call; the units it names per (node, sku), sorted.

    Each line names a node and a SKU once, with a quantity of at least 1 (InvalidArgumentError
    naming ``lines[i]`` otherwise); whether the reservation holds them is checked against it
    (:func:`check_held`).
    """
    v = Violations()
    check_id(request_id, "request_id", v)
    check_id(reservation_id, "reservation_id", v)
    units: Units = {}
    for i, line in enumerate(lines):
        key = (line.node_id, line.sku)
        if not line.node_id or not line.sku:
            v.add(f"lines[{i}]", "needs a node_id and a sku")
        elif not 1 <= line.quantity <= MAX_INT32:
            v.add(f"lines[{i}].quantity", f"must be 1 to {MAX_INT32}, got {line.quantity}")
        elif key in units:
            v.add(f"lines[{i}]", f"names {line.node_id}/{line.sku} again: one line each")
        else:
            units[key] = line.quantity
    v.raise_if_any()
    return dict(sorted(units.items()))


def transition_request(
    operation: str, request_id: str, reservation_id: str, lines: Sequence[ReservationLine]
) -> tuple[Units | None, str]:
    """A validated confirm/release call: its units (None: the whole reservation), its digest."""
    if lines:
        units = check_transition_part(request_id, reservation_id, lines)
        return units, part_digest(operation, reservation_id, units)
    check_transition(request_id, reservation_id)
    return None, request_digest(operation, reservation_id.encode())


def part_digest(operation: str, reservation_id: str, units: Units) -> str:
    """The request fingerprint of a partial confirm/release: the reservation and its units."""
    named = json.dumps([reservation_id, [[node, sku, n] for (node, sku), n in units.items()]])
    return request_digest(operation, named.encode())


def held_units(lines: Sequence[ReservationLine]) -> Units:
    """A reservation's units per (node, sku), sorted (lines of one position added up)."""
    units: Units = {}
    for line in lines:
        units[line.node_id, line.sku] = units.get((line.node_id, line.sku), 0) + line.quantity
    return dict(sorted(units.items()))


def check_held(units: Units, held: Units, reservation_id: str) -> None:
    """InvalidArgumentError naming each line that asks for more than the reservation holds."""
    v = Violations()
    for (node, sku), n in units.items():
        has = held.get((node, sku), 0)
        if n > has:
            v.add(
                "lines", f"asks for {n} of {node}/{sku}; reservation {reservation_id} holds {has}"
            )
    v.raise_if_any()


def take_lines(lines: Sequence[ReservationLine], units: Units) -> tuple[ReservationLine, ...]:
    """``lines`` less ``units`` per (node, sku), taken from the first lines first; no empties."""
    left = dict(units)
    kept = []
    for line in lines:
        key = (line.node_id, line.sku)
        take = min(left.get(key, 0), line.quantity)
        left[key] = left.get(key, 0) - take
        if line.quantity > take:
            kept.append(ReservationLine(line.node_id, line.sku, line.quantity - take))
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A node's rejection of units a HELD reservation holds there, and their re-route.

    ``units`` are the rejected units per (``node_id``, sku); ``corrected_on_hand``, when
    set, is the node's new on hand of each rejected SKU (clamped to its reserved units).
    ``excluded`` are the nodes that had rejected before, as the re-route was planned
    (the ledger re-checks them: another rejection meanwhile is a conflict to plan again);
    ``lines`` and ``capacity`` the units and (node, ship date) slots the re-route holds in
    the same reservation (empty: backordered). ``digest`` fingerprints the request.
    """

    request_id: str
    digest: str
    reservation_id: str
    node_id: str
    units: Units
    corrected_on_hand: int | None
    excluded: tuple[str, ...]
    lines: tuple[ReservationLine, ...]
    capacity: tuple[tuple[str, date], ...]
    reason: str
    now: datetime


def validate_rejection(
    request_id: str,
    payload: bytes,
    reservation_id: str,
    node_id: str,
    units: Units,
    *,
    corrected_on_hand: int | None,
    excluded: Sequence[str],
    lines: Sequence[ReservationLine],
    capacity: Sequence[tuple[str, date]],
    reason: str,
    now: datetime,
) -> Rejection:
    """Check a reject call and sort it; raises InvalidArgumentError naming each field.

    Every rejected unit is at ``node_id``; no re-routed line is (the node is excluded).
    """
    v = Violations()
    check_id(request_id, "request_id", v)
    check_id(reservation_id, "reservation_id", v)
    if not node_id:
        v.add("node_id", "must not be empty")
    if not units:
        v.add("lines", "must name at least one unit")
    for (node, sku), n in units.items():
        if node != node_id or not sku or not 1 <= n <= MAX_INT32:
            v.add("lines", f"{node}/{sku}: {n} units; must be 1 to {MAX_INT32} at {node_id}")
    if corrected_on_hand is not None and not 0 <= corrected_on_hand <= MAX_INT32:
        v.add("corrected_on_hand", f"must be 0 to {MAX_INT32}, got {corrected_on_hand}")
    for i, line in enumerate(lines):
        if line.node_id == node_id or line.quantity <= 0:
            v.add(f"reroute[{i}]", f"{line.node_id}/{line.sku}: not a re-routed line")
    check_text(reason, "reason", v)
    check_now(now, v)
    v.raise_if_any()
    return Rejection(
        request_id=request_id,
        digest=request_digest(REJECT, payload),
        reservation_id=reservation_id,
        node_id=node_id,
        units=dict(sorted(units.items())),
        corrected_on_hand=corrected_on_hand,
        excluded=tuple(sorted(set(excluded))),
        lines=tuple(lines),
        capacity=tuple(sorted(set(capacity))),
        reason=reason,
        now=now.astimezone(UTC),
    )


def _check_feed(feed: str, sequence: int, node_id: str, v: Violations) -> None:
    if not feed:
        v.add("feed", "must not be empty")
    if sequence < 0:
        v.add("sequence", f"must not be negative, got {sequence}")
    if sequence > MAX_INT64:
        v.add("sequence", f"must be at most {MAX_INT64}, got {sequence}")
    if not node_id:
        v.add("node_id", "must not be empty")


def validate_snapshot(
    feed: str, sequence: int, node_id: str, positions: Sequence[tuple[str, int, int]]
) -> dict[str, tuple[int, int]]:
    """Check a snapshot; (on_hand, safety_stock) by SKU. Raises naming every bad field."""
    v = Violations()
    _check_feed(feed, sequence, node_id, v)
    given: dict[str, tuple[int, int]] = {}
    for i, (sku, on_hand, safety) in enumerate(positions):
        if not sku:
            v.add(f"positions[{i}].sku", "must not be empty")
        if sku in given:
            v.add(f"positions[{i}].sku", f"{sku!r} appears twice")
        if on_hand < 0:
            v.add(f"positions[{i}].on_hand", f"must not be negative, got {on_hand}")
        if on_hand > MAX_INT32:
            v.add(f"positions[{i}].on_hand", f"must be at most {MAX_INT32}, got {on_hand}")
        if safety < 0:
            v.add(f"positions[{i}].safety_stock", f"must not be negative, got {safety}")
        if safety > MAX_INT32:
            v.add(f"positions[{i}].safety_stock", f"must be at most {MAX_INT32}, got {safety}")
        given[sku] = (on_hand, safety)
    v.raise_if_any()
    return given


def validate_delta(
    feed: str, sequence: int, node_id: str, deltas: Sequence[tuple[str, int]]
) -> dict[str, int]:
    """Check a delta; the summed on-hand change by SKU. Raises naming every bad field.

    Each change, and the sum of a SKU's changes, lies within ±:data:`MAX_INT32`: so do the
    units a SKU's change can clamp (twice that at most), and their sum fits any reply.
    """
    v = Violations()
    _check_feed(feed, sequence, node_id, v)
    changes: dict[str, int] = {}
    for i, (sku, change) in enumerate(deltas):
        if not sku:
            v.add(f"deltas[{i}].sku", "must not be empty")
        if abs(change) > MAX_INT32:
            v.add(f"deltas[{i}].on_hand_change", f"must be within ±{MAX_INT32}, got {change}")
        changes[sku] = changes.get(sku, 0) + change
    for sku, total in changes.items():
        if abs(total) > MAX_INT32:
            v.add("deltas", f"the changes of {quoted(sku)} sum to {total}, beyond ±{MAX_INT32}")
    v.raise_if_any()
    return changes


def check_on_hand(node_id: str, sku: str, target: int) -> None:
    """Raise :class:`InvalidArgumentError` when a delta would take on hand above int32."""
    if target > MAX_INT32:
        raise InvalidArgumentError(
            [
                FieldViolation(
                    "deltas",
                    f"{node_id}/{sku}: on hand would become {target}, above {MAX_INT32}",
                )
            ]
        )
