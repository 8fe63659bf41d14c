"""Routing policies for what-if replays: the engine under a rule set, and two baselines.

Each answers with a :class:`~router.whatif.decision.Decision` on the order's evaluation
model (:mod:`router.whatif.decision` has the protocol).

- :class:`EnginePolicy` routes with the engine (:func:`router.engine.route_order`) under its
  own rule set and maps the plan's shipments back to evaluation candidates;
  :func:`full_model` is the same with the full CP-SAT model (``cpsat-full``).
- :class:`GreedyNearest`: each line in turn takes units from the nearest candidate with
  stock left, splitting over the next nearest.
- :class:`RankedChain`: a commercial-style ranked-rule chain: one node that has everything
  (the closest, then the highest priority), else greedy splitting by units covered.
- ``look-ahead``: the engine steered by look-ahead stock prices
  (:class:`router.whatif.lookahead.LookAheadPolicy`).

The baselines choose among the evaluation model's candidates, so they obey its filters,
capacity and stock; they respect ``ship_complete`` and ``max_shipments``; and when the
order does not allow partial fulfilment and their plan would leave units, they ship
nothing (as the engine does for an infeasible order). They are deterministic: every tie is
broken by distance, priority and node id.

:data:`POLICIES` names every policy a run may use, each made from the routing rules (and,
for ``look-ahead``, its configuration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from models.capacity import CapacityUsed
from models.network import Network, Stock
from models.order import Order
from models.rules import RuleSet
from router.engine import route_order
from router.engine.solve import FAST, FULL_MODEL
from router.engine.terms import BuiltModel
from router.whatif.decision import HEURISTIC, Assignment, Decision, RoutingPolicy, decision_of
from router.whatif.lookahead import LOOK_AHEAD, LookAhead, LookAheadPolicy


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """The engine (``fast`` or ``cpsat-full``) routing under ``rules``, fallbacks included."""

    rules: RuleSet
    engine: str = FAST
    name: str = "engine"

    def decide(
        self,
        order: Order,
        evaluation: BuiltModel,
        network: Network,
        stock: Stock,
        capacity_used: CapacityUsed,
    ) -> Decision:
        """Route with the engine; map each shipment to (evaluation candidate, line)."""
        plan = route_order(
            order, network, stock, self.rules, capacity_used=capacity_used, engine=self.engine
        )
        label = f"{self.rules.label}, engine {self.engine}"
        return decision_of(plan, order, evaluation, policy=self.name, label=label)


def full_model(rules: RuleSet) -> EnginePolicy:
    """The full CP-SAT model under ``rules``: the exact baseline the fast engine matches."""
    return EnginePolicy(rules, engine=FULL_MODEL, name="full-model")


@dataclass(frozen=True, slots=True)
class GreedyNearest:
    """Per line in order: the nearest candidate with stock left, split over the next nearest.

    Lines of one SKU share a node's stock. With ``ship_complete`` the order goes to one
    node: the one that can cover the most units of all lines (ties: the nearest). With
    ``max_shipments`` no node is opened beyond the cap; what the open nodes cannot cover
    is backordered.
    """

    name: str = "greedy-nearest"

    def decide(
        self,
        order: Order,
        evaluation: BuiltModel,
        network: Network,
        stock: Stock,
        capacity_used: CapacityUsed,
    ) -> Decision:
        """The greedy nearest-first assignment on the evaluation model's candidates."""
        view = _View.of(evaluation)
        cap = view.cap
        if cap == 0 or not view.n_candidates:
            return Decision(status=HEURISTIC)
        m = evaluation.matrices
        if evaluation.ship_complete:
            cover = view.cover(view.demand)
            best = int(np.lexsort((m.id_rank, m.distance, -cover))[0])
            if cover[best] == 0:
                return Decision(status=HEURISTIC)
            return view.finish(view.fill_all(best, view.demand.copy(), view.stock.copy(), {}))
        nearest = np.lexsort((m.id_rank, m.distance))
        left = view.stock.copy()  # (candidates, SKUs): units not yet taken by this order
        opened: list[int] = []
        out: Assignment = {}
        for line, terms in enumerate(evaluation.lines):
            s = view.sku_of[line]
            need = terms.quantity
            holding = nearest[left[nearest, s] > 0].tolist()
            for j in holding:
                if need == 0:
                    break
                if j not in opened:
                    if cap is not None and len(opened) >= cap:
                        continue
                    opened.append(j)
                take = min(need, int(left[j, s]))
                left[j, s] -= take
                need -= take
                out[(j, line)] = take
        return view.finish(out)


