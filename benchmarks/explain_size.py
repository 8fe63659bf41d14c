"""What an explanation weighs: bytes of a PlanOrder response at each explanation level.

A server on port 0 (memory ledger) serves the standard sample; for the first order of each
asked line count, PlanOrder is called at every level (``EXPLAIN_LEVEL_NONE``, ``_SUMMARY``,
``_FULL``) and the response measured as protobuf bytes and as compact proto3 JSON bytes
(``MessageToJson``, lowerCamelCase, as the HTTP gateway answers). Sizes, not times: the
numbers are exact for a given seed.

    python -m benchmarks.explain_size --lines 2 10
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import grpc
from google.protobuf import json_format

from router.sample import sample_scenario
from router.service.config import ServerConfig
from router.service.convert import order_to_proto
from router.service.server import create_server
from router.v1 import router_pb2, router_pb2_grpc

LEVELS = {
    "none": router_pb2.EXPLAIN_LEVEL_NONE,
    "summary": router_pb2.EXPLAIN_LEVEL_SUMMARY,
    "full": router_pb2.EXPLAIN_LEVEL_FULL,
}


def measure(line_counts: Sequence[int], smoke: bool = False) -> list[dict[str, object]]:
    """One row per (order, level): order id, lines, candidates, excluded, proto and JSON bytes.

    Line counts no order of the sample has are left out.
    """
    size = {"n_stores": 50, "n_skus": 200, "n_orders": 100} if smoke else {}
    scenario = sample_scenario(**size)
    orders = [
        found
        for n in line_counts
        if (found := next((o for o in scenario.orders if len(o.lines) == n), None)) is not None
    ]
    server, port = create_server(ServerConfig(port=0, ledger_url="memory://"), scenario)
    server.start()
    rows: list[dict[str, object]] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.RoutingServiceStub(channel)
            for order in orders:
                for name, level in LEVELS.items():
                    request = router_pb2.PlanOrderRequest(
                        order=order_to_proto(order), explain_level=level
                    )
                    response = stub.PlanOrder(request, timeout=60)
                    summary = response.plan.explain.summary
                    rows.append(
                        {
                            "order_id": order.order_id,
                            "lines": len(order.lines),
                            "candidates": summary.candidate_count,
                            "excluded": summary.excluded_count,
                            "level": name,
                            "proto_bytes": response.ByteSize(),
                            "json_bytes": len(json_format.MessageToJson(response, indent=None)),
                        }
                    )
    finally:
        server.stop(0).wait()
    return rows


def report(rows: list[dict[str, object]]) -> str:
    """A Markdown table of the rows."""
    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the sizes of PlanOrder responses per explanation level as a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.explain_size")
    parser.add_argument(
        "--lines", type=int, nargs="+", default=[2, 10], help="orders of these line counts"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny network (make test)")
    args = parser.parse_args(argv)
    print(report(measure(args.lines, smoke=args.smoke)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
