"""The RoutingService servicer: glue from the RPC to the engine and the ledger and back."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Generic, NamedTuple, TypeVar

import grpc
from opentelemetry import trace

from models.decision import DecisionKind, DecisionQuery, DecisionRecord
from models.engines import DEFAULT_TIME_LIMIT_S
from models.errors import (
    IdempotencyMismatchError,
    InvalidArgumentError,
    NotFoundError,
    NotReplayableError,
    ReservationStateError,
    RuleVersionStateError,
    StockConflictError,
)
from models.lookahead import StockPrices
from models.network import Network
from models.order import Order
from models.plan import ExplainLevel, Plan
from models.reservation import (
    Reservation,
    ReservationLine,
    ReservationStatus,
    RouteDecision,
    RouteOutcome,
    route_decision,
)
from models.rule_versions import RuleVersion
from models.rules import RuleSet
from models.scenario import Scenario
from router.engine.candidates import ship_window
from router.engine.solve import ENGINES, FAST
from router.engine.stop import Stop
from router.engine.wave import WAVE_TIME_LIMIT_S
from router.ledger import Ledger
from router.ledger.base import REJECT, NoReservationError, PlanInputs, validate_rejection
from router.rules.publish import version_rules
from router.service.access import (
    SEE_ALL_DECISIONS,
    current_principal,
    may_act_on,
    visible_owner,
)
from router.service.config import DEFAULT_MAX_REJECTIONS
from router.service.convert import (
    PlanOrderArgs,
    RejectShipmentArgs,
    RouteOrderArgs,
    decision_query_from_proto,
    order_from_proto,
    page_token,
    plan_order_args_from_proto,
    plan_to_proto,
    reject_shipment_args_from_proto,
    reservation_lines_from_proto,
    reservation_query_from_proto,
    reservation_to_proto,
    route_order_args_from_proto,
    route_outcome_to_proto,
)
from router.service.decisions import (
    DecisionLog,
    Planned,
    decision_of,
    explain_change,
    input_changes,
    plan_differences,
    solve,
    without_holdings,
    without_nodes,
)
from router.service.errors import abort_on_error
from router.service.metrics import ServiceMetrics
from router.service.network import LiveNetwork
from router.service.prices import PriceBoard
from router.service.rejections import (
    Reroute,
    own_slots_freed,
    plan_reroute,
    rejected_units,
)
from router.service.wave import read_wave, stream_wave
from router.v1 import router_pb2, router_pb2_grpc

DEADLINE_MARGIN_S = 0.1
"""Time kept back from the RPC's deadline for converting and sending the plan."""


def request_stop(limit_s: float | None, default_s: float, context: grpc.ServicerContext) -> Stop:
    """A request's one deadline, built at the edge and passed alone down to the solver.

    The least of the request's own limit (``limit_s``; None or 0: none), the server's
    ``default_s`` and the RPC's deadline less :data:`DEADLINE_MARGIN_S`; set at once when
    the client cancels (or has cancelled already).
    """
    time_limit_s = min(limit_s or math.inf, default_s)
    remaining_s = context.time_remaining()
    if remaining_s is not None:
        time_limit_s = max(0.0, min(time_limit_s, remaining_s - DEADLINE_MARGIN_S))
    stop = Stop(time_limit_s)
    if not context.add_callback(stop.set):
        stop.set()  # the RPC has already ended (cancelled)
    return stop


MAX_ATTEMPTS = 3
"""Solves RouteOrder makes in all when stock keeps changing under its plans."""

A = TypeVar("A", PlanOrderArgs, RouteOrderArgs)


class _Read(NamedTuple, Generic[A]):
    """A request converted on ``network``, its ship window there, and the ledger's inputs."""

    network: Network
    args: A
    window: tuple[date, date]
    inputs: PlanInputs


tracer = trace.get_tracer(__name__)


