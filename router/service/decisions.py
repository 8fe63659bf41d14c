"""The decision log's service side: what a decision is recorded from, and its exact replay.

A decision's body is a compressed ``router.v1.Decision`` holding the plan as returned and
:class:`~router.v1.router_pb2.DecisionInputs`: the order as planned, the positions of its
SKUs and the order slots as read, the rule-set version, the prices given to the engine,
the engine, its time limit and what was asked of it. With the network of the server's
scenario (checked by digest) and the calendars kept by digest, that is everything the
engine read, so :meth:`DecisionLog.replay` solves it again to the same plan
(docs/decisions.md, "Replay").
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib import metadata

from models.calendar import CalendarKind, Calendars
from models.capacity import CapacityUsed
from models.decision import DecisionKind, DecisionRecord
from models.errors import NotReplayableError
from models.lookahead import StockPrices
from models.network import Network, Stock, StockPosition
from models.order import Order
from models.plan import ExplainLevel, Plan
from models.reservation import Reservation
from models.rules import RuleSet
from router.engine import route_order
from router.engine.stop import Stop
from router.ledger.base import calendar_of_text, calendar_text, content_digest
from router.ledger.decisions import new_decision_id
from router.service.convert import (
    DECISION_KIND_TO_PROTO,
    order_from_proto,
    order_to_proto,
    plan_to_proto,
)
from router.v1 import router_pb2

_LEVEL = {
    ExplainLevel.NONE: router_pb2.EXPLAIN_LEVEL_NONE,
    ExplainLevel.SUMMARY: router_pb2.EXPLAIN_LEVEL_SUMMARY,
    ExplainLevel.FULL: router_pb2.EXPLAIN_LEVEL_FULL,
}
_LEVEL_OF_PROTO = {wire: level for level, wire in _LEVEL.items()}


@dataclass(frozen=True, slots=True)
class Planned:
    """Everything one plan was made from, as the engine was given it.

    ``rule_version`` is None for the scenario's own rules (no version active); ``stock``
    and ``capacity_used`` are as the engine read them (a re-route's stock without the
    ``excluded_node_ids``' positions, RouteOrder's slots with the days a conflict found
    full).
    """

    order: Order
    network: Network
    stock: Stock
    capacity_used: CapacityUsed
    calendar_revision: int
    rule_version: int | None
    prices: StockPrices | None
    time_limit_s: float
    explain: ExplainLevel
    alternatives: int = 0
    counterfactual_node_ids: tuple[str, ...] = ()
    excluded_node_ids: tuple[str, ...] = ()


COMPRESSION = 1
"""zlib's level for decision bodies: 1 compresses a sample body in 93 µs to 1.6 KB, the
default 6 in 164 µs to 1.5 KB; the request waits for it."""


def solve(planned: Planned, rules: RuleSet, stop: Stop, engine: str) -> Plan:
    """The plan ``rules`` make from ``planned`` with ``engine``.

    The one call to the engine that PlanOrder, RouteOrder, RejectShipment and replays share.
    """
    return route_order(
        planned.order,
        planned.network,
        planned.stock,
        rules,
        capacity_used=planned.capacity_used,
        stop=stop,
        engine=engine,
        alternatives=planned.alternatives,
        counterfactual_nodes=planned.counterfactual_node_ids,
        prices=planned.prices,
    )


def without_nodes(stock: Stock, node_ids: Collection[str]) -> Stock:
    """``stock`` without the positions of ``node_ids``: nodes excluded for an order."""
    if not node_ids:
        return stock
    return Stock.of(p for p in stock.positions.values() if p.node_id not in node_ids)


def without_holdings(
    stock: Stock, used: CapacityUsed, reservation: Reservation
) -> tuple[Stock, CapacityUsed]:
    """Stock and slots as if ``reservation`` held nothing.

    What its order would plan with were it routed again: its own units and slots free.
    """
    held: dict[tuple[str, str], int] = {}
    for line in reservation.lines:
        held[line.node_id, line.sku] = held.get((line.node_id, line.sku), 0) + line.quantity
    freed = [
        replace(p, reserved=max(0, p.reserved - held[key]))
        for key, p in stock.positions.items()
        if key in held
    ]
    slots = dict(used.slots)
    for key in reservation.capacity:
        slots[key] = max(0, slots.get(key, 0) - 1)
    return stock.replaced(freed), CapacityUsed({k: n for k, n in slots.items() if n})


def network_digest(network: Network) -> str:
    """A digest of what the engine reads of a network besides calendars and stock.

    Of a canonical form (sets sorted, mappings by key), so it is the same in every
    process whatever its hash seed.
    """
    text = json.dumps(_canonical((network.nodes, network.skus, network.rates)))
    return content_digest(text.encode())


def _canonical(value: object) -> object:
    """``value`` as JSON-able data that does not depend on iteration order."""
    if is_dataclass(value) and not isinstance(value, type):
        return [_canonical(getattr(value, f.name)) for f in fields(value) if f.init]
    if isinstance(value, Mapping):
        return sorted([str(k), _canonical(v)] for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_canonical(v)) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def engine_version() -> str:
    """The router's and OR-Tools' versions, as a decision records them."""
    return f"order-router {metadata.version('order-router')}; ortools {metadata.version('ortools')}"


def _calendars_body(calendars: Calendars) -> tuple[str, bytes]:
    """The (digest, compressed JSON) of calendars, as the decision log keeps them."""
    entries = [[kind.value, owner, calendar_text(c)] for kind, owner, c in calendars.entries()]
    text = json.dumps(entries, separators=(",", ":")).encode()
    return content_digest(text), zlib.compress(text)


def calendars_of_body(body: bytes) -> Calendars:
    """The calendars :func:`_calendars_body` kept."""
    entries = json.loads(zlib.decompress(body))
    return Calendars.of(
        (CalendarKind(kind), owner, calendar_of_text(text)) for kind, owner, text in entries
    )


class DecisionLog:
    """Builds decision records, reads them back, and replays them.

    ``network`` is the scenario's (without the live calendars), ``engine`` the engine
    every request is planned with, ``rules`` the scenario's own rules (what plans while no
    rule-set version is active).
    """

    def __init__(self, network: Network, engine: str, rules: RuleSet) -> None:
        self._network = network
        self._engine = engine
        self._network_digest = network_digest(network)
        self._rules_digest = content_digest(json.dumps(_canonical(rules)).encode())
        self._version = engine_version()
        self._lock = threading.Lock()
        self._calendars: tuple[Calendars, tuple[str, bytes]] | None = None

    def _calendars_of(self, calendars: Calendars) -> tuple[str, bytes] | None:
        """The kept form of ``calendars``, computed once per calendars object; None: none."""
        if not calendars:
            return None
        with self._lock:
            cached = self._calendars
        if cached is not None and cached[0] is calendars:
            return cached[1]
        kept = _calendars_body(calendars)
        with self._lock:
            self._calendars = (calendars, kept)
        return kept

    def record(
        self,
        kind: DecisionKind,
        planned: Planned,
        plan: router_pb2.Plan,
        *,
        decision_id: str = "",
        request_id: str = "",
        owner: str = "",
        outcome: router_pb2.RouteOutcome.ValueType = router_pb2.ROUTE_OUTCOME_UNSPECIFIED,
        parent_id: str = "",
        reason: str = "",
    ) -> DecisionRecord:
        """The record of ``plan``, made from ``planned``.

        Its reservation is set by the ledger call that makes it (``dataclasses.replace``).
        """
        body = router_pb2.Decision(
            plan=plan, outcome=outcome, inputs=self.inputs_of(planned), reason=reason
        )
        calendars = self._calendars_of(planned.network.calendars)
        if calendars is not None:
            body.inputs.calendars_digest = calendars[0]
        return DecisionRecord(
            decision_id=decision_id or new_decision_id(),
            kind=kind,
            order_id=planned.order.order_id,
            decided_at=datetime.now(UTC),
            status=router_pb2.SolveStatus.Name(plan.status).removeprefix("SOLVE_STATUS_"),
            body=zlib.compress(body.SerializeToString(deterministic=True), COMPRESSION),
            request_id=request_id,
            parent_id=parent_id,
            owner=owner,
            node_ids=tuple(dict.fromkeys(s.node_id for s in plan.shipments)),
            calendars=calendars,
        )

    def inputs_of(self, planned: Planned) -> router_pb2.DecisionInputs:
        """The inputs message of ``planned``: positions by SKU in the order the engine saw."""
        p = planned
        msg = router_pb2.DecisionInputs(
            order=order_to_proto(p.order),
            calendar_revision=p.calendar_revision,
            rule_version=p.rule_version or 0,
            engine=self._engine,
            engine_version=self._version,
            excluded_node_ids=p.excluded_node_ids,
            network_digest=self._network_digest,
            rules_digest="" if p.rule_version else self._rules_digest,
            explain_level=_LEVEL[p.explain],
            alternatives=p.alternatives,
            counterfactual_node_ids=p.counterfactual_node_ids,
        )
        msg.time_limit.FromTimedelta(timedelta(seconds=p.time_limit_s))
        skus = dict.fromkeys(line.sku for line in p.order.lines)
        groups = [(sku, p.stock.by_sku.get(sku, ())) for sku in skus]
        positions = [pos for _, group in groups for pos in group]
        columns = msg.stock
        columns.skus.extend(sku for sku, _ in groups)
        columns.counts.extend(len(group) for _, group in groups)
        columns.node_ids.extend([pos.node_id for pos in positions])
        columns.on_hand.extend([pos.on_hand for pos in positions])
        columns.safety_stock.extend([pos.safety_stock for pos in positions])
        columns.reserved.extend([pos.reserved for pos in positions])
        msg.capacity_used.extend(
            router_pb2.CapacityUse(node_id=node_id, day=day.isoformat(), used=used)
            for (node_id, day), used in sorted(p.capacity_used.slots.items())
        )
        if p.prices is not None:
            msg.price_version = p.prices.label
            msg.prices_computed_at.FromDatetime(p.prices.computed_at)
            prices = p.prices.prices
            msg.prices.extend([prices.get((pos.node_id, pos.sku), -1.0) for pos in positions])
        return msg

    def replay(
        self,
        record: DecisionRecord,
        rules_of: Callable[[int | None], RuleSet],
        stop: Callable[[float], Stop],
    ) -> tuple[router_pb2.Decision, router_pb2.Plan]:
        """Solve a logged decision again from its inputs: the decision, and the new plan.

        ``rules_of`` gives the rule set of a version (None: the scenario's rules), ``stop``
        the stop of a solve given its stored time limit; the engine is the one recorded.
        Raises NotReplayableError when the decision cannot be replayed here (another
        network, calendars no longer kept).
        """
        decision = decision_of(record, inputs=True)
        inputs = decision.inputs
        planned = self.planned_of(inputs, self.network_for(record, inputs))
        rules = rules_of(planned.rule_version)
        plan = solve(planned, rules, stop(planned.time_limit_s), inputs.engine)
        return decision, plan_to_proto(plan, explain=planned.explain)

    @staticmethod
    def planned_of(inputs: router_pb2.DecisionInputs, network: Network) -> Planned:
        """What a decision's ``inputs`` say it was planned from, as the engine read it."""
        positions = stock_positions(inputs.stock)
        groups: dict[str, list[StockPosition]] = {}
        for pos in positions:
            groups.setdefault(pos.sku, []).append(pos)
        prices = None
        if inputs.price_version:
            prices = StockPrices(
                version=int(inputs.price_version.removeprefix("prices@v")),
                computed_at=inputs.prices_computed_at.ToDatetime(UTC),
                source="decision log",
                horizon_hours=0.0,
                prices={
                    (pos.node_id, pos.sku): price
                    for pos, price in zip(positions, inputs.prices, strict=True)
                    if price >= 0
                },
            )
        return Planned(
            order=order_from_proto(inputs.order, network),
            network=network,
            stock=Stock.of_groups({sku: tuple(group) for sku, group in groups.items()}),
            capacity_used=CapacityUsed(
                {(c.node_id, date.fromisoformat(c.day)): c.used for c in inputs.capacity_used}
            ),
            calendar_revision=inputs.calendar_revision,
            rule_version=inputs.rule_version or None,
            prices=prices,
            time_limit_s=inputs.time_limit.ToTimedelta().total_seconds(),
            explain=_LEVEL_OF_PROTO.get(inputs.explain_level, ExplainLevel.NONE),
            alternatives=inputs.alternatives,
            counterfactual_node_ids=tuple(inputs.counterfactual_node_ids),
            excluded_node_ids=tuple(inputs.excluded_node_ids),
        )

    def network_for(self, record: DecisionRecord, inputs: router_pb2.DecisionInputs) -> Network:
        """The network a decision planned on: ours, with its calendars.

        Raises NotReplayableError when the decision was made on another network or with
        other scenario rules (no version active), or its calendars are no longer kept.
        """
        if inputs.network_digest != self._network_digest:
            raise NotReplayableError(
                f"decision_id: {record.decision_id} was decided on another network "
                f"(digest {inputs.network_digest}, this server's {self._network_digest})"
            )
        if not inputs.rule_version and inputs.rules_digest != self._rules_digest:
            raise NotReplayableError(
                f"decision_id: {record.decision_id} was decided with other scenario rules "
                f"(digest {inputs.rules_digest}, this server's {self._rules_digest})"
            )
        if not inputs.calendars_digest:
            return replace(self._network, calendars=Calendars())
        if record.calendars is None or record.calendars[0] != inputs.calendars_digest:
            raise NotReplayableError(
                f"decision_id: the calendars {record.decision_id} planned with are not kept"
            )
        return replace(self._network, calendars=calendars_of_body(record.calendars[1]))


def decision_of(record: DecisionRecord, *, inputs: bool) -> router_pb2.Decision:
    """The message of a logged decision: its columns and body; the inputs when ``inputs``."""
    msg = router_pb2.Decision.FromString(zlib.decompress(record.body))
    if not inputs:
        msg.ClearField("inputs")
    msg.decision_id = record.decision_id
    msg.kind = DECISION_KIND_TO_PROTO[record.kind]
    msg.order_id = record.order_id
    msg.request_id = record.request_id
    msg.reservation_id = record.reservation_id
    msg.decided_at.FromDatetime(record.decided_at)
    msg.owner = record.owner
    msg.node_ids[:] = record.node_ids
    msg.parent_decision_id = record.parent_id
    return msg


def plan_differences(logged: router_pb2.Plan, replayed: router_pb2.Plan) -> list[str]:
    """The fields in which two plans differ, timing aside (empty: identical)."""
    a, b = router_pb2.Plan(), router_pb2.Plan()
    a.CopyFrom(logged)
    b.CopyFrom(replayed)
    a.ClearField("solve_time")
    b.ClearField("solve_time")
    if a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True):
        return []
    names = [f.name for f in router_pb2.Plan.DESCRIPTOR.fields]
    return [name for name in names if getattr(a, name) != getattr(b, name)] or ["(encoding)"]


