"""The reliability run: ``router serve`` replicas on one private PostgreSQL, clients, faults.

:func:`run` seeds a private cluster (:mod:`.cluster`) with :func:`scenario` (a hot SKU
stocked thinly at two nodes, cold SKUs stocked deeply), starts ``replicas`` ``router
serve`` processes on it and runs ``clients`` threads until they have made ``calls``
RouteOrder requests and every fault is over. Each client routes orders with fresh
request ids on the replicas in turn and then confirms, releases or abandons the
reservation (abandoned ones lapse after a short TTL; some are confirmed after they
lapsed, which must be refused). A small share of RouteOrder requests get a first
deadline too short to see the answer: a lost reply, retried with the same request id on
the next replica, as is every attempt that ends indeterminately. Meanwhile
:class:`Faults` injects, at fixed fractions of the requests: a SIGKILL of one replica
(restarted on its port after a few seconds), a database restart (immediate stop: a
crash, down for seconds) and dropped connections (pg_terminate_backend of every router
backend). Every attempt goes into a :class:`History`; at the end the ledger's rows are
read and :func:`benchmarks.reliability.checker.check` judges both.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import grpc
import psycopg

from benchmarks.flood import percentiles
from benchmarks.fuzz.processes import start, stop
from benchmarks.reliability.checker import (
    Key,
    Position,
    Snapshot,
    StoredReservation,
    check,
    peak_held,
)
from benchmarks.reliability.cluster import Cluster, free_port, private_cluster
from benchmarks.reliability.history import Call, History, Op, Outcome, outcome_of
from models.network import Network, Node, NodeType, RateBand, RateCard, Sku, Stock, StockPosition
from models.order import Order, OrderLine, ShipTo
from models.rules import RuleSet
from models.scenario import Scenario
from router.ledger import open_ledger
from router.scenario import write_scenario
from router.service.config import ServerConfig
from router.service.convert import order_to_proto
from router.v1 import router_pb2, router_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
HOT = "HOT"
COLD = ("C1", "C2", "C3")
TTL_S = 2.0
"""How long a reservation is held unless settled: short, so that many lapse in a run."""
SWEEP_GRACE_S = ServerConfig().sweep_interval_s + 2.0
"""How long after lapsing a reservation may stay HELD: a sweep interval and a margin."""
CALL_TIMEOUT_S = 20.0
"""A normal attempt's deadline."""
LOST_REPLY_SHARE = 0.03
"""The share of RouteOrder requests whose first attempt gets a deadline too short to answer."""
RECONNECT = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 1000)]
"""Channel options: reach a restarted replica within a second, not gRPC's default minutes."""
GIVE_UP_S = 60.0
"""How long a client keeps retrying one request across replicas."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault injected: its kind, when (seconds since the load began) and what."""

    kind: str
    at_s: float
    detail: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The faults of a run, each at a fraction of the RouteOrder calls (None: not injected)."""

    kill_at: float | None = 0.25
    kill_down_s: float = 2.0
    restart_db_at: float | None = 0.5
    db_down_s: float = 3.0
    drop_connections_at: tuple[float, ...] = (0.7,)
    recover_s: float = 3.0


@dataclass
class Result:
    """What a run did and what the checker found."""

    calls: list[Call]
    faults: list[Fault]
    replicas: int
    clients: int
    duration_s: float
    violations: list[str]
    errors: list[str]
    statuses: dict[str, int] = field(default_factory=dict)
    hot_available: dict[str, int] = field(default_factory=dict)
    """The hot SKU's available units per node at the end (0: sold out)."""
    hot_peak: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per node, the most hot units the history proves held or shipped at once, and how
    many were available: equal when its last unit was taken."""

    def figures(self) -> dict[str, Any]:
        """The run's figures: counts, faults, rates, latencies, violations."""
        per_op: dict[str, Any] = {}
        for op in Op:
            mine = [c for c in self.calls if c.op is op]
            ok = [c.end - c.start for c in mine if c.outcome is Outcome.OK]
            p50, p99 = percentiles(ok or [float("nan")])
            per_op[op.value] = {
                "calls": len(mine),
                "ok": len(ok),
                "fail": sum(c.outcome is Outcome.FAIL for c in mine),
                "unknown": sum(c.outcome is Outcome.UNKNOWN for c in mine),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "codes": dict(sorted(Counter(c.code for c in mine if c.code != "OK").items())),
            }
        routes = [c for c in self.calls if c.op is Op.ROUTE]
        return {
            "calls": len(self.calls),
            "route_order_calls": len(routes),
            "route_order_requests": len({c.request_id for c in routes}),
            "reservations_acknowledged": len(
                {c.reservation_id for c in routes if c.reservation_id}
            ),
            "replicas": self.replicas,
            "clients": self.clients,
            "duration_s": round(self.duration_s, 1),
            "calls_per_s": round(len(self.calls) / self.duration_s, 1),
            "route_order_calls_per_s": round(len(routes) / self.duration_s, 1),
            "faults": [
                {"kind": f.kind, "at_s": round(f.at_s, 1), "detail": f.detail} for f in self.faults
            ],
            "per_op": per_op,
            "final_statuses": self.statuses,
            "hot_sku_available_at_end": self.hot_available,
            "hot_sku_peak_held_of_available": self.hot_peak,
            "cpus": os.cpu_count(),
            "violations": len(self.violations),
            "violation_examples": self.violations[:20],
            "harness_errors": self.errors,
        }


