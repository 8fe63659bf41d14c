"""Load shedding under a flood: a small probe should stay fast and refusals come fast.

Starts ``router serve`` (the built-in sample, a memory ledger, ``--workers`` as given or
the server's default: the cores) as its own process, then:

1. **idle**: a probe alone, ``--probes`` calls (alternately a health check and a one-SKU
   GetStock), one every 20 ms: its latency percentiles;
2. **flood**: ``--streams`` concurrent streams (in a separate client process, grpc.aio)
   each sending PlanOrder requests of ``--lines``-line orders back to back, 10 s deadline
   each, for ``--seconds`` (a refused stream waits ``--backoff`` seconds, as the retry hint
   says; 0 sends again at once); the same probe runs meanwhile. Reported: the probe's
   percentiles and their ratio to idle, and the flood's answers by status code with the
   median time to each (a refusal should come in milliseconds, not at the deadline).

    python -m benchmarks.flood --streams 200 --seconds 30
    python -m benchmarks.flood --streams 200 --seconds 30 --backoff 0    # hints ignored
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.orders import orders_of_size
from router.sample import sample_scenario
from router.service.convert import order_to_proto
from router.v1 import router_pb2, router_pb2_grpc

ROUTER = Path(sys.executable).parent / "router"


def start_server(workers: int | None, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    """``router serve`` on a free loopback port; its process and address."""
    command = [str(ROUTER), "serve", "--port", "0", "--ledger", "memory://", "--metrics-port", "0"]
    process = subprocess.Popen(
        [*command, *([] if workers is None else ["--workers", str(workers)]), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if "listening on" not in first:
        process.kill()
        raise RuntimeError(f"router serve did not start: {first!r}")
    return process, first.rsplit(" ", 1)[1].strip()


def probe(target: str, n: int, stop_at: float | None = None) -> list[float]:
    """Seconds per probe call: health checks and one-SKU GetStock, alternately, every 20 ms."""
    out = []
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stock = router_pb2_grpc.InventoryServiceStub(channel)
        for i in range(n):
            if stop_at is not None and time.monotonic() > stop_at:
                break
            started = time.perf_counter()
            if i % 2:
                stock.GetStock(router_pb2.GetStockRequest(skus=["SKU-00001"]), timeout=30)
            else:
                health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            out.append(time.perf_counter() - started)
            time.sleep(0.02)
    return out


def _flood(
    target: str, requests: list[bytes], streams: int, seconds: float, backoff: float, queue: Any
) -> None:
    """The flood, in its own process: (code name, seconds) per answer, put on ``queue``."""

    async def stream(i: int, channel: grpc.aio.Channel, end: float, out: list[Any]) -> None:
        call = channel.unary_unary(
            "/router.v1.RoutingService/PlanOrder",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        k = i
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                await call(requests[k % len(requests)], timeout=10)
                code = "OK"
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            out.append((code, time.perf_counter() - started))
            k += streams
            if code == "RESOURCE_EXHAUSTED" and backoff:
                await asyncio.sleep(backoff)  # as the RetryInfo says (1 s)

    async def main() -> list[Any]:
        out: list[Any] = []
        end = time.monotonic() + seconds
        async with grpc.aio.insecure_channel(target) as channel:
            await asyncio.gather(*(stream(i, channel, end, out) for i in range(streams)))
        return out

    queue.put(asyncio.run(main()))


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB (Linux; NaN elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    a = np.array(values) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--lines", type=int, default=50, help="lines per flood order")
    parser.add_argument(
        "--workers", type=int, default=None, help="router serve --workers (default: its own)"
    )
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        help="seconds a refused stream waits before its next call (the RetryInfo hint: 1; "
        "0: a client that ignores it and sends again at once)",
    )
    args = parser.parse_args(argv)
    scenario = sample_scenario()
    orders = orders_of_size(scenario, args.lines, 100, seed=1, prefix="FLOOD")
    requests = [
        router_pb2.PlanOrderRequest(order=order_to_proto(o)).SerializeToString() for o in orders
    ]
    server, target = start_server(args.workers, [])
    try:
        probe(target, 20)  # warm-up
        idle = probe(target, args.probes)
        queue: Any = multiprocessing.get_context("spawn").Queue()
        flood = multiprocessing.get_context("spawn").Process(
            target=_flood,
            args=(target, requests, args.streams, args.seconds, args.backoff, queue),
        )
        flood.start()
        time.sleep(2.0)  # let the flood build up
        loaded = probe(target, 10**6, stop_at=time.monotonic() + args.seconds - 3.0)
        answers = queue.get()
        flood.join()
        peak = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    i50, i99 = percentiles(idle)
    l50, l99 = percentiles(loaded)
    print("| probe | calls | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    print(f"| idle | {len(idle)} | {i50:.2f} | {i99:.2f} |")
    print(f"| under flood | {len(loaded)} | {l50:.2f} | {l99:.2f} |")
    print(f"\nprobe p99 under flood / idle p99: {l99 / i99:.1f}x (goal: <= 10x)")
    print(f"server peak resident memory: {peak:.0f} MB\n")
    by_code: dict[str, list[float]] = defaultdict(list)
    for code, seconds in answers:
        by_code[code].append(seconds)
    counts = Counter({c: len(v) for c, v in by_code.items()})
    total = sum(counts.values())
    print("| flood answer | count | share | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|")
    for code, n in counts.most_common():
        p50, p99 = percentiles(by_code[code])
        print(f"| {code} | {n} | {n / total:.1%} | {p50:.1f} | {p99:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
