"""``router serve`` for the fuzzer: a scenario, a ledger URL, the sweeper off.

``python -m benchmarks.fuzz.serve --scenario DIR --ledger URL`` prints the server's
address on its first line (as ``router serve`` does) and serves until SIGTERM, or until
the process that started it is gone. Nothing but the calls it answers changes its ledger:
the sweeper, which expires reservations on its own, never runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from router.scenario import read_scenario
from router.service.config import ServerConfig
from router.service.server import serve

SWEEP_NEVER_S = 365 * 24 * 3600.0
"""The sweep interval: a year."""


def main(argv: list[str] | None = None) -> None:
    """Serve the scenario on a free port of 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--ledger", required=True, help="ledger URL, e.g. sqlite://PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = ServerConfig(
        port=0, ledger_url=args.ledger, sweep_interval_s=SWEEP_NEVER_S, grace_period_s=1.0
    )
    parent = os.getppid()
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    serve(config, read_scenario(args.scenario))


def _orphaned(parent: int) -> None:
    """Stop the server (SIGTERM to itself) once the fuzzer that started it has died."""
    while os.getppid() == parent:
        threading.Event().wait(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
