"""Reservations: units and node capacity held for an order until confirmed, released or expired."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from models.plan import Plan, SolveStatus


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

    @property
    def first_ship_date(self) -> date | None:
        """The earliest day a shipment of it leaves (its slots' days); None without slots."""
        return min((day for _, day in self.capacity), default=None)


DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
"""Reservations a list answer holds at most (``page_size`` above it is refused)."""


@dataclass(frozen=True, slots=True)
class ReservationQuery:
    """Which reservations a lookup lists; every filter set must hold (empty: no filter).

    ``expires_before`` and ``ships_before`` select HELD reservations only: those lapsing
    before the instant, and those with a shipment due to leave before the day (a ship date
    passed with the units still held: the OMS never confirmed). ``owner`` keeps one
    principal's reservations ("" for those made while authentication was off). Answers
    come by ``expires_at`` then ``reservation_id``; ``after`` is the last (expires_at,
    reservation_id) of the previous page.
    """

    order_id: str = ""
    node_id: str = ""
    status: ReservationStatus | None = None
    expires_before: datetime | None = None
    ships_before: date | None = None
    owner: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    after: tuple[datetime, str] | None = None

    def matches(self, reservation: Reservation, owner: str) -> bool:
        """Whether ``reservation`` (made by ``owner``) passes every filter but the page's."""
        r = reservation
        held = r.status is ReservationStatus.HELD
        first = r.first_ship_date
        return (
            (not self.order_id or r.order_id == self.order_id)
            and (not self.node_id or any(line.node_id == self.node_id for line in r.lines))
            and (self.status is None or r.status is self.status)
            and (self.expires_before is None or (held and r.expires_at < self.expires_before))
            and (
                self.ships_before is None
                or (held and first is not None and first < self.ships_before)
            )
            and (self.owner is None or owner == self.owner)
            and (self.after is None or (r.expires_at, r.reservation_id) > self.after)
        )


@dataclass(frozen=True, slots=True)
class ReservationPage:
    """One page of a lookup; ``after`` is where the next page starts (None: this is the last).

    ``owners`` maps each reservation id of the page to its owner ("" for none).
    """

    reservations: tuple[Reservation, ...]
    after: tuple[datetime, str] | None
    owners: Mapping[str, str] = field(default_factory=dict)


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


class PlanAcceptance(StrEnum):
    """Which plans RouteOrder may reserve (docs/api.md, RouteOrder)."""

    PROVEN = "PROVEN"
    """Only plans proven optimal: the default."""
    WITHIN_GAP = "WITHIN_GAP"
    """Proven plans, and plans cut short whose gap is at most the request's ``max_gap``."""
    ANY = "ANY"
    """Any plan that ships, whatever its gap."""


class RouteOutcome(StrEnum):
    """What RouteOrder does with a plan."""

    RESERVED = "RESERVED"
    """Its units and order slots are held; the answer is stored for replay."""
    NOTHING_TO_RESERVE = "NOTHING_TO_RESERVE"
    """It is proven and ships nothing: nothing is held; the answer is stored for replay."""
    CUT_SHORT = "CUT_SHORT"
    """The solve was cut short and the plan is not accepted, or ships nothing: nothing is
    held and nothing stored, so a retry plans again."""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """What to do with a plan (:func:`route_decision`) and, when it is not reserved, why."""

    outcome: RouteOutcome
    detail: str


def route_decision(plan: Plan, accept: PlanAcceptance, max_gap: float = 0.0) -> RouteDecision:
    """Whether RouteOrder reserves ``plan``, given what the request ``accept``s.

    A plan that ships is reserved when it is proven optimal, or cut short (FEASIBLE) and
    accepted: any gap with ``ANY``, a gap of at most ``max_gap`` with ``WITHIN_GAP``. A plan
    that ships nothing holds nothing, and its answer is stored only when proven: a retry
    of a solve cut short may ship, whatever the request accepts.
    """
    retry = "retry with a longer time_limit or deadline"
    if not plan.shipments:
        if plan.status.proven:
            return RouteDecision(RouteOutcome.NOTHING_TO_RESERVE, "")
        return RouteDecision(
            RouteOutcome.CUT_SHORT,
            f"not reserved: the solve was cut short ({plan.status}) with nothing shipped; {retry}",
        )
    if (
        plan.status is SolveStatus.OPTIMAL
        or accept is PlanAcceptance.ANY
        or (accept is PlanAcceptance.WITHIN_GAP and plan.gap <= max_gap)
    ):
        return RouteDecision(RouteOutcome.RESERVED, "")
    accepted = (
        f"gaps up to max_gap {max_gap:g}"
        if accept is PlanAcceptance.WITHIN_GAP
        else "proven plans only"
    )
    return RouteDecision(
        RouteOutcome.CUT_SHORT,
        f"not reserved: the solve was cut short ({plan.status}, gap {plan.gap:.4g}) and the "
        f"request accepts {accepted}; {retry}, or accept the gap (accept, max_gap)",
    )
