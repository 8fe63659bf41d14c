"""Stock, node capacity, calendars and stock feeds: :class:`StockStore` and its SQL."""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Collection, Hashable, Sequence
from datetime import date
from typing import Any, Protocol, TypeVar

from models.calendar import Calendar, CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.fields import MAX_INT64
from models.network import Network, Stock, StockPosition
from models.reservation import (
    FeedOutcome,
    FeedResult,
)
from router.ledger.base import (
    FEED_COUNTERS,
    calendar_of_text,
    calendar_text,
    check_calendar_owner,
    check_days,
    check_on_hand,
    validate_delta,
    validate_snapshot,
)
from router.ledger.driver import SqlDriver, Statement, Tx

#: Every position, in key order.
_ALL_POSITIONS = (
    "SELECT node_id, sku, on_hand, safety_stock, reserved FROM positions ORDER BY node_id, sku"
)


MAX_KEPT_SKUS = 8192
"""SKUs whose last positions read are kept by :func:`sku_positions` (the most recent)."""

K = TypeVar("K", bound=Hashable)
_kept: dict[Hashable, tuple[StockPosition, ...]] = {}
_kept_lock = threading.Lock()


def _kept_positions(
    key: K, build: Callable[[K], tuple[StockPosition, ...]]
) -> tuple[StockPosition, ...]:
    """The positions kept under ``key`` (one SKU's rows as read), else ``build(key)``, kept."""
    found = _kept.get(key)
    if found is None:
        found = build(key)
        with _kept_lock:
            while len(_kept) >= MAX_KEPT_SKUS:
                del _kept[next(iter(_kept))]
            _kept[key] = found
    return found


def _of_rows(values: tuple[tuple[Any, ...], ...]) -> tuple[StockPosition, ...]:
    return tuple([StockPosition(*v) for v in values])


def _of_array(key: tuple[str, str]) -> tuple[StockPosition, ...]:
    sku, text = key
    return tuple([StockPosition(n, sku, q, s, r) for n, q, s, r in sorted(json.loads(text))])


def sku_positions(values: tuple[tuple[Any, ...], ...]) -> tuple[StockPosition, ...]:
    """The positions of one SKU, from its rows' (node_id, sku, on_hand, safety, reserved).

    Rows equal to a recent read's give that read's very tuple back: no position is built
    again for a SKU whose stock did not move, and the engine finds the arrays it built for
    the tuple (:func:`router.engine.arrays.stock_arrays`), instead of building them per
    request. Positions are frozen values, so sharing them is safe.
    """
    return _kept_positions(values, _of_rows)


def stock_of_rows(rows: Sequence[tuple[Any, ...]]) -> Stock:
    """The stock of position rows (node_id, sku, on_hand, safety_stock, reserved), by SKU.

    The rows are StockPosition's fields; each SKU's tuple comes from :func:`sku_positions`.
    """
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[1], []).append(row)
    return Stock.of_groups({sku: sku_positions(tuple(g)) for sku, g in groups.items()})


def stock_of_sku_arrays(rows: Sequence[tuple[Any, ...]]) -> Stock:
    """The stock of rows (sku, JSON array of its [node_id, on_hand, safety_stock, reserved]).

    One row per SKU, as SQLite aggregates them (``SqliteLedger.positions_of_skus_sql``):
    a text equal to a recent read's gives that read's very tuple back, as
    :func:`sku_positions` does, without parsing it again. Positions are in node order.
    """
    return Stock.of_groups({sku: _kept_positions((sku, text), _of_array) for sku, text in rows})


class StockStore(Protocol):
    """Stock positions and what moves them: seeding, reads, capacity per day, calendars, feeds."""

    @abstractmethod
    def load(self, network: Network, stock: Stock) -> None:
        """Seed nodes (with daily order capacity), calendars and stock from a scenario.

        Nodes are upserted, and so are the network's calendars (each replaces the stored
        calendar of its node or service; others stay). New positions are inserted as given
        (their ``reserved`` counts units held outside this ledger); existing positions take
        the new on hand (never below their reserved units) and safety stock.
        """

    @abstractmethod
    def seed(self, network: Network, stock: Stock) -> bool:
        """Load ``network`` and ``stock`` only when the ledger holds no position yet.

        Atomic: of several replicas seeding one empty ledger at once, exactly one loads
        (True); the others, and any call on a ledger with live stock, change nothing.
        """

    @abstractmethod
    def stock(self, skus: Collection[str] | None = None) -> Stock:
        """Every stock position with its on hand, reserved and safety stock.

        ``skus`` limits the answer to the positions of those SKUs (what one order needs).
        """

    @abstractmethod
    def capacity_used(self, first: date, last: date) -> CapacityUsed:
        """Order slots held or confirmed per (node, day), for the days ``first`` … ``last``.

        One read (one query on SQL). Planning asks for the days its candidates may ship on
        (:func:`router.engine.candidates.ship_window`): a node's slots count on the day a
        shipment leaves it. Pairs with no slot taken are absent.
        """

    @abstractmethod
    def calendars(self) -> tuple[int, Calendars]:
        """The calendars stored, and the :meth:`calendar_revision` they are at (one read)."""

    @abstractmethod
    def calendar_revision(self) -> int:
        """How many calendar changes are stored (0: none ever).

        Read on every routing request (one primary-key lookup), so a calendar set through
        any replica is used by every replica from its next request.
        """

    @abstractmethod
    def set_calendar(self, kind: CalendarKind, owner: str, calendar: Calendar) -> int:
        """Replace the calendar of the node or service ``owner``; the new revision.

        An empty calendar removes it (the owner is then open every day). Atomic. Whether
        the owner exists is the caller's to check (the ledger knows nodes, not services).
        """

    @abstractmethod
    def apply_snapshot(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        positions: Sequence[tuple[str, int, int]],
    ) -> FeedResult:
        """Replace a node's stock: ``positions`` are (sku, on_hand, safety_stock).

        The snapshot is the node's complete stock: SKUs it omits get on hand 0. On hand
        never drops below reserved; units it would remove that are reserved stay and are
        counted in ``clamped_units``. Ignored (and counted) when ``sequence`` is not above
        the last one applied for (feed, node_id).
        """

    @abstractmethod
    def apply_delta(
        self,
        feed: str,
        sequence: int,
        node_id: str,
        deltas: Sequence[tuple[str, int]],
    ) -> FeedResult:
        """Add ``on_hand_change`` to each (sku, on_hand_change) of a node.

        Same sequencing and clamping as :meth:`apply_snapshot`. A SKU the node lacks gets
        a new position.
        """

    @abstractmethod
    def feed_stats(self) -> dict[str, int]:
        """Counters: updates applied, stale and duplicate ones ignored, units clamped."""

    # --- rule-set versions -------------------------------------------------------------


