"""`serve`: prints how to call it, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.service.test_buf_curl import BUF

ROOT = Path(__file__).resolve().parents[2]
SERVE = (
    "import sys\n"
    "from router.service.config import ServerConfig\n"
    "from router.service.server import serve\n"
    "from tests.service.conftest import build_small_scenario\n"
    "config = ServerConfig(port=0, grace_period_s=2.0, ledger_url=sys.argv[1])\n"
    "serve(config, build_small_scenario())\n"
)


def _run(line: str) -> dict[str, Any]:
    command = shlex.split(line)
    assert command[0] == str(BUF) and command[1] == "curl"
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_serve_prints_a_working_call_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The printed calls work as pasted (on a SQLite ledger); SIGTERM ends serve with 0."""
    url = f"sqlite://{tmp_path / 'ledger' / 'ledger.db'}"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, url], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(11)]
        assert printed[0].startswith("router.v1.RoutingService listening on 127.0.0.1:")
        assert _run(printed[6])["plan"]["status"] == "SOLVE_STATUS_OPTIMAL"
        routed = _run(printed[8])
        assert routed["reservation"]["status"] == "RESERVATION_STATUS_HELD"
        assert _run(printed[8]) == routed  # the same request_id: the same answer
        held = {
            (p["nodeId"], p["sku"]): p.get("reserved", 0) for p in _run(printed[10])["positions"]
        }
        for line in routed["reservation"]["lines"]:
            assert held[(line["nodeId"], line["sku"])] == line["quantity"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
