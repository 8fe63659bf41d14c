"""The explanation's summary: the plan's nodes, the runner-up, the nearest exclusions, counts.

The network: a customer at (0, 0), one unit of A (1 kg) ordered, nodes on the equator. In
the first ground band (up to 500 km: 5 + 1/kg) a shipment from a node costs its handling
per shipment + 5, and the unit 1:

    NEAR   lon 1   (111.2 km)  handling 2, 5 A  → 2 + 5 + 1 = 8   the plan
    FAR    lon 3   (333.6 km)  handling 3, 5 A  → 3 + 5 + 1 = 9   the runner-up, +1
    SHUT   lon 0.2 (22.2 km)   does not ship, 5 A                 DOES_NOT_SHIP
    OUT    lon 20  (2,223.9 km) beyond the last band (1,500 km), 5 A  BEYOND_LAST_BAND
    E1..E4 lon 0.5, 2, 4, 6 (55.6, 222.4, 444.8, 667.2 km), no A  NO_AVAILABLE_STOCK

Backordering the unit costs 60, so the all-backordered plan ranks after both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from models.money import to_units
from models.plan import Exclusion, ExclusionReason, ExplainedModel, Plan
from models.rules import RuleSet
from router.engine import route_order
from router.engine.explain import NEAREST_PER_REASON, summarise
from router.sample import sample_scenario
from tests.engine.conftest import network, node, order, stock

EMPTY = {"E1": 0.5, "E2": 2.0, "E3": 4.0, "E4": 6.0}


def _plan() -> Plan:
    nodes = (
        node("NEAR", 1.0, per_shipment=2.0),
        node("FAR", 3.0, per_shipment=3.0),
        node("SHUT", 0.2, ships=False),
        node("OUT", 20.0),
        *(node(node_id, lon) for node_id, lon in EMPTY.items()),
    )
    held = stock(*((n, "A", 5) for n in ("NEAR", "FAR", "SHUT", "OUT")))
    return route_order(order(("A", 1)), network(*nodes), held, RuleSet(), alternatives=1)


def test_summary_names_the_plan_the_runner_up_and_the_nearest_exclusions() -> None:
    """The worked example above: NEAR chosen, FAR runner-up at +1, 3 of the 4 empty nodes."""
    plan = _plan()
    summary = summarise(plan)

    assert (summary.candidate_count, summary.excluded_count) == (2, 6)
    [chosen] = summary.chosen
    assert (chosen.node_id, chosen.shipment_cost, chosen.unit_costs) == (
        "NEAR",
        to_units(7),
        (to_units(1),),
    )
    [runner_up] = summary.runner_up
    assert (runner_up.node_id, runner_up.shipment_cost) == ("FAR", to_units(8))
    assert summary.runner_up_delta == to_units(1)
    assert plan.objective == to_units(8)
    assert [line.line_id for line in summary.lines] == ["l1"]
    assert summary.lines[0].backorder_cost == to_units(60)
    groups = {g.reason: (g.count, [e.node_id for e in g.nearest]) for g in summary.excluded}
    assert groups == {
        ExclusionReason.DOES_NOT_SHIP: (1, ["SHUT"]),
        ExclusionReason.BEYOND_LAST_BAND: (1, ["OUT"]),
        ExclusionReason.NO_AVAILABLE_STOCK: (4, ["E1", "E2", "E3"]),  # E4 is the farthest
    }
    assert [g.reason for g in summary.excluded] == sorted(groups, key=list(ExclusionReason).index)
    km = {e.node_id: e.distance_km for g in summary.excluded for e in g.nearest}
    assert km["E1"] == pytest.approx(55.6, abs=0.1)
    assert km["OUT"] == pytest.approx(2223.9, abs=0.1)


@dataclass(frozen=True)
class _Explained:
    """An explanation that is only the explained model and the exclusions, as read back."""

    model: ExplainedModel
    excluded: tuple[Exclusion, ...]


def test_summary_is_the_same_from_the_explained_model() -> None:
    """A plan explained by a plain model (not the engine's arrays) has the same summary."""
    plan = _plan()
    again = replace(plan, explanation=_Explained(plan.model, plan.excluded))
    assert summarise(again) == summarise(plan)


def test_summaries_agree_with_the_full_model_on_the_sample() -> None:
    """On sample orders the summary is a faithful extract of the full explanation.

    The chosen and runner-up terms are the model's candidates of those nodes; the counts
    are the model's; per reason, the count is the exclusions' and the nodes named are the
    nearest ones, at most NEAREST_PER_REASON; the delta is the runner-up's cost over the
    plan's.
    """
    scenario = sample_scenario(n_stores=60, n_skus=300, n_orders=40)
    for o in scenario.orders:
        plan = route_order(o, scenario.network, scenario.stock, scenario.rules, alternatives=1)
        summary = summarise(plan)
        terms = {c.node_id: c for c in plan.model.candidates}
        assert summary.candidate_count == len(terms)
        assert summary.chosen == tuple(terms[s.node_id] for s in plan.shipments)
        if plan.alternatives and plan.objective is not None:
            second = plan.alternatives[0]
            used = {s.node_id for s in plan.shipments}
            assert summary.runner_up == tuple(
                terms[s.node_id] for s in second.shipments if s.node_id not in used
            )
            assert summary.runner_up_delta == second.objective - plan.objective
        assert summary.excluded_count == len(plan.excluded)
        assert sum(g.count for g in summary.excluded) == len(plan.excluded)
        for group in summary.excluded:
            same = sorted(
                (e for e in plan.excluded if e.reason is group.reason),
                key=lambda e: (e.distance_km, e.node_id),
            )
            assert group.count == len(same)
            assert list(group.nearest) == same[:NEAREST_PER_REASON]