def input_changes(
    then: router_pb2.DecisionInputs, now: router_pb2.DecisionInputs
) -> list[router_pb2.InputChange]:
    """What moved between a decision's inputs and the same order's now, largest first.

    Stock by available units (the most moved first), then slots, then the rule version,
    the prices (label, then per position) and the calendars.
    """
    changes: list[tuple[float, router_pb2.InputChange]] = []

    def add(weight: float, kind: str, key: str, a: object, b: object) -> None:
        changes.append(
            (weight, router_pb2.InputChange(kind=kind, key=key, then=str(a), now=str(b)))
        )

    for key, (a, b) in _paired(_available(then), _available(now)).items():
        add(abs(a - b), "stock", key, a, b)
    for key, (a, b) in _paired(_slots(then), _slots(now)).items():
        add(abs(a - b), "capacity", key, a, b)
    if then.rule_version != now.rule_version:
        add(float("inf"), "rule_version", "", _version(then), _version(now))
    if then.price_version != now.price_version:
        add(float("inf"), "prices", "", then.price_version or "none", now.price_version or "none")
    for key, (a, b) in _paired(_prices(then), _prices(now)).items():
        add(abs(a - b), "prices", key, f"{a:g}", f"{b:g}")
    if then.calendars_digest != now.calendars_digest:
        add(float("inf"), "calendars", "", then.calendar_revision, now.calendar_revision)
    changes.sort(key=lambda change: -change[0])
    return [change for _, change in changes]


