"""Reservations and idempotency records: :class:`ReservationStore` and its SQL."""

from __future__ import annotations

#: Operations recorded under a request_id; one id serves exactly one operation.
import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Protocol

from models.decision import DecisionRecord
from models.errors import (
    IdempotencyMismatchError,
    NotFoundError,
    ReservationExpiredError,
    ReservationStateError,
    Shortfall,
    StockConflictError,
)
from models.reservation import (
    Reservation,
    ReservationLine,
    ReservationPage,
    ReservationQuery,
    ReservationStatus,
)
from router.ledger.base import (
    CONFIRM,
    NO_RESERVATION,
    REJECT,
    RELEASE,
    RESERVE,
    NoReservationError,
    Rejection,
    ReserveRequest,
    Units,
    check_held,
    check_now,
    check_request_id,
    check_store,
    held_units,
    request_digest,
    transition_request,
    validate_reserve,
)
from router.ledger.decisions import SqlDecisions
from router.ledger.driver import Row, Statement, Tx
from router.ledger.stock import count_feed

#: A HELD reservation moves to a new status (row count 0: another call got there first).
_SETTLE = (
    "UPDATE reservations SET status = ?, updated_at = ? "
    "WHERE reservation_id = ? AND status = 'HELD'"
)

CONFIRMED = ReservationStatus.CONFIRMED

#: Hold ``units`` of one position if that many are available (no row changed: short).
_TAKE_UNITS = (
    "UPDATE positions SET reserved = reserved + ? WHERE node_id = ? AND sku = ? "
    "AND on_hand - reserved - safety_stock >= ?"
)
#: The units of one position available now (no row: the ledger lacks it).
_AVAILABLE = "SELECT on_hand - reserved - safety_stock FROM positions WHERE node_id = ? AND sku = ?"
#: Take one order slot of a node on a day: the day's first makes its row (the limit copied
#: from the node), a later one counts up while under the limit. No row changed: the node
#: is full that day (or unknown: a node of limit 0, or none, inserts nothing).
_TAKE_SLOT = (
    "INSERT INTO capacity (node_id, day, used, daily_limit) "
    "SELECT node_id, ?, 1, daily_order_capacity FROM nodes WHERE node_id = ? "
    "AND (daily_order_capacity IS NULL OR daily_order_capacity > 0) "
    "ON CONFLICT (node_id, day) DO UPDATE SET used = capacity.used + 1 "
    "WHERE capacity.daily_limit IS NULL OR capacity.used < capacity.daily_limit"
)

_STORE_RESPONSE = "UPDATE idempotency SET response = ? WHERE request_id = ?"

_LINES_OF = "SELECT reservation_id, node_id, sku, quantity FROM reservation_lines"
_SLOTS_OF = "SELECT reservation_id, node_id, day FROM reservation_capacity"

#: Take a HELD reservation's row (its lock) without settling it: a partial change.
_TOUCH_HELD = "UPDATE reservations SET updated_at = ? WHERE reservation_id = ? AND status = 'HELD'"

#: The same, for a reservation whose expires_at has passed (the sweeper's expiry).
_SETTLE_LAPSED = (
    "UPDATE reservations SET status = ?, updated_at = ? "
    "WHERE reservation_id = ? AND status = 'HELD' AND expires_at <= ?"
)