def scenario(calls: int) -> Scenario:
    """Three nodes on the equator, the hot SKU at two of them, cold SKUs deep everywhere.

    The hot SKU's stock is a quarter of ``calls`` units (at least 8 per node) with 2 units
    of safety stock per node, so that confirmations sell it out late in the run and the
    last units are fought over; cold stock never runs out.
    """
    nodes = tuple(
        Node(node_id, kind, 0.0, lon, "US", "UTC", 1.0, 0.25, 0.0, day_time(23, 59), None)
        for node_id, kind, lon in (
            ("west", NodeType.DC, 0.0),
            ("mid", NodeType.STORE, 2.0),
            ("east", NodeType.DC, 5.0),
        )
    )
    skus = {s: Sku(s, 1.0) for s in (HOT, *COLD)}
    rates = RateCard.of(
        [RateBand("ground", 500.0, 5.0, 1.0, 1), RateBand("ground", 1500.0, 8.0, 2.0, 3)]
    )
    hot = max(8, calls // 8)
    positions = [StockPosition("west", HOT, hot, 2), StockPosition("mid", HOT, hot, 2)]
    positions += [StockPosition(n.node_id, s, 10 * calls + 100) for n in nodes for s in COLD]
    return Scenario(Network(nodes, skus, rates), Stock.of(positions), RuleSet())


def random_order(rng: random.Random, order_id: str) -> Order:
    """An order of 1–3 lines: the hot SKU in 70% of them, 1–2 units a line."""
    skus = [HOT] if rng.random() < 0.7 else []
    skus += rng.sample(COLD, rng.randint(0 if skus else 1, 2))
    return Order(
        order_id=order_id,
        created_at=datetime.now(UTC),
        ship_to=ShipTo(0.0, 1.0, "US", "00000"),
        service="ground",
        lines=tuple(OrderLine(f"l{i + 1}", s, rng.randint(1, 2)) for i, s in enumerate(skus)),
        channel="web",
        allow_partial=True,
    )


class Replicas:
    """``router serve`` processes on one ledger, each on a port of its own for its lifetime."""

    def __init__(self, count: int, scenario_dir: Path, url: str, logs: Path) -> None:
        self.scenario_dir, self.url, self.logs = scenario_dir, url, logs
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.starts = [0] * count

    def start(self, index: int) -> None:
        """Start replica ``index`` on its port; returns once it listens."""
        self.starts[index] += 1
        command = [
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            "--scenario",
            str(self.scenario_dir),
            "--ledger",
            self.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[index]),
            "--metrics-port",
            "0",  # replicas on one host: no metrics port to clash on
        ]
        log = self.logs / f"replica-{index}-{self.starts[index]}.log"
        self.processes[index], _ = start(command, log, cwd=ROOT)

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``: no drain, no goodbye."""
        process = self.processes[index]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        """SIGTERM every replica (SIGKILL after 20 s)."""
        for process in self.processes:
            if process is not None:
                stop(process)


class Clients:
    """Client threads sharing a history and a budget of RouteOrder calls."""

    def __init__(self, ports: Sequence[int], calls: int, history: History, seed: int) -> None:
        self.ports, self.calls, self.history, self.seed = ports, calls, history, seed
        self.stop = threading.Event()
        self.faults_over = threading.Event()
        self._lock = threading.Lock()
        self.routed = 0
        self.errors: list[str] = []

    def _take(self) -> bool:
        """Claim one RouteOrder request; False once the budget is spent and the faults are over.

        The load outlasts the faults, so that each is injected under load and the replicas
        are seen to recover from it.
        """
        with self._lock:
            spent = self.routed >= self.calls and self.faults_over.is_set()
            if spent or self.stop.is_set():
                return False
            self.routed += 1
            return True

    def run(self, index: int) -> None:
        """One client: route, settle, repeat; errors recorded, never raised."""
        try:
            _Client(self, index).loop()
        except BaseException as error:  # reported by the caller, not lost in a thread
            self.fail(f"client {index}: {error!r}")

    def fail(self, why: str) -> None:
        """Record an error of the harness itself: the run is void."""
        with self._lock:
            self.errors.append(why)


class _Client:
    def __init__(self, clients: Clients, index: int) -> None:
        self.clients = clients
        self.index = index
        self.rng = random.Random(clients.seed * 1000 + index)
        self.channels = [
            grpc.insecure_channel(f"127.0.0.1:{p}", options=RECONNECT) for p in clients.ports
        ]
        self.stubs = [router_pb2_grpc.RoutingServiceStub(c) for c in self.channels]
        self.replica = index % len(self.stubs)
        self.lapsing: list[tuple[str, float]] = []  # abandoned, to confirm once lapsed
        self.n = 0

    def loop(self) -> None:
        try:
            while True:
                self._confirm_lapsed()
                if not self.clients._take():
                    break
                self.n += 1
                request_id = f"r{self.index}-{self.n}"
                answer = self._route(request_id)
                if answer is not None and answer.reservation_id:
                    self._settle(answer)
            while self.lapsing:  # the abandoned ones still to confirm once they lapse
                time.sleep(0.1)
                self._confirm_lapsed()
        finally:
            for channel in self.channels:
                channel.close()

    def _attempt(
        self,
        op: Op,
        request_id: str,
        call: Callable[[router_pb2_grpc.RoutingServiceStub, float], Any],
        timeout: float,
        **known: Any,
    ) -> tuple[Any, Call]:
        """One attempt on the current replica, recorded; (the answer or None, the record)."""
        replica = self.replica
        began = time.time()
        try:
            answer = call(self.stubs[replica], timeout)
        except grpc.RpcError as error:
            code = error.code()
            record = Call(
                op,
                request_id,
                replica,
                began,
                time.time(),
                outcome_of(code),
                code.name,
                detail=(error.details() or "")[:200],
                **known,
            )
            self.clients.history.add(record)
            return None, record
        return answer, Call(op, request_id, replica, began, time.time(), Outcome.OK, **known)

    def _retry(
        self,
        op: Op,
        request_id: str,
        call: Callable[[router_pb2_grpc.RoutingServiceStub, float], Any],
        first_timeout: float,
        **known: Any,
    ) -> tuple[Any, Call | None]:
        """Attempts until one is answered or definitely refused, moving replica after each.

        (answer, its record) when answered; (None, the refusal) or (None, None) after
        GIVE_UP_S of indeterminate attempts.
        """
        deadline = time.monotonic() + GIVE_UP_S
        timeout, pause = first_timeout, 0.05
        while time.monotonic() < deadline:
            answer, record = self._attempt(op, request_id, call, timeout, **known)
            if answer is not None or record.outcome is Outcome.FAIL:
                if record.code == "RESOURCE_EXHAUSTED":  # shed: try elsewhere shortly
                    self.replica = (self.replica + 1) % len(self.stubs)
                    time.sleep(pause)
                    continue
                return answer, record
            self.replica = (self.replica + 1) % len(self.stubs)  # a lost reply: elsewhere
            timeout = CALL_TIMEOUT_S
            time.sleep(pause)
            pause = min(1.0, pause * 2)
        return None, None

    def _route(self, request_id: str) -> Call | None:
        """Route one new order (its request_id retried until answered); the OK record."""
        order_id = f"SO-{request_id}"
        request = router_pb2.RouteOrderRequest(
            request_id=request_id,
            order=order_to_proto(random_order(self.rng, order_id)),
        )
        request.ttl.FromTimedelta(timedelta(seconds=TTL_S))
        lost = self.rng.random() < LOST_REPLY_SHARE
        first = self.rng.uniform(0.001, 0.03) if lost else CALL_TIMEOUT_S
        self.replica = (self.replica + 1) % len(self.stubs)
        answer, record = self._retry(
            Op.ROUTE,
            request_id,
            lambda stub, t: stub.RouteOrder(request, timeout=t),
            first,
            order_id=order_id,
        )
        if answer is None:
            return None
        assert record is not None
        made = answer.reservation if answer.HasField("reservation") else None
        ok = Call(
            Op.ROUTE,
            request_id,
            record.replica,
            record.start,
            record.end,
            Outcome.OK,
            order_id=order_id,
            reservation_id=made.reservation_id if made else "",
            lines=tuple((x.node_id, x.sku, x.quantity) for x in made.lines) if made else (),
            expires_at=made.expires_at.ToDatetime(UTC).timestamp() if made else None,
            status=router_pb2.RouteOutcome.Name(answer.outcome).removeprefix("ROUTE_OUTCOME_"),
        )
        self.clients.history.add(ok)
        return ok

    def _settle(self, routed: Call) -> None:
        """Confirm (40%), release (35%) or abandon it (25%; half confirmed once lapsed)."""
        roll = self.rng.random()
        if roll < 0.40:
            self._transition(Op.CONFIRM, routed.reservation_id)
        elif roll < 0.75:
            self._transition(Op.RELEASE, routed.reservation_id)
        elif roll < 0.875 and routed.expires_at is not None:
            self.lapsing.append((routed.reservation_id, routed.expires_at))

    def _confirm_lapsed(self) -> None:
        """Confirm the abandoned reservations that have lapsed: each must be refused."""
        now = time.time()
        due = [r for r in self.lapsing if r[1] + 0.2 < now]
        self.lapsing = [r for r in self.lapsing if r[1] + 0.2 >= now]
        for reservation_id, _ in due:
            self._transition(Op.CONFIRM, reservation_id)

    def _transition(self, op: Op, reservation_id: str) -> None:
        """Confirm or release ``reservation_id`` under a fresh request id, retried as needed."""
        self.n += 1
        request_id = f"{op.value[:3].lower()}{self.index}-{self.n}"
        if op is Op.CONFIRM:
            msg: Any = router_pb2.ConfirmReservationRequest(
                request_id=request_id, reservation_id=reservation_id
            )
            method = "ConfirmReservation"
        else:
            msg = router_pb2.ReleaseReservationRequest(
                request_id=request_id, reservation_id=reservation_id
            )
            method = "ReleaseReservation"
        answer, record = self._retry(
            op,
            request_id,
            lambda stub, t: getattr(stub, method)(msg, timeout=t),
            CALL_TIMEOUT_S,
            reservation_id=reservation_id,
        )
        if answer is not None:
            assert record is not None
            status = router_pb2.ReservationStatus.Name(answer.reservation.status)
            self.clients.history.add(
                Call(
                    op,
                    request_id,
                    record.replica,
                    record.start,
                    record.end,
                    Outcome.OK,
                    reservation_id=reservation_id,
                    status=status.removeprefix("RESERVATION_STATUS_"),
                )
            )


class Faults:
    """Injects the :class:`Plan`'s faults as the RouteOrder calls pass its fractions."""

    def __init__(
        self,
        plan: Plan,
        cluster: Cluster,
        replicas: Replicas,
        clients: Clients,
        began: float,
        say: Callable[[str], None],
    ) -> None:
        self.plan, self.cluster, self.replicas, self.clients = plan, cluster, replicas, clients
        self.began, self.say = began, say
        self.done: list[Fault] = []

    def _note(self, kind: str, detail: str) -> None:
        fault = Fault(kind, time.time() - self.began, detail)
        self.done.append(fault)
        self.say(f"fault at {fault.at_s:.1f}s: {kind} ({detail})")

    def schedule(self) -> list[tuple[float, Callable[[], None]]]:
        """(fraction of the calls, action), in order."""
        steps: list[tuple[float, Callable[[], None]]] = []
        if self.plan.kill_at is not None:
            steps.append((self.plan.kill_at, self.kill_replica))
        if self.plan.restart_db_at is not None:
            steps.append((self.plan.restart_db_at, self.restart_database))
        steps += [(at, self.drop_connections) for at in self.plan.drop_connections_at]
        return sorted(steps, key=lambda s: s[0])

    def kill_replica(self) -> None:
        """SIGKILL the last replica; start it again on its port after kill_down_s."""
        index = len(self.replicas.ports) - 1
        self.replicas.kill(index)
        self._note("sigkill-replica", f"replica {index} on port {self.replicas.ports[index]}")
        time.sleep(self.plan.kill_down_s)
        self.replicas.start(index)
        self._note("replica-restarted", f"replica {index}")

    def restart_database(self) -> None:
        """Crash the database (pg_ctl stop -m immediate), keep it down, start it again."""
        self.cluster.stop("immediate")
        self._note("database-stopped", "pg_ctl stop -m immediate")
        time.sleep(self.plan.db_down_s)
        self.cluster.start()
        self._note("database-started", f"down {self.plan.db_down_s:g}s, crash recovery")

    def drop_connections(self) -> None:
        """pg_terminate_backend on every backend of the replicas."""
        cut = self.cluster.terminate_backends()
        self._note("dropped-connections", f"{cut} backends terminated")

    def run(self) -> None:
        """Inject each fault when its fraction of the calls has been made, then recover.

        Between faults, and after the last, the load runs on for ``recover_s`` at least.
        """
        try:
            for fraction, action in self.schedule():
                while self.clients.routed < fraction * self.clients.calls:
                    if self.clients.stop.wait(0.05):
                        return
                action()
                if self.clients.stop.wait(self.plan.recover_s):
                    return
        except BaseException as error:  # a fault that could not be injected fails the run
            self.clients.fail(f"fault injection: {error!r}")
        finally:
            self.clients.faults_over.set()


