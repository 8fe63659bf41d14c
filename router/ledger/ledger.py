"""The ledger: one object that is all four stores (stock, reservations, rule versions, access)."""

from __future__ import annotations

from abc import abstractmethod
from types import TracebackType

from router.ledger.access import AccessStore
from router.ledger.reservations import ReservationStore
from router.ledger.rule_versions import RuleVersionStore
from router.ledger.stock import StockStore


class Ledger(StockStore, ReservationStore, RuleVersionStore, AccessStore):
    """Stock, capacity, calendars, reservations and their owners, feeds, rules, API tokens.

    All state-changing calls are atomic (all or nothing). ``reserve``, ``confirm`` and
    ``release`` are idempotent by ``request_id``: a retry with the same id and payload
    returns the reservation as it is now, without a second effect; the same id with another
    payload or operation raises IdempotencyMismatchError.
    """

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