class SqlStock(SqlDriver):
    """The :class:`StockStore` operations in SQL (docs/ledger.md)."""

    #: Reads one position (on_hand, reserved, safety_stock) and locks its row until the
    #: transaction ends, as each database says it (written whole in each backend).
    lock_position_sql: str
    #: Reads every position of the SKUs in one list parameter (see :meth:`sku_list`), in
    #: rows that :meth:`_stock_of_skus` turns into stock.
    positions_of_skus_sql: str

    @abstractmethod
    def sku_list(self, skus: Sequence[str]) -> object:
        """``skus`` as the one parameter of :attr:`positions_of_skus_sql`."""

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
        return self.read(lambda tx: self._stock(tx, skus))

    def _stock(self, tx: Tx, skus: Collection[str] | None) -> Stock:
        """The positions (of ``skus`` when given), each SKU's tuple from :func:`sku_positions`."""
        if skus is None:
            return stock_of_rows(tx.tuples(_ALL_POSITIONS))
        return self._stock_of_skus(tx.tuples(*self._stock_statement(skus)))

    def _stock_statement(self, skus: Collection[str]) -> Statement:
        """The read of the positions of ``skus``, for :meth:`_stock_of_skus`."""
        return self.positions_of_skus_sql, (self.sku_list(sorted(set(skus))),)

    def _stock_of_skus(self, rows: Sequence[tuple[Any, ...]]) -> Stock:
        """The stock of the rows of :attr:`positions_of_skus_sql`: here, one a position."""
        return stock_of_rows(rows)

    def capacity_used(self, first: date, last: date) -> CapacityUsed:
        """See :meth:`Ledger.capacity_used`: one range scan of the ``capacity_by_day`` index."""
        check_days(first, last)
        return self.read(lambda tx: self._capacity_used(tx, first, last))

    def _capacity_used(self, tx: Tx, first: date, last: date) -> CapacityUsed:
        return self._capacity_of_rows(tx.tuples(*self._capacity_statement(first, last)))

    def _capacity_statement(self, first: date, last: date) -> Statement:
        """The read of the slots used from ``first`` to ``last``, for :meth:`_capacity_of_rows`."""
        return (
            "SELECT node_id, day, used FROM capacity WHERE day BETWEEN ? AND ? AND used > 0 "
            "ORDER BY node_id, day",
            (self.day(first), self.day(last)),
        )

    def _capacity_of_rows(self, rows: Sequence[tuple[Any, ...]]) -> CapacityUsed:
        """Slots used per (node, day), from the rows of :meth:`_capacity_statement`."""
        return CapacityUsed({(str(n), self.from_day(d)): int(used) for n, d, used in rows})

    # --- calendars ---------------------------------------------------------------------

    def calendars(self) -> tuple[int, Calendars]:
        """See :meth:`Ledger.calendars`."""

        def work(tx: Tx) -> tuple[int, Calendars]:
            revision = self._calendar_revision(tx)
            rows = tx.all("SELECT kind, owner, closed_days FROM calendars ORDER BY kind, owner")
            entries = [
                (CalendarKind(r["kind"]), str(r["owner"]), calendar_of_text(str(r["closed_days"])))
                for r in rows
            ]
            return revision, Calendars.of(entries)

        return self.read(work)

    def calendar_revision(self) -> int:
        """See :meth:`Ledger.calendar_revision`."""
        return self.read(self._calendar_revision)

    def _calendar_revision(self, tx: Tx) -> int:
        row = tx.one("SELECT revision FROM calendar_revision WHERE id = 1")
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
        """Add ``by`` to a feed counter (:func:`count_feed`)."""
        count_feed(tx, name, by)

    def feed_stats(self) -> dict[str, int]:
        """See :meth:`Ledger.feed_stats`."""
        rows = self.read(lambda tx: tx.all("SELECT name, value FROM feed_counters"))
        stats = dict.fromkeys(FEED_COUNTERS, 0)
        stats.update({str(r["name"]): int(r["value"]) for r in rows})
        return stats


def count_feed(tx: Tx, name: str, by: int) -> None:
    """Add ``by`` to a feed counter, which stops at :data:`MAX_INT64` rather than overflow."""
    tx.run(
        "UPDATE feed_counters SET value = CASE WHEN value > ? THEN ? ELSE value + ? END "
        "WHERE name = ?",
        (MAX_INT64 - by, MAX_INT64, by, name),
    )