class RuleSets:
    """The rule sets of published versions, each parsed once; and the one active now.

    Versions are immutable, so a parsed version is cached in-process for good. The number
    of the active version is read from the ledger on every request (with what it plans
    with: :meth:`numbered`; or alone: :meth:`active`), so an activation through any
    replica takes effect on every replica at its next request; the document is fetched
    only for a version not parsed yet. ``fallback`` (the scenario's rules, ``name@draft``)
    serves only while no version is active.
    """

    def __init__(self, ledger: Ledger, network: Network, fallback: RuleSet) -> None:
        self._ledger = ledger
        self._network = network
        self._fallback = fallback
        self._parsed: dict[int, RuleSet] = {}
        self._lock = threading.Lock()

    def of(self, version: RuleVersion) -> RuleSet:
        """The rule set of a published ``version``, labelled ``name@vN``.

        Raises RuleVersionStateError when it does not load on this network.
        """
        with self._lock:
            cached = self._parsed.get(version.version)
        if cached is not None:
            return cached
        with tracer.start_as_current_span(
            "rules.load", attributes={"rules.version": version.version}
        ):
            rules = version_rules(version, self._network)
        with self._lock:
            return self._parsed.setdefault(version.version, rules)

    def active(self) -> RuleSet:
        """The active version's rule set; the fallback while none is active."""
        return self.numbered(self._ledger.active_rule_version())

    def numbered(self, number: int | None) -> RuleSet:
        """The rule set of version ``number``, read as the active one; None: the fallback."""
        if number is None:
            return self._fallback
        with self._lock:
            cached = self._parsed.get(number)
        if cached is not None:
            return cached
        try:
            return self.of(self._ledger.rule_version(number))
        except RuleVersionStateError as exc:
            # Activations check that the version loads, so this is a replica whose network
            # differs from the one that activated it: a server fault, not the client's;
            # logged, and the RPC fails INTERNAL rather than routing with other rules.
            raise RuntimeError(f"active rule set {exc}") from exc


