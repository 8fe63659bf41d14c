"""The throughput benchmark runs end to end at a tiny size on both ledgers, profile included."""

from __future__ import annotations

import pytest

from benchmarks import throughput
from tests.ledger.conftest import pg_server  # noqa: F401  (fixture)

TINY = ["--clients", "2", "--seconds", "0.5", "--rounds", "1", "--warmup", "0.2"]


def test_throughput_smoke_on_sqlite_reports_every_phase_and_the_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every phase answers without error; routes reserve; the ratios and profile print."""
    args = throughput.parser().parse_args([*TINY, "--ledger", "sqlite", "--profile"])
    results, profiles = throughput.run(args)
    [health], [route], [plan] = (results["sqlite"][phase] for phase in throughput.PHASES)
    for done in (health, route, plan):
        assert done.latencies, done.phase
        assert not done.errors, (done.phase, done.errors)
    assert route.outcomes["ROUTE_OUTCOME_RESERVED"] > 0
    assert profiles["sqlite"]["samples"]
    assert throughput.main([*TINY, "--ledger", "sqlite", "--profile", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "| sqlite | route |" in out and "| sqlite | plan |" in out
    assert "RouteOrder:" in out and "innermost frame:" in out


def test_throughput_smoke_on_postgres(pg_server: str) -> None:  # noqa: F811
    """The PostgreSQL ledger in a schema of its own: every phase answers without error."""
    args = throughput.parser().parse_args([*TINY, "--ledger", "postgres", "--pg-url", pg_server])
    results, _ = throughput.run(args)
    for phase in throughput.PHASES:
        [done] = results["postgres"][phase]
        assert done.latencies, phase
        assert not done.errors, (phase, done.errors)
