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

from collections.abc import Collection
from datetime import date

from router.ledger.access import SqlAccess
from router.ledger.base import (
    RESERVE,
    PlanInputs,
    check_days,
    check_request_id,
    request_digest,
)
from router.ledger.driver import Tx
from router.ledger.ledger import Ledger
from router.ledger.reservations import SqlReservations, stored_of
from router.ledger.rule_versions import SqlRuleVersions
from router.ledger.stock import SqlStock

#: What planning reads besides stock and slots, in one statement: the calendar revision,
#: the active rule-set version (each NULL when there is none) and the idempotency record
#: of a request_id (NULLs when it has none, or when the parameter is NULL).
_PLAN_HEADER = (
    "SELECT (SELECT revision FROM calendar_revision WHERE id = 1) AS revision, "
    "(SELECT version FROM rule_activations ORDER BY seq DESC LIMIT 1) AS version, "
    "i.operation, i.digest, i.response "
    "FROM (SELECT 1 AS one) AS header LEFT JOIN idempotency i ON i.request_id = ?"
)
#: The idempotency record's columns in :data:`_PLAN_HEADER`, after revision and version.
_RECORD = ("operation", "digest", "response")


class SqlLedger(SqlStock, SqlReservations, SqlRuleVersions, SqlAccess, Ledger):
    """The ledger's operations in portable SQL; subclasses adapt one database driver."""

    def plan_inputs(
        self,
        skus: Collection[str],
        first: date,
        last: date,
        request_id: str | None = None,
        payload: bytes = b"",
    ) -> PlanInputs:
        """See :meth:`Ledger.plan_inputs`: one read of three statements, one round trip."""
        check_days(first, last)
        digest = None
        if request_id is not None:
            check_request_id(request_id)
            digest = request_digest(RESERVE, payload)

        def work(tx: Tx) -> PlanInputs:
            header, stock, slots = (
                done.rows
                for done in tx.batch(
                    [
                        (_PLAN_HEADER, (request_id,)),
                        self._stock_statement(skus),
                        self._capacity_statement(first, last),
                    ]
                )
            )
            revision, version, *record = header[0]
            return PlanInputs(
                calendar_revision=0 if revision is None else int(revision),
                active_rule_version=None if version is None else int(version),
                stored_response=(
                    None
                    if request_id is None or digest is None
                    else stored_of(dict(zip(_RECORD, record, strict=True)), request_id, digest)
                ),
                stock=self._stock_of_skus(stock),
                capacity_used=self._capacity_of_rows(slots),
            )

        return self.read(work)
