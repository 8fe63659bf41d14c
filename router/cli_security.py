"""The command line's security parts: serve flags, client credentials, ``router tokens``.

Secrets never have to be typed on a command line (where ``ps`` shows them): a client's
token comes from ``ROUTER_TOKEN`` or ``--token-file``; certificates and keys are files.
See docs/security.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.cli_ledger import add_ledger_flags, ledger_url_of
from router.service.config import AdmissionSettings, TlsSettings, is_loopback

TOKEN_ENV = "ROUTER_TOKEN"
"""The environment variable a client's bearer token is read from."""


def add_serve_flags(
    serve: argparse.ArgumentParser, admission: AdmissionSettings, max_concurrent_rpcs: int
) -> None:
    """``router serve``'s authentication, TLS and admission flags."""
    group = serve.add_argument_group("security (docs/security.md)")
    auth = group.add_mutually_exclusive_group()
    auth.add_argument(
        "--auth",
        dest="auth",
        action="store_const",
        const=True,
        default=None,
        help="require a token or client certificate on every call (the default unless "
        "--host is loopback)",
    )
    auth.add_argument(
        "--insecure-no-auth",
        dest="auth",
        action="store_const",
        const=False,
        help="serve every method to anyone who reaches the address (logged loudly)",
    )
    group.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate chain")
    group.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key")
    group.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="PEM",
        help="mTLS: every client presents a certificate this CA signed",
    )
    group.add_argument(
        "--rate-limit",
        type=float,
        default=admission.rate_per_s,
        metavar="PER_S",
        help="calls a second per principal (0: none; default: %(default)s)",
    )
    group.add_argument(
        "--rate-burst", type=int, default=admission.burst, help="calls at once above the rate"
    )
    group.add_argument(
        "--queued-solves",
        type=int,
        default=admission.queued_solves,
        help="solving calls that may wait for a worker; the next is refused at once",
    )
    group.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=max_concurrent_rpcs,
        help="calls in progress or waiting at once; the next is refused before any work "
        "(default: %(default)s)",
    )


def serve_security(
    args: argparse.Namespace,
) -> tuple[bool | None, TlsSettings | None, AdmissionSettings, list[str]]:
    """Auth, TLS and admission settings from ``router serve``'s flags, and what is wrong."""
    problems = []
    tls = None
    if (args.tls_cert is None) != (args.tls_key is None):
        problems.append("--tls-cert and --tls-key go together")
    elif args.tls_cert is not None:
        tls = TlsSettings(args.tls_cert, args.tls_key, args.tls_client_ca)
        problems += [f"{p}: no such file" for p in tls.files() if not p.is_file()]
    if args.tls_client_ca is not None and tls is None:
        problems.append("--tls-client-ca needs --tls-cert and --tls-key")
    if args.rate_limit < 0 or args.rate_burst < 1 or args.queued_solves < 0:
        problems.append("--rate-limit must be >= 0, --rate-burst >= 1, --queued-solves >= 0")
    if args.max_concurrent_rpcs < 1:
        problems.append("--max-concurrent-rpcs must be >= 1")
    admission = AdmissionSettings(
        rate_per_s=args.rate_limit, burst=args.rate_burst, queued_solves=args.queued_solves
    )
    return args.auth, tls, admission, problems


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """How a client command reaches a secured server (token from the environment or a file)."""
    group = parser.add_argument_group("credentials (docs/security.md)")
    group.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the bearer token (default: ${TOKEN_ENV}, if set)",
    )
    group.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA to verify the server by")
    group.add_argument("--tls-cert", type=Path, metavar="PEM", help="client certificate (mTLS)")
    group.add_argument("--tls-key", type=Path, metavar="PEM", help="client key (mTLS)")


def client_token(args: argparse.Namespace) -> str:
    """The bearer token: ``--token-file``'s content, else ``$ROUTER_TOKEN``, else ""."""
    path = getattr(args, "token_file", None)
    if path is not None:
        return Path(path).read_text().strip()
    return os.environ.get(TOKEN_ENV, "").strip()


