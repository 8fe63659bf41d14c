"""`serve`: prints how to call it, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.service.test_buf_curl import BUF

ROOT = Path(__file__).resolve().parents[2]
SERVE = (
    "from router.service.server import ServerConfig, serve\n"
    "from tests.service.conftest import build_small_scenario\n"
    "serve(ServerConfig(port=0, grace_period_s=2.0), build_small_scenario())\n"
)


def test_serve_prints_a_working_call_and_stops_on_sigterm() -> None:
    """The printed PlanOrder command line works as pasted; SIGTERM ends serve with status 0."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(7)]
        assert printed[0].startswith("router.v1.RoutingService listening on 127.0.0.1:")
        command = shlex.split(printed[-1])
        assert command[0] == str(BUF) and command[1] == "curl"
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["plan"]["status"] == "SOLVE_STATUS_OPTIMAL"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
