"""The flood benchmark runs end to end at a tiny size and reports every part."""

from __future__ import annotations

import pytest

from benchmarks import flood


def test_flood_smoke_reports_the_probe_and_the_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """Ten streams for four seconds against two workers: both tables, the ratio line."""
    args = ["--streams", "10", "--seconds", "4", "--probes", "20", "--lines", "5"]
    assert flood.main([*args, "--workers", "2", "--backoff", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "| idle | 20 |" in out
    assert "probe p99 under flood / idle p99" in out
    assert "| OK |" in out