class ReservationStore(Protocol):
    """Holding units and order slots for an order, and settling them; idempotent by request_id."""

    @abstractmethod
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
        """Hold every line's units and one order slot per (node, day) in ``capacity``.

        All or nothing: raises StockConflictError naming every short position and full
        node when anything is missing, and then nothing is held. Lines for a position the
        ledger does not hold are short (available 0); a capacity entry for an unknown node
        raises NotFoundError. The reservation expires ``ttl_s`` seconds after ``now``.

        When ``response`` is given it is called with the new reservation inside the same
        transaction, and the bytes it returns are stored with the idempotency record, so
        that :meth:`stored_response` returns them to every retry (a replay does not call
        it again; a call that conflicts may have called it, and its bytes are dropped with
        the rest). ``owner`` (the authenticated principal, "" when none) is recorded with
        the reservation in the same transaction (:meth:`AccessStore.reservation_owner`);
        so is the decision record ``decision`` builds for it, when given (the decision log:
        a reservation made is logged exactly once, a replay logs nothing).
        """

    @abstractmethod
    def stored_response(
        self, request_id: str, payload: bytes, operation: str = RESERVE
    ) -> bytes | None:
        """The response bytes stored by the reserve call that claimed ``request_id``.

        (Or by the call of ``operation``, which stores one: ``"reject"``.)

        ``None`` when no reserve call has committed under that id (or it stored none).
        Raises IdempotencyMismatchError when the id was used with another operation or
        payload, InvalidArgumentError when the id is empty or longer than
        :data:`~router.ledger.base.MAX_ID_CHARS`. Changes nothing.
        """

    @abstractmethod
    def store_response(
        self,
        request_id: str,
        payload: bytes,
        response: bytes,
        now: datetime,
        decision: DecisionRecord | None = None,
    ) -> bytes | None:
        """Record ``request_id`` as a reserve call answered with ``response`` and no reservation.

        For a call that has nothing to reserve. Atomic and idempotent like :meth:`reserve`:
        when the id is already recorded with the same payload, nothing changes and the first
        call's stored response is returned (``None`` if it stored none); with another payload
        or operation it raises IdempotencyMismatchError. Otherwise returns ``response``.
        A later :meth:`reserve` with the id and payload raises NoReservationError.
        ``decision`` is logged with the record, only by the call that makes it.
        """

    def confirm(
        self,
        request_id: str,
        reservation_id: str,
        now: datetime,
        lines: Sequence[ReservationLine] = (),
    ) -> Reservation:
        """HELD → CONFIRMED: the held units ship (on hand and reserved both drop).

        With ``lines`` (a partial confirm) only those units ship, per (node, sku) at most what
        is held (InvalidArgumentError naming ``lines`` otherwise); the rest are given back
        and so are the order slots of nodes that ship nothing; the reservation's lines
        become the units shipped. Idempotent by ``request_id`` like a whole confirm (the
        same id with other lines is IdempotencyMismatchError).

        Raises NotFoundError for an unknown reservation, ReservationStateError when it is
        not HELD (of two racing confirm/release calls exactly one wins). A HELD
        reservation whose ``expires_at`` <= ``now`` is not confirmed: it is expired as the
        sweeper would (units and slots given back, committed) and ReservationExpiredError
        is raised, as it is for any confirm of an EXPIRED reservation. Nothing is recorded
        under ``request_id`` then, so its retries get the same error; a confirm that
        succeeded before the expiry replays as CONFIRMED.
        """
        return self._transition(CONFIRM, request_id, reservation_id, now, lines)

    def release(
        self,
        request_id: str,
        reservation_id: str,
        now: datetime,
        lines: Sequence[ReservationLine] = (),
    ) -> Reservation:
        """HELD → RELEASED: the held units and order slots are given back.

        With ``lines`` (cancelling part of an order) only those units are given back, and
        the slots of nodes left with none; the reservation stays HELD with the rest, or
        becomes RELEASED when nothing is left.

        Raises NotFoundError or ReservationStateError like :meth:`confirm`.
        """
        return self._transition(RELEASE, request_id, reservation_id, now, lines)

    @abstractmethod
    def _transition(
        self,
        operation: str,
        request_id: str,
        reservation_id: str,
        now: datetime,
        lines: Sequence[ReservationLine],
    ) -> Reservation:
        """Confirm or release (``operation``): what :meth:`confirm` and :meth:`release` do."""

    @abstractmethod
    def reject(
        self,
        rejection: Rejection,
        response: Callable[[Reservation], bytes],
        decision: DecisionRecord | None = None,
    ) -> tuple[Reservation, bytes]:
        """A node's rejection and its re-route, in one transaction; idempotent by request_id.

        Releases ``rejection.units`` from the HELD reservation (at most what it holds
        there: InvalidArgumentError naming ``lines`` otherwise), sets the node's on hand
        of each rejected SKU to ``corrected_on_hand`` when given (never below its reserved
        units, counted as an applied feed update and its clamped units), holds the
        re-route's ``lines`` and the ``capacity`` slots the reservation does not hold yet
        in the same reservation (expires_at unchanged), gives back the slots of the node
        when it holds nothing any more, records the rejection (:meth:`rejected_nodes`),
        ``decision`` and the bytes ``response`` makes of the reservation after, and
        returns both. A reservation left with no units is RELEASED.

        Raises StockConflictError when a re-routed unit or slot was taken meanwhile, or
        when the nodes that rejected before are no longer ``rejection.excluded`` (another
        rejection committed since the plan): nothing changes, plan again. NotFoundError
        and ReservationStateError as :meth:`release`. A retry with the same request_id and
        payload changes nothing and returns the reservation now and the first response;
        another payload or operation is IdempotencyMismatchError.
        """

    @abstractmethod
    def rejected_nodes(self, reservation_id: str) -> tuple[str, ...]:
        """The nodes that rejected units of the reservation, one per rejection, in order."""

    @abstractmethod
    def expire(self, now: datetime) -> int:
        """Sweep lapsed reservations; returns how many expired.

        Every HELD reservation with ``expires_at <= now`` becomes EXPIRED and gives its
        units and slots back.
        """

    @abstractmethod
    def reservation(self, reservation_id: str) -> Reservation:
        """The reservation with this id; raises NotFoundError when there is none."""

    @abstractmethod
    def reservations(self, query: ReservationQuery) -> ReservationPage:
        """One page of the reservations ``query`` selects, by expiry then id. Changes nothing."""

    @abstractmethod
    def held_timers(self, expires_before: datetime, ships_before: date) -> tuple[int, int]:
        """How many HELD reservations lapse before ``expires_before``, and how many are late.

        Late: a shipment of theirs was due to leave before ``ships_before`` (their ship date
        passed unconfirmed).
        """


