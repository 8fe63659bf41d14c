"""The candidates' terms of one order as arrays, and the explained model made from them.

The engine works on arrays (row j = candidate j); the :class:`ExplainedModel` with one
:class:`CandidateTerms` per candidate is made only when someone reads it (an explanation,
the full CP-SAT model), since making a few hundred of them costs more than a fast solve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.plan import CandidateTerms, Exclusion, ExplainedModel, LineTerms, SolveStatus

Int = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Solution:
    """A plan found for a model: status, units per (candidate, line), objective and bound.

    ``bound`` is a proven lower bound on every plan's objective (equal to ``objective`` when
    the plan is proven optimal); ``None`` when nothing is known.
    """

    status: SolveStatus
    assignment: dict[tuple[int, int], int]
    objective: int | None
    bound: int | None

    @property
    def nodes(self) -> frozenset[int]:
        """The candidates that ship at least one unit."""
        return frozenset(j for (j, _), q in self.assignment.items() if q > 0)


@dataclass(frozen=True, slots=True)
class Matrices:
    """Per-candidate terms in solver units; ``unit`` and ``available`` are (J, lines)."""

    node_ids: tuple[str, ...]
    id_rank: Int
    """Each candidate's place in node id order."""
    priority: Int
    handling: Int
    shipping: Int
    lateness: Int
    penalty: Int
    unit: Int
    available: Int
    distance: NDArray[np.float64]
    services: tuple[str, ...]
    ship: Int
    """Ship dates as proleptic Gregorian ordinals."""
    delivery: Int
    late: Int
    band_km: NDArray[np.float64]
    """Upper bound of each candidate's rate band (0 at the pickup counter)."""
    transit: Int

    @property
    def shipment(self) -> Int:
        """``F_j``: handling + shipping + lateness + node penalty."""
        total: Int = self.handling + self.shipping + self.lateness + self.penalty
        return total

    def terms(self, j: int) -> CandidateTerms:
        """Candidate ``j`` as domain terms."""
        return CandidateTerms(
            self.node_ids[j],
            float(self.distance[j]),
            self.services[j],
            date.fromordinal(int(self.ship[j])),
            date.fromordinal(int(self.delivery[j])),
            int(self.late[j]),
            int(self.handling[j]),
            int(self.shipping[j]),
            int(self.lateness[j]),
            int(self.penalty[j]),
            tuple(self.unit[j].tolist()),
            tuple(self.available[j].tolist()),
            int(self.priority[j]),
            float(self.band_km[j]),
            int(self.transit[j]),
        )

    def all_terms(self) -> tuple[CandidateTerms, ...]:
        """Every candidate as domain terms, in row order."""
        ship, delivery = self.ship.tolist(), self.delivery.tolist()
        dates = {ordinal: date.fromordinal(ordinal) for ordinal in {*ship, *delivery}}
        distance, late = self.distance.tolist(), self.late.tolist()
        handling, shipping = self.handling.tolist(), self.shipping.tolist()
        lateness, penalty = self.lateness.tolist(), self.penalty.tolist()
        unit, available = self.unit.tolist(), self.available.tolist()
        priority, band_km, transit = (
            self.priority.tolist(),
            self.band_km.tolist(),
            self.transit.tolist(),
        )
        # Positional arguments, in field order: keywords cost a third more per candidate.
        return tuple(
            CandidateTerms(
                node_id,
                distance[j],
                self.services[j],
                dates[ship[j]],
                dates[delivery[j]],
                late[j],
                handling[j],
                shipping[j],
                lateness[j],
                penalty[j],
                tuple(unit[j]),
                tuple(available[j]),
                priority[j],
                band_km[j],
                transit[j],
            )
            for j, node_id in enumerate(self.node_ids)
        )

    @staticmethod
    def of(model: ExplainedModel) -> Matrices:
        """The arrays of an explained model (for models made by hand or read back)."""
        cands = model.candidates
        n_lines = len(model.lines)

        def column(values: list[Any]) -> Int:
            return np.array(values, dtype=np.int64)

        ids = tuple(c.node_id for c in cands)
        id_rank = np.empty(len(ids), dtype=np.int64)
        id_rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        return Matrices(
            node_ids=ids,
            id_rank=id_rank,
            priority=column([c.priority for c in cands]),
            handling=column([c.handling_cost for c in cands]),
            shipping=column([c.shipping_cost for c in cands]),
            lateness=column([c.lateness_cost for c in cands]),
            penalty=column([c.node_penalty for c in cands]),
            unit=column([list(c.unit_costs) for c in cands]).reshape(len(cands), n_lines),
            available=column([list(c.available) for c in cands]).reshape(len(cands), n_lines),
            distance=np.array([c.distance_km for c in cands], dtype=np.float64),
            services=tuple(c.service for c in cands),
            ship=column([c.ship_date.toordinal() for c in cands]),
            delivery=column([c.delivery_date.toordinal() for c in cands]),
            late=column([c.days_late for c in cands]),
            band_km=np.array([c.band_max_distance_km for c in cands], dtype=np.float64),
            transit=column([c.transit_days for c in cands]),
        )


