"""The ledger: one object that is all five stores (stock, reservations, rules, access, log)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection
from datetime import date
from types import TracebackType

from router.ledger.access import AccessStore
from router.ledger.base import PlanInputs
from router.ledger.decisions import DecisionStore
from router.ledger.reservations import ReservationStore
from router.ledger.rule_versions import RuleVersionStore
from router.ledger.stock import StockStore


class Ledger(StockStore, ReservationStore, RuleVersionStore, AccessStore, DecisionStore):
    """Stock, capacity, calendars, reservations and owners, feeds, rules, tokens, decisions.

    All state-changing calls are atomic (all or nothing). ``reserve``, ``confirm`` and
    ``release`` are idempotent by ``request_id``: a retry with the same id and payload
    returns the reservation as it is now, without a second effect; the same id with another
    payload or operation raises IdempotencyMismatchError.
    """

    def plan_inputs(
        self,
        skus: Collection[str],
        first: date,
        last: date,
        request_id: str | None = None,
        payload: bytes = b"",
    ) -> PlanInputs:
        """Everything planning an order reads, in one read where the backend can.

        The calendar revision, the active rule-set version, the positions of ``skus``, the
        slots used from ``first`` to ``last`` and, with ``request_id``, the response a
        reserve call stored under it for ``payload`` (:meth:`stored_response`, which raises
        the same errors). The SQL ledgers read it all in one read-only transaction; this
        default (the memory ledger) calls each read in turn.
        """
        return PlanInputs(
            calendar_revision=self.calendar_revision(),
            active_rule_version=self.active_rule_version(),
            stored_response=(
                None if request_id is None else self.stored_response(request_id, payload)
            ),
            stock=self.stock(skus),
            capacity_used=self.capacity_used(first, last),
        )

    @abstractmethod
    def close(self) -> None:
        """Release connections; the ledger is unusable afterwards."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
