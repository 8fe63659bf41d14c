"""What RouteOrder does with a plan, given what the request accepts (route_decision)."""

from __future__ import annotations

from datetime import date

import pytest

from models.plan import ExplainedModel, Plan, Shipment, ShipmentLine, SolveStatus
from models.reservation import PlanAcceptance, RouteOutcome, route_decision

SHIPMENT = Shipment(
    "west",
    "ground",
    10.0,
    date(2026, 11, 20),
    date(2026, 11, 21),
    0,
    100,
    (ShipmentLine("l1", "A", 1),),
)
"""One unit of A from west."""


class _NoExplanation:
    model = ExplainedModel(0, 0, (), (), None, False)
    excluded = ()


def plan(status: SolveStatus, *, ships: bool) -> Plan:
    """A plan of ``status`` that ships one unit or nothing; FEASIBLE has gap 0.1."""
    objective = bound = None
    if status is SolveStatus.OPTIMAL:
        objective = bound = 1000
    elif status is SolveStatus.FEASIBLE:
        objective, bound = 1000, 900
    shipments = (SHIPMENT,) if ships else ()
    return Plan("o1", status, objective, bound, shipments, (), _NoExplanation(), "v1", "fast", 0)


@pytest.mark.parametrize("accept", list(PlanAcceptance))
def test_a_proven_plan_that_ships_is_reserved_whatever_is_accepted(accept: PlanAcceptance):
    """OPTIMAL and shipping: RESERVED under every acceptance, with no detail."""
    decision = route_decision(plan(SolveStatus.OPTIMAL, ships=True), accept, 0.0)
    assert decision.outcome is RouteOutcome.RESERVED and decision.detail == ""


@pytest.mark.parametrize(
    ("accept", "max_gap", "outcome"),
    [
        (PlanAcceptance.PROVEN, 0.0, RouteOutcome.CUT_SHORT),
        (PlanAcceptance.WITHIN_GAP, 0.0, RouteOutcome.CUT_SHORT),
        (PlanAcceptance.WITHIN_GAP, 0.0999, RouteOutcome.CUT_SHORT),
        (PlanAcceptance.WITHIN_GAP, 0.1, RouteOutcome.RESERVED),  # the gap itself: accepted
        (PlanAcceptance.ANY, 0.0, RouteOutcome.RESERVED),
    ],
)
def test_a_plan_cut_short_is_reserved_only_when_accepted(
    accept: PlanAcceptance, max_gap: float, outcome: RouteOutcome
):
    """FEASIBLE with gap (1000 - 900) / 1000 = 0.1: reserved with ANY or max_gap >= 0.1."""
    decision = route_decision(plan(SolveStatus.FEASIBLE, ships=True), accept, max_gap)
    assert decision.outcome is outcome
    if outcome is RouteOutcome.CUT_SHORT:
        assert "gap 0.1" in decision.detail and "retry with a longer time_limit" in decision.detail


@pytest.mark.parametrize("accept", list(PlanAcceptance))
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (SolveStatus.OPTIMAL, RouteOutcome.NOTHING_TO_RESERVE),
        (SolveStatus.INFEASIBLE, RouteOutcome.NOTHING_TO_RESERVE),
        (SolveStatus.REJECTED, RouteOutcome.NOTHING_TO_RESERVE),
        (SolveStatus.FEASIBLE, RouteOutcome.CUT_SHORT),
        (SolveStatus.NO_SOLUTION, RouteOutcome.CUT_SHORT),
    ],
)
def test_a_plan_that_ships_nothing_is_stored_only_when_proven(
    accept: PlanAcceptance, status: SolveStatus, outcome: RouteOutcome
):
    """Nothing to hold: proven answers are NOTHING_TO_RESERVE, cut-short ones CUT_SHORT.

    Whatever the request accepts: storing a cut-short answer that ships nothing would only
    keep a retry from shipping.
    """
    decision = route_decision(plan(status, ships=False), accept, 1.0)
    assert decision.outcome is outcome
    assert (decision.detail == "") is (outcome is RouteOutcome.NOTHING_TO_RESERVE)
