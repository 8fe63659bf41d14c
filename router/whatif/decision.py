"""What a what-if policy answers, and the protocol every policy follows.

A policy decides, for one order on the current stock, which units ship from where. It is
handed the order's *evaluation model* (the canonical model under the scenario's own rules,
built by :func:`~router.whatif.replay.replay` on the current stock and capacity) and
answers with a :class:`Decision`: units per (candidate index in ``evaluation.matrices``,
line index); whatever is not assigned is backordered. Replay prices every answer on the
evaluation model, so all policies are priced alike.

The policies themselves and their registry are in :mod:`router.whatif.policies` (the
engine and the baselines) and :mod:`router.whatif.lookahead`; both build on this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from models.capacity import CapacityUsed
from models.network import Network, Stock
from models.order import Order
from models.plan import Plan
from router.engine.terms import BuiltModel

Assignment = dict[tuple[int, int], int]
"""Units per (candidate index in the evaluation model, line index)."""

HEURISTIC = "HEURISTIC"
"""The status of a baseline's decision (the engine policies report their plan's status)."""


class Decision(dict[tuple[int, int], int]):
    """An assignment that also says how it was reached: ``status``, ``price_version``.

    Every policy answers with one; replay records ``status`` (the engine's plan status,
    e.g. ``OPTIMAL``, or :data:`HEURISTIC` for a baseline) and ``price_version`` (the
    look-ahead prices the plan was priced with, ``prices@v3``; empty for the others).
    """

    status: str
    price_version: str

    def __init__(
        self,
        units: Mapping[tuple[int, int], int] | None = None,
        *,
        status: str,
        price_version: str = "",
    ) -> None:
        super().__init__(units or {})
        self.status = status
        self.price_version = price_version


class RoutingPolicy(Protocol):
    """Decides which units of an order ship from which candidates of its evaluation model."""

    @property
    def name(self) -> str:
        """The policy's name in records: engine, full-model, greedy-nearest, ranked-chain."""
        ...

    def decide(
        self,
        order: Order,
        evaluation: BuiltModel,
        network: Network,
        stock: Stock,
        capacity_used: CapacityUsed,
    ) -> Decision:
        """Units per (candidate index in ``evaluation.matrices``, line index), with a status.

        Replay checks the answer against the evaluation model
        (:func:`~router.whatif.replay.check_decision`) and refuses one that breaks it.
        """
        ...


@runtime_checkable
class StockAware(Protocol):
    """A policy that wants to hear of replenishments (the look-ahead re-prices on them)."""

    def arrived(self, units: Mapping[tuple[str, str], int]) -> None:
        """``units`` per (node, SKU) arrived on hand, before the next order is routed."""
        ...


class NotACandidateError(RuntimeError):
    """The engine shipped from a node the evaluation model does not have as a candidate.

    Possible only when the policy's rules and the evaluation rules disagree on which nodes
    may ship (filters, held-back stock); never with the scenario's own rules.
    """


def decision_of(
    plan: Plan, order: Order, evaluation: BuiltModel, *, policy: str, label: str
) -> Decision:
    """An engine plan as a decision: each shipment's units per (evaluation candidate, line).

    The decision's status is the plan's; its ``price_version`` the plan's. Raises
    :class:`NotACandidateError` (naming ``policy`` and ``label``, its rules and engine)
    when the plan ships from a node that is not a candidate of ``evaluation``.
    """
    candidate = {node_id: j for j, node_id in enumerate(evaluation.matrices.node_ids)}
    line_of = {terms.line_id: i for i, terms in enumerate(evaluation.lines)}
    out = Decision(status=str(plan.status), price_version=plan.price_version)
    for shipment in plan.shipments:
        j = candidate.get(shipment.node_id)
        if j is None:
            why = next((e for e in evaluation.excluded if e.node_id == shipment.node_id), None)
            reason = "not in the network" if why is None else f"{why.reason}: {why.detail}"
            raise NotACandidateError(
                f"order {order.order_id}: policy {policy!r} ({label}) ships from "
                f"{shipment.node_id}, which is not a candidate of the evaluation model "
                f"({reason}); the policy's rules and the evaluation rules disagree on which "
                "nodes may ship"
            )
        for item in shipment.lines:
            key = (j, line_of[item.line_id])
            out[key] = out.get(key, 0) + item.quantity
    return out