class SqlReservations(SqlDecisions):
    """The :class:`ReservationStore` operations in SQL (docs/ledger.md).

    A reservation's decision is logged in its transaction (:class:`SqlDecisions`).
    """

    lock_position_sql: str  # the backend's row-locking read of one position (SqlStock)

    def reservation(self, reservation_id: str) -> Reservation:
        """See :meth:`Ledger.reservation`."""
        return self.read(lambda tx: self._read(tx, reservation_id))

    def reservations(self, query: ReservationQuery) -> ReservationPage:
        """See :meth:`Ledger.reservations`: three statements a page (heads, lines, slots)."""
        where, params = self._selecting(query)
        sql = (
            "SELECT r.reservation_id, r.order_id, r.status, r.created_at, r.expires_at, "
            "COALESCE(o.owner, '') AS owner FROM reservations r "
            "LEFT JOIN reservation_owners o ON o.reservation_id = r.reservation_id"
            f"{where} ORDER BY r.expires_at, r.reservation_id LIMIT ?"
        )

        def work(tx: Tx) -> ReservationPage:
            rows = tx.all(sql, (*params, query.page_size + 1))
            heads = rows[: query.page_size]
            ids = [str(row["reservation_id"]) for row in heads]
            lines: dict[str, list[Row]] = {rid: [] for rid in ids}
            slots: dict[str, list[Row]] = {rid: [] for rid in ids}
            if ids:
                among = f"reservation_id IN ({', '.join('?' * len(ids))})"
                for row in tx.all(
                    f"{_LINES_OF} WHERE {among} ORDER BY reservation_id, line_no", ids
                ):
                    lines[str(row["reservation_id"])].append(row)
                for row in tx.all(
                    f"{_SLOTS_OF} WHERE {among} ORDER BY reservation_id, node_id, day", ids
                ):
                    slots[str(row["reservation_id"])].append(row)
            found = tuple(
                self._built(rid, head, lines[rid], slots[rid])
                for rid, head in zip(ids, heads, strict=True)
            )
            owners = {rid: str(head["owner"]) for rid, head in zip(ids, heads, strict=True)}
            last = found[-1] if len(rows) > query.page_size else None
            after = None if last is None else (last.expires_at, last.reservation_id)
            return ReservationPage(found, after, owners)

        return self.read(work)

    def _selecting(self, query: ReservationQuery) -> tuple[str, list[object]]:
        """The WHERE clause of ``query`` (only the filters it sets) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if query.order_id:
            clauses.append("r.order_id = ?")
            params.append(query.order_id)
        if query.node_id:
            clauses.append(
                "EXISTS (SELECT 1 FROM reservation_lines l WHERE "
                "l.reservation_id = r.reservation_id AND l.node_id = ?)"
            )
            params.append(query.node_id)
        if query.status is not None:
            clauses.append("r.status = ?")
            params.append(query.status.value)
        if query.expires_before is not None:
            clauses.append("r.status = 'HELD' AND r.expires_at < ?")
            params.append(self.ts(query.expires_before))
        if query.ships_before is not None:
            clauses.append(
                "r.status = 'HELD' AND EXISTS (SELECT 1 FROM reservation_capacity c WHERE "
                "c.reservation_id = r.reservation_id AND c.day < ?)"
            )
            params.append(self.day(query.ships_before))
        if query.owner is not None:
            clauses.append("COALESCE(o.owner, '') = ?")
            params.append(query.owner)
        if query.after is not None:
            expires, reservation_id = query.after
            clauses.append("(r.expires_at > ? OR (r.expires_at = ? AND r.reservation_id > ?))")
            params += [self.ts(expires), self.ts(expires), reservation_id]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return where, params

    def held_timers(self, expires_before: datetime, ships_before: date) -> tuple[int, int]:
        """See :meth:`Ledger.held_timers`."""
        expiring = ReservationQuery(expires_before=expires_before)
        overdue = ReservationQuery(ships_before=ships_before)

        def work(tx: Tx) -> tuple[int, int]:
            counts = []
            for query in (expiring, overdue):
                where, params = self._selecting(query)
                row = tx.one(
                    "SELECT COUNT(*) AS n FROM reservations r "
                    "LEFT JOIN reservation_owners o ON o.reservation_id = r.reservation_id"
                    f"{where}",
                    params,
                )
                counts.append(0 if row is None else int(row["n"]))
            return counts[0], counts[1]

        return self.read(work)

    def _read(self, tx: Tx, reservation_id: str) -> Reservation:
        head = tx.one(
            "SELECT order_id, status, created_at, expires_at FROM reservations "
            "WHERE reservation_id = ?",
            (reservation_id,),
        )
        if head is None:
            raise NotFoundError(f"reservation_id: no reservation {reservation_id!r}")
        lines = tx.all(f"{_LINES_OF} WHERE reservation_id = ? ORDER BY line_no", (reservation_id,))
        slots = tx.all(
            f"{_SLOTS_OF} WHERE reservation_id = ? ORDER BY node_id, day", (reservation_id,)
        )
        return self._built(reservation_id, head, lines, slots)

    def _built(
        self, reservation_id: str, head: Row, lines: Sequence[Row], slots: Sequence[Row]
    ) -> Reservation:
        """A reservation from its row (``head``), its line rows and its slot rows, in order."""
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
        owner: str = "",
        decision: Callable[[Reservation], DecisionRecord] | None = None,
    ) -> Reservation:
        """See :meth:`Ledger.reserve`."""
        req = validate_reserve(request_id, payload, order_id, lines, capacity, ttl_s, now)
        rid = new_reservation_id()
        return self.transaction(lambda tx: self._reserve(tx, req, rid, response, owner, decision))

    def stored_response(
        self, request_id: str, payload: bytes, operation: str = RESERVE
    ) -> bytes | None:
        """See :meth:`Ledger.stored_response`."""
        check_request_id(request_id)
        digest = request_digest(operation, payload)
        return self.read(lambda tx: self._stored_response(tx, request_id, digest, operation))

    def _stored_response(
        self, tx: Tx, request_id: str, digest: str, operation: str = RESERVE
    ) -> bytes | None:
        """:meth:`stored_response` in ``tx``, for the digest of its payload."""
        row = tx.one(
            "SELECT operation, digest, response FROM idempotency WHERE request_id = ?",
            (request_id,),
        )
        return stored_of(row, request_id, digest, operation)

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

        def work(tx: Tx) -> bytes | None:
            first = self._claim(tx, request_id, RESERVE, digest, NO_RESERVATION, now, response)
            if first is not None:
                return first[1]
            if decision is not None:
                self._log(tx, decision)
            return response

        return self.transaction(work)

    def _reserve(
        self,
        tx: Tx,
        req: ReserveRequest,
        reservation_id: str,
        response: Callable[[Reservation], bytes] | None,
        owner: str,
        decision: Callable[[Reservation], DecisionRecord] | None = None,
    ) -> Reservation:
        """Claim the request_id, then take units and slots and write the reservation, in one batch.

        One batch (one round trip on PostgreSQL) takes the units of each position in (node,
        sku) order and the slot of each (node, day) in that order (the ledger's lock order),
        and inserts the reservation, its lines, its slots, its owner and the response; when
        a position was short or a node full, the conflict is raised and the transaction
        rolls all of it back. A replay returns the first call's reservation.
        """
        first = self._claim(tx, req.request_id, RESERVE, req.digest, reservation_id, req.created_at)
        if first is not None:
            if first[0] == NO_RESERVATION:
                raise NoReservationError(req.request_id)
            return self._read(tx, first[0])
        made = Reservation(
            reservation_id=reservation_id,
            order_id=req.order_id,
            lines=req.lines,
            status=ReservationStatus.HELD,
            created_at=req.created_at,
            expires_at=req.expires_at,
            capacity=req.capacity,
        )
        results = tx.batch(
            [
                *((_TAKE_UNITS, (units, node_id, sku, units)) for node_id, sku, units in req.needs),
                *((_TAKE_SLOT, (self.day(day), node_id)) for node_id, day in req.capacity),
                *self._records(made, owner),
                *(
                    []
                    if response is None
                    else [(_STORE_RESPONSE, (response(made), req.request_id))]
                ),
                *([] if decision is None else self._logging(decision(made))),
            ]
        )
        short = [need for need, done in zip(req.needs, results, strict=False) if not done.changed]
        taken = results[len(req.needs) : len(req.needs) + len(req.capacity)]
        full = [slot for slot, done in zip(req.capacity, taken, strict=True) if not done.changed]
        if short or full:
            raise self._conflict(tx, short, full)  # rolls back everything above
        return made

    def _records(self, made: Reservation, owner: str) -> list[Statement]:
        """The inserts of a new reservation: its row, lines, slots and (if any) owner."""
        rid = made.reservation_id
        created = self.ts(made.created_at)
        statements: list[Statement] = [
            (
                "INSERT INTO reservations (reservation_id, order_id, status, created_at, "
                "expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (rid, made.order_id, made.status.value, created, self.ts(made.expires_at), created),
            )
        ]
        lines = [(rid, i, ln.node_id, ln.sku, ln.quantity) for i, ln in enumerate(made.lines)]
        statements += _inserting(
            "reservation_lines (reservation_id, line_no, node_id, sku, quantity)", lines
        )
        slots = [(rid, node_id, self.day(day)) for node_id, day in made.capacity]
        statements += _inserting("reservation_capacity (reservation_id, node_id, day)", slots)
        if owner:
            statements.append(
                (
                    "INSERT INTO reservation_owners (reservation_id, owner) VALUES (?, ?)",
                    (rid, owner),
                )
            )
        return statements

    def _conflict(
        self,
        tx: Tx,
        short: Sequence[tuple[str, str, int]],
        full: Sequence[tuple[str, date]],
    ) -> StockConflictError:
        """The conflict of a reserve: each ``short`` position's units available, ``full`` nodes.

        One batch reads them. Raises NotFoundError when a node of ``full`` is not in the
        ledger (no slot can be taken at a node it does not know).
        """
        found = tx.batch(
            [(_AVAILABLE, (node_id, sku)) for node_id, sku, _ in short]
            + [("SELECT 1 FROM nodes WHERE node_id = ?", (node_id,)) for node_id, _ in full]
        )
        for (node_id, _day), known in zip(full, found[len(short) :], strict=True):
            if not known.rows:
                raise NotFoundError(f"capacity.node_id: no node {node_id!r}")
        shortfalls = [
            Shortfall(node_id, sku, units, max(0, int(now.rows[0][0])) if now.rows else 0)
            for (node_id, sku, units), now in zip(short, found, strict=False)
        ]
        return StockConflictError(shortfalls, [(node_id, day.isoformat()) for node_id, day in full])

    def _settle_part(
        self, tx: Tx, operation: str, reservation_id: str, units: Units, now: datetime
    ) -> Reservation:
        """A partial confirm (ship ``units``, give the rest back) or release (give them back).

        In the ledger's lock order: the reservation row is taken while HELD, the units
        checked against what it holds, then positions and slots. Naming every unit held
        is a whole confirm or release.
        """
        if not tx.run(_TOUCH_HELD, (self.ts(now), reservation_id)):
            self._refuse(tx, reservation_id, operation)
        held = held_units(self._read(tx, reservation_id).lines)
        check_held(units, held, reservation_id)
        if units == held:
            target = CONFIRMED if operation == CONFIRM else ReservationStatus.RELEASED
            self._settle(tx, reservation_id, target, now)
            return self._read(tx, reservation_id)
        if operation == CONFIRM:
            rest = {k: n - units.get(k, 0) for k, n in held.items() if n > units.get(k, 0)}
            self._move(tx, shipped=units, freed=rest)
            self._take(tx, reservation_id, rest)
            tx.run(_SETTLE, (CONFIRMED.value, self.ts(now), reservation_id))
        else:
            self._move(tx, shipped={}, freed=units)
            self._take(tx, reservation_id, units)
        self._free_idle_slots(tx, reservation_id)
        return self._read(tx, reservation_id)

    def _refuse(self, tx: Tx, reservation_id: str, operation: str) -> None:
        """Raise why ``reservation_id`` cannot be settled: unknown, or no longer HELD."""
        row = tx.one(
            "SELECT status, expires_at FROM reservations WHERE reservation_id = ?",
            (reservation_id,),
        )
        if row is None:
            raise NotFoundError(f"reservation_id: no reservation {reservation_id!r}")
        status = ReservationStatus(row["status"])
        if operation == CONFIRM and status is ReservationStatus.EXPIRED:
            raise ReservationExpiredError(reservation_id, self.from_ts(row["expires_at"]))
        raise ReservationStateError(reservation_id, status.value, operation)

    def _move(self, tx: Tx, *, shipped: Units, freed: Units) -> None:
        """Units no longer reserved: ``shipped`` leave on hand too, ``freed`` come back.

        One pass over the positions in (node, sku) order, the order every transaction
        locks them in (two passes, shipped then freed, would not be).
        """
        for node_id, sku in sorted(shipped.keys() | freed.keys()):
            out = shipped.get((node_id, sku), 0)
            unreserved = out + freed.get((node_id, sku), 0)
            if unreserved:
                tx.run(
                    "UPDATE positions SET on_hand = on_hand - ?, reserved = reserved - ? "
                    "WHERE node_id = ? AND sku = ?",
                    (out, unreserved, node_id, sku),
                )

    def _take(self, tx: Tx, reservation_id: str, units: Units) -> None:
        """Take ``units`` off the reservation's lines, first lines first; empty lines go."""
        rows = tx.all(
            "SELECT line_no, node_id, sku, quantity FROM reservation_lines "
            "WHERE reservation_id = ? ORDER BY line_no",
            (reservation_id,),
        )
        left = dict(units)
        for row in rows:
            key = (str(row["node_id"]), str(row["sku"]))
            take = min(left.get(key, 0), int(row["quantity"]))
            if not take:
                continue
            left[key] -= take
            if take == row["quantity"]:
                tx.run(
                    "DELETE FROM reservation_lines WHERE reservation_id = ? AND line_no = ?",
                    (reservation_id, row["line_no"]),
                )
            else:
                tx.run(
                    "UPDATE reservation_lines SET quantity = quantity - ? "
                    "WHERE reservation_id = ? AND line_no = ?",
                    (take, reservation_id, row["line_no"]),
                )

    def _free_idle_slots(self, tx: Tx, reservation_id: str) -> None:
        """Give back the order slots of nodes where the reservation holds no units any more."""
        idle = tx.all(
            "SELECT node_id, day FROM reservation_capacity c WHERE reservation_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM reservation_lines l WHERE "
            "l.reservation_id = c.reservation_id AND l.node_id = c.node_id) "
            "ORDER BY node_id, day",
            (reservation_id,),
        )
        for slot in idle:
            tx.run(
                "UPDATE capacity SET used = used - 1 WHERE node_id = ? AND day = ?",
                (slot["node_id"], slot["day"]),
            )
            tx.run(
                "DELETE FROM reservation_capacity WHERE reservation_id = ? AND node_id = ? "
                "AND day = ?",
                (reservation_id, slot["node_id"], slot["day"]),
            )

    def _transition(
        self,
        operation: str,
        request_id: str,
        reservation_id: str,
        now: datetime,
        lines: Sequence[ReservationLine],
    ) -> Reservation:
        """Confirm or release, all of it or the units ``lines`` name, in one transaction.

        The request id is claimed first; a confirm of a lapsed reservation expires it (and
        gives the claim up, so its retries are refused alike).
        """
        units, digest = transition_request(operation, request_id, reservation_id, lines)
        check_now(now)
        target = ReservationStatus.CONFIRMED if operation == CONFIRM else ReservationStatus.RELEASED

        def work(tx: Tx) -> Reservation:
            first = self._claim(tx, request_id, operation, digest, reservation_id, now)
            if first is not None:
                return self._read(tx, first[0])
            if operation == CONFIRM and self._settle(
                tx, reservation_id, ReservationStatus.EXPIRED, now, lapsed_only=True
            ):
                # Expired now, and committed so; the claim goes, so a retry is refused alike.
                tx.run("DELETE FROM idempotency WHERE request_id = ?", (request_id,))
                return self._read(tx, reservation_id)
            if units is not None:
                return self._settle_part(tx, operation, reservation_id, units, now)
            if not self._settle(tx, reservation_id, target, now):
                self._refuse(tx, reservation_id, operation)
            return self._read(tx, reservation_id)

        done = self.transaction(work)
        if done.status is ReservationStatus.EXPIRED:  # expired by this call, not a replay
            raise ReservationExpiredError(reservation_id, done.expires_at)
        return done

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
            "WHERE reservation_id = ? GROUP BY node_id, sku",
            (reservation_id,),
        )
        units = {(str(r["node_id"]), str(r["sku"])): int(r["units"]) for r in held}
        if target is ReservationStatus.CONFIRMED:
            self._move(tx, shipped=units, freed={})
        else:
            self._move(tx, shipped={}, freed=units)
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
        lapsed = self.read(
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

    # --- rejections --------------------------------------------------------------------

    def rejected_nodes(self, reservation_id: str) -> tuple[str, ...]:
        """See :meth:`Ledger.rejected_nodes`."""
        return self.read(lambda tx: self._rejected_nodes(tx, reservation_id))

    def _rejected_nodes(self, tx: Tx, reservation_id: str) -> tuple[str, ...]:
        rows = tx.all(
            "SELECT node_id FROM reservation_rejections WHERE reservation_id = ? ORDER BY seq",
            (reservation_id,),
        )
        return tuple(str(r["node_id"]) for r in rows)

    def reject(
        self,
        rejection: Rejection,
        response: Callable[[Reservation], bytes],
        decision: DecisionRecord | None = None,
    ) -> tuple[Reservation, bytes]:
        """See :meth:`Ledger.reject`: rows in the ledger's lock order, as a reserve takes them."""
        r = rejection

        def work(tx: Tx) -> tuple[Reservation, bytes]:
            first = self._claim(tx, r.request_id, REJECT, r.digest, r.reservation_id, r.now)
            if first is not None:
                assert first[1] is not None, "a committed rejection stored its response"
                return self._read(tx, first[0]), first[1]
            if not tx.run(_TOUCH_HELD, (self.ts(r.now), r.reservation_id)):
                self._refuse(tx, r.reservation_id, REJECT)
            before = self._rejected_nodes(tx, r.reservation_id)
            if tuple(sorted(set(before))) != r.excluded:
                raise StockConflictError([], [])  # another rejection committed: plan again
            current = self._read(tx, r.reservation_id)
            check_held(r.units, held_units(current.lines), r.reservation_id)
            clamped = self._reject_positions(tx, r)
            self._take(tx, r.reservation_id, r.units)
            self._add_lines(tx, r.reservation_id, r.lines)
            self._reject_slots(tx, r, current.capacity)
            tx.run(
                "INSERT INTO reservation_rejections (reservation_id, seq, node_id, request_id, "
                "rejected_at, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    r.reservation_id,
                    len(before) + 1,
                    r.node_id,
                    r.request_id,
                    self.ts(r.now),
                    r.reason,
                ),
            )
            if r.corrected_on_hand is not None:  # counted as the feed update it is
                count_feed(tx, "applied", 1)
                if clamped:
                    count_feed(tx, "clamped_units", clamped)
            after = self._read(tx, r.reservation_id)
            if not after.lines:
                tx.run(
                    _SETTLE, (ReservationStatus.RELEASED.value, self.ts(r.now), r.reservation_id)
                )
                after = self._read(tx, r.reservation_id)
            answer = response(after)
            tx.run(
                "UPDATE idempotency SET response = ? WHERE request_id = ?", (answer, r.request_id)
            )
            if decision is not None:
                self._log(tx, decision)
            return after, answer

        return self.transaction(work)

    def _reject_positions(self, tx: Tx, r: Rejection) -> int:
        """Give the rejected units back (correcting on hand), take the re-routed ones.

        One pass in (node, sku) order. Raises StockConflictError naming every short
        position; returns the units a correction clamped.
        """
        needs: Units = {}
        for line in r.lines:
            needs[line.node_id, line.sku] = needs.get((line.node_id, line.sku), 0) + line.quantity
        shortfalls: list[Shortfall] = []
        clamped = 0
        for node_id, sku in sorted(r.units.keys() | needs.keys()):
            if (node_id, sku) in r.units:
                clamped += self._give_back(
                    tx, node_id, sku, r.units[node_id, sku], r.corrected_on_hand
                )
                continue
            units = needs[node_id, sku]
            if not tx.run(
                "UPDATE positions SET reserved = reserved + ? WHERE node_id = ? AND sku = ? "
                "AND on_hand - reserved - safety_stock >= ?",
                (units, node_id, sku, units),
            ):
                row = tx.one(
                    "SELECT on_hand - reserved - safety_stock AS available FROM positions "
                    "WHERE node_id = ? AND sku = ?",
                    (node_id, sku),
                )
                available = 0 if row is None else max(0, int(row["available"]))
                shortfalls.append(Shortfall(node_id, sku, units, available))
        if shortfalls:
            raise StockConflictError(shortfalls, [])
        return clamped

    def _give_back(self, tx: Tx, node_id: str, sku: str, units: int, corrected: int | None) -> int:
        """Unreserve ``units``; with ``corrected``, on hand becomes it (>= reserved): clamped."""
        if corrected is None:
            tx.run(
                "UPDATE positions SET reserved = reserved - ? WHERE node_id = ? AND sku = ?",
                (units, node_id, sku),
            )
            return 0
        row = tx.one(self.lock_position_sql, (node_id, sku))
        assert row is not None, "a held position exists"
        reserved = int(row["reserved"]) - units
        kept = max(corrected, reserved)
        tx.run(
            "UPDATE positions SET on_hand = ?, reserved = ? WHERE node_id = ? AND sku = ?",
            (kept, reserved, node_id, sku),
        )
        return kept - corrected

    def _add_lines(self, tx: Tx, reservation_id: str, lines: Sequence[ReservationLine]) -> None:
        """Append ``lines`` to the reservation's, numbered after its last line."""
        if not lines:
            return
        row = tx.one(
            "SELECT COALESCE(MAX(line_no), -1) AS last FROM reservation_lines "
            "WHERE reservation_id = ?",
            (reservation_id,),
        )
        start = 0 if row is None else int(row["last"]) + 1
        tx.run_many(
            "INSERT INTO reservation_lines (reservation_id, line_no, node_id, sku, quantity) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (reservation_id, start + i, line.node_id, line.sku, line.quantity)
                for i, line in enumerate(lines)
            ],
        )

    def _reject_slots(self, tx: Tx, r: Rejection, held: Sequence[tuple[str, date]]) -> None:
        """Free the node's slots when it holds nothing now; take the re-route's new ones.

        One pass in (node, day) order; raises StockConflictError naming the full nodes.
        """
        holding = tx.one(
            "SELECT COUNT(*) AS n FROM reservation_lines WHERE reservation_id = ? AND node_id = ?",
            (r.reservation_id, r.node_id),
        )
        idle = {s for s in held if s[0] == r.node_id} if holding and not holding["n"] else set()
        new = set(r.capacity) - set(held)
        full: list[tuple[str, str]] = []
        for node_id, day in sorted(idle | new):
            if (node_id, day) in idle:
                tx.run(
                    "UPDATE capacity SET used = used - 1 WHERE node_id = ? AND day = ?",
                    (node_id, self.day(day)),
                )
                tx.run(
                    "DELETE FROM reservation_capacity WHERE reservation_id = ? AND node_id = ? "
                    "AND day = ?",
                    (r.reservation_id, node_id, self.day(day)),
                )
            elif tx.run(_TAKE_SLOT, (self.day(day), node_id)):  # no row: full (or unknown)
                tx.run(
                    "INSERT INTO reservation_capacity (reservation_id, node_id, day) "
                    "VALUES (?, ?, ?)",
                    (r.reservation_id, node_id, self.day(day)),
                )
            else:
                full.append((node_id, day.isoformat()))
        if full:
            raise StockConflictError([], full)


