"""The ledger in memory: dictionaries behind one lock. For tests and trials; not durable.

Every call holds the lock from start to end, so calls are atomic and serial; each checks
everything before changing anything, which gives the all-or-nothing of the SQL backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from models.access import ApiToken, Role, new_token
from models.calendar import Calendar, CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.decision import DecisionPage, DecisionQuery, DecisionRecord, DecisionRetention
from models.errors import (
    IdempotencyMismatchError,
    NotFoundError,
    ReservationExpiredError,
    ReservationStateError,
    Shortfall,
    StockConflictError,
)
from models.fields import MAX_INT64
from models.network import Network, Stock, StockPosition
from models.reservation import (
    FeedOutcome,
    FeedResult,
    Reservation,
    ReservationLine,
    ReservationPage,
    ReservationQuery,
    ReservationStatus,
)
from models.rule_versions import ACTIVATE, ROLLBACK, RuleActivation, RuleVersion
from router.ledger.access import check_token_request
from router.ledger.base import (
    CONFIRM,
    FEED_COUNTERS,
    NO_RESERVATION,
    REJECT,
    RESERVE,
    NoReservationError,
    Publication,
    Rejection,
    RuleCheck,
    Units,
    check_activation,
    check_calendar_owner,
    check_days,
    check_held,
    check_now,
    check_on_hand,
    check_request_id,
    check_store,
    check_version,
    held_units,
    no_rule_version,
    request_digest,
    rollback_target,
    rules_digest,
    take_lines,
    transition_request,
    validate_delta,
    validate_publish,
    validate_reserve,
    validate_rule_change,
    validate_snapshot,
)
from router.ledger.ledger import Ledger
from router.ledger.reservations import new_reservation_id


@dataclass(slots=True)
class _Position:
    on_hand: int
    reserved: int
    safety_stock: int


@dataclass(frozen=True, slots=True)
class _Record:
    operation: str
    digest: str
    reservation_id: str
    response: bytes | None = None


class MemoryLedger(Ledger):
    """The ledger in dictionaries guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, int | None] = {}
        self._positions: dict[tuple[str, str], _Position] = {}
        self._holders: dict[str, set[str]] = {}  # sku -> nodes with a position of it
        self._used: dict[tuple[str, date], int] = {}
        self._reservations: dict[str, Reservation] = {}
        self._requests: dict[str, _Record] = {}
        self._feeds: dict[tuple[str, str], int] = {}
        self._counters = dict.fromkeys(FEED_COUNTERS, 0)
        self._rules: list[RuleVersion] = []  # version n at index n - 1
        self._activations: list[RuleActivation] = []  # seq n at index n - 1
        self._calendars = Calendars()
        self._calendar_revision = 0
        self._tokens: dict[str, tuple[ApiToken, str]] = {}  # token id -> (token, digest)
        self._owners: dict[str, str] = {}  # reservation id -> principal
        self._decisions: dict[str, DecisionRecord] = {}
        self._rejections: dict[str, list[str]] = {}  # reservation id -> rejecting nodes

    def load(self, network: Network, stock: Stock) -> None:
        """See :meth:`Ledger.load`."""
        with self._lock:
            self._load(network, stock)

    def seed(self, network: Network, stock: Stock) -> bool:
        """See :meth:`Ledger.seed`."""
        with self._lock:
            if self._positions:
                return False
            self._load(network, stock)
            return True

    def _load(self, network: Network, stock: Stock) -> None:
        """:meth:`load` with the lock held."""
        for node in network.nodes:
            self._limits[node.node_id] = node.daily_order_capacity
        if network.calendars:
            for kind, owner, calendar in network.calendars.entries():
                self._calendars = self._calendars.replaced(kind, owner, calendar)
            self._calendar_revision += 1
        for key, p in stock.positions.items():
            pos = self._positions.get(key)
            if pos is None:
                self._positions[key] = _Position(
                    max(p.on_hand, p.reserved), p.reserved, p.safety_stock
                )
                self._holders.setdefault(key[1], set()).add(key[0])
            else:
                pos.on_hand = max(p.on_hand, pos.reserved)
                pos.safety_stock = p.safety_stock

    def stock(self, skus: Collection[str] | None = None) -> Stock:
        """See :meth:`Ledger.stock`."""
        with self._lock:
            if skus is None:
                keys = sorted(self._positions)
            else:  # through the index: a few SKUs cost their positions, not the whole stock
                keys = sorted((n, s) for s in set(skus) for n in self._holders.get(s, ()))
            return Stock.of(
                StockPosition(n, s, p.on_hand, p.safety_stock, p.reserved)
                for (n, s), p in ((k, self._positions[k]) for k in keys)
            )

    def capacity_used(self, first: date, last: date) -> CapacityUsed:
        """See :meth:`Ledger.capacity_used`."""
        check_days(first, last)
        with self._lock:
            return CapacityUsed(
                {(n, d): u for (n, d), u in sorted(self._used.items()) if first <= d <= last and u}
            )

    def calendars(self) -> tuple[int, Calendars]:
        """See :meth:`Ledger.calendars`."""
        with self._lock:
            return self._calendar_revision, self._calendars

    def calendar_revision(self) -> int:
        """See :meth:`Ledger.calendar_revision`."""
        with self._lock:
            return self._calendar_revision

    def set_calendar(self, kind: CalendarKind, owner: str, calendar: Calendar) -> int:
        """See :meth:`Ledger.set_calendar`."""
        check_calendar_owner(owner)
        with self._lock:
            self._calendars = self._calendars.replaced(kind, owner, calendar)
            self._calendar_revision += 1
            return self._calendar_revision

    def reservation(self, reservation_id: str) -> Reservation:
        """See :meth:`Ledger.reservation`."""
        with self._lock:
            return self._get(reservation_id)

    def reservations(self, query: ReservationQuery) -> ReservationPage:
        """See :meth:`Ledger.reservations`."""
        with self._lock:
            found = sorted(
                (r for r in self._reservations.values()
                 if query.matches(r, self._owners.get(r.reservation_id, ""))),
                key=lambda r: (r.expires_at, r.reservation_id),
            )  # fmt: skip
            page = tuple(found[: query.page_size])
            owners = {r.reservation_id: self._owners.get(r.reservation_id, "") for r in page}
        more = len(found) > query.page_size
        after = (page[-1].expires_at, page[-1].reservation_id) if more else None
        return ReservationPage(page, after, owners)

    def held_timers(self, expires_before: datetime, ships_before: date) -> tuple[int, int]:
        """See :meth:`Ledger.held_timers`."""
        expiring = ReservationQuery(expires_before=expires_before)
        overdue = ReservationQuery(ships_before=ships_before)
        with self._lock:
            held = list(self._reservations.values())
        return (
            sum(expiring.matches(r, "") for r in held),
            sum(overdue.matches(r, "") for r in held),
        )

    def _get(self, reservation_id: str) -> Reservation:
        found = self._reservations.get(reservation_id)
        if found is None:
            raise NotFoundError(f"reservation_id: no reservation {reservation_id!r}")
        return found

    def _replay(self, request_id: str, operation: str, digest: str) -> Reservation | None:
        first = self._requests.get(request_id)
        if first is None:
            return None
        if first.operation != operation or first.digest != digest:
            raise IdempotencyMismatchError(request_id)
        if first.reservation_id == NO_RESERVATION:
            raise NoReservationError(request_id)
        return self._reservations[first.reservation_id]

    def reserve(
        self,
        request_id: str,
        payload: bytes,
        order_id: str,
        lines: Sequence[ReservationLine],
        capacity: Sequence[tuple[str, date]],
        ttl_s: float,
        now: datetime,
        response: Callable[[Reservation], bytes] | None = None,
        owner: str = "",
        decision: Callable[[Reservation], DecisionRecord] | None = None,
    ) -> Reservation:
        """See :meth:`Ledger.reserve`."""
        req = validate_reserve(request_id, payload, order_id, lines, capacity, ttl_s, now)
        with self._lock:
            first = self._replay(req.request_id, RESERVE, req.digest)
            if first is not None:
                return first
            self._check_free(req.needs, req.capacity)
            made = Reservation(
                reservation_id=new_reservation_id(),
                order_id=req.order_id,
                lines=req.lines,
                status=ReservationStatus.HELD,
                created_at=req.created_at,
                expires_at=req.expires_at,
                capacity=req.capacity,
            )
            stored = None if response is None else response(made)  # may raise: nothing changed
            record = None if decision is None else decision(made)
            for node_id, sku, units in req.needs:
                self._positions[(node_id, sku)].reserved += units
            for key in req.capacity:
                self._used[key] = self._used.get(key, 0) + 1
            self._reservations[made.reservation_id] = made
            if owner:
                self._owners[made.reservation_id] = owner
            self._requests[req.request_id] = _Record(
                RESERVE, req.digest, made.reservation_id, stored
            )
            if record is not None:
                self._log(record)
            return made

    def stored_response(
        self, request_id: str, payload: bytes, operation: str = RESERVE
    ) -> bytes | None:
        """See :meth:`Ledger.stored_response`."""
        check_request_id(request_id)
        digest = request_digest(operation, payload)
        with self._lock:
            first = self._requests.get(request_id)
            if first is None:
                return None
            if first.operation != operation or first.digest != digest:
                raise IdempotencyMismatchError(request_id)
            return first.response

    def store_response(
        self,
        request_id: str,
        payload: bytes,
        response: bytes,
        now: datetime,
        decision: DecisionRecord | None = None,
    ) -> bytes | None:
        """See :meth:`Ledger.store_response`."""
        check_store(request_id, now)
        digest = request_digest(RESERVE, payload)
        with self._lock:
            first = self._requests.get(request_id)
            if first is None:
                self._requests[request_id] = _Record(RESERVE, digest, NO_RESERVATION, response)
                if decision is not None:
                    self._log(decision)
                return response
            if first.operation != RESERVE or first.digest != digest:
                raise IdempotencyMismatchError(request_id)
            return first.response

    def _transition(
        self,
        operation: str,
        request_id: str,
        reservation_id: str,
        now: datetime,
        lines: Sequence[ReservationLine] = (),
    ) -> Reservation:
        units, digest = transition_request(operation, request_id, reservation_id, lines)
        check_now(now)
        target = ReservationStatus.CONFIRMED if operation == CONFIRM else ReservationStatus.RELEASED
        with self._lock:
            first = self._replay(request_id, operation, digest)
            if first is not None:
                return first
            current = self._get(reservation_id)
            if (
                operation == CONFIRM
                and current.status is ReservationStatus.HELD
                and current.expires_at <= now.astimezone(UTC)
            ):  # lapsed: expire it as the sweeper would, then refuse below
                current = self._settle(current, ReservationStatus.EXPIRED)
            if current.status is not ReservationStatus.HELD:
                if operation == CONFIRM and current.status is ReservationStatus.EXPIRED:
                    raise ReservationExpiredError(reservation_id, current.expires_at)
                raise ReservationStateError(reservation_id, current.status.value, operation)
            held = held_units(current.lines)
            if units is not None:
                check_held(units, held, reservation_id)
            if units is None or units == held:
                done = self._settle(current, target)
            else:
                done = self._part(current, units, held, operation)
            self._requests[request_id] = _Record(operation, digest, reservation_id)
            return done

    def _part(self, r: Reservation, units: Units, held: Units, operation: str) -> Reservation:
        """Ship ``units`` and give the rest back (confirm), or give ``units`` back (release)."""
        gone = units
        if operation == CONFIRM:
            gone = {k: n - units.get(k, 0) for k, n in held.items() if n > units.get(k, 0)}
            for (node_id, sku), n in units.items():
                pos = self._positions[(node_id, sku)]
                pos.reserved -= n
                pos.on_hand -= n
        for (node_id, sku), n in gone.items():
            self._positions[(node_id, sku)].reserved -= n
        lines = take_lines(r.lines, gone)
        holding = {line.node_id for line in lines}
        idle = tuple(slot for slot in r.capacity if slot[0] not in holding)
        for slot in idle:
            self._used[slot] -= 1
        status = ReservationStatus.CONFIRMED if operation == CONFIRM else r.status
        kept = tuple(slot for slot in r.capacity if slot[0] in holding)
        done = replace(r, lines=lines, capacity=kept, status=status)
        self._reservations[r.reservation_id] = done
        return done

    def _settle(self, r: Reservation, target: ReservationStatus) -> Reservation:
        for line in r.lines:
            pos = self._positions[(line.node_id, line.sku)]
            pos.reserved -= line.quantity
            if target is ReservationStatus.CONFIRMED:
                pos.on_hand -= line.quantity
        if target is not ReservationStatus.CONFIRMED:
            for key in r.capacity:
                self._used[key] -= 1
        done = replace(r, status=target)
        self._reservations[r.reservation_id] = done
        return done

    def rejected_nodes(self, reservation_id: str) -> tuple[str, ...]:
        """See :meth:`Ledger.rejected_nodes`."""
        with self._lock:
            return tuple(self._rejections.get(reservation_id, ()))

    def reject(
        self,
        rejection: Rejection,
        response: Callable[[Reservation], bytes],
        decision: DecisionRecord | None = None,
    ) -> tuple[Reservation, bytes]:
        """See :meth:`Ledger.reject`: everything checked before anything changes."""
        r = rejection
        with self._lock:
            first = self._requests.get(r.request_id)
            if first is not None:
                if first.operation != REJECT or first.digest != r.digest:
                    raise IdempotencyMismatchError(r.request_id)
                assert first.response is not None, "a committed rejection stored its response"
                return self._reservations[first.reservation_id], first.response
            current = self._get(r.reservation_id)
            if current.status is not ReservationStatus.HELD:
                raise ReservationStateError(r.reservation_id, current.status.value, REJECT)
            before = self._rejections.get(r.reservation_id, [])
            if tuple(sorted(set(before))) != r.excluded:
                raise StockConflictError([], [])  # another rejection committed: plan again
            check_held(r.units, held_units(current.lines), r.reservation_id)
            lines = take_lines(current.lines, r.units) + r.lines
            holding = {line.node_id for line in lines}
            idle = [slot for slot in current.capacity if slot[0] not in holding]
            new = sorted(set(r.capacity) - set(current.capacity))
            self._check_reroute(r, new)
            done = replace(
                current,
                lines=lines,
                capacity=tuple(sorted(set(current.capacity) - set(idle) | set(new))),
                status=ReservationStatus.HELD if lines else ReservationStatus.RELEASED,
            )
            answer = response(done)  # may raise: nothing changed
            clamped = self._move_rejected(r)
            for slot in idle:
                self._used[slot] -= 1
            for slot in new:
                self._used[slot] = self._used.get(slot, 0) + 1
            self._reservations[r.reservation_id] = done
            self._rejections.setdefault(r.reservation_id, []).append(r.node_id)
            self._requests[r.request_id] = _Record(REJECT, r.digest, r.reservation_id, answer)
            if r.corrected_on_hand is not None:
                self._applied(clamped)
            if decision is not None:
                self._log(decision)
            return done, answer

    def _check_reroute(self, r: Rejection, new: Sequence[tuple[str, date]]) -> None:
        """Raise StockConflictError unless the re-route's units and new slots are free."""
        needs: Units = {}
        for line in r.lines:
            needs[line.node_id, line.sku] = needs.get((line.node_id, line.sku), 0) + line.quantity
        self._check_free([(n, sku, units) for (n, sku), units in sorted(needs.items())], new)

    def _check_free(
        self, needs: Sequence[tuple[str, str, int]], slots: Sequence[tuple[str, date]]
    ) -> None:
        """Raise StockConflictError naming every short position and full (node, day).

        NotFoundError for a slot at a node the ledger does not know. Under ``_lock``.
        """
        shortfalls: list[Shortfall] = []
        for node_id, sku, units in needs:
            pos = self._positions.get((node_id, sku))
            available = 0 if pos is None else pos.on_hand - pos.reserved - pos.safety_stock
            if available < units:
                shortfalls.append(Shortfall(node_id, sku, units, max(0, available)))
        full: list[tuple[str, str]] = []
        for node_id, day in slots:
            if node_id not in self._limits:
                raise NotFoundError(f"capacity.node_id: no node {node_id!r}")
            limit = self._limits[node_id]
            if limit is not None and self._used.get((node_id, day), 0) >= limit:
                full.append((node_id, day.isoformat()))
        if shortfalls or full:
            raise StockConflictError(shortfalls, full)

    def _move_rejected(self, r: Rejection) -> int:
        """Give the rejected units back (correcting on hand), hold the re-routed; clamped units."""
        clamped = 0
        for (node_id, sku), units in r.units.items():
            pos = self._positions[(node_id, sku)]
            pos.reserved -= units
            if r.corrected_on_hand is not None:
                pos.on_hand = max(r.corrected_on_hand, pos.reserved)
                clamped += pos.on_hand - r.corrected_on_hand
        for line in r.lines:
            self._positions[(line.node_id, line.sku)].reserved += line.quantity
        return clamped

    def expire(self, now: datetime) -> int:
        """See :meth:`Ledger.expire`."""
        check_now(now)
        at = now.astimezone(UTC)
        with self._lock:
            lapsed = [
                r
                for _, r in sorted(self._reservations.items())
                if r.status is ReservationStatus.HELD and r.expires_at <= at
            ]
            for r in lapsed:
                self._settle(r, ReservationStatus.EXPIRED)
            return len(lapsed)

    def _advance(self, feed: str, node_id: str, sequence: int) -> FeedResult | None:
        last = self._feeds.get((feed, node_id))
        if last is not None and sequence <= last:
            outcome = FeedOutcome.DUPLICATE if sequence == last else FeedOutcome.STALE
            self._counters[outcome.value] += 1
            return FeedResult(outcome)
        self._feeds[(feed, node_id)] = sequence
        return None

    def _set(self, node_id: str, sku: str, target: int, safety: int) -> int:
        pos = self._positions.setdefault((node_id, sku), _Position(0, 0, 0))
        self._holders.setdefault(sku, set()).add(node_id)
        kept = max(target, pos.reserved, 0)
        pos.on_hand = kept
        if safety >= 0:
            pos.safety_stock = safety
        return kept - target

    def _applied(self, clamped: int) -> FeedResult:
        self._counters["applied"] += 1
        self._counters["clamped_units"] = min(MAX_INT64, self._counters["clamped_units"] + clamped)
        return FeedResult(FeedOutcome.APPLIED, clamped)

    def apply_snapshot(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        positions: Sequence[tuple[str, int, int]],
    ) -> FeedResult:
        """See :meth:`Ledger.apply_snapshot`."""
        given = validate_snapshot(feed, sequence, node_id, positions)
        with self._lock:
            ignored = self._advance(feed, node_id, sequence)
            if ignored is not None:
                return ignored
            held = {s for (n, s) in self._positions if n == node_id}
            clamped = 0
            for sku in sorted(held | set(given)):
                on_hand, safety = given.get(sku, (0, -1))
                clamped += self._set(node_id, sku, on_hand, safety)
            return self._applied(clamped)

    def apply_delta(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        deltas: Sequence[tuple[str, int]],
    ) -> FeedResult:
        """See :meth:`Ledger.apply_delta`."""
        changes = validate_delta(feed, sequence, node_id, deltas)
        with self._lock:
            targets = {
                sku: self._positions.get((node_id, sku), _Position(0, 0, 0)).on_hand + change
                for sku, change in sorted(changes.items())
            }
            last = self._feeds.get((feed, node_id))
            if last is None or sequence > last:  # to be applied: check before any change
                for sku, target in targets.items():
                    check_on_hand(node_id, sku, target)
            ignored = self._advance(feed, node_id, sequence)
            if ignored is not None:
                return ignored
            clamped = 0
            for sku, target in targets.items():
                clamped += self._set(node_id, sku, target, -1)
            return self._applied(clamped)

    # --- rule-set versions -------------------------------------------------------------

    def publish_rules(
        self, name: str, document: str, by: str, reason: str, lint: str, now: datetime
    ) -> Publication:
        """See :meth:`Ledger.publish_rules`."""
        at = validate_publish(name, document, by, reason, lint, now)
        digest = rules_digest(document)
        with self._lock:
            same = next((r for r in self._rules if r.digest == digest), None)
            if same is not None:
                return Publication(same, created=False)
            made = RuleVersion(len(self._rules) + 1, name, document, digest, at, by, reason, lint)
            self._rules.append(made)
            return Publication(made, created=True)

    def rule_versions(self) -> tuple[RuleVersion, ...]:
        """See :meth:`Ledger.rule_versions`."""
        with self._lock:
            return tuple(self._rules)

    def rule_version(self, version: int) -> RuleVersion:
        """See :meth:`Ledger.rule_version`."""
        check_version(version)
        with self._lock:
            if version > len(self._rules):
                raise no_rule_version(version)
            return self._rules[version - 1]

    def _append_activation(
        self, version: int, action: str, at: datetime, by: str, reason: str
    ) -> RuleActivation:
        current = self._activations[-1] if self._activations else None
        made = RuleActivation(
            seq=len(self._activations) + 1,
            version=version,
            action=action,
            at=at,
            by=by,
            reason=reason,
            previous=None if current is None else current.version,
        )
        self._activations.append(made)
        return made

    def _rule_exists(self, version: int) -> bool:
        return 1 <= version <= len(self._rules)

    def activate_rules(
        self,
        version: int,
        by: str,
        reason: str,
        now: datetime,
        *,
        only_if_none: bool = False,
        check: RuleCheck | None = None,
    ) -> RuleActivation | None:
        """See :meth:`Ledger.activate_rules`."""
        at = validate_rule_change(by, reason, now, version)
        with self._lock:
            if only_if_none and self._activations:
                return None
            active = self._activations[-1].version if self._activations else None
            check_activation(active, version, self._rule_exists)
            if check is not None:
                check(self._rules[version - 1])
            return self._append_activation(version, ACTIVATE, at, by, reason)

    def rollback_rules(
        self,
        by: str,
        reason: str,
        now: datetime,
        to: int | None = None,
        *,
        check: RuleCheck | None = None,
    ) -> RuleActivation:
        """See :meth:`Ledger.rollback_rules`."""
        at = validate_rule_change(by, reason, now, to, "to")
        with self._lock:
            current = self._activations[-1] if self._activations else None
            target = rollback_target(
                None if current is None else (current.version, current.previous),
                to,
                self._rule_exists,
            )
            if check is not None:
                check(self._rules[target - 1])
            return self._append_activation(target, ROLLBACK, at, by, reason)

    def active_rule_version(self) -> int | None:
        """See :meth:`Ledger.active_rule_version`."""
        with self._lock:
            return self._activations[-1].version if self._activations else None

    def active_rules(self) -> RuleVersion | None:
        """See :meth:`Ledger.active_rules`."""
        with self._lock:
            if not self._activations:
                return None
            return self._rules[self._activations[-1].version - 1]

    def rule_activations(self) -> tuple[RuleActivation, ...]:
        """See :meth:`Ledger.rule_activations`."""
        with self._lock:
            return tuple(self._activations)

    # --- the decision log ---------------------------------------------------------------

    def _log(self, record: DecisionRecord) -> None:
        """Keep ``record``, with its calendars; under ``_lock``."""
        self._decisions[record.decision_id] = record

    def record_decision(self, record: DecisionRecord) -> None:
        """See :meth:`DecisionStore.record_decision`."""
        with self._lock:
            self._log(record)

    def decision(self, decision_id: str) -> DecisionRecord:
        """See :meth:`DecisionStore.decision`."""
        with self._lock:
            record = self._decisions.get(decision_id)
        if record is None:
            raise NotFoundError(f"decision_id: no decision {decision_id!r}")
        return record

    def decisions(self, query: DecisionQuery) -> DecisionPage:
        """See :meth:`DecisionStore.decisions`."""
        with self._lock:
            found = sorted(
                (r for r in self._decisions.values() if query.matches(r)),
                key=lambda r: (r.decided_at, r.decision_id),
                reverse=True,
            )
        page = tuple(replace(r, calendars=None) for r in found[: query.page_size])
        more = len(found) > query.page_size
        return DecisionPage(page, (page[-1].decided_at, page[-1].decision_id) if more else None)

    def prune_decisions(self, now: datetime, retention: DecisionRetention) -> int:
        """See :meth:`DecisionStore.prune_decisions`."""
        check_now(now)
        with self._lock:
            newest = sorted(self._decisions.values(), key=lambda r: (r.decided_at, r.decision_id))
            keep = newest if retention.max_count is None else newest[-retention.max_count :]
            if retention.max_count == 0:
                keep = []
            if retention.max_age_s is not None:
                since = now - timedelta(seconds=retention.max_age_s)
                keep = [r for r in keep if r.decided_at >= since]
            kept = {r.decision_id for r in keep} | {
                r.decision_id
                for r in newest
                if r.reservation_id in self._reservations
                and self._reservations[r.reservation_id].status is ReservationStatus.HELD
            }
            pruned = [d for d in self._decisions if d not in kept]
            for decision_id in pruned:
                del self._decisions[decision_id]
            return len(pruned)

    def close(self) -> None:
        """Nothing to release."""

    def feed_stats(self) -> dict[str, int]:
        """See :meth:`Ledger.feed_stats`."""
        with self._lock:
            return dict(self._counters)

    # --- access ------------------------------------------------------------------------

    def issue_token(self, name: str, roles: frozenset[Role], now: datetime) -> tuple[ApiToken, str]:
        """See :meth:`AccessStore.issue_token`."""
        check_token_request(name, roles)
        token_id, token, digest = new_token()
        made = ApiToken(token_id, name, roles, now)
        with self._lock:
            self._tokens[token_id] = (made, digest)
        return made, token

    def revoke_token(self, token_id: str, now: datetime) -> ApiToken:
        """See :meth:`AccessStore.revoke_token`."""
        with self._lock:
            found = self._tokens.get(token_id)
            if found is None:
                raise NotFoundError(f"token_id: no token {token_id!r}")
            token, digest = found
            if token.active:
                token = replace(token, revoked_at=now)
                self._tokens[token_id] = (token, digest)
            return token

    def tokens(self) -> list[ApiToken]:
        """See :meth:`AccessStore.tokens`."""
        with self._lock:
            return sorted((t for t, _ in self._tokens.values()), key=lambda t: t.created_at)

    def token_digest(self, token_id: str) -> tuple[ApiToken, str] | None:
        """See :meth:`AccessStore.token_digest`."""
        with self._lock:
            return self._tokens.get(token_id)

    def reservation_owner(self, reservation_id: str) -> str | None:
        """See :meth:`AccessStore.reservation_owner`."""
        with self._lock:
            return self._owners.get(reservation_id)
