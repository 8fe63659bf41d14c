"""Plans: the engine's answer for one order, with its status, its reasons and its model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from models.money import from_units


class SolveStatus(StrEnum):
    """How good the plan is known to be."""

    OPTIMAL = "OPTIMAL"
    """Proven optimal on the canonical model."""
    FEASIBLE = "FEASIBLE"
    """A valid plan; the bound and gap say how far from optimal it may be."""
    INFEASIBLE = "INFEASIBLE"
    """No plan satisfies the order's hard constraints; every line is unfulfilled, with reasons."""
    NO_SOLUTION = "NO_SOLUTION"
    """The time limit or a cancellation stopped the solve before any plan was found."""
    REJECTED = "REJECTED"
    """The rules reject the order (a fallback says so, or no strategy applies); nothing
    ships and the plan's detail gives the reason."""

    @property
    def proven(self) -> bool:
        """No time limit, retry or machine can change the answer: OPTIMAL, INFEASIBLE, REJECTED.

        A solve cut short is FEASIBLE (a plan, maybe not the best) or NO_SOLUTION (none found).
        """
        return self in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE, SolveStatus.REJECTED)


def alternatives_wanted(top_k: int, *, explain: bool) -> int:
    """Alternatives to ask the engine for: ``top_k`` plans in all, the runner-up if ``explain``."""
    return max(top_k - 1, 1 if explain else 0)


class ExplainLevel(StrEnum):
    """How much of a plan's explanation an answer carries (docs/cost-model.md, Explanations)."""

    NONE = "NONE"
    """No explanation."""
    SUMMARY = "SUMMARY"
    """The part a person reads: an :class:`ExplanationSummary` (and the runner-up)."""
    FULL = "FULL"
    """The summary, the whole :class:`ExplainedModel` and every :class:`Exclusion`."""


class ExclusionReason(StrEnum):
    """Why a node is not a candidate for an order."""

    DOES_NOT_SHIP = "DOES_NOT_SHIP"
    FILTERED_BY_RULE = "FILTERED_BY_RULE"
    BEYOND_LAST_BAND = "BEYOND_LAST_BAND"
    CANNOT_MEET_SLA = "CANNOT_MEET_SLA"
    NO_AVAILABLE_STOCK = "NO_AVAILABLE_STOCK"
    OUT_OF_CAPACITY = "OUT_OF_CAPACITY"


class UnfulfilledReason(StrEnum):
    """Why units of a line are not in any shipment."""

    NO_STOCK = "NO_STOCK"
    """No candidate node has any available unit of the SKU."""
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    """Candidates together have fewer available units than ordered."""
    BACKORDER_CHEAPER = "BACKORDER_CHEAPER"
    """Stock exists, but shipping it (within the shipment limits) costs more than a backorder."""
    ORDER_INFEASIBLE = "ORDER_INFEASIBLE"
    """The order's hard constraints (no partial, ship complete, max shipments) cannot all hold."""
    NO_SOLUTION = "NO_SOLUTION"
    """The solve stopped before finding any plan."""
    STOPPED_EARLY = "STOPPED_EARLY"
    """The solve stopped at its time limit with these units backordered; a better plan may
    ship them (the plan is FEASIBLE, not proven optimal)."""
    NO_ELIGIBLE_STOCK = "NO_ELIGIBLE_STOCK"
    """Stock exists, but only at nodes excluded for this order (see the exclusions)."""
    REJECTED_BY_RULE = "REJECTED_BY_RULE"
    """The rules rejected the order; the plan's detail says which and why."""


class StrategyOutcome(StrEnum):
    """What became of one strategy of the rule set for an order."""

    APPLIED = "APPLIED"
    """It made the plan."""
    FELL_BACK = "FELL_BACK"
    """It was tried; its plan did not fulfil the order and its fallback moved on."""
    CONDITION_NOT_MET = "CONDITION_NOT_MET"
    """The order does not meet its condition."""
    NOT_REACHED = "NOT_REACHED"
    """Its condition holds, but an earlier strategy made the plan first."""


