"""The decision log: :class:`DecisionStore` and its SQL (docs/decisions.md).

A decision is written in the transaction of the change it decided (the reservation of a
RouteOrder, the idempotency record of one that reserved nothing), or on its own for a
PlanOrder asked to record; so a decision is in the log exactly when its change committed.
Lookups read the columns; the body is the service's business.
"""

from __future__ import annotations

import json
import uuid
from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Protocol

from models.decision import (
    DecisionKind,
    DecisionPage,
    DecisionQuery,
    DecisionRecord,
    DecisionRetention,
)
from models.errors import NotFoundError
from router.ledger.base import check_now
from router.ledger.driver import Row, SqlDriver, Statement, Tx

PRUNE_BATCH = 500
"""Decisions one pruning transaction deletes at most (short transactions beside traffic)."""

_COLUMNS = (
    "d.decision_id, d.kind, d.order_id, d.request_id, d.reservation_id, d.parent_id, "
    "d.owner, d.status, d.decided_at, d.node_ids, d.calendars_digest, d.body"
)


class DecisionStore(Protocol):
    """Decisions kept for lookups and replay, pruned by age and count."""

    @abstractmethod
    def record_decision(self, record: DecisionRecord) -> None:
        """Log ``record`` in a transaction of its own (a recorded PlanOrder)."""

    @abstractmethod
    def decision(self, decision_id: str) -> DecisionRecord:
        """One decision with its calendars; NotFoundError when unknown or pruned."""

    @abstractmethod
    def decisions(self, query: DecisionQuery) -> DecisionPage:
        """A page of the decisions ``query`` selects, newest first (without calendars)."""

    @abstractmethod
    def prune_decisions(self, now: datetime, retention: DecisionRetention) -> int:
        """Delete decisions beyond ``retention`` as of ``now``; how many were deleted.

        The decisions of a reservation still HELD are kept whatever their age: a
        RejectShipment of it re-routes the order its RouteOrder decision holds.
        """


def new_decision_id() -> str:
    """A fresh, unguessable decision id."""
    return "D-" + uuid.uuid4().hex