#: Rows one INSERT of :func:`_inserting` takes at most (SQLite takes 32,766 parameters).
MAX_INSERTED_ROWS = 1000


def _inserting(into: str, rows: Sequence[tuple[object, ...]]) -> list[Statement]:
    """INSERTs of ``rows`` into ``into`` (a table and its columns), many rows to a statement.

    One statement per :data:`MAX_INSERTED_ROWS` rows rather than one per row: on SQLite
    each statement is a step that lets go of the interpreter's lock.
    """
    statements: list[Statement] = []
    for start in range(0, len(rows), MAX_INSERTED_ROWS):
        chunk = rows[start : start + MAX_INSERTED_ROWS]
        values = ", ".join(["(" + ", ".join("?" * len(chunk[0])) + ")"] * len(chunk))
        statements.append(
            (f"INSERT INTO {into} VALUES {values}", [value for row in chunk for value in row])
        )
    return statements


def stored_of(
    row: Row | None, request_id: str, digest: str, operation: str = RESERVE
) -> bytes | None:
    """The response in ``request_id``'s idempotency record ``row`` for a reserve call.

    (Or for a call of ``operation``.)

    ``row`` has its operation, digest and response (None, or a NULL operation: no record).
    None when there is no record or it stored no response; IdempotencyMismatchError when
    it was made by another operation or for a payload of another ``digest``.
    """
    if row is None or row["operation"] is None:
        return None
    if row["operation"] != operation or row["digest"] != digest:
        raise IdempotencyMismatchError(request_id)
    return None if row["response"] is None else bytes(row["response"])


def new_reservation_id() -> str:
    """A fresh, unguessable reservation id."""
    return "R-" + uuid.uuid4().hex
