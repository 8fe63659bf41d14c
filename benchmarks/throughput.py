"""Throughput over gRPC: RouteOrder and PlanOrder per second, as a ratio to a health check.

Starts a real ``router serve`` process (the built-in sample network, what ``make run``
serves, on a free loopback port, default workers) on each ledger asked for: SQLite in a
temporary directory, PostgreSQL in a schema of its own on ``--pg-url`` (dropped after).
``--clients`` client threads (one process, one channel each: the client's GIL is shared,
so health checks are bounded by the client as much as by the server, and the ratio
compares calls that both pay it) then drive it in alternating phases of ``--seconds``:

1. **health**: the standard ``grpc.health.v1.Health/Check``;
2. **route**: ``RouteOrder`` of the sample's own orders (1–10 lines), a fresh request_id
   each, so every call plans and reserves; the reservations are released after the
   phase (untimed), so stock and order slots are back where they were for the next round;
3. **plan**: ``PlanOrder`` of the same orders (reads only).

The three phases run ``--rounds`` times in turn. The ratio is route (or plan) calls/s
over health calls/s of the same round: measured seconds apart on the same server by the
same client, so the machine's load (shared, and changing) cancels out as far as it can;
the table gives the median of the rounds' ratios and their range, the median calls/s,
and p50 and p99 over every call of the phase.
``--profile`` runs the server under :mod:`benchmarks.sampler` and prints where the
RouteOrder and PlanOrder threads spend their wall time.

    python -m benchmarks.throughput                        # both ledgers
    python -m benchmarks.throughput --ledger sqlite --profile
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.sample import sample_scenario
from router.service.convert import order_to_proto
from router.v1 import router_pb2, router_pb2_grpc

LEDGERS = ("sqlite", "postgres")
PHASES = ("health", "route", "plan")
PG_URL = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DEADLINE_S = 30.0
"""Every call's deadline: long enough that a slow phase is measured, not refused."""


@dataclass
class PhaseResult:
    """The calls of one phase: their latencies, the wall time, and the non-OK answers."""

    phase: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        """Answered calls per second (errors included: they took a turn too)."""
        return (len(self.latencies) + sum(self.errors.values())) / self.seconds

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the OK calls' latency, in ms."""
        return float(np.percentile(np.array(self.latencies) * 1e3, q)) if self.latencies else 0.0