class SqlDecisions(SqlDriver):
    """The :class:`DecisionStore` operations in SQL."""

    def record_decision(self, record: DecisionRecord) -> None:
        """See :meth:`DecisionStore.record_decision`."""
        self.transaction(lambda tx: self._log(tx, record))

    def _log(self, tx: Tx, record: DecisionRecord) -> None:
        """Insert ``record`` (and its calendars, when new) in ``tx``, in one batch."""
        tx.batch(self._logging(record))

    def _logging(self, record: DecisionRecord) -> list[Statement]:
        """The statements that log ``record``: its calendars (when new), row and nodes."""
        statements: list[Statement] = []
        digest = None
        if record.calendars is not None:
            digest, body = record.calendars
            statements.append(
                (
                    "INSERT INTO decision_calendars (digest, body, stored_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (digest) DO NOTHING",
                    (digest, body, self.ts(record.decided_at)),
                )
            )
        statements.append(
            (
                "INSERT INTO decisions (decision_id, kind, order_id, request_id, "
                "reservation_id, parent_id, owner, status, decided_at, node_ids, "
                "calendars_digest, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.decision_id,
                    record.kind.value,
                    record.order_id,
                    record.request_id,
                    record.reservation_id,
                    record.parent_id,
                    record.owner,
                    record.status,
                    self.ts(record.decided_at),
                    json.dumps(record.node_ids),
                    digest,
                    record.body,
                ),
            )
        )
        nodes = sorted(set(record.node_ids))
        if nodes:
            values = ", ".join(["(?, ?)"] * len(nodes))
            params = [value for node_id in nodes for value in (node_id, record.decision_id)]
            statements.append(
                (f"INSERT INTO decision_nodes (node_id, decision_id) VALUES {values}", params)
            )
        return statements

    def decision(self, decision_id: str) -> DecisionRecord:
        """See :meth:`DecisionStore.decision`."""

        def work(tx: Tx) -> DecisionRecord:
            row = tx.one(
                f"SELECT {_COLUMNS}, c.body AS calendars FROM decisions d "
                "LEFT JOIN decision_calendars c ON c.digest = d.calendars_digest "
                "WHERE d.decision_id = ?",
                (decision_id,),
            )
            if row is None:
                raise NotFoundError(f"decision_id: no decision {decision_id!r}")
            return self._record(row, with_calendars=True)

        return self.read(work)

    def _record(self, row: Row, *, with_calendars: bool = False) -> DecisionRecord:
        digest = row["calendars_digest"]
        calendars = None
        if with_calendars and digest is not None and row["calendars"] is not None:
            calendars = (str(digest), bytes(row["calendars"]))
        return DecisionRecord(
            decision_id=str(row["decision_id"]),
            kind=DecisionKind(row["kind"]),
            order_id=str(row["order_id"]),
            decided_at=self.from_ts(row["decided_at"]),
            status=str(row["status"]),
            body=bytes(row["body"]),
            request_id=str(row["request_id"]),
            reservation_id=str(row["reservation_id"]),
            parent_id=str(row["parent_id"]),
            owner=str(row["owner"]),
            node_ids=tuple(json.loads(row["node_ids"])),
            calendars=calendars,
        )

    def decisions(self, query: DecisionQuery) -> DecisionPage:
        """See :meth:`DecisionStore.decisions`: one statement a page."""
        where, params = self._deciding(query)
        sql = (
            f"SELECT {_COLUMNS} FROM decisions d{where} "
            "ORDER BY d.decided_at DESC, d.decision_id DESC LIMIT ?"
        )

        def work(tx: Tx) -> DecisionPage:
            rows = tx.all(sql, (*params, query.page_size + 1))
            found = tuple(self._record(row) for row in rows[: query.page_size])
            last = found[-1] if len(rows) > query.page_size else None
            after = None if last is None else (last.decided_at, last.decision_id)
            return DecisionPage(found, after)

        return self.read(work)

    def _deciding(self, query: DecisionQuery) -> tuple[str, list[object]]:
        """The WHERE clause of ``query`` (only the filters it sets) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("order_id", query.order_id),
            ("reservation_id", query.reservation_id),
            ("status", query.status),
            ("kind", "" if query.kind is None else query.kind.value),
        ):
            if value:
                clauses.append(f"d.{column} = ?")
                params.append(value)
        if query.node_id:
            clauses.append(
                "EXISTS (SELECT 1 FROM decision_nodes n WHERE n.node_id = ? "
                "AND n.decision_id = d.decision_id)"
            )
            params.append(query.node_id)
        if query.decided_from is not None:
            clauses.append("d.decided_at >= ?")
            params.append(self.ts(query.decided_from))
        if query.decided_before is not None:
            clauses.append("d.decided_at < ?")
            params.append(self.ts(query.decided_before))
        if query.owner is not None:
            clauses.append("d.owner = ?")
            params.append(query.owner)
        if query.after is not None:
            at, decision_id = query.after
            clauses.append("(d.decided_at < ? OR (d.decided_at = ? AND d.decision_id < ?))")
            params += [self.ts(at), self.ts(at), decision_id]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def prune_decisions(self, now: datetime, retention: DecisionRetention) -> int:
        """See :meth:`DecisionStore.prune_decisions`: in batches of :data:`PRUNE_BATCH`.

        Calendars no decision refers to any more are deleted after the decisions.
        """
        check_now(now)
        cutoff = self._prune_cutoff(now, retention)
        if cutoff is None:
            return 0
        at, decision_id = cutoff
        pruned = 0
        while True:
            ids = self.read(
                lambda tx: [
                    str(row["decision_id"])
                    for row in tx.all(
                        "SELECT decision_id FROM decisions d WHERE (decided_at < ? OR "
                        "(decided_at = ? AND decision_id <= ?)) AND NOT EXISTS (SELECT 1 "
                        "FROM reservations r WHERE r.reservation_id = d.reservation_id AND "
                        "r.status = 'HELD') ORDER BY decided_at, decision_id LIMIT ?",
                        (self.ts(at), self.ts(at), decision_id, PRUNE_BATCH),
                    )
                ]
            )
            if not ids:
                break

            def delete(tx: Tx, batch: list[str] = ids) -> int:
                return self._delete(tx, batch)

            pruned += self.transaction(delete)  # a replica pruning beside it: fewer
        self.transaction(
            lambda tx: tx.run(
                "DELETE FROM decision_calendars WHERE NOT EXISTS (SELECT 1 FROM decisions d "
                "WHERE d.calendars_digest = decision_calendars.digest)"
            )
        )
        return pruned

    def _prune_cutoff(
        self, now: datetime, retention: DecisionRetention
    ) -> tuple[datetime, str] | None:
        """The newest (decided_at, decision_id) to prune: the later of the two bounds' keys."""
        keys: list[tuple[datetime, str]] = []
        if retention.max_age_s is not None:
            keys.append((now - timedelta(seconds=retention.max_age_s), ""))
        if retention.max_count is not None:
            row = self.read(
                lambda tx: tx.one(
                    "SELECT decided_at, decision_id FROM decisions "
                    "ORDER BY decided_at DESC, decision_id DESC LIMIT 1 OFFSET ?",
                    (retention.max_count,),
                )
            )
            if row is not None:
                keys.append((self.from_ts(row["decided_at"]), str(row["decision_id"])))
        return max(keys, default=None)

    def _delete(self, tx: Tx, ids: list[str]) -> int:
        """Delete the decisions ``ids``; how many there still were."""
        among = f"decision_id IN ({', '.join('?' * len(ids))})"
        tx.run(f"DELETE FROM decision_nodes WHERE {among}", ids)
        return tx.run(f"DELETE FROM decisions WHERE {among}", ids)
