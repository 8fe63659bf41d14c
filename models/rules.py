"""The small routing rule set of the foundation (the planner rule language extends it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from models import fields as f
from models.errors import Violations
from models.network import NodeType


class SlaMode(StrEnum):
    """How a deliver-by date binds: ``hard`` excludes late nodes, ``soft`` charges per day."""

    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Weights and filters that turn an order into the canonical model (docs/cost-model.md).

    All money is in currency units. ``node_types`` ``None`` allows every type;
    ``max_distance_km`` ``None`` means no radius limit; ``unit_penalty_by_node_type`` adds a
    per-unit cost at nodes of a type (e.g. to protect store stock).
    """

    version: str = "default"
    split_penalty: float = 4.0
    lateness_penalty_per_day: float = 6.0
    sla: SlaMode = SlaMode.SOFT
    backorder_cost_per_unit: float = 60.0
    node_types: frozenset[NodeType] | None = None
    max_distance_km: float | None = None
    max_shipments: int | None = None
    unit_penalty_by_node_type: Mapping[NodeType, float] = field(default_factory=dict)

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> RuleSet | None:
        """Validate a ``rules.yaml`` document; unknown keys are errors (typos must not pass)."""
        before = len(v.items)
        known = {
            "version",
            "split_penalty",
            "lateness_penalty_per_day",
            "sla",
            "backorder_cost_per_unit",
            "node_types",
            "max_distance_km",
            "max_shipments",
            "unit_penalty_by_node_type",
        }
        for key in sorted(set(raw) - known):
            v.add(key, f"is not a known rule (known: {', '.join(sorted(known))})")
        defaults = RuleSet()
        version = f.text(raw, "version", v, required=False) or defaults.version
        split = f.money(raw, "split_penalty", v, required=False)
        late = f.money(raw, "lateness_penalty_per_day", v, required=False)
        backorder = f.money(raw, "backorder_cost_per_unit", v, required=False)
        radius = f.number(
            raw, "max_distance_km", v, required=False, strictly_positive=True, maximum=40_075
        )
        max_shipments = f.integer(raw, "max_shipments", v, required=False, minimum=1, maximum=1000)
        sla = defaults.sla
        sla_text = f.text(raw, "sla", v, required=False)
        if sla_text is not None:
            try:
                sla = SlaMode(sla_text.lower())
            except ValueError:
                v.add("sla", f"must be hard or soft, got {sla_text!r}")
        node_types = _node_types(raw.get("node_types"), v)
        penalties = _unit_penalties(raw.get("unit_penalty_by_node_type"), v)
        if len(v.items) > before:
            return None
        return RuleSet(
            version=version,
            split_penalty=defaults.split_penalty if split is None else split,
            lateness_penalty_per_day=defaults.lateness_penalty_per_day if late is None else late,
            sla=sla,
            backorder_cost_per_unit=(
                defaults.backorder_cost_per_unit if backorder is None else backorder
            ),
            node_types=node_types,
            max_distance_km=radius,
            max_shipments=max_shipments,
            unit_penalty_by_node_type=penalties,
        )


def _node_type(value: object, field_path: str, v: Violations) -> NodeType | None:
    try:
        return NodeType(str(value).lower())
    except ValueError:
        allowed = "|".join(t.value for t in NodeType)
        v.add(field_path, f"must be one of {allowed}, got {value!r}")
        return None


def _node_types(raw: object, v: Violations) -> frozenset[NodeType] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        v.add("node_types", "must be a non-empty list of node types")
        return None
    types = [_node_type(item, f"node_types[{i}]", v) for i, item in enumerate(raw)]
    return frozenset(t for t in types if t is not None)


def _unit_penalties(raw: object, v: Violations) -> dict[NodeType, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        v.add("unit_penalty_by_node_type", "must map node types to a cost per unit")
        return {}
    out: dict[NodeType, float] = {}
    penalties = Violations(v.path("unit_penalty_by_node_type"))
    for key in raw:
        node_type = _node_type(key, f"unit_penalty_by_node_type.{key}", v)
        amount = f.money(raw, key, penalties)
        if amount is not None and node_type is not None:
            out[node_type] = amount
    v.extend(penalties.items)
    return out