@contextmanager
def ledger_url(kind: str, pg_url: str) -> Iterator[str]:
    """The URL of a fresh, empty ledger of ``kind``, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
            yield f"sqlite://{tmp}/ledger.db"
        return
    schema = f"bench_throughput_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in pg_url else "?"
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def server(url: str, profile: Path | None) -> Iterator[str]:
    """``router serve`` of the sample on ``url`` (under the sampler with ``profile``)."""
    if profile is None:
        command = [str(Path(sys.executable).parent / "router"), "serve"]
    else:
        command = [sys.executable, "-m", "benchmarks.sampler", str(profile)]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [*command, "--port", "0", "--ledger", url, "--metrics-port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            if "listening on" not in first:
                log.seek(0)
                raise RuntimeError(f"router serve did not start: {first!r}\n{log.read()[-3000:]}")
            yield first.rsplit(" ", 1)[1].strip()
        finally:
            process.terminate()
            process.wait(timeout=60)


def drive(
    target: str,
    clients: int,
    seconds: float,
    call: Callable[[grpc.Channel, int, int, PhaseResult], str | None],
    phase: str,
) -> tuple[PhaseResult, list[list[str]]]:
    """``clients`` threads calling ``call(channel, client, k, result)`` for ``seconds``.

    A call returns the reservation id it made, if any; they are returned per client.
    """
    result = PhaseResult(phase)
    made: list[list[str]] = [[] for _ in range(clients)]
    lock = threading.Lock()
    window = [0.0, 0.0]  # start, end: set once every client is connected, before any calls

    def go() -> None:
        window[0] = time.monotonic()
        window[1] = window[0] + seconds

    barrier = threading.Barrier(clients, action=go)

    def client(i: int) -> None:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            barrier.wait()
            k = 0
            while time.monotonic() < window[1]:
                local = PhaseResult(phase)
                started = time.perf_counter()
                try:
                    reservation = call(channel, i, k, local)
                    elapsed = time.perf_counter() - started
                    with lock:
                        result.latencies.append(elapsed)
                        result.outcomes.update(local.outcomes)
                    if reservation:
                        made[i].append(reservation)
                except grpc.RpcError as error:
                    with lock:
                        result.errors[error.code().name] += 1
                k += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - window[0]
    return result, made


def release_all(target: str, made: list[list[str]]) -> int:
    """Release every reservation made (one thread per client); how many were released."""
    released = [0] * len(made)

    def work(i: int) -> None:
        with grpc.insecure_channel(target) as channel:
            stub = router_pb2_grpc.RoutingServiceStub(channel)
            for rid in made[i]:
                stub.ReleaseReservation(
                    router_pb2.ReleaseReservationRequest(
                        request_id=f"rel-{rid}", reservation_id=rid
                    ),
                    timeout=DEADLINE_S,
                )
                released[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(made))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(released)


class Calls:
    """The three calls of the phases, over the sample's orders.

    Client ``i`` takes every ``clients``-th order from its own offset.
    """

    def __init__(self, clients: int) -> None:
        scenario = sample_scenario()
        self.orders = [order_to_proto(o) for o in scenario.orders]
        self.clients = clients
        self.run = uuid.uuid4().hex[:8]
        self.round = 0

    def _order(self, i: int, k: int) -> router_pb2.Order:
        return self.orders[(i + k * self.clients) % len(self.orders)]

    def health(self, channel: grpc.Channel, i: int, k: int, out: PhaseResult) -> str | None:
        """The standard health check, of the whole server."""
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=DEADLINE_S
        )
        return None

    def route(self, channel: grpc.Channel, i: int, k: int, out: PhaseResult) -> str | None:
        """RouteOrder with a fresh request_id; the reservation id when it held one."""
        request = router_pb2.RouteOrderRequest(
            request_id=f"tp-{self.run}-{self.round}-{i}-{k}", order=self._order(i, k)
        )
        answer = router_pb2_grpc.RoutingServiceStub(channel).RouteOrder(request, timeout=DEADLINE_S)
        out.outcomes[router_pb2.RouteOutcome.Name(answer.outcome)] += 1
        held = answer.HasField("reservation")
        return answer.reservation.reservation_id if held else None

    def plan(self, channel: grpc.Channel, i: int, k: int, out: PhaseResult) -> str | None:
        """PlanOrder (reads only)."""
        answer = router_pb2_grpc.RoutingServiceStub(channel).PlanOrder(
            router_pb2.PlanOrderRequest(order=self._order(i, k)), timeout=DEADLINE_S
        )
        out.outcomes[router_pb2.SolveStatus.Name(answer.plan.status)] += 1
        return None


def measure(
    kind: str, url: str, args: argparse.Namespace, calls: Calls
) -> tuple[dict[str, list[PhaseResult]], dict[str, object] | None]:
    """Every round of each phase on one server; its profile with ``--profile``."""
    rounds: dict[str, list[PhaseResult]] = {phase: [] for phase in PHASES}
    with tempfile.TemporaryDirectory(prefix="throughput-profile-") as tmp:
        profile = Path(tmp) / "profile.json" if args.profile else None
        with server(url, profile) as target:
            # Warm-up: the engine's arrays, the rule set, the first connections.
            for phase in PHASES:
                _, made = drive(target, args.clients, args.warmup, getattr(calls, phase), phase)
                release_all(target, made)
            for r in range(1, args.rounds + 1):
                calls.round = r
                line = [f"{kind} round {r}/{args.rounds}:"]
                for phase in PHASES:
                    result, made = drive(
                        target, args.clients, args.seconds, getattr(calls, phase), phase
                    )
                    released = release_all(target, made)
                    rounds[phase].append(result)
                    note = f" ({released} released)" if released else ""
                    errors = f" errors {dict(result.errors)}" if result.errors else ""
                    line.append(f"{phase} {result.rate:.1f}/s{note}{errors}")
                print(" ".join(line), flush=True)
        report = json.loads(profile.read_text()) if profile is not None else None
    return rounds, report


def table(results: dict[str, dict[str, list[PhaseResult]]]) -> str:
    """The markdown table: calls/s, p50, p99 and the ratio to health, per ledger and call."""
    rows = [
        "| ledger | call | calls/s | p50 ms | p99 ms | ratio to health (range) | answers |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for kind, rounds in results.items():
        health = rounds["health"]
        for phase in PHASES:
            done = rounds[phase]
            merged = PhaseResult(phase, seconds=sum(r.seconds for r in done))
            for r in done:
                merged.latencies += r.latencies
                merged.errors += r.errors
                merged.outcomes += r.outcomes
            rate = float(np.median([r.rate for r in done]))
            ratios = [r.rate / h.rate for r, h in zip(done, health, strict=True)]
            ratio = (
                "1"
                if phase == "health"
                else f"{np.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"
            )
            answers = ", ".join(f"{k} {v}" for k, v in merged.outcomes.most_common())
            if merged.errors:
                answers += "; errors " + ", ".join(f"{k} {v}" for k, v in merged.errors.items())
            rows.append(
                f"| {kind} | {phase} | {rate:.1f} | {merged.percentile(50):.1f} | "
                f"{merged.percentile(99):.1f} | {ratio} | {answers} |"
            )
    return "\n".join(rows)


def profile_summary(report: dict[str, object], top: int) -> str:
    """Where the handler threads' wall time goes: inclusive (own code) and innermost frames."""
    out: list[str] = []
    samples = report["samples"]
    assert isinstance(samples, dict)
    for handler in ("RouteOrder", "PlanOrder"):
        total = samples.get(handler, 0)
        if not total:
            continue
        out.append(f"\n{handler}: {total} samples of a handler thread (wall time)")
        inclusive = report["inclusive"]
        leaf = report["leaf"]
        assert isinstance(inclusive, dict) and isinstance(leaf, dict)
        own = {  # our code, without the frames every call passes through
            k: v
            for k, v in inclusive[handler].items()
            if k.startswith(("router/", "models/")) and v < total
        }
        out.append("  inclusive (our code):")
        for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
            out.append(f"    {n / total:6.1%}  {name}")
        out.append("  innermost frame:")
        for name, n in sorted(leaf[handler].items(), key=lambda kv: -kv[1])[:top]:
            out.append(f"    {n / total:6.1%}  {name}")
    return "\n".join(out)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.throughput``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ledger", choices=[*LEDGERS, "both"], default="both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the three phases")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per phase, once")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (a schema is made)")
    parser.add_argument("--profile", action="store_true", help="sample the server's stacks")
    parser.add_argument("--top", type=int, default=18, help="profile lines per list")
    return parser


def run(
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, list[PhaseResult]]], dict[str, dict[str, object]]]:
    """Every round of each phase per ledger, and the servers' profiles with ``--profile``."""
    kinds = LEDGERS if args.ledger == "both" else (args.ledger,)
    calls = Calls(args.clients)
    results: dict[str, dict[str, list[PhaseResult]]] = {}
    profiles: dict[str, dict[str, object]] = {}
    for kind in kinds:
        with ledger_url(kind, args.pg_url) as url:
            results[kind], report = measure(kind, url, args, calls)
        if report is not None:
            profiles[kind] = report
    return results, profiles


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    load = os.getloadavg()[0]
    results, profiles = run(args)
    print(
        f"\n{args.clients} client threads, {args.rounds} rounds of {args.seconds:g} s "
        f"per phase; load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end "
        f"({os.cpu_count()} cores)\n"
    )
    print(table(results))
    for kind, report in profiles.items():
        print(f"\nprofile on {kind}:" + profile_summary(report, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