@dataclass(frozen=True, slots=True)
class StrategyTrial:
    """One strategy's outcome for an order, and why (the unmet clauses, the units left)."""

    strategy: str
    outcome: StrategyOutcome
    detail: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A node left out of an order's model, and why.

    ``distance_km`` is the great-circle distance to the destination (the pickup node for a
    pickup order), which ranks exclusions in an :class:`ExplanationSummary`.
    """

    node_id: str
    reason: ExclusionReason
    detail: str
    distance_km: float = 0.0


@dataclass(frozen=True, slots=True)
class CandidateTerms:
    """One candidate node's terms in the canonical model, money in solver units.

    ``shipment_cost`` is ``F_j``: handling per shipment + the rate band's base cost +
    lateness penalty + node penalty. ``unit_costs[l]`` is ``c_lj`` and ``available[l]`` is
    ``a_lj`` for line ``l`` (in the order of :attr:`ExplainedModel.lines`).
    """

    node_id: str
    distance_km: float
    service: str
    ship_date: date
    delivery_date: date
    days_late: int
    handling_cost: int
    shipping_cost: int
    lateness_cost: int
    node_penalty: int
    unit_costs: tuple[int, ...]
    available: tuple[int, ...]
    priority: int = 0
    """The node's priority, for the tie-break between plans of equal cost."""
    band_max_distance_km: float = 0.0
    """Upper bound of the rate band that prices the shipment (0 at the pickup counter)."""
    transit_days: int = 0
    """The band's transit days (0 at the pickup counter)."""

    @property
    def shipment_cost(self) -> int:
        """``F_j`` in solver units."""
        return self.handling_cost + self.shipping_cost + self.lateness_cost + self.node_penalty


@dataclass(frozen=True, slots=True)
class LineTerms:
    """One order line in the canonical model: ``q_l``, ``b_l`` (solver units), partial flag."""

    line_id: str
    sku: str
    quantity: int
    backorder_cost: int
    allow_partial: bool