@contextmanager
def client_channel(args: argparse.Namespace) -> Iterator[Any]:
    """A channel to ``args.target`` with the client's TLS and token (see the flags)."""
    import grpc

    from router.service.tls import channel_credentials

    ca, cert, key = (getattr(args, n, None) for n in ("tls_ca", "tls_cert", "tls_key"))
    if (cert is None) != (key is None):
        print("warning: --tls-cert and --tls-key go together; neither is sent", file=sys.stderr)
        cert = key = None
    if ca is not None or cert is not None:
        channel = grpc.secure_channel(args.target, channel_credentials(ca, cert, key))
    else:
        channel = grpc.insecure_channel(args.target)
    token = client_token(args)
    host = args.target.rsplit(":", 1)[0]
    if token and ca is None and cert is None and not is_loopback(host):
        print(
            f"warning: sending the token in plaintext to {args.target}: give --tls-ca "
            "(docs/security.md)",
            file=sys.stderr,
        )
    with channel:
        yield grpc.intercept_channel(channel, bearer_token(token)) if token else channel


def bearer_token(token: str) -> Any:
    """A client interceptor that sends ``authorization: Bearer <token>`` on every call."""
    import grpc

    class Details(
        collections.namedtuple(
            "Details",
            ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
        ),
        grpc.ClientCallDetails,
    ):
        """Call details with the token added to the metadata."""

    def with_token(details: Any) -> Details:
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {token}")]
        return Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    class BearerToken(
        grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
        grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
        grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
        grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
    ):
        """Adds the token to every kind of call."""

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            """Unary calls."""
            return continuation(with_token(details), request)

        def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
            """Server-streaming calls."""
            return continuation(with_token(details), request)

        def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
            """Client-streaming calls."""
            return continuation(with_token(details), requests)

        def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
            """Bidirectional calls (reflection)."""
            return continuation(with_token(details), requests)

    return BearerToken()


def add_tokens_command(commands: Any, default_ledger: str) -> None:
    """``router tokens issue|revoke|list``: API tokens in the ledger (docs/security.md)."""
    tokens = commands.add_parser("tokens", help="issue, revoke and list API tokens")
    sub = tokens.add_subparsers(dest="tokens_command", required=True)
    issue = sub.add_parser("issue", help="issue a token; it is printed once, never stored")
    issue.add_argument("name", help="the principal the token proves (e.g. oms-eu-1)")
    issue.add_argument(
        "--role",
        action="append",
        required=True,
        help="oms, feed, planner, analyst or admin (repeat for several)",
    )
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    listing = sub.add_parser("list", help="every token issued: id, principal, roles, state")
    for cmd in (issue, revoke, listing):
        add_ledger_flags(cmd, default_ledger)
    tokens.set_defaults(run=_tokens, default_ledger=default_ledger)


def _tokens(args: argparse.Namespace) -> int:
    from models.access import Role
    from models.errors import RouterError
    from router.ledger import open_ledger

    now = datetime.now(UTC)
    try:
        with open_ledger(ledger_url_of(args, args.default_ledger)) as ledger:
            if args.tokens_command == "issue":
                made, token = ledger.issue_token(args.name, Role.parse_all(args.role), now)
                print(f"issued {made.token_id} for {made.name} ({', '.join(sorted(made.roles))})")
                print("the token (shown once; keep it in a secret store):", file=sys.stderr)
                print(token)
            elif args.tokens_command == "revoke":
                done = ledger.revoke_token(args.token_id, now)
                print(f"revoked {done.token_id} ({done.name}) at {done.revoked_at}")
            else:
                for t in ledger.tokens():
                    state = "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}"
                    roles = ",".join(sorted(t.roles))
                    print(f"{t.token_id}  {t.name}  {roles}  {t.created_at:%Y-%m-%d}  {state}")
    except (RouterError, ValueError) as error:
        print(f"router tokens: {error}", file=sys.stderr)
        return 2
    return 0


def rpc_failed(error: Any) -> int:
    """Print an RPC's status code, message and details; 2 for INVALID_ARGUMENT, else 1."""
    import grpc
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    code = error.code()
    print(f"error: {code.name}: {error.details()}", file=sys.stderr)
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        failed = error_details_pb2.PreconditionFailure()
        if detail.Unpack(bad):
            for fv in bad.field_violations:
                print(f"  {fv.field}: {fv.description}", file=sys.stderr)
        elif detail.Unpack(failed):
            for pv in failed.violations:
                print(f"  {pv.type} {pv.subject}: {pv.description}", file=sys.stderr)
    return 2 if code is grpc.StatusCode.INVALID_ARGUMENT else 1