def snapshot(url: str) -> Snapshot:
    """The ledger's positions, reservations with their lines, and reserve request ids."""
    with psycopg.connect(url) as conn:
        taken_at = time.time()
        positions = {
            (n, s): Position(o, r, safety)
            for n, s, o, r, safety in conn.execute(
                "SELECT node_id, sku, on_hand, reserved, safety_stock FROM positions"
            )
        }
        lines: dict[str, list[tuple[str, str, int]]] = {}
        for rid, n, s, q in conn.execute(
            "SELECT reservation_id, node_id, sku, quantity FROM reservation_lines "
            "ORDER BY reservation_id, line_no"
        ):
            lines.setdefault(rid, []).append((n, s, q))
        reservations = {
            rid: StoredReservation(
                rid, order_id, status, expires.timestamp(), tuple(lines.get(rid, []))
            )
            for rid, order_id, status, expires in conn.execute(
                "SELECT reservation_id, order_id, status, expires_at FROM reservations"
            )
        }
        requests: dict[str, str] = dict(
            conn.execute(
                "SELECT request_id, reservation_id FROM idempotency WHERE operation = 'reserve'"
            ).fetchall()
        )
    return Snapshot(taken_at, positions, reservations, requests)


def initial_positions(stock: Stock) -> dict[Key, Position]:
    """The seeded stock as the checker's positions."""
    return {k: Position(p.on_hand, p.reserved, p.safety_stock) for k, p in stock.positions.items()}


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="router-reliability-") as name:
        yield Path(name)