@dataclass(frozen=True, slots=True)
class ExplainedModel:
    """The canonical model of one order (docs/cost-model.md), complete enough to re-solve.

    minimise  offset + Σ_j F_j·y_j + split_penalty·e + Σ_lj c_lj·x_lj + Σ_l b_l·u_l
    s.t.      Σ_j x_lj + u_l = q_l;  0 ≤ x_lj ≤ min(q_l, a_lj)·y_j;  e ≥ Σ_j y_j − 1, e ≥ 0;
              Σ_j y_j ≤ max_shipments;  Σ_j y_j ≤ 1 if ship_complete;  u_l = 0 unless partial.
    """

    offset: int
    split_penalty: int
    candidates: tuple[CandidateTerms, ...]
    lines: tuple[LineTerms, ...]
    max_shipments: int | None
    ship_complete: bool

    def objective(self, assignment: Mapping[tuple[int, int], int]) -> int:
        """The model's objective at a plan, in solver units.

        ``assignment`` maps (candidate index, line index) to units shipped; a node ships
        (``y_j = 1``) exactly when it ships a unit, and the rest of each line is backordered.
        """
        used = {j for (j, _), qty in assignment.items() if qty > 0}
        total = self.offset + sum(self.candidates[j].shipment_cost for j in used)
        total += self.split_penalty * max(0, len(used) - 1)
        shipped = [0] * len(self.lines)
        for (j, line), qty in assignment.items():
            total += self.candidates[j].unit_costs[line] * qty
            shipped[line] += qty
        for line, terms in enumerate(self.lines):
            total += terms.backorder_cost * (terms.quantity - shipped[line])
        return total


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    """Units of one order line in a shipment."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Shipment:
    """A parcel from one node: what it carries, when it leaves and arrives, what it costs."""

    node_id: str
    service: str
    distance_km: float
    ship_date: date
    delivery_date: date
    days_late: int
    cost: int
    lines: tuple[ShipmentLine, ...]


@dataclass(frozen=True, slots=True)
class Unfulfilled:
    """Units of a line that no shipment carries, and why."""

    line_id: str
    sku: str
    quantity: int
    reason: UnfulfilledReason


class Explanation(Protocol):
    """Where a plan's model and exclusions come from; built only when someone asks."""

    @property
    def model(self) -> ExplainedModel:
        """The canonical model the plan solves."""
        ...

    @property
    def excluded(self) -> tuple[Exclusion, ...]:
        """The nodes left out of the model, each with its reason."""
        ...


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another plan for the same order, over a different set of shipping nodes."""

    objective: int
    shipments: tuple[Shipment, ...]
    unfulfilled: tuple[Unfulfilled, ...]


@dataclass(frozen=True, slots=True)
class Counterfactual:
    """The best plan that ships from a node the caller named, and its cost over the plan's.

    ``status`` is INFEASIBLE only when it is proven that no plan can use the node
    (``detail`` says why, e.g. the node's exclusion reason); NO_SOLUTION when the time ran
    out before any plan through it was found; ``objective`` and ``delta`` are then
    ``None``. A counterfactual cut short is FEASIBLE: ``bound`` is a proven lower bound on
    every plan through the node, so the best one costs between ``bound`` and
    ``objective``.
    """

    node_id: str
    status: SolveStatus
    objective: int | None
    delta: int | None
    detail: str
    shipments: tuple[Shipment, ...] = ()
    unfulfilled: tuple[Unfulfilled, ...] = ()
    bound: int | None = None

    @property
    def gap(self) -> float:
        """Relative gap |objective − bound| / max(1, |objective|); 0 when proven optimal."""
        return _gap(self.status, self.objective, self.bound)


@dataclass(frozen=True, slots=True)
class Plan:
    """The engine's answer for one order.

    ``objective`` and ``bound`` are in solver units (see :mod:`models.money`); ``objective``
    is ``None`` only when no plan exists (INFEASIBLE, NO_SOLUTION), which ``status`` says.
    ``alternatives`` are the next best plans over other node sets (the first is the
    runner-up); ``counterfactuals`` price the nodes the caller named. ``rule_version``
    names the rule set (``name@v3``), ``strategy`` and ``step`` what in it made the plan
    (``primary``, ``relax_sla+2d``, ``backorder``, ``reject``), and ``trials`` what became
    of every strategy. ``price_version`` names the look-ahead stock prices
    (``prices@v7``) the plan's model was priced with: set when the step that made the plan
    used a strategy with ``opportunity_cost`` > 0 and prices were given, else empty
    (docs/lookahead.md), with ``prices_computed_at``, when they were computed. The
    objective then includes those prices.
    """

    order_id: str
    status: SolveStatus
    objective: int | None
    bound: int | None
    shipments: tuple[Shipment, ...]
    unfulfilled: tuple[Unfulfilled, ...]
    explanation: Explanation = field(repr=False, compare=False)
    rule_version: str
    engine: str
    solve_seconds: float = field(compare=False)
    detail: str = ""
    alternatives: tuple[Alternative, ...] = ()
    counterfactuals: tuple[Counterfactual, ...] = ()
    strategy: str = ""
    step: str = ""
    trials: tuple[StrategyTrial, ...] = ()
    price_version: str = ""
    prices_computed_at: datetime | None = None

    @property
    def model(self) -> ExplainedModel:
        """The canonical model of the order (built on first use)."""
        return self.explanation.model

    @property
    def excluded(self) -> tuple[Exclusion, ...]:
        """The nodes left out of the model, with reasons (built on first use)."""
        return self.explanation.excluded

    @property
    def gap(self) -> float:
        """Relative gap |objective − bound| / max(1, |objective|); 0 when proven optimal."""
        return _gap(self.status, self.objective, self.bound)

    @property
    def objective_amount(self) -> float | None:
        """The objective in currency units."""
        return None if self.objective is None else from_units(self.objective)

    @property
    def bound_amount(self) -> float | None:
        """The best bound in currency units."""
        return None if self.bound is None else from_units(self.bound)


@dataclass(frozen=True, slots=True)
class ExclusionGroup:
    """The nodes left out of an order's model for one reason: how many, and the nearest."""

    reason: ExclusionReason
    count: int
    nearest: tuple[Exclusion, ...]
    """The few nodes nearest the destination, nearest first (ties by node id)."""


@dataclass(frozen=True, slots=True)
class ExplanationSummary:
    """The part of a plan's explanation a person reads; its size does not grow with the network.

    ``chosen`` are the terms of the nodes the plan ships from (in shipment order),
    ``runner_up`` those of the nodes the runner-up (``plan.alternatives[0]``) ships from
    and the plan does not, and ``runner_up_delta`` the runner-up's objective over the
    plan's (solver units; ``None`` without a runner-up or a plan). ``excluded`` has one
    group per reason that occurs, in :class:`ExclusionReason` order. ``lines`` and
    ``split_penalty`` are the model's, so that the plan's objective can be checked from
    the summary alone.
    """

    candidate_count: int
    excluded_count: int
    split_penalty: int
    lines: tuple[LineTerms, ...]
    chosen: tuple[CandidateTerms, ...]
    runner_up: tuple[CandidateTerms, ...]
    runner_up_delta: int | None
    excluded: tuple[ExclusionGroup, ...]


def _gap(status: SolveStatus, objective: int | None, bound: int | None) -> float:
    """|objective − bound| / max(1, |objective|); 0 when proven optimal or nothing is known."""
    if status is SolveStatus.OPTIMAL or objective is None or bound is None:
        return 0.0
    return abs(objective - bound) / max(1, abs(objective))