def _paired(a: dict[str, float], b: dict[str, float]) -> dict[str, tuple[float, float]]:
    """The keys whose values differ between two maps (absent: 0), with both values."""
    return {
        k: (a.get(k, 0), b.get(k, 0))
        for k in sorted(a.keys() | b.keys())
        if a.get(k, 0) != b.get(k, 0)
    }


def stock_positions(columns: router_pb2.StockColumns) -> list[StockPosition]:
    """The positions of a decision's stock columns, in their order."""
    skus = [
        sku for sku, count in zip(columns.skus, columns.counts, strict=True) for _ in range(count)
    ]
    return [
        StockPosition(*row)
        for row in zip(
            columns.node_ids,
            skus,
            columns.on_hand,
            columns.safety_stock,
            columns.reserved,
            strict=True,
        )
    ]


def _available(inputs: router_pb2.DecisionInputs) -> dict[str, float]:
    return {
        f"{p.node_id}/{p.sku}": p.available
        for p in stock_positions(inputs.stock)
        if p.node_id not in inputs.excluded_node_ids
    }


def _slots(inputs: router_pb2.DecisionInputs) -> dict[str, float]:
    return {f"{c.node_id}@{c.day}": c.used for c in inputs.capacity_used}


def _prices(inputs: router_pb2.DecisionInputs) -> dict[str, float]:
    positions = stock_positions(inputs.stock) if inputs.prices else []
    return {
        f"{p.node_id}/{p.sku}": price
        for p, price in zip(positions, inputs.prices, strict=True)
        if price >= 0
    }