@dataclass(frozen=True, slots=True)
class RankedChain:
    """A commercial ranked-rule chain: fewest shipments, then closest, then node priority.

    (1) If some candidates can ship every unit, the order ships from one of them: the
    nearest, then the highest priority, then the lowest node id. (2) Otherwise it splits
    greedily: again and again the candidate that covers the most of what is left ships
    all it can (ties: nearest, then highest priority, then node id), until nothing is left,
    no candidate covers anything, or ``max_shipments`` (1 with ``ship_complete``) is reached.
    """

    name: str = "ranked-chain"

    def decide(
        self,
        order: Order,
        evaluation: BuiltModel,
        network: Network,
        stock: Stock,
        capacity_used: CapacityUsed,
    ) -> Decision:
        """The ranked-chain assignment on the evaluation model's candidates."""
        view = _View.of(evaluation)
        cap = view.cap
        if cap == 0 or not view.n_candidates:
            return Decision(status=HEURISTIC)
        m = evaluation.matrices
        left = view.demand.copy()
        avail = view.stock.copy()
        complete = np.flatnonzero(np.all(avail >= left, axis=1))
        if len(complete):
            keys = (m.id_rank[complete], -m.priority[complete], m.distance[complete])
            best = int(complete[np.lexsort(keys)[0]])
            return view.finish(view.fill_all(best, left, avail, {}))
        out: Assignment = {}
        shipments = 0
        while left.any() and (cap is None or shipments < cap):
            cover = view.cover(left, avail)
            best = int(np.lexsort((m.id_rank, -m.priority, m.distance, -cover))[0])
            if cover[best] == 0:
                break
            view.fill_all(best, left, avail, out)
            shipments += 1
        return view.finish(out)


class PolicyFactory(Protocol):
    """Makes a policy from the routing rules and, for ``look-ahead``, its configuration."""

    def __call__(self, rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
        """A fresh policy (``look-ahead`` keeps state: one per replay)."""
        ...


def _engine(rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
    return EnginePolicy(rules)


def _full_model(rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
    return full_model(rules)


def _greedy_nearest(rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
    return GreedyNearest()


def _ranked_chain(rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
    return RankedChain()


def _look_ahead(rules: RuleSet, lookahead: LookAhead | None = None) -> RoutingPolicy:
    return LookAheadPolicy(rules, lookahead or LookAhead())


POLICIES: dict[str, PolicyFactory] = {
    "engine": _engine,
    "full-model": _full_model,
    "greedy-nearest": _greedy_nearest,
    "ranked-chain": _ranked_chain,
    LOOK_AHEAD: _look_ahead,
}
"""Every policy a what-if run may use, by name, made from the rules and a configuration.

In the order the command runs and reports them; each key is the name of the policy it
makes (``POLICIES[name](rules).name == name``). The baselines ignore the rules.
``look-ahead`` (:mod:`router.whatif.lookahead`) is the engine with stock prices, at the
configuration given (its default without one); it keeps state, so each call makes a
fresh one. The others ignore the configuration.
"""


@dataclass(frozen=True, slots=True)
class _View:
    """The evaluation model per SKU: stock (candidates × SKUs), demand, lines of each SKU."""

    model: BuiltModel
    sku_of: list[int]
    """Each line's SKU column."""
    lines_of: list[list[int]] = field(repr=False)
    """Each SKU column's lines, in order."""
    stock: NDArray[np.int64]
    demand: NDArray[np.int64]

    @staticmethod
    def of(model: BuiltModel) -> _View:
        columns: dict[str, int] = {}
        sku_of = [columns.setdefault(t.sku, len(columns)) for t in model.lines]
        lines_of: list[list[int]] = [[] for _ in columns]
        for line, s in enumerate(sku_of):
            lines_of[s].append(line)
        first = [lines[0] for lines in lines_of]
        stock = model.matrices.available[:, first].astype(np.int64)
        demand = np.zeros(len(columns), dtype=np.int64)
        np.add.at(demand, sku_of, [t.quantity for t in model.lines])
        return _View(model, sku_of, lines_of, stock, demand)

    @property
    def n_candidates(self) -> int:
        return len(self.model.matrices.node_ids)

    @property
    def cap(self) -> int | None:
        """Most shipments allowed: the model's cap, 1 when it must ship complete."""
        cap = self.model.max_shipments
        if self.model.ship_complete:
            cap = 1 if cap is None else min(cap, 1)
        return cap

    def cover(
        self, left: NDArray[np.int64], avail: NDArray[np.int64] | None = None
    ) -> NDArray[np.int64]:
        """Units of ``left`` (per SKU) each candidate can ship on its own."""
        held = self.stock if avail is None else avail
        covered: NDArray[np.int64] = np.minimum(held, left[None, :]).sum(axis=1)
        return covered

    def fill_all(
        self, j: int, left: NDArray[np.int64], avail: NDArray[np.int64], out: Assignment
    ) -> Assignment:
        """Candidate ``j`` ships all it can of ``left``, lines of a SKU in order (in place)."""
        shipped = self._shipped(out)
        for s, lines in enumerate(self.lines_of):
            take = int(min(avail[j, s], left[s]))
            avail[j, s] -= take
            left[s] -= take
            for line in lines:
                if take == 0:
                    break
                open_units = self.model.lines[line].quantity - shipped[line]
                units = min(take, open_units)
                if units > 0:
                    out[(j, line)] = out.get((j, line), 0) + units
                    shipped[line] += units
                    take -= units
        return out

    def _shipped(self, out: Assignment) -> list[int]:
        shipped = [0] * len(self.model.lines)
        for (_, line), units in out.items():
            shipped[line] += units
        return shipped

    def finish(self, out: Assignment) -> Decision:
        """The decision; nothing ships when a line that may not stay partial would."""
        shipped = self._shipped(out)
        for line, terms in enumerate(self.model.lines):
            if not terms.allow_partial and shipped[line] < terms.quantity:
                return Decision(status=HEURISTIC)
        return Decision({k: v for k, v in out.items() if v > 0}, status=HEURISTIC)
