"""PlanWave: many orders planned jointly against the ledger's live stock, progress streamed.

The wave is read from the ledger once (:func:`read_wave`: the positions of every SKU of
the wave, the slots used over the union of the orders' ship windows, the active rule-set
version) and solved by :func:`router.engine.wave.plan_wave` on a thread of its own, while
the RPC's thread streams (:func:`stream_wave`): a progress message at once and then about
every :data:`PROGRESS_INTERVAL_S`, the per-order plans in messages of about
:data:`PLANS_BYTES` at most (a client reads messages of up to 4 MiB by default, and 10,000
plans with explanations are far more), and last the result. Nothing is written: no
reservation, no decision log entry. A client that cancels, or a deadline that passes,
stops the solve (the stop of :func:`~router.service.routing.request_stop`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import NamedTuple

from models.money import from_units
from models.network import Network
from models.plan import ExplainLevel, Plan
from models.rules import RuleSet
from router.engine.candidates import ship_window
from router.engine.stop import Stop
from router.engine.wave import BOUNDING, IMPROVING, ORDERS, PLANS, WavePlan, WaveProgress
from router.engine.wave import plan_wave as solve_wave
from router.ledger import Ledger
from router.ledger.base import PlanInputs
from router.service.convert import PlanWaveArgs, plan_to_proto, plan_wave_args_from_proto
from router.service.network import LiveNetwork
from router.v1 import router_pb2

PROGRESS_INTERVAL_S = 0.5
"""Seconds between two progress messages of a running wave."""
PLANS_BYTES = 1 << 20
"""A WavePlans message holds plans up to about this many bytes (one plan at least)."""

_PHASES = {
    ORDERS: router_pb2.WAVE_PHASE_ORDERS,
    IMPROVING: router_pb2.WAVE_PHASE_IMPROVING,
    BOUNDING: router_pb2.WAVE_PHASE_BOUNDING,
    PLANS: router_pb2.WAVE_PHASE_PLANS,
}
"""The engine's phases on the wire."""


class WaveRead(NamedTuple):
    """A PlanWave request converted on ``network``, and what the ledger said for it."""

    network: Network
    args: PlanWaveArgs
    inputs: PlanInputs


def read_wave(ledger: Ledger, live: LiveNetwork, request: router_pb2.PlanWaveRequest) -> WaveRead:
    """The request converted, and the stock and slots of the whole wave: one ledger read.

    As PlanOrder's read, on a network with the calendars it read (:meth:`LiveNetwork.read`).
    """

    def read(network: Network) -> WaveRead:
        args = plan_wave_args_from_proto(request, network)
        windows = [ship_window(order, network) for order in args.orders]
        skus = {line.sku for order in args.orders for line in order.lines}
        first = min(w[0] for w in windows)
        last = max(w[1] for w in windows)
        return WaveRead(network, args, ledger.plan_inputs(skus, first, last))

    return live.read(read, lambda r: r.inputs.calendar_revision)[1]


class _Solving:
    """The wave solving on its own thread: its latest progress, then its plan or error."""

    def __init__(self, read: WaveRead, rules: RuleSet, stop: Stop, engine: str) -> None:
        self.progress = WaveProgress(ORDERS, 0, len(read.args.orders))
        self.plan: WavePlan | None = None
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self._read, self._rules, self._stop, self._engine = read, rules, stop, engine
        self.thread = threading.Thread(target=self._run, name="plan-wave", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        read = self._read
        try:
            self.plan = solve_wave(
                read.args.orders,
                read.network,
                read.inputs.stock,
                self._rules,
                capacity_used=read.inputs.capacity_used,
                stop=self._stop,
                engine=self._engine,
                progress=self._told,
            )
        except BaseException as error:  # raised again on the RPC's thread
            self.error = error

    def _told(self, progress: WaveProgress) -> None:
        self.progress = progress  # one reference: read whole by the RPC's thread

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def stream_wave(
    read: WaveRead, rules: RuleSet, stop: Stop, engine: str
) -> Iterator[router_pb2.PlanWaveResponse]:
    """Solve the wave; yield progress while it runs, then its plans, then its result.

    When the stream is closed early (the client left), the solve is stopped and waited for.
    """
    solving = _Solving(read, rules, stop, engine)
    try:
        while True:
            yield router_pb2.PlanWaveResponse(
                progress=progress_to_proto(solving.progress, solving.elapsed_s())
            )
            solving.thread.join(PROGRESS_INTERVAL_S)
            if not solving.thread.is_alive():
                break
    finally:
        if solving.thread.is_alive():
            stop.set()
            solving.thread.join()
    if solving.error is not None:
        raise solving.error
    assert solving.plan is not None
    wave = solving.plan
    for first, batch in plan_batches(wave.plans, read.args.explain):
        yield router_pb2.PlanWaveResponse(
            plans=router_pb2.WavePlans(first_index=first, plans=batch)
        )
    yield router_pb2.PlanWaveResponse(result=result_to_proto(wave, rules, solving.elapsed_s()))


def plan_batches(
    plans: tuple[Plan, ...], explain: ExplainLevel
) -> Iterator[tuple[int, list[router_pb2.Plan]]]:
    """The plans on the wire in batches of about :data:`PLANS_BYTES`: (first index, plans)."""
    batch: list[router_pb2.Plan] = []
    first = size = 0
    for i, plan in enumerate(plans):
        message = plan_to_proto(plan, explain=explain)
        if batch and size + message.ByteSize() > PLANS_BYTES:
            yield first, batch
            batch, first, size = [], i, 0
        batch.append(message)
        size += message.ByteSize()
    if batch:
        yield first, batch


def progress_to_proto(progress: WaveProgress, elapsed_s: float) -> router_pb2.WaveProgress:
    """A progress message: phase, orders done, best objective and bound so far."""
    message = router_pb2.WaveProgress(
        phase=_PHASES[progress.phase], orders_done=progress.done, orders=progress.orders
    )
    if progress.objective is not None:
        message.objective = from_units(progress.objective)
    if progress.bound is not None:
        message.bound = from_units(progress.bound)
    if progress.objective is not None and progress.bound is not None:
        message.gap = abs(progress.objective - progress.bound) / max(1, abs(progress.objective))
    message.elapsed.FromTimedelta(timedelta(seconds=elapsed_s))
    return message


def result_to_proto(wave: WavePlan, rules: RuleSet, elapsed_s: float) -> router_pb2.WaveResult:
    """The wave's outcome (its plans are sent before it)."""
    s = wave.stats
    message = router_pb2.WaveResult(
        status=router_pb2.SolveStatus.Value(f"SOLVE_STATUS_{wave.status.name}"),
        objective=from_units(wave.objective),
        bound=from_units(wave.bound),
        gap=wave.gap,
        detail=wave.detail,
        plans=len(wave.plans),
        rule_version=rules.label,
        stats=router_pb2.WaveStats(
            orders=s.orders,
            contested_orders=s.contested_orders,
            bound_seconds=s.bound_seconds,
            primal_seconds=s.primal_seconds,
            iterations=s.iterations,
            solves=s.solves,
            improvements=s.improvements,
            first_objective=from_units(s.first_objective),
        ),
    )
    message.solve_time.FromTimedelta(timedelta(seconds=elapsed_s))
    return message
