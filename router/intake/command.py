"""``router intake`` (and ``python -m router.intake``): the gateway's flags and start-up.

The flags' defaults are :class:`~router.intake.config.IntakeConfig`'s. The web stack is
imported only when the gateway starts, and neither the CLI nor OR-Tools is imported here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from router.intake.config import DEFAULT_METRICS_PORT, IntakeConfig
from router.telemetry import add_telemetry_flags, configure_logging, metrics_port_problem

_DEFAULTS = IntakeConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The gateway's flags on ``parser``; ``run`` is set to :func:`run`."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--target",
        default=_DEFAULTS.target,
        help="gRPC server host:port (default: %(default)s)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=_DEFAULTS.deadline_s,
        help="seconds per request, the gRPC deadline (X-Request-Timeout may lower it)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=_DEFAULTS.max_body_bytes,
        help="larger bodies are 413",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=_DEFAULTS.max_in_flight,
        help="more requests at once are 429",
    )
    parser.add_argument(
        "--max-batch-orders",
        type=int,
        default=_DEFAULTS.max_batch_orders,
        help="batches of more orders are 413 (default: %(default)s)",
    )
    parser.add_argument(
        "--geocoder",
        help="geopy geocoder for ship-tos with neither coordinates nor a US postal code "
        "(e.g. nominatim; default: none)",
    )
    parser.add_argument("--geocoder-user-agent", help="user agent sent to the geocoder")
    tls = parser.add_argument_group("TLS (docs/security.md)")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS: certificate")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="serve HTTPS: private key")
    tls.add_argument("--service-ca", type=Path, metavar="PEM", help="CA of the service's TLS")
    tls.add_argument("--service-cert", type=Path, metavar="PEM", help="client cert (mTLS)")
    tls.add_argument("--service-key", type=Path, metavar="PEM", help="client key (mTLS)")
    add_telemetry_flags(parser, DEFAULT_METRICS_PORT)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the flags and serve until stopped; 2 on a bad flag."""
    problems = [
        f"--{name} must be above 0"
        for name, value in (
            ("deadline", args.deadline),
            ("max-body-bytes", args.max_body_bytes),
            ("max-in-flight", args.max_in_flight),
            ("max-batch-orders", args.max_batch_orders),
        )
        if not value > 0
    ]
    bad_port = metrics_port_problem(args.metrics_port)
    if bad_port is not None:
        problems.append(f"--metrics-port {bad_port}")
    if (args.tls_cert is None) != (args.tls_key is None):
        problems.append("--tls-cert and --tls-key go together")
    if (args.service_cert is None) != (args.service_key is None):
        problems.append("--service-cert and --service-key go together")
    problems += [
        f"{path}: no such file"
        for path in (
            args.tls_cert,
            args.tls_key,
            args.service_ca,
            args.service_cert,
            args.service_key,
        )
        if path is not None and not path.is_file()
    ]
    if problems:
        print("router intake: " + "; ".join(problems), file=sys.stderr)
        return 2
    config = IntakeConfig(
        target=args.target,
        deadline_s=args.deadline,
        max_body_bytes=args.max_body_bytes,
        max_in_flight=args.max_in_flight,
        max_batch_orders=args.max_batch_orders,
        geocoder=args.geocoder,
        geocoder_user_agent=args.geocoder_user_agent,
        service_ca=args.service_ca,
        service_cert=args.service_cert,
        service_key=args.service_key,
        metrics_port=args.metrics_port or None,
        metrics_host=args.metrics_host,
        otlp_endpoint=args.otlp_endpoint,
    )
    from router.intake.app import serve  # the web stack, only when the gateway starts

    try:
        tls = None if args.tls_cert is None else (args.tls_cert, args.tls_key)
        serve(config, args.host, args.port, tls)
    except ValueError as error:  # a bad --geocoder: nothing was printed or bound yet
        print(f"router intake: --geocoder: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m router.intake ARGS``: the same as ``router intake ARGS``."""
    parser = argparse.ArgumentParser(prog="router intake", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_format, args.log_level)
    return run(args)