def run(
    calls: int,
    replicas: int = 3,
    clients: int = 8,
    plan: Plan | None = None,
    *,
    seed: int = 1,
    logs: Path | None = None,
    say: Callable[[str], None] = print,
    progress_every_s: float = 5.0,
) -> Result:
    """Run the load with its faults and check it (see the module docstring).

    ``logs`` keeps the scenario and the replicas' logs there (default: a temporary folder).
    Raises ClusterUnavailableError when PostgreSQL's server binaries are missing.
    """
    plan = plan or Plan()
    world = scenario(calls)
    history = History()
    with _folder(logs) as folder, private_cluster() as cluster:
        write_scenario(world, folder / "scenario")
        with open_ledger(cluster.url) as ledger:
            ledger.load(world.network, world.stock)
        servers = Replicas(replicas, folder / "scenario", cluster.url, folder)
        try:
            for index in range(replicas):
                servers.start(index)
            say(f"{replicas} replicas on ports {servers.ports}, ledger {cluster.url}")
            load = Clients(servers.ports, calls, history, seed)
            began = time.time()
            faults = Faults(plan, cluster, servers, load, began, say)
            threads = [
                threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(clients)
            ]
            injector = threading.Thread(target=faults.run, daemon=True)
            for thread in (*threads, injector):
                thread.start()
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=progress_every_s / len(threads))
                elapsed = time.time() - began
                say(
                    f"{elapsed:6.1f}s RouteOrder {load.routed}/{load.calls}, {len(history)} "
                    f"calls, {len(history) / elapsed:.1f} calls/s"
                )
            load.stop.set()
            injector.join()
            duration = time.time() - began
            time.sleep(SWEEP_GRACE_S)  # let the sweepers expire what lapsed at the end
            final = snapshot(cluster.url)
        finally:
            servers.stop_all()
    initial = initial_positions(world.stock)
    found = check(history.calls(), initial, final, SWEEP_GRACE_S)
    statuses = Counter(r.status for r in final.reservations.values())
    return Result(
        history.calls(),
        faults.done,
        replicas,
        clients,
        duration,
        [str(v) for v in found],
        load.errors,
        dict(sorted(statuses.items())),
        {n: p.available for (n, sku), p in sorted(final.positions.items()) if sku == HOT},
        {
            n: (held, initial[n, sku].available)
            for (n, sku), (held, _) in sorted(peak_held(history.calls()).items())
            if sku == HOT
        },
    )