class BuiltModel:
    """The canonical model of one order: terms as arrays, lines, order-level constants.

    Also the nodes left out of it and ``stock_anywhere[l]``, the available stock of line
    ``l``'s SKU over the whole network, so that a plan can tell "no stock" from "no
    eligible stock". :attr:`model`, the explained form, and :attr:`excluded` are made on
    first use (``excluded`` may be given as a function that lists them).
    """

    def __init__(
        self,
        matrices: Matrices,
        lines: tuple[LineTerms, ...],
        *,
        offset: int,
        split_penalty: int,
        max_shipments: int | None,
        ship_complete: bool,
        excluded: tuple[Exclusion, ...] | Callable[[], tuple[Exclusion, ...]] = (),
        stock_anywhere: tuple[int, ...] | None = None,
    ) -> None:
        self.matrices = matrices
        self.lines = lines
        self.offset = offset
        self.split_penalty = split_penalty
        self.max_shipments = max_shipments
        self.ship_complete = ship_complete
        self._excluded = excluded
        if stock_anywhere is None:
            stock_anywhere = tuple(int(a) for a in matrices.available.sum(axis=0).tolist())
        self.stock_anywhere = stock_anywhere

    @cached_property
    def excluded(self) -> tuple[Exclusion, ...]:
        """The nodes left out of the model, each with its reason (listed on first use)."""
        return self._excluded if isinstance(self._excluded, tuple) else self._excluded()

    @cached_property
    def model(self) -> ExplainedModel:
        """The explained canonical model (docs/cost-model.md)."""
        return ExplainedModel(
            offset=self.offset,
            split_penalty=self.split_penalty,
            candidates=self.matrices.all_terms(),
            lines=self.lines,
            max_shipments=self.max_shipments,
            ship_complete=self.ship_complete,
        )

    def objective(self, assignment: Mapping[tuple[int, int], int]) -> int:
        """The model's objective at a plan (units per (candidate, line)), in solver units.

        The same as :meth:`ExplainedModel.objective`, from the arrays.
        """
        m = self.matrices
        used = {j for (j, _), q in assignment.items() if q > 0}
        total = self.offset + sum(int(m.shipment[j]) for j in used)
        total += self.split_penalty * max(0, len(used) - 1)
        shipped = [0] * len(self.lines)
        for (j, line), q in assignment.items():
            total += int(m.unit[j, line]) * q
            shipped[line] += q
        for line, terms in enumerate(self.lines):
            total += terms.backorder_cost * (terms.quantity - shipped[line])
        return total

    @staticmethod
    def of(model: ExplainedModel) -> BuiltModel:
        """A built model around an explained one (no exclusions known)."""
        built = BuiltModel(
            Matrices.of(model),
            model.lines,
            offset=model.offset,
            split_penalty=model.split_penalty,
            max_shipments=model.max_shipments,
            ship_complete=model.ship_complete,
        )
        built.__dict__["model"] = model  # already explained: keep it, do not remake it
        return built