class RoutingServicer(router_pb2_grpc.RoutingServiceServicer):
    """Plans orders against the ledger's live stock; RouteOrder also reserves the plan.

    RejectShipment re-routes units a node cannot ship, at most ``max_rejections`` times
    per reservation. The network comes from one scenario; stock, reservations, capacity,
    calendars and the active rule-set version from ``ledger`` (shared by every replica;
    see :class:`RuleSets` and :class:`LiveNetwork`).
    ``engine`` names the engine every request is planned with (one of ``ENGINES``).
    With ``prices``, each request plans with the look-ahead stock prices current when it
    starts (one set for all of RouteOrder's attempts; never waiting for a refresh), and
    RouteOrder records its order in their forecast window and its stock moves; ``metrics``
    counts the plans returned by price version and status.
    """

    def __init__(
        self,
        scenario: Scenario,
        ledger: Ledger,
        *,
        default_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        engine: str = FAST,
        rule_sets: RuleSets | None = None,
        prices: PriceBoard | None = None,
        metrics: ServiceMetrics | None = None,
        network: LiveNetwork | None = None,
        max_rejections: int = DEFAULT_MAX_REJECTIONS,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
        self._scenario = scenario
        self._ledger = ledger
        self._network = network or LiveNetwork(ledger, scenario.network)
        self._rule_sets = rule_sets or RuleSets(ledger, scenario.network, scenario.rules)
        self._default_time_limit_s = default_time_limit_s
        self._engine = engine
        self._prices = prices
        self._metrics = metrics or ServiceMetrics()  # without: counted where none looks
        self._log = DecisionLog(scenario.network, engine, scenario.rules)
        self._max_rejections = max_rejections

    def _prices_for(self, rules: RuleSet) -> StockPrices | None:
        """The current look-ahead prices (None: none yet, or no board)."""
        return None if self._prices is None else self._prices.for_rules(rules)

    def _count(self, plan: router_pb2.Plan) -> None:
        """Count a plan returned to the client in the metrics."""
        status = router_pb2.SolveStatus.Name(plan.status)
        self._metrics.count_plan(plan.price_version, status)
        self._metrics.count_solved(
            strategy=plan.strategy,
            status=status,
            engine=plan.engine,
            solve_s=plan.solve_time.ToTimedelta().total_seconds(),
            gap=plan.gap,
            rule_version=plan.rule_version,
        )

    def _read(self, convert: Callable[[Network], A], payload: bytes | None = None) -> _Read[A]:
        """The request converted on the network, and what planning it reads from the ledger.

        One ledger read (:meth:`Ledger.plan_inputs`; with ``payload``, a RouteOrder's, its
        request_id's stored response too), on a network with the calendars it read
        (:meth:`LiveNetwork.read`).
        """

        def read(network: Network) -> _Read[A]:
            args = convert(network)
            request_id = args.request_id if isinstance(args, RouteOrderArgs) else None
            window = ship_window(args.order, network)
            inputs = self._ledger.plan_inputs(
                {line.sku for line in args.order.lines}, *window, request_id, payload or b""
            )
            return _Read(network, args, window, inputs)

        return self._network.read(read, lambda r: r.inputs.calendar_revision)[1]

    def _planned(
        self,
        read: _Read[A],
        inputs: PlanInputs,
        rule_version: int | None,
        prices: StockPrices | None,
        stop: Stop,
        full: dict[tuple[str, date], int] | None = None,
    ) -> Planned:
        """What a request plans from: ``inputs`` read from the ledger, the rules and prices.

        Capacity was read for the days the order may ship on, so each candidate is checked
        against the slots of its own ship date. ``full`` marks (node, day) pairs found full
        at reservation time (slots used = the node's limit).
        """
        args = read.args
        used = inputs.capacity_used.with_full(full) if full else inputs.capacity_used
        return Planned(
            order=args.order,
            network=read.network,
            stock=inputs.stock,
            capacity_used=used,
            calendar_revision=inputs.calendar_revision,
            rule_version=rule_version,
            prices=prices,
            time_limit_s=stop.time_limit_s or 0.0,
            explain=args.explain,
        )

    def _plan(self, planned: Planned, rules: RuleSet, stop: Stop) -> Plan:
        """Plan as ``planned`` says under ``rules``, in a ``solve`` span."""
        with tracer.start_as_current_span("solve", attributes={"router.engine": self._engine}):
            return solve(planned, rules, stop, self._engine)

    def PlanOrder(
        self, request: router_pb2.PlanOrderRequest, context: grpc.ServicerContext
    ) -> router_pb2.PlanOrderResponse:
        """Validate → convert → plan → convert; reads the ledger once, never changes it.

        With ``record``, the plan is logged (the one write, the decision log's).
        """
        with abort_on_error(context):
            read = self._read(lambda network: plan_order_args_from_proto(request, network))
            args, version = read.args, read.inputs.active_rule_version
            rules = self._rule_sets.numbered(version)
            stop = request_stop(args.time_limit_s, self._default_time_limit_s, context)
            planned = replace(
                self._planned(read, read.inputs, version, self._prices_for(rules), stop),
                alternatives=args.alternatives,
                counterfactual_node_ids=args.counterfactual_node_ids,
            )
            plan = self._plan(planned, rules, stop)
            response = router_pb2.PlanOrderResponse(plan=plan_to_proto(plan, explain=args.explain))
            if request.record:
                record = self._log.record(DecisionKind.PLAN, planned, response.plan, owner=_owner())
                self._ledger.record_decision(record)
                response.decision_id = record.decision_id
            self._count(response.plan)
            return response

    def PlanWave(
        self, request: router_pb2.PlanWaveRequest, context: grpc.ServicerContext
    ) -> Iterator[router_pb2.PlanWaveResponse]:
        """Plan the orders as one wave: progress, then the plans, then the result.

        Reads the ledger once (:func:`~router.service.wave.read_wave`), never changes it.
        A wave may solve for :data:`~router.engine.wave.WAVE_TIME_LIMIT_S` at most (the
        server's limit is one order's), less when the request or its deadline says so.
        """
        with abort_on_error(context):
            read = read_wave(self._ledger, self._network, request)
            rules = self._rule_sets.numbered(read.inputs.active_rule_version)
            stop = request_stop(read.args.time_limit_s, WAVE_TIME_LIMIT_S, context)
            yield from stream_wave(read, rules, stop, self._engine)

    def RouteOrder(
        self, request: router_pb2.RouteOrderRequest, context: grpc.ServicerContext
    ) -> router_pb2.RouteOrderResponse:
        """Plan and reserve atomically; re-solve on a stock conflict; replay by request_id.

        Only a plan the request accepts is reserved (:func:`route_decision`); one cut short
        outside it is answered as CUT_SHORT, holding and storing nothing. Every other
        answer is logged with what it was planned from, in the transaction that stores it.
        """
        with abort_on_error(context):
            payload = request.SerializeToString(deterministic=True)
            read = self._read(
                lambda network: route_order_args_from_proto(request, network), payload
            )
            args, inputs = read.args, read.inputs  # for every attempt
            if inputs.stored_response is not None:
                self._metrics.replays.labels("RouteOrder").inc()
                return self._replayed(args.request_id, inputs.stored_response)
            full: dict[tuple[str, date], int] = {}
            conflict: StockConflictError | None = None
            version = inputs.active_rule_version
            rules = self._rule_sets.numbered(version)  # one rule set
            prices = self._prices_for(rules)  # and one set of prices
            skus = {line.sku for line in args.order.lines}
            for attempt in range(1, MAX_ATTEMPTS + 1):
                if attempt > 1:  # the stock and slots the conflict says moved, read again
                    inputs = self._ledger.plan_inputs(skus, *read.window)
                stop = request_stop(args.time_limit_s, self._default_time_limit_s, context)
                planned = self._planned(read, inputs, version, prices, stop, full)
                plan = self._plan(planned, rules, stop)
                plan_msg = plan_to_proto(plan, explain=args.explain)
                decision = route_decision(plan, args.accept, args.max_gap)
                if decision.outcome is not RouteOutcome.RESERVED:  # reserve nothing
                    return self._not_reserved(args, payload, plan_msg, attempt, decision, planned)
                try:
                    return self._reserve(args, payload, plan, plan_msg, attempt, planned)
                except StockConflictError as e:
                    conflict = e
                    full.update(_full_days(e, read.network))  # full on that day only
                    self._metrics.stock_conflicts.inc()
                    if attempt < MAX_ATTEMPTS:
                        self._metrics.resolves.inc()
            assert conflict is not None
            raise StockConflictError(conflict.shortfalls, conflict.full_nodes) from conflict

    def _not_reserved(
        self,
        args: RouteOrderArgs,
        payload: bytes,
        plan_msg: router_pb2.Plan,
        attempt: int,
        decision: RouteDecision,
        planned: Planned,
    ) -> router_pb2.RouteOrderResponse:
        """The answer for a plan not reserved: stored and logged unless it was cut short."""
        answer = router_pb2.RouteOrderResponse(
            plan=plan_msg,
            attempts=attempt,
            outcome=route_outcome_to_proto(decision.outcome),
            detail=decision.detail,
        )
        if decision.outcome is RouteOutcome.CUT_SHORT:  # a retry must plan again
            return self._routed(args.order, answer, held=False)
        record = self._log.record(
            DecisionKind.ROUTE,
            planned,
            plan_msg,
            request_id=args.request_id,
            owner=_owner(),
            outcome=answer.outcome,
        )
        answer.decision_id = record.decision_id
        ours = answer.SerializeToString(deterministic=True)
        stored = self._ledger.store_response(
            args.request_id, payload, ours, datetime.now(UTC), record
        )
        assert stored is not None, "a committed reserve call stored its response"
        if stored != ours:  # a concurrent call with the request_id answered first
            answer = router_pb2.RouteOrderResponse.FromString(stored)
        return self._routed(args.order, answer, held=False)

    def _reserve(
        self,
        args: RouteOrderArgs,
        payload: bytes,
        plan: Plan,
        plan_msg: router_pb2.Plan,
        attempt: int,
        planned: Planned,
    ) -> router_pb2.RouteOrderResponse:
        """Hold the plan's units and slots in one ledger transaction; the answer stored with it.

        Raises :class:`StockConflictError` when other orders took the stock or the slots
        first. The answer is ours (the message stored, as built: not parsed back, and ours
        to see), or the one a concurrent call with the same request_id committed.
        """
        lines, slots = _holdings(plan)
        made: dict[str, router_pb2.RouteOrderResponse] = {}  # by id (a retried transaction)
        owner = _owner()
        outcome = route_outcome_to_proto(RouteOutcome.RESERVED)
        record = self._log.record(
            DecisionKind.ROUTE,
            planned,
            plan_msg,
            request_id=args.request_id,
            owner=owner,
            outcome=outcome,
        )

        def respond(reservation: Reservation) -> bytes:
            response = router_pb2.RouteOrderResponse(
                plan=plan_msg,
                reservation=reservation_to_proto(reservation),
                attempts=attempt,
                outcome=outcome,
                decision_id=record.decision_id,
            )
            made[reservation.reservation_id] = response
            return response.SerializeToString(deterministic=True)

        try:
            reserved = self._ledger.reserve(
                args.request_id,
                payload,
                args.order.order_id,
                lines,
                slots,
                args.ttl_s,
                datetime.now(UTC),
                respond,
                owner=owner,
                decision=lambda reservation: replace(
                    record, reservation_id=reservation.reservation_id
                ),
            )
        except NoReservationError:  # a concurrent call with the id shipped nothing
            stored = self._ledger.stored_response(args.request_id, payload)
            assert stored is not None, "a store_response call stored its response"
            return router_pb2.RouteOrderResponse.FromString(stored)
        ours = made.get(reserved.reservation_id)
        if ours is not None:
            return self._routed(args.order, ours, held=True)
        self._metrics.replays.labels("RouteOrder").inc()  # the same request_id reserved first
        stored = self._ledger.stored_response(args.request_id, payload)
        assert stored is not None, "a committed reserve call stored its response"
        return self._routed(args.order, self._replayed(args.request_id, stored), held=False)

    def ConfirmReservation(
        self, request: router_pb2.ConfirmReservationRequest, context: grpc.ServicerContext
    ) -> router_pb2.ConfirmReservationResponse:
        """HELD → CONFIRMED through the ledger, idempotent by request_id; owner or admin only."""
        with abort_on_error(context):
            self._check_owner(request.reservation_id)
            done = self._ledger.confirm(
                request.request_id,
                request.reservation_id,
                datetime.now(UTC),
                reservation_lines_from_proto(request.lines),
            )
            self._metrics.reservations.labels("confirmed").inc()
            return router_pb2.ConfirmReservationResponse(reservation=reservation_to_proto(done))

    def ReleaseReservation(
        self, request: router_pb2.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> router_pb2.ReleaseReservationResponse:
        """HELD → RELEASED through the ledger, idempotent by request_id; owner or admin only."""
        with abort_on_error(context):
            self._check_owner(request.reservation_id)
            lines = reservation_lines_from_proto(request.lines)
            done = self._ledger.release(
                request.request_id, request.reservation_id, datetime.now(UTC), lines
            )
            if done.status is ReservationStatus.RELEASED:  # not part of one, still HELD
                self._metrics.reservations.labels("released").inc()
            if self._prices is not None:
                # A retry of a release returns the same reservation: its units may be
                # counted twice, which at worst refreshes the prices a little early.
                given = lines or done.lines
                self._prices.stock_moved((line.sku, line.quantity) for line in given)
            return router_pb2.ReleaseReservationResponse(reservation=reservation_to_proto(done))

    def RejectShipment(
        self, request: router_pb2.RejectShipmentRequest, context: grpc.ServicerContext
    ) -> router_pb2.RejectShipmentResponse:
        """Release a node's rejected units, correct its stock and re-route them, atomically.

        Owner or admin only; idempotent by request_id (a retry gets the stored answer). A
        re-route that conflicts with other orders is planned again, :data:`MAX_ATTEMPTS`
        in all, like RouteOrder (docs/decisions.md, "Rejections and re-routing").
        """
        with abort_on_error(context):
            args = reject_shipment_args_from_proto(request)
            self._check_owner(args.reservation_id)
            payload = request.SerializeToString(deterministic=True)
            stored = self._ledger.stored_response(args.request_id, payload, REJECT)
            if stored is not None:
                self._metrics.replays.labels("RejectShipment").inc()
                return router_pb2.RejectShipmentResponse.FromString(stored)
            conflict: StockConflictError | None = None
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    return self._reject(args, payload, context)
                except (ReservationStateError, InvalidArgumentError):
                    # The same request may have committed since the lookup above (a retry
                    # racing the first call): then its stored answer is the answer.
                    stored = self._ledger.stored_response(args.request_id, payload, REJECT)
                    if stored is None:
                        raise
                    self._metrics.replays.labels("RejectShipment").inc()
                    return router_pb2.RejectShipmentResponse.FromString(stored)
                except StockConflictError as e:
                    conflict = e
                    self._metrics.stock_conflicts.inc()
                    if attempt < MAX_ATTEMPTS:
                        self._metrics.resolves.inc()
            assert conflict is not None
            raise StockConflictError(conflict.shortfalls, conflict.full_nodes) from conflict

    def _reject(
        self, args: RejectShipmentArgs, payload: bytes, context: grpc.ServicerContext
    ) -> router_pb2.RejectShipmentResponse:
        """One attempt: read, plan the re-route, and commit it with the rejection."""
        rid = args.reservation_id
        reservation = self._ledger.reservation(rid)
        if reservation.status is not ReservationStatus.HELD:
            raise ReservationStateError(rid, reservation.status.value, REJECT)
        units = rejected_units(reservation, args.node_id, args.units)
        route, parent = self._routed_decisions(rid)
        routed = decision_of(route, inputs=True).inputs.order
        before = self._ledger.rejected_nodes(rid)

        def read(network: Network) -> tuple[Reroute, PlanInputs]:
            order = order_from_proto(routed, network)
            scope = plan_reroute(
                order, reservation, args.node_id, units, before, self._max_rejections
            )
            window = ship_window(scope.order, network)
            return scope, self._ledger.plan_inputs({sku for _, sku in units}, *window)

        network, (scope, inputs) = self._network.read(read, lambda r: r[1].calendar_revision)
        rules = self._rule_sets.numbered(inputs.active_rule_version)
        stop = request_stop(args.time_limit_s, self._default_time_limit_s, context)
        planned = Planned(
            order=scope.order,
            network=network,
            stock=scope.stock(inputs.stock),
            capacity_used=own_slots_freed(inputs.capacity_used, reservation, units),
            calendar_revision=inputs.calendar_revision,
            rule_version=inputs.active_rule_version,
            prices=self._prices_for(rules),
            time_limit_s=stop.time_limit_s or 0.0,
            explain=ExplainLevel.NONE,
            excluded_node_ids=scope.excluded,
        )
        plan = self._plan(planned, rules, stop)
        lines, slots = _holdings(plan)
        rejection = validate_rejection(
            args.request_id,
            payload,
            rid,
            args.node_id,
            units,
            corrected_on_hand=args.corrected_on_hand,
            excluded=before,
            lines=lines,
            capacity=slots,
            reason=args.reason,
            now=datetime.now(UTC),
        )
        owner = self._ledger.reservation_owner(rid) or ""
        answer = self._rejected(scope, plan)
        record = self._log.record(
            DecisionKind.REROUTE,
            planned,
            answer.plan,
            request_id=args.request_id,
            owner=owner,
            outcome=answer.outcome,
            parent_id=parent.decision_id,
            reason=args.reason,
        )
        answer.decision_id = record.decision_id

        def respond(done: Reservation) -> bytes:
            answer.reservation.CopyFrom(reservation_to_proto(done))
            return answer.SerializeToString(deterministic=True)

        _, stored = self._ledger.reject(rejection, respond, replace(record, reservation_id=rid))
        response = router_pb2.RejectShipmentResponse.FromString(stored)
        if stored == answer.SerializeToString(deterministic=True):  # ours, not a replay
            self._counted_rejection(response, units, lines)
        return response

    def _routed_decisions(self, reservation_id: str) -> tuple[DecisionRecord, DecisionRecord]:
        """The reservation's RouteOrder decision (its order) and its latest decision (the parent).

        NotReplayableError (FAILED_PRECONDITION) when none is logged: made before the
        decision log, or pruned; the order is then unknown here.
        """
        latest = self._ledger.decisions(DecisionQuery(reservation_id=reservation_id, page_size=1))
        routed = self._ledger.decisions(
            DecisionQuery(reservation_id=reservation_id, kind=DecisionKind.ROUTE, page_size=1)
        )
        if not routed.decisions or not latest.decisions:
            raise NotReplayableError(
                f"reservation_id: no logged RouteOrder decision of {reservation_id} holds its "
                "order (made before the decision log, or pruned): release it and route again"
            )
        return routed.decisions[0], latest.decisions[0]

    @staticmethod
    def _rejected(scope: Reroute, plan: Plan) -> router_pb2.RejectShipmentResponse:
        """The answer to a rejection, its reservation to be set when committed."""
        shipped = bool(plan.shipments)
        detail = scope.backorder
        if not shipped and not detail:
            excluded = ", ".join(scope.excluded)
            detail = f"no node but {excluded} (excluded) can ship the units: they are backordered"
        outcome = RouteOutcome.RESERVED if shipped else RouteOutcome.NOTHING_TO_RESERVE
        return router_pb2.RejectShipmentResponse(
            plan=plan_to_proto(plan, explain=ExplainLevel.NONE),
            outcome=route_outcome_to_proto(outcome),
            rejections=scope.rejections,
            detail=detail,
        )

    def _counted_rejection(
        self,
        response: router_pb2.RejectShipmentResponse,
        units: dict[tuple[str, str], int],
        lines: list[ReservationLine],
    ) -> None:
        """Count a committed rejection: its outcome, its plan, the stock it moved."""
        shipped = response.outcome == route_outcome_to_proto(RouteOutcome.RESERVED)
        self._metrics.rejections.labels("rerouted" if shipped else "backordered").inc()
        self._count(response.plan)
        if response.reservation.status == router_pb2.RESERVATION_STATUS_RELEASED:
            self._metrics.reservations.labels("released").inc()
        if self._prices is not None:
            moved = [(sku, n) for (_, sku), n in units.items()]
            self._prices.stock_moved(moved + [(x.sku, x.quantity) for x in lines])

    def GetReservation(
        self, request: router_pb2.GetReservationRequest, context: grpc.ServicerContext
    ) -> router_pb2.GetReservationResponse:
        """One reservation with its owner; another principal's is NOT_FOUND to an oms."""
        with abort_on_error(context):
            reservation = self._ledger.reservation(request.reservation_id)
            owner = self._ledger.reservation_owner(request.reservation_id) or ""
            visible = visible_owner()
            if visible is not None and owner != visible:
                raise NotFoundError(
                    f"reservation_id: no reservation {request.reservation_id!r} of yours"
                )
            return router_pb2.GetReservationResponse(
                reservation=reservation_to_proto(reservation, owner)
            )

    def ListReservations(
        self, request: router_pb2.ListReservationsRequest, context: grpc.ServicerContext
    ) -> router_pb2.ListReservationsResponse:
        """A page of the reservations the request selects, among those the caller may see."""
        with abort_on_error(context):
            query = reservation_query_from_proto(request, datetime.now(UTC), visible_owner())
            page = self._ledger.reservations(query)
            return router_pb2.ListReservationsResponse(
                reservations=[
                    reservation_to_proto(r, page.owners.get(r.reservation_id, ""))
                    for r in page.reservations
                ],
                next_page_token=page_token(page.after),
            )

    def _decision(self, decision_id: str) -> DecisionRecord:
        """A logged decision the caller may see; another principal's is NOT_FOUND to an oms."""
        record = self._ledger.decision(decision_id)
        visible = visible_owner(SEE_ALL_DECISIONS)
        if visible is not None and record.owner != visible:
            raise NotFoundError(f"decision_id: no decision {decision_id!r} of yours")
        return record

    def GetDecision(
        self, request: router_pb2.GetDecisionRequest, context: grpc.ServicerContext
    ) -> router_pb2.GetDecisionResponse:
        """One logged decision with everything it was decided from."""
        with abort_on_error(context):
            record = self._decision(request.decision_id)
            return router_pb2.GetDecisionResponse(decision=decision_of(record, inputs=True))

    def ListDecisions(
        self, request: router_pb2.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> router_pb2.ListDecisionsResponse:
        """A page of the logged decisions the request selects, among those the caller may see."""
        with abort_on_error(context):
            query = decision_query_from_proto(request, visible_owner(SEE_ALL_DECISIONS))
            page = self._ledger.decisions(query)
            return router_pb2.ListDecisionsResponse(
                decisions=[decision_of(r, inputs=False) for r in page.decisions],
                next_page_token=page_token(page.after),
            )

    def ReplayDecision(
        self, request: router_pb2.ReplayDecisionRequest, context: grpc.ServicerContext
    ) -> router_pb2.ReplayDecisionResponse:
        """Solve a logged decision again from its inputs; with compare_now, plan it now too."""
        with abort_on_error(context):
            record = self._decision(request.decision_id)
            decision, replayed = self._log.replay(
                record,
                self._rule_sets.numbered,
                # a recorded 0 (the deadline had passed) is no time, not "no limit"
                lambda limit_s: request_stop(limit_s or 1e-9, math.inf, context),
            )
            differences = plan_differences(decision.plan, replayed)
            if differences and decision.plan.status == router_pb2.SOLVE_STATUS_FEASIBLE:
                differences.append(
                    "the logged solve was cut short by its time limit: where it stopped "
                    "depends on the machine's speed, so it is not reproducible"
                )
            answer = router_pb2.ReplayDecisionResponse(
                replayed=replayed, identical=not differences, differences=differences
            )
            if request.compare_now:
                self._compare_now(decision, answer, context)
            decision.ClearField("inputs")
            answer.decision.CopyFrom(decision)
            return answer

    def _compare_now(
        self,
        decision: router_pb2.Decision,
        answer: router_pb2.ReplayDecisionResponse,
        context: grpc.ServicerContext,
    ) -> None:
        """Plan ``decision``'s order against the ledger now; set what it gets and what moved.

        While the decision's reservation is HELD its own units and slots count as free (the
        order routed again would have them), so they do not show as moved.
        """
        then = decision.inputs

        def read(network: Network) -> tuple[Planned, PlanInputs]:
            logged = self._log.planned_of(then, network)
            window = ship_window(logged.order, network)
            skus = {line.sku for line in logged.order.lines}
            return logged, self._ledger.plan_inputs(skus, *window)

        network, (logged, inputs) = self._network.read(read, lambda r: r[1].calendar_revision)
        stock, used = inputs.stock, inputs.capacity_used
        if decision.reservation_id:
            held = self._ledger.reservation(decision.reservation_id)
            if held.status is ReservationStatus.HELD:
                stock, used = without_holdings(stock, used, held)
        version = inputs.active_rule_version
        rules = self._rule_sets.numbered(version)
        stop = request_stop(logged.time_limit_s, self._default_time_limit_s, context)
        now = replace(
            logged,
            network=network,
            stock=without_nodes(stock, logged.excluded_node_ids),
            capacity_used=used,
            calendar_revision=inputs.calendar_revision,
            rule_version=version,
            prices=self._prices_for(rules),
        )
        answer.now.CopyFrom(plan_to_proto(self._plan(now, rules, stop), explain=now.explain))
        answer.changes.extend(input_changes(then, self._log.inputs_of(now)))
        answer.explanation = explain_change(decision.plan, answer.now, list(answer.changes))

    def _replayed(self, request_id: str, stored: bytes) -> router_pb2.RouteOrderResponse:
        """A stored answer, given back to the caller that may see it.

        IdempotencyMismatchError (ALREADY_EXISTS on request_id) when it holds another
        principal's reservation: a request_id is not a way to read someone's answer.
        """
        response = router_pb2.RouteOrderResponse.FromString(stored)
        if response.HasField("reservation"):
            owner = self._ledger.reservation_owner(response.reservation.reservation_id)
            if owner is not None and not may_act_on(owner):
                raise IdempotencyMismatchError(request_id)
        return response

    def _check_owner(self, reservation_id: str) -> None:
        """NotFoundError unless the caller made the reservation or is an admin.

        Another principal's reservation answers as an unknown one would, so that ids cannot
        be probed for; one made while authentication was off has no owner, so only an
        admin may act on it.
        """
        owner = self._ledger.reservation_owner(reservation_id)
        if owner is None:
            self._ledger.reservation(reservation_id)  # NotFoundError when there is none
        if not may_act_on(owner):
            raise NotFoundError(f"reservation_id: no reservation {reservation_id!r} of yours")

    def _routed(
        self, order: Order, response: router_pb2.RouteOrderResponse, *, held: bool
    ) -> router_pb2.RouteOrderResponse:
        """Count a fresh RouteOrder answer: the plan, the order's demand, the units ``held``."""
        self._count(response.plan)
        if held:
            self._metrics.reservations.labels("held").inc()
        if self._prices is not None:
            self._prices.record_order(order)
            if held:
                self._prices.stock_moved(
                    (line.sku, line.quantity) for line in response.reservation.lines
                )
        return response


def _full_days(conflict: StockConflictError, network: Network) -> dict[tuple[str, date], int]:
    """The (node, day) pairs a conflict found full, at the node's limit, for the next plan."""
    full: dict[tuple[str, date], int] = {}
    for node_id, day in conflict.full_nodes:
        node = network.node(node_id)
        if node is not None and node.daily_order_capacity is not None:
            full[node_id, date.fromisoformat(day)] = node.daily_order_capacity
    return full


def _holdings(plan: Plan) -> tuple[list[ReservationLine], list[tuple[str, date]]]:
    """The units (per node and SKU) and order slots (per node and ship date) a plan needs."""
    lines = [
        ReservationLine(shipment.node_id, line.sku, line.quantity)
        for shipment in plan.shipments
        for line in shipment.lines
        if line.quantity > 0
    ]
    slots = sorted({(shipment.node_id, shipment.ship_date) for shipment in plan.shipments})
    return lines, slots


def _owner() -> str:
    """The authenticated principal recorded as a new reservation's owner ("" when open)."""
    principal = current_principal()
    return "" if principal is None or principal.via == "open" else principal.name
