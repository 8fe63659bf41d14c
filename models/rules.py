"""The planners' rule language: ordered strategies that each reduce to the canonical model.

A :class:`RuleSet` is an ordered list of :class:`Strategy`. The first strategy whose
:class:`Condition` the order meets is tried; its :class:`Policy` (hard filters, cost
weights, constraints) turns the order into one canonical model (docs/cost-model.md). When
that model's optimal plan leaves units unfulfilled, or has none, the strategy's
:class:`Fallback` decides: relax the SLA by steps of days, then go on to the next matching
strategy, accept the backorder, or reject the order with a reason. docs/rules.md is the
reference, with examples; this module only reads, validates and writes documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING

from models import fields as f
from models.errors import Violations, quoted
from models.network import NodeType

if TYPE_CHECKING:
    from models.network import Network
    from models.order import Order


class SlaMode(StrEnum):
    """How a deliver-by date binds: ``hard`` excludes late nodes, ``soft`` charges per day."""

    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class Policy:
    """What one strategy sets for the canonical model: filters, weights and constraints.

    Money is in currency units. Filters: ``node_types``/``node_tags``/``nodes`` ``None``
    allow every node; ``node_tags`` keeps nodes carrying at least one of the tags;
    ``capabilities`` lets a line whose SKU has one of these attributes ship only from nodes
    tagged with it; ``blocked`` holds (node_id, sku) pairs that may not ship;
    ``min_buffer_by_node_type`` holds back that many units of every SKU at nodes of a type.
    Weights: ``priority_bonus`` is charged per shipment for each priority point a node is
    below the network's top priority; ``distance_cost_per_km`` per shipment per km;
    ``opportunity_cost`` scales the look-ahead price of each unit shipped (0: off, 1: the
    full price; docs/lookahead.md), and matters only when the engine is given prices.
    Constraints: ``no_split_below_value`` ships orders worth less in one shipment.
    """

    # weights
    split_penalty: float = 4.0
    lateness_penalty_per_day: float = 6.0
    backorder_cost_per_unit: float = 60.0
    unit_penalty_by_node_type: Mapping[NodeType, float] = field(default_factory=dict)
    priority_bonus: float = 0.0
    distance_cost_per_km: float = 0.0
    opportunity_cost: float = 0.0
    # filters
    node_types: frozenset[NodeType] | None = None
    node_tags: frozenset[str] | None = None
    exclude_node_tags: frozenset[str] = frozenset()
    nodes: frozenset[str] | None = None
    exclude_nodes: frozenset[str] = frozenset()
    max_distance_km: float | None = None
    same_country: bool = False
    capabilities: frozenset[str] = frozenset()
    blocked: frozenset[tuple[str, str]] = frozenset()
    min_buffer_by_node_type: Mapping[NodeType, int] = field(default_factory=dict)
    # constraints
    max_shipments: int | None = None
    ship_complete: bool = False
    sla: SlaMode = SlaMode.SOFT
    no_split_below_value: float | None = None

    @property
    def has_node_filter(self) -> bool:
        """Whether a filter that depends on the node alone is set."""
        return (
            self.node_types is not None
            or self.node_tags is not None
            or bool(self.exclude_node_tags)
            or self.nodes is not None
            or bool(self.exclude_nodes)
        )


SECTIONS: Mapping[str, tuple[str, ...]] = {
    "weights": (
        "split_penalty",
        "lateness_penalty_per_day",
        "backorder_cost_per_unit",
        "unit_penalty_by_node_type",
        "priority_bonus",
        "distance_cost_per_km",
        "opportunity_cost",
    ),
    "filters": (
        "node_types",
        "node_tags",
        "exclude_node_tags",
        "nodes",
        "exclude_nodes",
        "max_distance_km",
        "same_country",
        "capabilities",
        "blocked",
        "min_buffer_by_node_type",
    ),
    "constraints": ("max_shipments", "ship_complete", "sla", "no_split_below_value"),
}
"""The sections of a strategy and the :class:`Policy` fields each may set, in document order."""


@dataclass(frozen=True, slots=True)
class Condition:
    """Which orders a strategy applies to; every clause set must hold (``None``: any order).

    ``sku_attributes`` holds when some line's SKU has one of them (``Sku.attributes``);
    ``min_order_value`` is inclusive, ``max_order_value`` exclusive.
    """

    channels: frozenset[str] | None = None
    segments: frozenset[str] | None = None
    services: frozenset[str] | None = None
    countries: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    postal_code_prefixes: frozenset[str] | None = None
    sku_attributes: frozenset[str] | None = None
    min_order_value: float | None = None
    max_order_value: float | None = None

    @property
    def unconditional(self) -> bool:
        """True when every order meets it."""
        return self == Condition()

    def unmet(self, order: Order, network: Network) -> tuple[str, ...]:
        """Why ``order`` does not meet the condition, one message per failing clause."""
        out = []
        for key, allowed, value in (
            ("channel", self.channels, order.channel),
            ("segment", self.segments, order.segment),
            ("service", self.services, order.service),
            ("country", self.countries, order.ship_to.country),
            ("region", self.regions, order.ship_to.region),
        ):
            if allowed is not None and value not in allowed:
                out.append(f"when.{key}: {quoted(value)} is not one of {_listed(allowed)}")
        prefixes = self.postal_code_prefixes
        if prefixes is not None and not order.ship_to.postal_code.startswith(tuple(prefixes)):
            postal = order.ship_to.postal_code
            out.append(
                f"when.postal_code_prefix: {quoted(postal)} starts with none of {_listed(prefixes)}"
            )
        if self.sku_attributes is not None:
            held = {a for line in order.lines for a in network.skus[line.sku].attributes}
            if not held & self.sku_attributes:
                out.append(
                    f"when.sku_attribute: no line's SKU has any of {_listed(self.sku_attributes)}"
                )
        worth = order.value
        if self.min_order_value is not None and worth < self.min_order_value:
            out.append(f"when.order_value: {worth:g} is below the minimum {self.min_order_value:g}")
        if self.max_order_value is not None and worth >= self.max_order_value:
            out.append(
                f"when.order_value: {worth:g} is not below the maximum {self.max_order_value:g}"
            )
        return tuple(out)

    def covers(self, other: Condition) -> bool:
        """True when every order that meets ``other`` also meets this condition."""
        for mine, theirs in (
            (self.channels, other.channels),
            (self.segments, other.segments),
            (self.services, other.services),
            (self.countries, other.countries),
            (self.regions, other.regions),
        ):
            if mine is not None and (theirs is None or not theirs <= mine):
                return False
        if self.postal_code_prefixes is not None:
            theirs_p = other.postal_code_prefixes
            if theirs_p is None or not all(
                p.startswith(tuple(self.postal_code_prefixes)) for p in theirs_p
            ):
                return False
        if self.sku_attributes is not None and (
            other.sku_attributes is None or not other.sku_attributes <= self.sku_attributes
        ):
            return False
        if self.min_order_value is not None and (
            other.min_order_value is None or other.min_order_value < self.min_order_value
        ):
            return False
        return self.max_order_value is None or (
            other.max_order_value is not None and other.max_order_value <= self.max_order_value
        )


class FallbackAction(StrEnum):
    """Where a strategy goes when its plan does not fulfil the whole order."""

    NEXT = "next"
    """Try the next strategy whose condition the order meets."""
    BACKORDER = "backorder"
    """Accept the plan; the units it leaves are backordered."""
    REJECT = "reject"
    """Ship nothing; the order is rejected with the fallback's reason."""