def _version(inputs: router_pb2.DecisionInputs) -> str:
    return f"v{inputs.rule_version}" if inputs.rule_version else "the scenario's rules"


def explain_change(
    logged: router_pb2.Plan, now: router_pb2.Plan, changes: list[router_pb2.InputChange]
) -> str:
    """In words: how the plan now differs from the logged one, and what moved."""
    then_nodes, now_nodes = _nodes(logged), _nodes(now)
    if plan_differences(logged, now) == []:
        head = "the same plan now"
    elif then_nodes == now_nodes:
        head = f"the same nodes ({', '.join(now_nodes) or 'none'}), other quantities or terms"
    else:
        head = (
            f"ships from {', '.join(now_nodes) or 'nowhere'} now, "
            f"from {', '.join(then_nodes) or 'nowhere'} then"
        )
    cost = f"cost {logged.objective:.2f} then, {now.objective:.2f} now"
    kinds: dict[str, int] = {}
    for change in changes:
        kinds[change.kind] = kinds.get(change.kind, 0) + 1
    moved = ", ".join(f"{kind} ({n})" for kind, n in kinds.items()) or "nothing"
    return f"{head}; {cost}; inputs that moved: {moved}"


def _nodes(plan: router_pb2.Plan) -> list[str]:
    return list(dict.fromkeys(s.node_id for s in plan.shipments))
