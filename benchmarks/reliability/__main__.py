"""``python -m benchmarks.reliability --calls 100000 --replicas 3``: the full-size run.

Prints a progress line every few seconds and each fault as it is injected, then writes
the figures as JSON and as a markdown table (``--out``, default
benchmarks/results/reliability.{json,md}). Exits 1 when the checker found a violation or
the harness failed (a fault not injected), 2 when PostgreSQL's server binaries are missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.reliability.cluster import ClusterUnavailableError
from benchmarks.reliability.run import Plan, run

RESULTS = Path(__file__).resolve().parents[1] / "results" / "reliability"


def markdown(figures: dict[str, Any], command: str) -> str:
    """The figures as the markdown of docs/reliability.md."""
    rows = [
        f"`{command}`",
        "",
        "| figure | value |",
        "|---|---|",
        f"| calls (all RPC attempts) | {figures['calls']} |",
        f"| RouteOrder calls (requests) | {figures['route_order_calls']} "
        f"({figures['route_order_requests']}) |",
        f"| reservations acknowledged | {figures['reservations_acknowledged']} |",
        f"| replicas / client threads | {figures['replicas']} / {figures['clients']} |",
        f"| duration | {figures['duration_s']} s |",
        f"| calls/s (RouteOrder calls/s) | {figures['calls_per_s']} "
        f"({figures['route_order_calls_per_s']}) |",
        "| faults injected | "
        + "; ".join(f"{f['kind']} at {f['at_s']} s ({f['detail']})" for f in figures["faults"])
        + " |",
        f"| final reservation statuses | {figures['final_statuses']} |",
        f"| **violations** | **{figures['violations']}** |",
        "",
        "| op | calls | ok | refused | indeterminate | p50 ms | p99 ms | error codes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, f in figures["per_op"].items():
        codes = ", ".join(f"{k} {v}" for k, v in f["codes"].items()) or "-"
        rows.append(
            f"| {op} | {f['calls']} | {f['ok']} | {f['fail']} | {f['unknown']} | "
            f"{f['p50_ms']} | {f['p99_ms']} | {codes} |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run, print and write the figures; 1 on a violation."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability")
    parser.add_argument("--calls", type=int, default=100_000, help="RouteOrder calls to make")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clients", type=int, default=12, help="client threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="figures: OUT.json, OUT.md")
    parser.add_argument("--logs", type=Path, help="keep the replicas' logs here")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.reliability " + " ".join(argv or sys.argv[1:])

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    try:
        result = run(
            args.calls,
            args.replicas,
            args.clients,
            Plan(),
            seed=args.seed,
            logs=args.logs,
            say=say,
        )
    except ClusterUnavailableError as e:
        print(f"cannot run: {e}", file=sys.stderr)
        return 2
    figures = result.figures()
    figures["command"] = command
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    table = markdown(figures, command)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    for line in result.violations[:20]:
        print("VIOLATION", line)
    for line in result.errors:
        print("HARNESS ERROR", line)
    return 1 if result.violations or result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
