"""What the lookup commands of a running server share (``router reservations``, ``decisions``).

Their flags (``--json``, ``--target``, ``--timeout``, the credentials of
:func:`~router.cli_security.add_client_flags`), one RoutingService call, ``list``'s page
loop up to ``--limit``, and a proto3 JSON line. Written once here so that every lookup
command reads and fails alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from router.cli_security import add_client_flags, client_channel, rpc_failed
from router.intake.config import DEFAULT_TARGET


def add_lookup_flags(command: argparse.ArgumentParser) -> None:
    """``--json``, ``--target``, ``--timeout`` and the credentials of a lookup command."""
    command.add_argument("--json", action="store_true", help="proto3 JSON, one per line")
    command.add_argument(
        "--target", default=DEFAULT_TARGET, help="server host:port (default: %(default)s)"
    )
    command.add_argument("--timeout", type=float, default=30.0, help="RPC deadline, seconds")
    add_client_flags(command)


def add_page_flags(listing: argparse.ArgumentParser) -> None:
    """``--page-size`` and ``--limit`` of a ``list`` command, which follows every page."""
    listing.add_argument("--page-size", type=int, default=0, help="per call (default 100)")
    listing.add_argument(
        "--limit", type=int, default=1000, help="stop after this many (default: %(default)s)"
    )


def call(args: argparse.Namespace, rpc: str, request: Any, show: Callable[[Any], None]) -> int:
    """``RoutingService.RPC(request)``; ``show`` its answer. The exit status (rpc_failed's)."""
    import grpc

    from router.v1 import router_pb2_grpc

    try:
        with client_channel(args) as channel:
            stub = router_pb2_grpc.RoutingServiceStub(channel)
            answer = getattr(stub, rpc)(request, timeout=args.timeout)
    except grpc.RpcError as error:
        return rpc_failed(error)
    show(answer)
    return 0


def list_pages(
    args: argparse.Namespace,
    command: str,
    rpc: str,
    request: Any,
    field: str,
    show: Callable[[Any], None],
) -> int:
    """Every page of ``RPC`` until the last or ``--limit``; says so when it stopped early.

    ``field`` names the page's repeated items, each given to ``show``; without ``--json``
    the count follows on stderr (``N reservation(s)``, from ``field``).
    """
    import grpc

    from router.v1 import router_pb2_grpc

    if args.limit < 1:
        print(f"router {command}: --limit must be 1 or more, got {args.limit}", file=sys.stderr)
        return 2
    shown = 0
    try:
        with client_channel(args) as channel:
            method = getattr(router_pb2_grpc.RoutingServiceStub(channel), rpc)
            while True:
                page = method(request, timeout=args.timeout)
                for item in getattr(page, field)[: max(args.limit - shown, 0)]:
                    show(item)
                    shown += 1
                if not page.next_page_token:
                    break
                if shown >= args.limit:
                    print(f"(stopped at --limit {args.limit}; more remain)", file=sys.stderr)
                    break
                request.page_token = page.next_page_token
    except grpc.RpcError as error:
        return rpc_failed(error)
    if not args.json:
        print(f"{shown} {field.removesuffix('s')}(s)", file=sys.stderr)
    return 0


def print_json(message: Any) -> None:
    """``message`` as one line of proto3 JSON (lowerCamelCase, defaults left out)."""
    from google.protobuf import json_format

    print(json.dumps(json_format.MessageToDict(message), separators=(",", ":")))
