"""The part of a plan's explanation a person reads (docs/cost-model.md, Explanations)."""

from __future__ import annotations

import heapq

from models.plan import (
    CandidateTerms,
    Exclusion,
    ExclusionGroup,
    ExclusionReason,
    ExplanationSummary,
    Plan,
    Shipment,
)
from router.engine.terms import BuiltModel

NEAREST_PER_REASON = 3
"""Excluded nodes a summary names per reason: the nearest few answer "why not that node
close by?", and the summary stays a few kilobytes however many nodes the network has."""


def summarise(plan: Plan, nearest: int = NEAREST_PER_REASON) -> ExplanationSummary:
    """The summary of ``plan``'s explanation: its nodes, the runner-up's, the exclusions.

    Builds the terms of the plan's and the runner-up's nodes only, not the whole explained
    model (which costs about as much as the solve).
    """
    explanation = plan.explanation
    built = explanation if isinstance(explanation, BuiltModel) else BuiltModel.of(plan.model)
    row = {node_id: j for j, node_id in enumerate(built.matrices.node_ids)}

    def terms(shipments: tuple[Shipment, ...], but: set[str]) -> tuple[CandidateTerms, ...]:
        return tuple(
            built.matrices.terms(row[s.node_id]) for s in shipments if s.node_id not in but
        )

    runner_up: tuple[CandidateTerms, ...] = ()
    delta: int | None = None
    if plan.alternatives:
        second = plan.alternatives[0]
        runner_up = terms(second.shipments, {s.node_id for s in plan.shipments})
        if plan.objective is not None:
            delta = second.objective - plan.objective
    by_reason: dict[ExclusionReason, list[Exclusion]] = {reason: [] for reason in ExclusionReason}
    for exclusion in plan.excluded:
        by_reason[exclusion.reason].append(exclusion)
    return ExplanationSummary(
        candidate_count=len(row),
        excluded_count=sum(len(group) for group in by_reason.values()),
        split_penalty=built.split_penalty,
        lines=built.lines,
        chosen=terms(plan.shipments, set()),
        runner_up=runner_up,
        runner_up_delta=delta,
        excluded=tuple(
            ExclusionGroup(
                reason,
                len(group),
                tuple(heapq.nsmallest(nearest, group, key=lambda e: (e.distance_km, e.node_id))),
            )
            for reason, group in by_reason.items()
            if group
        ),
    )
