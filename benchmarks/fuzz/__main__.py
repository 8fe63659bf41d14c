"""The long fuzz run: many inputs per RPC of the gRPC service and per gateway operation.

``python -m benchmarks.fuzz --examples 10000`` starts its own servers on loopback (the tiny
scenario, SQLite ledgers in ``--workdir``), sends every RPC of every router.v1 service
``--examples`` requests and every operation of the gateway's OpenAPI document
``--examples`` positive and as many negative requests, checking the properties after each
one (:mod:`benchmarks.fuzz.service`, :mod:`benchmarks.fuzz.gateway`). Unlike ``make
test`` it goes on past a failing input: each kind of failure is counted, its first input
kept. A progress line every ``--every`` inputs; at the end one line per RPC and operation,
the failures by kind and the server's memory. Exit 1 when any property failed.
docs/security.md, Fuzzing, has the figures of a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from schemathesis import GenerationMode
from schemathesis.core.result import Err

from benchmarks.fuzz import gateway, service
from benchmarks.fuzz.found import Found

MEMORY_BOUND_MB = 512.0
"""The most the gRPC server's peak resident set may grow over a whole run."""


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz; 0 when every property held, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="inputs per RPC/operation")
    parser.add_argument("--surface", choices=("grpc", "http", "all"), default="all")
    parser.add_argument("--only", nargs="*", default=(), help="RPC or operation names to run")
    parser.add_argument("--seed", type=int, default=1, help="Hypothesis seed")
    parser.add_argument("--every", type=int, default=1000, help="inputs between progress lines")
    parser.add_argument("--workdir", type=Path, default=Path(".router/fuzz"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    found = Found()
    totals: Counter[str] = Counter()
    if args.surface in ("grpc", "all"):
        totals["gRPC"] = _grpc(args, found)
    if args.surface in ("http", "all"):
        totals["HTTP"] = _http(args, found)
    minutes = (time.monotonic() - started) / 60
    kinds = len(found.counts)
    print(f"done in {minutes:.1f} min: {dict(totals)} inputs, {kinds} kinds of failure", flush=True)
    for line in found.lines():
        print(f"FAILED {line}", flush=True)
    return 1 if kinds else 0


def _grpc(args: argparse.Namespace, found: Found) -> int:
    total = 0
    with service.running(args.workdir / "grpc") as target:
        _, baseline = target.server.memory_mb()
        print(f"gRPC server {target.server.address}: peak RSS {baseline:.0f} MB", flush=True)
        for rpc in service.rpcs():
            if args.only and rpc.name not in args.only:
                continue
            clock, statuses, before = time.monotonic(), Counter[str](), sum(found.counts.values())

            def progress(
                rpc: service.Rpc, count: int, statuses: Counter[str], clock: float = clock
            ) -> None:
                if count % args.every == 0:
                    rss, peak = target.server.memory_mb()
                    rate = count / max(time.monotonic() - clock, 1e-9)
                    print(
                        f"  {rpc.name}: {count} inputs, {rate:.0f}/s, RSS {rss:.0f} MB "
                        f"(peak {peak:.0f}), {dict(statuses)}",
                        flush=True,
                    )

            service.fuzz_rpc(
                target, rpc, args.examples, seed=args.seed, progress=progress,
                statuses=statuses, found=found,
            )  # fmt: skip
            count, failed = sum(statuses.values()), sum(found.counts.values()) - before
            total += count
            seconds = time.monotonic() - clock
            print(f"{rpc.name}: {count} inputs in {seconds:.0f} s, {failed} failing, "
                  f"{dict(statuses)}", flush=True)  # fmt: skip
        rss, peak = target.server.memory_mb()
        grown = peak - baseline
        print(f"gRPC server: RSS {rss:.0f} MB, peak {peak:.0f} MB (+{grown:.0f})", flush=True)
        if grown > MEMORY_BOUND_MB:
            found.add("gRPC memory", f"peak RSS grew by {grown:.0f} MB > {MEMORY_BOUND_MB:.0f}")
        if not target.server.alive():
            found.add("gRPC server", "the server process died")
    return total


def _http(args: argparse.Namespace, found: Found) -> int:
    total = 0
    with gateway.running(args.workdir / "http") as url:
        schema = gateway.load(url, seed=args.seed)
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                found.add("HTTP schema", f"the OpenAPI document is broken: {result.err()}")
                continue
            operation = result.ok()
            if args.only and operation.label not in args.only:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{operation.label} ({mode.value})"
                seen: gateway.Seen = {}
                clock, before = time.monotonic(), sum(found.counts.values())

                def progress(count: int, label: str = label, seen: gateway.Seen = seen) -> None:
                    if count % args.every == 0:
                        print(f"  {label}: {count} requests, {json.dumps(seen)}", flush=True)

                gateway.fuzz_operation(
                    operation, mode, url, seen, args.examples, seed=args.seed,
                    progress=progress, found=found,
                )  # fmt: skip
                count, failed = sum(seen.values()), sum(found.counts.values()) - before
                total += count
                seconds = time.monotonic() - clock
                print(f"{label}: {count} requests in {seconds:.0f} s, {failed} failing, "
                      f"{json.dumps(seen, sort_keys=True)}", flush=True)  # fmt: skip
    return total


if __name__ == "__main__":
    sys.exit(main())
