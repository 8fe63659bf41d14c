"""The ledger on SQL: one implementation of every operation, shared by SQLite and PostgreSQL.

The backends (sqlite.py, postgres.py) supply a transaction runner, parameter conversion
and the row-lock clause; the statements here are portable (``?`` placeholders, upserts
with ``ON CONFLICT``, ``RETURNING``). The database enforces the invariants with CHECK and
UNIQUE constraints (schema_*.sql); the statements below keep them by construction:

- stock is taken only by a conditional update that re-checks availability in the row it
  changes, so two transactions can never both take the last unit;
- confirm, release and expiry change a reservation only ``WHERE status = 'HELD'``, so of
  two racing calls exactly one sees a row count of 1;
- a request_id is claimed by inserting its idempotency record first in the transaction:
  the unique key makes a concurrent call with the same id wait, then find the record;
- rule-set publishes and activations read the next number (and the active version)
  under ``_rules_lock`` and insert it in the same transaction (so ``only_if_none`` is a
  true compare-and-set); triggers refuse gaps, an out-of-order ``previous``, an insert
  of a stored key or digest (SQLite's REPLACE would delete the stored row) and any
  UPDATE or DELETE of the history.

Rows are always locked in one order (idempotency record, reservation, positions by
(node_id, sku), capacity by (node_id, day), feed counters), so transactions do not deadlock.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from models.calendar import Calendar, CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.errors import (
    IdempotencyMismatchError,
    NotFoundError,
    ReservationStateError,
    Shortfall,
    StockConflictError,
)
from models.network import Network, Stock, StockPosition
from models.reservation import (
    FeedOutcome,
    FeedResult,
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from models.rule_versions import ACTIVATE, ROLLBACK, RuleActivation, RuleVersion
from router.ledger.base import (
    CONFIRM,
    FEED_COUNTERS,
    NO_RESERVATION,
    RELEASE,
    RESERVE,
    Ledger,
    NoReservationError,
    Publication,
    ReserveRequest,
    RuleCheck,
    calendar_of_text,
    calendar_text,
    check_activation,
    check_calendar_owner,
    check_days,
    check_now,
    check_on_hand,
    check_store,
    check_transition,
    check_version,
    no_rule_version,
    request_digest,
    rollback_target,
    rules_digest,
    validate_delta,
    validate_publish,
    validate_reserve,
    validate_rule_change,
    validate_snapshot,
)

T = TypeVar("T")
Row = Mapping[str, Any]
"""A row as the backends return it: its values by column name (never by position)."""

#: Rule versions (every column :class:`RuleVersion` is read from), by key, by digest, all.
_RULE_BY_VERSION = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions WHERE version = ?"
)
_RULE_BY_DIGEST = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions WHERE digest = ?"
)
_RULES = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions ORDER BY version"
)
_INSERT_RULE = (
    "INSERT INTO rule_versions "
    "(version, name, document, digest, published_at, published_by, reason, lint) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Activations (every column :class:`RuleActivation` is read from): the last one, all.
_LAST_ACTIVATION = (
    "SELECT seq, version, action, activated_at, activated_by, reason, previous "
    "FROM rule_activations ORDER BY seq DESC LIMIT 1"
)
_ACTIVATIONS = (
    "SELECT seq, version, action, activated_at, activated_by, reason, previous "
    "FROM rule_activations ORDER BY seq"
)
_INSERT_ACTIVATION = (
    "INSERT INTO rule_activations "
    "(seq, version, action, activated_at, activated_by, reason, previous) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: The active version: the activation with the highest seq, joined on the version's key.
_ACTIVE_RULES = (
    "SELECT v.version, v.name, v.document, v.digest, v.published_at, v.published_by, "
    "v.reason, v.lint FROM rule_activations a JOIN rule_versions v ON v.version = a.version "
    "ORDER BY a.seq DESC LIMIT 1"
)
#: A HELD reservation moves to a new status (row count 0: another call got there first).
_SETTLE = (
    "UPDATE reservations SET status = ?, updated_at = ? "
    "WHERE reservation_id = ? AND status = 'HELD'"
)
#: The same, for a reservation whose expires_at has passed (the sweeper's expiry).
_SETTLE_LAPSED = (
    "UPDATE reservations SET status = ?, updated_at = ? "
    "WHERE reservation_id = ? AND status = 'HELD' AND expires_at <= ?"
)
#: Every position, in key order.
_ALL_POSITIONS = (
    "SELECT node_id, sku, on_hand, safety_stock, reserved FROM positions ORDER BY node_id, sku"
)
#: The number of the active version alone: the activation with the highest seq.
_ACTIVE_VERSION = "SELECT version FROM rule_activations ORDER BY seq DESC LIMIT 1"


class Tx(Protocol):
    """One open transaction, as the shared statements see it."""

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """Run ``sql`` and return its first row, if any."""
        ...

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run ``sql`` and return every row."""
        ...

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run ``sql`` and return the number of rows it changed."""
        ...


class SqlLedger(Ledger):
    """The ledger's operations in portable SQL; subclasses adapt one database driver."""

    #: Reads one position (on_hand, reserved, safety_stock) and locks its row until the
    #: transaction ends, as each database says it (written whole in each backend).
    lock_position_sql: str
    #: Reads every position of the SKUs in one list parameter (see :meth:`sku_list`).
    positions_of_skus_sql: str

    @abstractmethod
    def sku_list(self, skus: Sequence[str]) -> object:
        """``skus`` as the one parameter of :attr:`positions_of_skus_sql`."""

    @abstractmethod
    def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction: commit when it returns, roll back when it raises.

        Retries transient conflicts (busy database, deadlock, serialisation failure) a
        bounded number of times; ``work`` must therefore only touch the database.
        """

    @abstractmethod
    def ts(self, value: datetime) -> object:
        """A UTC instant as the database stores it."""

    @abstractmethod
    def from_ts(self, value: Any) -> datetime:
        """An instant read from the database."""

    @abstractmethod
    def day(self, value: date) -> object:
        """A calendar day as the database stores it."""

    @abstractmethod
    def from_day(self, value: Any) -> date:
        """A day read from the database."""

    # --- seeding and reads -------------------------------------------------------------

    def load(self, network: Network, stock: Stock) -> None:
        """See :meth:`Ledger.load`."""
        self.transaction(lambda tx: self._load(tx, network, stock, overwrite=True))

    def seed(self, network: Network, stock: Stock) -> bool:
        """See :meth:`Ledger.seed`: check and load in one transaction, under the seed lock."""

        def work(tx: Tx) -> bool:
            self._seed_lock(tx)
            if tx.one("SELECT 1 FROM positions LIMIT 1") is not None:
                return False
            self._load(tx, network, stock, overwrite=False)
            return True

        return self.transaction(work)

    def _seed_lock(self, tx: Tx) -> None:
        """Serialise seeders until the transaction ends (SQLite: BEGIN IMMEDIATE does)."""

    def _load(self, tx: Tx, network: Network, stock: Stock, *, overwrite: bool) -> None:
        """Upsert the nodes and insert the positions; ``overwrite`` updates existing ones."""
        for node in sorted(network.nodes, key=lambda n: n.node_id):
            tx.run(
                "INSERT INTO nodes (node_id, daily_order_capacity) VALUES (?, ?) "
                "ON CONFLICT (node_id) DO UPDATE "
                "SET daily_order_capacity = excluded.daily_order_capacity",
                (node.node_id, node.daily_order_capacity),
            )
        for kind, owner, calendar in network.calendars.entries():
            self._put_calendar(tx, kind, owner, calendar)
        if network.calendars:
            self._next_calendar_revision(tx)
        on_conflict = (
            "DO UPDATE SET on_hand = CASE WHEN excluded.on_hand < positions.reserved "
            "THEN positions.reserved ELSE excluded.on_hand END, "
            "safety_stock = excluded.safety_stock"
            if overwrite
            else "DO NOTHING"
        )
        for (node_id, sku), p in sorted(stock.positions.items()):
            tx.run(
                "INSERT INTO positions (node_id, sku, on_hand, reserved, safety_stock) "
                f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id, sku) {on_conflict}",
                (node_id, sku, max(p.on_hand, p.reserved), p.reserved, p.safety_stock),
            )

    def stock(self, skus: Collection[str] | None = None) -> Stock:
        """See :meth:`Ledger.stock`."""
        if skus is None:
            rows = self.transaction(lambda tx: tx.all(_ALL_POSITIONS))
        else:
            wanted = self.sku_list(sorted(set(skus)))
            rows = self.transaction(lambda tx: tx.all(self.positions_of_skus_sql, (wanted,)))
        return Stock.of(
            StockPosition(r["node_id"], r["sku"], r["on_hand"], r["safety_stock"], r["reserved"])
            for r in rows
        )

    def capacity_used(self, first: date, last: date) -> CapacityUsed:
        """See :meth:`Ledger.capacity_used`: one range scan of the ``capacity_by_day`` index."""
        check_days(first, last)
        rows = self.transaction(
            lambda tx: tx.all(
                "SELECT node_id, day, used FROM capacity WHERE day BETWEEN ? AND ? AND used > 0 "
                "ORDER BY node_id, day",
                (self.day(first), self.day(last)),
            )
        )
        return CapacityUsed(
            {(str(r["node_id"]), self.from_day(r["day"])): int(r["used"]) for r in rows}
        )

    # --- calendars ---------------------------------------------------------------------

    def calendars(self) -> tuple[int, Calendars]:
        """See :meth:`Ledger.calendars`."""

        def work(tx: Tx) -> tuple[int, Calendars]:
            revision = tx.one("SELECT revision FROM calendar_revision WHERE id = 1")
            rows = tx.all("SELECT kind, owner, closed_days FROM calendars ORDER BY kind, owner")
            entries = [
                (CalendarKind(r["kind"]), str(r["owner"]), calendar_of_text(str(r["closed_days"])))
                for r in rows
            ]
            return (0 if revision is None else int(revision["revision"])), Calendars.of(entries)

        return self.transaction(work)

    def calendar_revision(self) -> int:
        """See :meth:`Ledger.calendar_revision`."""
        row = self.transaction(
            lambda tx: tx.one("SELECT revision FROM calendar_revision WHERE id = 1")
        )
        return 0 if row is None else int(row["revision"])

    def set_calendar(self, kind: CalendarKind, owner: str, calendar: Calendar) -> int:
        """See :meth:`Ledger.set_calendar`: the calendar and the revision in one transaction."""
        check_calendar_owner(owner)

        def work(tx: Tx) -> int:
            self._put_calendar(tx, kind, owner, calendar)
            return self._next_calendar_revision(tx)

        return self.transaction(work)

    def _put_calendar(self, tx: Tx, kind: CalendarKind, owner: str, calendar: Calendar) -> None:
        """Store (upsert) ``owner``'s calendar, or delete it when it closes no day."""
        if not calendar:
            tx.run("DELETE FROM calendars WHERE kind = ? AND owner = ?", (kind.value, owner))
            return
        tx.run(
            "INSERT INTO calendars (kind, owner, closed_days) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, owner) DO UPDATE SET closed_days = excluded.closed_days",
            (kind.value, owner, calendar_text(calendar)),
        )

    def _next_calendar_revision(self, tx: Tx) -> int:
        """Count one calendar change; the new revision (the row lock orders writers)."""
        row = tx.one(
            "UPDATE calendar_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
        )
        assert row is not None, "the schema inserts the calendar_revision row"
        return int(row["revision"])

    def reservation(self, reservation_id: str) -> Reservation:
        """See :meth:`Ledger.reservation`."""
        return self.transaction(lambda tx: self._read(tx, reservation_id))

    def _read(self, tx: Tx, reservation_id: str) -> Reservation:
        head = tx.one(
            "SELECT order_id, status, created_at, expires_at FROM reservations "
            "WHERE reservation_id = ?",
            (reservation_id,),
        )
        if head is None:
            raise NotFoundError(f"reservation_id: no reservation {reservation_id!r}")
        lines = tx.all(
            "SELECT node_id, sku, quantity FROM reservation_lines WHERE reservation_id = ? "
            "ORDER BY line_no",
            (reservation_id,),
        )
        slots = tx.all(
            "SELECT node_id, day FROM reservation_capacity WHERE reservation_id = ? "
            "ORDER BY node_id, day",
            (reservation_id,),
        )
        return Reservation(
            reservation_id=reservation_id,
            order_id=head["order_id"],
            lines=tuple(ReservationLine(r["node_id"], r["sku"], r["quantity"]) for r in lines),
            status=ReservationStatus(head["status"]),
            created_at=self.from_ts(head["created_at"]),
            expires_at=self.from_ts(head["expires_at"]),
            capacity=tuple((str(r["node_id"]), self.from_day(r["day"])) for r in slots),
        )

    # --- idempotency -------------------------------------------------------------------

    def _claim(
        self,
        tx: Tx,
        request_id: str,
        operation: str,
        digest: str,
        reservation_id: str,
        now: datetime,
        response: bytes | None = None,
    ) -> tuple[str, bytes | None] | None:
        """Claim ``request_id`` for this call, or return the first call's record.

        None when this call claimed the id; else the first call's (reservation_id, stored
        response). The insert is the first write of the transaction: a concurrent call with
        the same id blocks on the unique key until this one commits or rolls back.
        """
        claimed = tx.one(
            "INSERT INTO idempotency (request_id, operation, digest, reservation_id, created_at, "
            "response) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING "
            "RETURNING request_id",
            (request_id, operation, digest, reservation_id, self.ts(now), response),
        )
        if claimed is not None:
            return None
        first = tx.one(
            "SELECT operation, digest, reservation_id, response FROM idempotency "
            "WHERE request_id = ?",
            (request_id,),
        )
        assert first is not None, "a conflicting idempotency record is committed"
        if first["operation"] != operation or first["digest"] != digest:
            raise IdempotencyMismatchError(request_id)
        stored = first["response"]
        return str(first["reservation_id"]), None if stored is None else bytes(stored)

    # --- reservations ------------------------------------------------------------------

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
    ) -> Reservation:
        """See :meth:`Ledger.reserve`."""
        req = validate_reserve(request_id, payload, order_id, lines, capacity, ttl_s, now)

        def work(tx: Tx) -> Reservation:
            made, new = self._reserve(tx, req, new_reservation_id())
            if new and response is not None:
                tx.run(
                    "UPDATE idempotency SET response = ? WHERE request_id = ?",
                    (response(made), req.request_id),
                )
            return made

        return self.transaction(work)

    def stored_response(self, request_id: str, payload: bytes) -> bytes | None:
        """See :meth:`Ledger.stored_response`."""
        digest = request_digest(RESERVE, payload)
        row = self.transaction(
            lambda tx: tx.one(
                "SELECT operation, digest, response FROM idempotency WHERE request_id = ?",
                (request_id,),
            )
        )
        if row is None:
            return None
        if row["operation"] != RESERVE or row["digest"] != digest:
            raise IdempotencyMismatchError(request_id)
        return None if row["response"] is None else bytes(row["response"])

    def store_response(
        self, request_id: str, payload: bytes, response: bytes, now: datetime
    ) -> bytes | None:
        """See :meth:`Ledger.store_response`."""
        check_store(request_id, now)
        digest = request_digest(RESERVE, payload)

        def work(tx: Tx) -> bytes | None:
            first = self._claim(tx, request_id, RESERVE, digest, NO_RESERVATION, now, response)
            return response if first is None else first[1]

        return self.transaction(work)

    def _reserve(
        self, tx: Tx, req: ReserveRequest, reservation_id: str
    ) -> tuple[Reservation, bool]:
        """The reservation, and whether this call made it (False: a replay)."""
        first = self._claim(tx, req.request_id, RESERVE, req.digest, reservation_id, req.created_at)
        if first is not None:
            if first[0] == NO_RESERVATION:
                raise NoReservationError(req.request_id)
            return self._read(tx, first[0]), False
        shortfalls: list[Shortfall] = []
        for node_id, sku, units in req.needs:  # sorted: the fixed lock order
            taken = tx.run(
                "UPDATE positions SET reserved = reserved + ? WHERE node_id = ? AND sku = ? "
                "AND on_hand - reserved - safety_stock >= ?",
                (units, node_id, sku, units),
            )
            if taken == 0:
                row = tx.one(
                    "SELECT on_hand - reserved - safety_stock AS available FROM positions "
                    "WHERE node_id = ? AND sku = ?",
                    (node_id, sku),
                )
                available = 0 if row is None else max(0, int(row["available"]))
                shortfalls.append(Shortfall(node_id, sku, units, available))
        full: list[tuple[str, str]] = []
        for node_id, day in req.capacity:
            if not self._take_slot(tx, node_id, day):
                full.append((node_id, day.isoformat()))
        if shortfalls or full:
            raise StockConflictError(shortfalls, full)  # rolls back everything above
        tx.run(
            "INSERT INTO reservations (reservation_id, order_id, status, created_at, expires_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                reservation_id,
                req.order_id,
                ReservationStatus.HELD.value,
                self.ts(req.created_at),
                self.ts(req.expires_at),
                self.ts(req.created_at),
            ),
        )
        for i, line in enumerate(req.lines):
            tx.run(
                "INSERT INTO reservation_lines (reservation_id, line_no, node_id, sku, quantity) "
                "VALUES (?, ?, ?, ?, ?)",
                (reservation_id, i, line.node_id, line.sku, line.quantity),
            )
        for node_id, day in req.capacity:
            tx.run(
                "INSERT INTO reservation_capacity (reservation_id, node_id, day) VALUES (?, ?, ?)",
                (reservation_id, node_id, self.day(day)),
            )
        made = Reservation(
            reservation_id=reservation_id,
            order_id=req.order_id,
            lines=req.lines,
            status=ReservationStatus.HELD,
            created_at=req.created_at,
            expires_at=req.expires_at,
            capacity=req.capacity,
        )
        return made, True

    def _take_slot(self, tx: Tx, node_id: str, day: date) -> bool:
        """Take one order slot at ``node_id`` on ``day``; False when the node is full."""
        tx.run(
            "INSERT INTO capacity (node_id, day, used, daily_limit) "
            "SELECT node_id, ?, 0, daily_order_capacity FROM nodes WHERE node_id = ? "
            "ON CONFLICT (node_id, day) DO NOTHING",
            (self.day(day), node_id),
        )
        taken = tx.run(
            "UPDATE capacity SET used = used + 1 WHERE node_id = ? AND day = ? "
            "AND (daily_limit IS NULL OR used < daily_limit)",
            (node_id, self.day(day)),
        )
        if taken:
            return True
        if tx.one("SELECT 1 FROM nodes WHERE node_id = ?", (node_id,)) is None:
            raise NotFoundError(f"capacity.node_id: no node {node_id!r}")
        return False

    def confirm(self, request_id: str, reservation_id: str, now: datetime) -> Reservation:
        """See :meth:`Ledger.confirm`."""
        return self._transition(CONFIRM, request_id, reservation_id, now)

    def release(self, request_id: str, reservation_id: str, now: datetime) -> Reservation:
        """See :meth:`Ledger.release`."""
        return self._transition(RELEASE, request_id, reservation_id, now)

    def _transition(
        self, operation: str, request_id: str, reservation_id: str, now: datetime
    ) -> Reservation:
        check_transition(request_id, reservation_id)
        check_now(now)
        digest = request_digest(operation, reservation_id.encode())
        target = ReservationStatus.CONFIRMED if operation == CONFIRM else ReservationStatus.RELEASED

        def work(tx: Tx) -> Reservation:
            first = self._claim(tx, request_id, operation, digest, reservation_id, now)
            if first is not None:
                return self._read(tx, first[0])
            if not self._settle(tx, reservation_id, target, now):
                row = tx.one(
                    "SELECT status FROM reservations WHERE reservation_id = ?", (reservation_id,)
                )
                if row is None:
                    raise NotFoundError(f"reservation_id: no reservation {reservation_id!r}")
                raise ReservationStateError(reservation_id, str(row["status"]), operation)
            return self._read(tx, reservation_id)

        return self.transaction(work)

    def _settle(
        self,
        tx: Tx,
        reservation_id: str,
        target: ReservationStatus,
        now: datetime,
        lapsed_only: bool = False,
    ) -> bool:
        """Move a HELD reservation to ``target`` and settle its units and slots.

        The status change is conditional on HELD: False (and nothing changed) when another
        call got there first. ``lapsed_only`` narrows it to a reservation whose
        ``expires_at`` has passed at ``now`` (the sweeper's expiry test).
        """
        params: list[object] = [target.value, self.ts(now), reservation_id]
        if lapsed_only:
            moved = tx.run(_SETTLE_LAPSED, [*params, self.ts(now)])
        else:
            moved = tx.run(_SETTLE, params)
        if moved == 0:
            return False
        held = tx.all(
            "SELECT node_id, sku, SUM(quantity) AS units FROM reservation_lines "
            "WHERE reservation_id = ? GROUP BY node_id, sku ORDER BY node_id, sku",
            (reservation_id,),
        )
        for line in held:
            node_id, sku, units = line["node_id"], line["sku"], line["units"]
            if target is ReservationStatus.CONFIRMED:
                sql = (
                    "UPDATE positions SET on_hand = on_hand - ?, reserved = reserved - ? "
                    "WHERE node_id = ? AND sku = ?"
                )
                tx.run(sql, (units, units, node_id, sku))
            else:
                sql = "UPDATE positions SET reserved = reserved - ? WHERE node_id = ? AND sku = ?"
                tx.run(sql, (units, node_id, sku))
        if target is not ReservationStatus.CONFIRMED:  # a confirmed order keeps its slots
            slots = tx.all(
                "SELECT node_id, day FROM reservation_capacity WHERE reservation_id = ? "
                "ORDER BY node_id, day",
                (reservation_id,),
            )
            for slot in slots:
                tx.run(
                    "UPDATE capacity SET used = used - 1 WHERE node_id = ? AND day = ?",
                    (slot["node_id"], slot["day"]),
                )
        return True

    def expire(self, now: datetime) -> int:
        """See :meth:`Ledger.expire`. Each reservation expires in its own short transaction."""
        check_now(now)
        lapsed = self.transaction(
            lambda tx: tx.all(
                "SELECT reservation_id FROM reservations WHERE status = 'HELD' "
                "AND expires_at <= ? ORDER BY reservation_id",
                (self.ts(now),),
            )
        )
        expired = 0
        for reservation_id in (str(r["reservation_id"]) for r in lapsed):

            def work(tx: Tx, rid: str = reservation_id) -> bool:
                return self._settle(tx, rid, ReservationStatus.EXPIRED, now, lapsed_only=True)

            if self.transaction(work):
                expired += 1
        return expired

    # --- stock feeds -------------------------------------------------------------------

    def apply_snapshot(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        positions: Sequence[tuple[str, int, int]],
    ) -> FeedResult:
        """See :meth:`Ledger.apply_snapshot`."""
        given = validate_snapshot(feed, sequence, node_id, positions)

        def work(tx: Tx) -> FeedResult:
            ignored = self._advance_feed(tx, feed, node_id, sequence)
            if ignored is not None:
                return ignored
            rows = tx.all("SELECT sku FROM positions WHERE node_id = ?", (node_id,))
            held = {r["sku"] for r in rows}
            clamped = 0
            for sku in sorted(held | set(given)):
                on_hand, safety = given.get(sku, (0, -1))
                clamped += self._set_on_hand(tx, node_id, sku, None, on_hand, safety)
            return self._applied(tx, clamped)

        return self.transaction(work)

    def apply_delta(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        deltas: Sequence[tuple[str, int]],
    ) -> FeedResult:
        """See :meth:`Ledger.apply_delta`."""
        changes = validate_delta(feed, sequence, node_id, deltas)

        def work(tx: Tx) -> FeedResult:
            ignored = self._advance_feed(tx, feed, node_id, sequence)
            if ignored is not None:
                return ignored
            clamped = 0
            for sku, change in sorted(changes.items()):
                clamped += self._set_on_hand(tx, node_id, sku, change, 0, -1)
            return self._applied(tx, clamped)

        return self.transaction(work)

    def _advance_feed(self, tx: Tx, feed: str, node_id: str, sequence: int) -> FeedResult | None:
        """Move the (feed, node) sequence forward; the ignored result when it cannot."""
        moved = tx.one(
            "INSERT INTO feed_positions (feed, node_id, sequence) VALUES (?, ?, ?) "
            "ON CONFLICT (feed, node_id) DO UPDATE SET sequence = excluded.sequence "
            "WHERE feed_positions.sequence < excluded.sequence RETURNING sequence",
            (feed, node_id, sequence),
        )
        if moved is not None:
            return None
        last = tx.one(
            "SELECT sequence FROM feed_positions WHERE feed = ? AND node_id = ?", (feed, node_id)
        )
        assert last is not None
        outcome = FeedOutcome.DUPLICATE if int(last["sequence"]) == sequence else FeedOutcome.STALE
        self._count(tx, outcome.value, 1)
        return FeedResult(outcome)

    def _applied(self, tx: Tx, clamped: int) -> FeedResult:
        self._count(tx, "applied", 1)
        if clamped:
            self._count(tx, "clamped_units", clamped)
        return FeedResult(FeedOutcome.APPLIED, clamped)

    def _set_on_hand(
        self, tx: Tx, node_id: str, sku: str, change: int | None, on_hand: int, safety: int
    ) -> int:
        """Set one position's on hand, never below reserved (nor zero).

        The target is old + ``change``, or ``on_hand`` when ``change`` is None; ``safety``
        < 0 keeps the safety stock. Returns the units clamped.
        """
        tx.run(
            "INSERT INTO positions (node_id, sku, on_hand, reserved, safety_stock) "
            "VALUES (?, ?, 0, 0, 0) ON CONFLICT (node_id, sku) DO NOTHING",
            (node_id, sku),
        )
        row = tx.one(self.lock_position_sql, (node_id, sku))
        assert row is not None
        old, reserved = int(row["on_hand"]), int(row["reserved"])
        old_safety = int(row["safety_stock"])
        target = on_hand if change is None else old + change
        check_on_hand(node_id, sku, target)
        kept = max(target, reserved, 0)
        tx.run(
            "UPDATE positions SET on_hand = ?, safety_stock = ? WHERE node_id = ? AND sku = ?",
            (kept, old_safety if safety < 0 else safety, node_id, sku),
        )
        return kept - target

    def _count(self, tx: Tx, name: str, by: int) -> None:
        tx.run("UPDATE feed_counters SET value = value + ? WHERE name = ?", (by, name))

    def feed_stats(self) -> dict[str, int]:
        """See :meth:`Ledger.feed_stats`."""
        rows = self.transaction(lambda tx: tx.all("SELECT name, value FROM feed_counters"))
        stats = dict.fromkeys(FEED_COUNTERS, 0)
        stats.update({str(r["name"]): int(r["value"]) for r in rows})
        return stats

    # --- rule-set versions -------------------------------------------------------------

    def _rules_lock(self, tx: Tx) -> None:
        """Serialise rule-set writers until the transaction ends (SQLite: BEGIN IMMEDIATE does).

        Numbers (max + 1) and ``previous`` are read and then written; the lock makes that
        read-then-write atomic across replicas.
        """

    def _rule(self, row: Row) -> RuleVersion:
        return RuleVersion(
            version=int(row["version"]),
            name=str(row["name"]),
            document=str(row["document"]),
            digest=str(row["digest"]),
            published_at=self.from_ts(row["published_at"]),
            published_by=str(row["published_by"]),
            reason=str(row["reason"]),
            lint=str(row["lint"]),
        )

    def _activation(self, row: Row) -> RuleActivation:
        return RuleActivation(
            seq=int(row["seq"]),
            version=int(row["version"]),
            action=str(row["action"]),
            at=self.from_ts(row["activated_at"]),
            by=str(row["activated_by"]),
            reason=str(row["reason"]),
            previous=None if row["previous"] is None else int(row["previous"]),
        )

    def publish_rules(
        self, name: str, document: str, by: str, reason: str, lint: str, now: datetime
    ) -> Publication:
        """See :meth:`Ledger.publish_rules`."""
        at = validate_publish(name, document, by, now)
        digest = rules_digest(document)

        def work(tx: Tx) -> Publication:
            self._rules_lock(tx)
            same = tx.one(_RULE_BY_DIGEST, (digest,))
            if same is not None:
                return Publication(self._rule(same), created=False)
            top = tx.one("SELECT COALESCE(MAX(version), 0) AS top FROM rule_versions")
            assert top is not None
            made = RuleVersion(int(top["top"]) + 1, name, document, digest, at, by, reason, lint)
            tx.run(
                _INSERT_RULE,
                (made.version, name, document, digest, self.ts(at), by, reason, lint),
            )
            return Publication(made, created=True)

        return self.transaction(work)

    def rule_versions(self) -> tuple[RuleVersion, ...]:
        """See :meth:`Ledger.rule_versions`."""
        rows = self.transaction(lambda tx: tx.all(_RULES))
        return tuple(self._rule(r) for r in rows)

    def rule_version(self, version: int) -> RuleVersion:
        """See :meth:`Ledger.rule_version`."""
        check_version(version)
        row = self.transaction(lambda tx: self._rule_row(tx, version))
        if row is None:
            raise no_rule_version(version)
        return self._rule(row)

    def _rule_row(self, tx: Tx, version: int) -> Row | None:
        return tx.one(_RULE_BY_VERSION, (version,))

    def _current_activation(self, tx: Tx) -> RuleActivation | None:
        row = tx.one(_LAST_ACTIVATION)
        return None if row is None else self._activation(row)

    def _rule_exists(self, tx: Tx, version: int) -> bool:
        return tx.one("SELECT 1 FROM rule_versions WHERE version = ?", (version,)) is not None

    def _check_target(self, tx: Tx, version: int, check: RuleCheck | None) -> None:
        """Call ``check`` with the stored ``version`` (which exists), if there is a check."""
        if check is not None:
            row = self._rule_row(tx, version)
            assert row is not None, "the target version was found in this transaction"
            check(self._rule(row))

    def _append_activation(
        self,
        tx: Tx,
        current: RuleActivation | None,
        version: int,
        action: str,
        at: datetime,
        by: str,
        reason: str,
    ) -> RuleActivation:
        made = RuleActivation(
            seq=1 if current is None else current.seq + 1,
            version=version,
            action=action,
            at=at,
            by=by,
            reason=reason,
            previous=None if current is None else current.version,
        )
        tx.run(
            _INSERT_ACTIVATION,
            (made.seq, version, action, self.ts(at), by, reason, made.previous),
        )
        return made

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
        """See :meth:`Ledger.activate_rules`: the compare-and-set runs under ``_rules_lock``."""
        at = validate_rule_change(by, reason, now, version)

        def work(tx: Tx) -> RuleActivation | None:
            self._rules_lock(tx)
            current = self._current_activation(tx)
            if only_if_none and current is not None:
                return None
            active = None if current is None else current.version
            check_activation(active, version, lambda n: self._rule_exists(tx, n))
            self._check_target(tx, version, check)
            return self._append_activation(tx, current, version, ACTIVATE, at, by, reason)

        return self.transaction(work)

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

        def work(tx: Tx) -> RuleActivation:
            self._rules_lock(tx)
            current = self._current_activation(tx)
            target = rollback_target(
                None if current is None else (current.version, current.previous),
                to,
                lambda n: self._rule_exists(tx, n),
            )
            self._check_target(tx, target, check)
            return self._append_activation(tx, current, target, ROLLBACK, at, by, reason)

        return self.transaction(work)

    def active_rule_version(self) -> int | None:
        """See :meth:`Ledger.active_rule_version`: the last activation by its primary key."""
        row = self.transaction(lambda tx: tx.one(_ACTIVE_VERSION))
        return None if row is None else int(row["version"])

    def active_rules(self) -> RuleVersion | None:
        """See :meth:`Ledger.active_rules`: the latest activation by its primary key, one query."""
        row = self.transaction(lambda tx: tx.one(_ACTIVE_RULES))
        return None if row is None else self._rule(row)

    def rule_activations(self) -> tuple[RuleActivation, ...]:
        """See :meth:`Ledger.rule_activations`."""
        rows = self.transaction(lambda tx: tx.all(_ACTIVATIONS))
        return tuple(self._activation(r) for r in rows)


def new_reservation_id() -> str:
    """A fresh, unguessable reservation id."""
    return "R-" + uuid.uuid4().hex
