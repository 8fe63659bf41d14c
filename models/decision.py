"""The decision log: what was decided for an order, and the inputs it was decided from.

The ledger keeps a decision as a few columns it can be found by (:class:`DecisionRecord`)
and a body it does not read: the service's compressed ``router.v1.Decision`` message with
the plan and its inputs (docs/decisions.md). Calendars, shared by many decisions, are kept
once per content (:attr:`DecisionRecord.calendars`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models.reservation import DEFAULT_PAGE_SIZE


class DecisionKind(StrEnum):
    """Which call a decision records."""

    ROUTE = "ROUTE"
    PLAN = "PLAN"
    REROUTE = "REROUTE"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One logged decision: the columns lookups filter on, and its opaque ``body``.

    ``status`` is the plan's solve status (``OPTIMAL``…), ``node_ids`` the nodes its plan
    ships from; ``parent_id`` links a re-route to the decision whose shipment was
    rejected. ``calendars`` is the (digest, body) of the calendars it planned with, stored
    once per digest; None when the decision needs none stored.
    """

    decision_id: str
    kind: DecisionKind
    order_id: str
    decided_at: datetime
    status: str
    body: bytes
    request_id: str = ""
    reservation_id: str = ""
    parent_id: str = ""
    owner: str = ""
    node_ids: tuple[str, ...] = ()
    calendars: tuple[str, bytes] | None = None


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Which decisions a lookup lists; every filter set must hold (empty: no filter).

    ``decided_from`` is inclusive, ``decided_before`` exclusive. ``owner`` keeps one
    principal's decisions. Answers come newest first, by ``decided_at`` then
    ``decision_id`` descending; ``after`` is the last (decided_at, decision_id) of the
    previous page.
    """

    order_id: str = ""
    reservation_id: str = ""
    node_id: str = ""
    status: str = ""
    kind: DecisionKind | None = None
    decided_from: datetime | None = None
    decided_before: datetime | None = None
    owner: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    after: tuple[datetime, str] | None = None

    def matches(self, record: DecisionRecord) -> bool:
        """Whether ``record`` passes every filter, the page's position included."""
        r = record
        return (
            (not self.order_id or r.order_id == self.order_id)
            and (not self.reservation_id or r.reservation_id == self.reservation_id)
            and (not self.node_id or self.node_id in r.node_ids)
            and (not self.status or r.status == self.status)
            and (self.kind is None or r.kind is self.kind)
            and (self.decided_from is None or r.decided_at >= self.decided_from)
            and (self.decided_before is None or r.decided_at < self.decided_before)
            and (self.owner is None or r.owner == self.owner)
            and (self.after is None or (r.decided_at, r.decision_id) < self.after)
        )


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """One page of a lookup; ``after`` is where the next page starts (None: the last)."""

    decisions: tuple[DecisionRecord, ...]
    after: tuple[datetime, str] | None


@dataclass(frozen=True, slots=True)
class DecisionRetention:
    """How long the log keeps decisions (None: no bound of that kind).

    Those older than ``max_age_s`` and those beyond the newest ``max_count`` are pruned by
    the sweeper.
    """

    max_age_s: float | None = 90 * 86400.0
    max_count: int | None = None