@dataclass(frozen=True, slots=True)
class Fallback:
    """What a strategy does when its plan leaves units unfulfilled.

    First it relaxes the deliver-by date by ``relax_sla_step_days`` at a time, up to
    ``relax_sla_max_days`` (no relaxation when 0), then it does ``then``; ``reason`` is what
    a rejection says.
    """

    then: FallbackAction = FallbackAction.BACKORDER
    relax_sla_step_days: int = 0
    relax_sla_max_days: int = 0
    reason: str = ""

    @property
    def relax_days(self) -> tuple[int, ...]:
        """The deliver-by extensions tried in turn, in days."""
        if not self.relax_sla_step_days:
            return ()
        return tuple(
            range(self.relax_sla_step_days, self.relax_sla_max_days + 1, self.relax_sla_step_days)
        )


@dataclass(frozen=True, slots=True)
class Strategy:
    """One named step of a rule set: to which orders it applies, how it routes, what next.

    ``overrides`` names the policy fields the strategy sets itself (the others come from the
    rule set's ``defaults`` or the built-in defaults); lint uses it, equality ignores it.
    """

    name: str = "default"
    when: Condition = Condition()
    policy: Policy = Policy()
    fallback: Fallback = Fallback()
    description: str = ""
    overrides: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An ordered list of strategies, named; ``version`` is set once the ledger stores it.

    ``groups`` name sets of node ids that the ``nodes``/``exclude_nodes`` filters may use
    (they are already expanded in each strategy's policy).
    """

    name: str = "default"
    strategies: tuple[Strategy, ...] = (Strategy(),)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    description: str = ""
    version: int | None = None

    @property
    def label(self) -> str:
        """How plans name the rule set: ``name@v3`` once published, ``name@draft`` before."""
        return f"{self.name}@{'draft' if self.version is None else f'v{self.version}'}"

    @property
    def pricing_strategy(self) -> Strategy | None:
        """The first strategy with ``opportunity_cost`` > 0; None: nothing uses stock prices.

        Its policy (backorder cost, unit penalties, buffers) is the one stock prices are
        computed under: one price per (node, SKU) serves every strategy, and the first
        pricing strategy routes the orders its condition admits before any later one.
        """
        return next((s for s in self.strategies if s.policy.opportunity_cost > 0), None)

    @staticmethod
    def single(
        policy: Policy | None = None, *, name: str = "default", strategy: str = "default"
    ) -> RuleSet:
        """One unconditional strategy with ``policy`` that backorders what it cannot ship."""
        return RuleSet(name=name, strategies=(Strategy(strategy, policy=policy or Policy()),))

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations, network: Network | None = None) -> RuleSet | None:
        """Validate a rule-set document (docs/rules.md); ``None`` after any violation.

        Every problem is recorded with its path (``strategies[2].filters.max_distance_km``);
        unknown keys are errors, so a typo cannot pass as a rule that does nothing. With a
        ``network``, node ids (groups, ``nodes``, ``blocked``) and SKUs must exist in it.
        """
        before = len(v.items)
        f.unknown_keys(raw, ("name", "description", "groups", "defaults", "strategies"), v)
        name = f.text(raw, "name", v) or ""
        description = f.text(raw, "description", v, required=False) or ""
        groups = _groups(raw.get("groups"), v, network)
        defaults = raw.get("defaults")
        inherited: dict[str, object] = {}
        if defaults is not None:
            if isinstance(defaults, dict):
                found = Violations(v.path("defaults"))
                f.unknown_keys(defaults, SECTIONS, found)
                inherited = _policy_fields(defaults, found, groups, network)
                v.extend(found.items)
            else:
                v.add("defaults", "must be a mapping of weights, filters and constraints")
        raw_strategies = raw.get("strategies")
        strategies: list[Strategy] = []
        if not isinstance(raw_strategies, list) or not raw_strategies:
            v.add("strategies", "must be a non-empty list of strategies")
        else:
            seen: set[str] = set()
            for i, item in enumerate(raw_strategies):
                sub = Violations(v.path(f"strategies[{i}]"))
                strategy = _strategy(item, sub, inherited, groups, network)
                v.extend(sub.items)
                if strategy is not None:
                    if strategy.name in seen:
                        v.add(
                            f"strategies[{i}].name",
                            f"duplicates an earlier strategy {quoted(strategy.name)}",
                        )
                    seen.add(strategy.name)
                    strategies.append(strategy)
        if len(v.items) > before:
            return None
        return RuleSet(name, tuple(strategies), groups, description)

    def to_raw(self) -> dict[str, object]:
        """The canonical document: what :meth:`from_raw` reads back as this rule set.

        Groups stay expanded in the policies; settings equal to the defaults are left out.
        """
        document: dict[str, object] = {"name": self.name}
        if self.description:
            document["description"] = self.description
        if self.groups:
            document["groups"] = {g: sorted(ids) for g, ids in sorted(self.groups.items())}
        document["strategies"] = [_strategy_raw(s) for s in self.strategies]
        return document


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(values)) + "]"


def _names(raw: f.Raw, key: str, v: Violations, *, upper: bool = False) -> frozenset[str] | None:
    """A name or a non-empty list of names as a set; ``None`` when absent or bad."""
    found = f.names(raw, key, v)
    if found is None:
        return None
    return frozenset(name.upper() if upper else name for _, name in found)


def _groups(raw: object, v: Violations, network: Network | None) -> dict[str, frozenset[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        v.add("groups", "must map group names to lists of node ids")
        return {}
    out = {}
    sub = Violations(v.path("groups"))
    for name in raw:
        ids = _names(raw, name, sub)
        if ids is not None:
            _check_nodes(ids, str(name), sub, network)
            out[str(name)] = ids
    v.extend(sub.items)
    return out


def _check_nodes(ids: Iterable[str], key: str, v: Violations, network: Network | None) -> None:
    if network is not None:
        for node_id in sorted(ids):
            if network.node(node_id) is None:
                v.add(key, f"unknown node {quoted(node_id)}")


def _strategy(
    item: object,
    sub: Violations,
    inherited: Mapping[str, object],
    groups: Mapping[str, frozenset[str]],
    network: Network | None,
) -> Strategy | None:
    if not isinstance(item, dict):
        sub.add("", "must be a mapping with at least a name")
        return None
    before = len(sub.items)
    known = ("name", "description", "when", *SECTIONS, "fallback")
    f.unknown_keys(item, known, sub)
    name = f.text(item, "name", sub)
    description = f.text(item, "description", sub, required=False) or ""
    when = _condition(item.get("when"), sub)
    own = _policy_fields(item, sub, groups, network)
    fallback = _fallback(item.get("fallback"), sub)
    if len(sub.items) > before or name is None or when is None or fallback is None:
        return None
    policy = Policy(**{**inherited, **own})  # type: ignore[arg-type]  # readers type each field
    return Strategy(name, when, policy, fallback, description, frozenset(own))


def _policy_fields(
    raw: f.Raw,
    where: Violations,
    groups: Mapping[str, frozenset[str]],
    network: Network | None,
) -> dict[str, object]:
    """The :class:`Policy` fields set in the ``weights``/``filters``/``constraints`` of ``raw``."""
    out: dict[str, object] = {}
    for section, keys in SECTIONS.items():
        body = raw.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            where.add(section, f"must be a mapping of {', '.join(keys)}")
            continue
        sub = Violations(where.path(section))
        f.unknown_keys(body, keys, sub)
        for key in keys:
            if key in body:
                value = _READERS[key](body, key, sub, groups, network)
                if value is not _BAD:
                    out[key] = value
        where.extend(sub.items)
    return out


_BAD = object()


def _read_money(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.money(raw, key, v, strict=True)
    return _BAD if value is None else value


def _read_per_km(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.number(raw, key, v, minimum=0, maximum=100, strict=True)
    return _BAD if value is None else value


def _read_scale(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.number(raw, key, v, minimum=0, maximum=100, strict=True)
    return _BAD if value is None else value


def _read_radius(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.number(raw, key, v, strictly_positive=True, maximum=40_075, strict=True)
    return _BAD if value is None else value


def _read_flag(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.boolean(raw, key, v, strict=True)
    return _BAD if value is None else value


def _read_max_shipments(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.integer(raw, key, v, minimum=0, maximum=1000, strict=True)
    return _BAD if value is None else value


def _read_sla(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    text = f.text(raw, key, v)
    try:
        return SlaMode((text or "").lower())
    except ValueError:
        if text is not None:
            v.add(key, f"must be hard or soft, got {quoted(text)}")
        return _BAD


def _read_names(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = _names(raw, key, v)
    return _BAD if value is None else value


def _read_node_types(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = _names(raw, key, v)
    if value is None:
        return _BAD
    types = [NodeType.parse(t, key, v) for t in sorted(value)]
    return _BAD if None in types else frozenset(t for t in types if t is not None)


def _read_nodes(
    raw: f.Raw,
    key: str,
    v: Violations,
    groups: Mapping[str, frozenset[str]],
    network: Network | None,
) -> object:
    """Node ids and group names, groups expanded."""
    value = _names(raw, key, v)
    if value is None:
        return _BAD
    _check_nodes([name for name in value if name not in groups], key, v, network)
    return frozenset(node_id for name in value for node_id in groups.get(name, {name}))


def _read_blocked(
    raw: f.Raw, key: str, v: Violations, groups: object, network: Network | None
) -> object:
    """``[{node_id, sku}, …]`` pairs."""
    value = raw.get(key)
    if not isinstance(value, list):
        v.add(key, "must be a list of {node_id, sku} pairs")
        return _BAD
    pairs = set()
    before = len(v.items)
    for i, item in enumerate(value):
        sub = Violations(v.path(f"{key}[{i}]"))
        if not isinstance(item, dict):
            sub.add("", "must be a mapping {node_id, sku}")
        else:
            f.unknown_keys(item, ("node_id", "sku"), sub)
            node_id = f.text(item, "node_id", sub)
            sku = f.text(item, "sku", sub)
            if network is not None and node_id is not None and network.node(node_id) is None:
                sub.add("node_id", f"unknown node {quoted(node_id)}")
            if network is not None and sku is not None and sku not in network.skus:
                sub.add("sku", f"unknown sku {quoted(sku)}")
            if node_id is not None and sku is not None:
                pairs.add((node_id, sku))
        v.extend(sub.items)
    return _BAD if len(v.items) > before else frozenset(pairs)


def _by_node_type(raw: f.Raw, key: str, v: Violations, read: object) -> object:
    value = raw.get(key)
    if not isinstance(value, dict) or not value:
        v.add(key, "must map node types to amounts")
        return _BAD
    out = {}
    sub = Violations(v.path(key))
    for type_name in value:
        node_type = NodeType.parse(type_name, str(type_name), sub)
        amount = read(value, type_name, sub)  # type: ignore[operator]
        if node_type is not None and amount is not None:
            out[node_type] = amount
    v.extend(sub.items)
    return _BAD if sub else out


def _read_unit_penalties(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    return _by_node_type(raw, key, v, lambda r, k, s: f.money(r, k, s, strict=True))


def _read_buffers(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    return _by_node_type(
        raw,
        key,
        v,
        lambda r, k, s: f.integer(r, k, s, minimum=0, maximum=f.MAX_QUANTITY, strict=True),
    )


def _read_value(raw: f.Raw, key: str, v: Violations, *_: object) -> object:
    value = f.number(raw, key, v, minimum=0, maximum=f.MAX_NUMBER, strict=True)
    return _BAD if value is None else value


_Reader = Callable[[f.Raw, str, Violations, Mapping[str, frozenset[str]], "Network | None"], object]

_READERS: dict[str, _Reader] = {
    "split_penalty": _read_money,
    "lateness_penalty_per_day": _read_money,
    "backorder_cost_per_unit": _read_money,
    "unit_penalty_by_node_type": _read_unit_penalties,
    "priority_bonus": _read_money,
    "distance_cost_per_km": _read_per_km,
    "opportunity_cost": _read_scale,
    "node_types": _read_node_types,
    "node_tags": _read_names,
    "exclude_node_tags": _read_names,
    "nodes": _read_nodes,
    "exclude_nodes": _read_nodes,
    "max_distance_km": _read_radius,
    "same_country": _read_flag,
    "capabilities": _read_names,
    "blocked": _read_blocked,
    "min_buffer_by_node_type": _read_buffers,
    "max_shipments": _read_max_shipments,
    "ship_complete": _read_flag,
    "sla": _read_sla,
    "no_split_below_value": _read_value,
}
"""How each :class:`Policy` field is read: ``(raw, key, violations, groups, network)``."""

_WHEN_KEYS = {
    "channel": "channels",
    "segment": "segments",
    "service": "services",
    "country": "countries",
    "region": "regions",
    "postal_code_prefix": "postal_code_prefixes",
    "sku_attribute": "sku_attributes",
}
"""Document key → :class:`Condition` field, for the clauses that list names."""


def _condition(raw: object, v: Violations) -> Condition | None:
    if raw is None:
        return Condition()
    if not isinstance(raw, dict):
        v.add("when", "must be a mapping of clauses (channel, segment, order_value, …)")
        return None
    sub = Violations(v.path("when"))
    f.unknown_keys(raw, (*_WHEN_KEYS, "order_value"), sub)
    clauses: dict[str, object] = {}
    for key, attr in _WHEN_KEYS.items():
        names = _names(raw, key, sub, upper=key in ("country", "region"))
        if names is not None:
            clauses[attr] = names
    value = raw.get("order_value")
    if value is not None:
        if not isinstance(value, dict) or not value:
            sub.add("order_value", "must be a mapping with min and/or max")
        else:
            bounds = Violations(sub.path("order_value"))
            f.unknown_keys(value, ("min", "max"), bounds)
            clauses["min_order_value"] = f.number(
                value, "min", bounds, required=False, minimum=0, strict=True
            )
            clauses["max_order_value"] = f.number(
                value, "max", bounds, required=False, minimum=0, strict=True
            )
            sub.extend(bounds.items)
    v.extend(sub.items)
    return None if sub else Condition(**clauses)  # type: ignore[arg-type]


def _fallback(raw: object, v: Violations) -> Fallback | None:
    """``next|backorder|reject`` or ``{relax_sla: {step_days, max_days}, then, reason}``."""
    if raw is None:
        return Fallback()
    if isinstance(raw, str):
        raw = {"then": raw}
    if not isinstance(raw, dict):
        v.add("fallback", "must be next, backorder, reject or a mapping {relax_sla, then, reason}")
        return None
    sub = Violations(v.path("fallback"))
    f.unknown_keys(raw, ("relax_sla", "then", "reason"), sub)
    then_text = f.text(raw, "then", sub, required=False) or FallbackAction.BACKORDER.value
    then = None
    try:
        then = FallbackAction(then_text.lower())
    except ValueError:
        sub.add("then", f"must be next, backorder or reject, got {quoted(then_text)}")
    reason = f.text(raw, "reason", sub, required=False) or ""
    if reason and then is not FallbackAction.REJECT:
        sub.add("reason", "is only used when the fallback rejects (then: reject)")
    step = maximum = 0
    relax = raw.get("relax_sla")
    if relax is not None:
        if not isinstance(relax, dict):
            sub.add("relax_sla", "must be a mapping {step_days, max_days}")
        else:
            days = Violations(sub.path("relax_sla"))
            f.unknown_keys(relax, ("step_days", "max_days"), days)
            step = (
                f.integer(relax, "step_days", days, minimum=1, maximum=f.MAX_DAYS, strict=True) or 0
            )
            maximum = (
                f.integer(relax, "max_days", days, minimum=1, maximum=f.MAX_DAYS, strict=True) or 0
            )
            if step and maximum and maximum < step:
                days.add("max_days", f"must be >= step_days ({step}), got {maximum}")
            sub.extend(days.items)
    v.extend(sub.items)
    if sub or then is None:
        return None
    return Fallback(then, step, maximum, reason)


def _plain(value: object) -> object:
    """A policy value as a YAML-ready value (sorted lists, enum values)."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, frozenset):
        if value and isinstance(next(iter(value)), tuple):
            return [{"node_id": n, "sku": s} for n, s in sorted(value)]
        return sorted(str(_plain(x)) for x in value)
    if isinstance(value, Mapping):
        return {str(_plain(k)): value[k] for k in sorted(value, key=str)}
    return value


def _strategy_raw(strategy: Strategy) -> dict[str, object]:
    out: dict[str, object] = {"name": strategy.name}
    if strategy.description:
        out["description"] = strategy.description
    when: dict[str, object] = {}
    for key, attr in _WHEN_KEYS.items():
        names = getattr(strategy.when, attr)
        if names is not None:
            when[key] = sorted(names)
    bounds = {
        k: b
        for k, b in (("min", strategy.when.min_order_value), ("max", strategy.when.max_order_value))
        if b is not None
    }
    if bounds:
        when["order_value"] = bounds
    if when:
        out["when"] = when
    default = Policy()
    for section, keys in SECTIONS.items():
        body = {
            k: _plain(getattr(strategy.policy, k))
            for k in keys
            if getattr(strategy.policy, k) != getattr(default, k)
        }
        if body:
            out[section] = body
    fb = strategy.fallback
    if fb != Fallback():
        fallback: dict[str, object] = {"then": fb.then.value}
        if fb.relax_sla_step_days:
            fallback["relax_sla"] = {
                "step_days": fb.relax_sla_step_days,
                "max_days": fb.relax_sla_max_days,
            }
        if fb.reason:
            fallback["reason"] = fb.reason
        out["fallback"] = fallback
    return out


POLICY_FIELDS = tuple(fld.name for fld in fields(Policy))
"""Every :class:`Policy` field, in declaration order (each belongs to one of :data:`SECTIONS`)."""
