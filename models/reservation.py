"""Reservations: units and node capacity held for an order until confirmed, released or expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class ReservationStatus(StrEnum):
    """Where a reservation is in its lifecycle: HELD, then exactly one of the other three."""

    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class ReservationLine:
    """``quantity`` units of ``sku`` held at ``node_id``."""

    node_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Units (``lines``) and order slots (``capacity``: one per node and day) held for an order.

    While ``status`` is HELD the units count as reserved and the slots as used; CONFIRMED
    turns the units into shipped units, RELEASED and EXPIRED give units and slots back.
    Timestamps are timezone-aware (UTC).
    """

    reservation_id: str
    order_id: str
    lines: tuple[ReservationLine, ...]
    status: ReservationStatus
    created_at: datetime
    expires_at: datetime
    capacity: tuple[tuple[str, date], ...] = ()


class FeedOutcome(StrEnum):
    """What became of one stock-feed update."""

    APPLIED = "applied"
    STALE = "stale"  # its sequence is below the last applied one for the (feed, node)
    DUPLICATE = "duplicate"  # its sequence equals the last applied one


@dataclass(frozen=True, slots=True)
class FeedResult:
    """Whether a feed update was applied, and why not when it was not.

    ``clamped_units`` counts units the update asked to remove that were reserved: on hand
    never drops below reserved, so those units stay on hand (see docs/ledger.md).
    """

    outcome: FeedOutcome
    clamped_units: int = 0

    @property
    def applied(self) -> bool:
        """True when the update changed the ledger."""
        return self.outcome is FeedOutcome.APPLIED
