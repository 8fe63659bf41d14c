"""Done when: start-up publishes only checked rules and never overrides an activation.

``router serve`` (without ``--rules``) activates the scenario's rules only while nothing is
active, by a compare-and-set in the ledger; ``router serve --rules FILE`` activates FILE
when its publish stored it (new to the ledger) or nothing is active, and otherwise leaves
the active version alone. Everything it publishes passes the publish checks (lint errors
refuse start-up) and the version that ends up active must load on the server's network.
The small scenario is tests/service/conftest.py's (default rules, named ``default``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from models.errors import RulesRefusedError, RuleVersionStateError
from models.scenario import Scenario
from router.ledger import Ledger, open_ledger
from router.ledger.base import Publication
from router.ledger.postgres import PostgresLedger
from router.rules.document import canonical_text, load_rules
from router.rules.lint import Finding, Severity
from router.service.config import ServerConfig
from router.service.server import SERVE_ACTOR, bootstrap_rules, create_server
from router.v1 import router_pb2
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.service.conftest import run
from tests.service.test_rules_service import HEAVIER_SPLITS, UNREACHABLE, WHO, plan_label

pytestmark = pytest.mark.timeout(180)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOWHERE = "name: default\nstrategies:\n  - name: a\n    filters: {nodes: [nowhere]}\n"
"""Valid YAML rules naming a node the small scenario's network lacks."""


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _history(url: str) -> tuple[list[int], list[tuple[int, str]]]:
    """The version numbers, and (version, by) of each activation, in order."""
    with open_ledger(url) as ledger:
        return (
            [v.version for v in ledger.rule_versions()],
            [(a.version, a.by) for a in ledger.rule_activations()],
        )


# --- every publish is checked -------------------------------------------------------------


def test_serve_with_a_rules_file_that_fails_lint_does_not_start(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """``--rules FILE`` with a lint error: start-up fails naming it; nothing is stored.

    The scenario's rules were active (v1) and stay the only version.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for _ in run(small_scenario, ledger_url=url):
        pass
    bad = _file(tmp_path, "unreachable.yaml", UNREACHABLE)
    config = ServerConfig(port=0, ledger_url=url, rules_file=bad)
    with pytest.raises(RulesRefusedError) as caught:
        create_server(config, small_scenario)
    assert [(r.kind, r.subject) for r in caught.value.refusals] == [("LINT", "strategies[1]")]
    assert "unreachable-strategy" in str(caught.value)
    assert _history(url) == ([1], [(1, SERVE_ACTOR)])


def test_the_scenario_bootstrap_refuses_rules_that_fail_lint(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """Without ``--rules``, scenario rules with a lint error refuse start-up; nothing stored."""
    rules = load_rules(UNREACHABLE, "rules.yaml", small_scenario.network)
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    config = ServerConfig(port=0, ledger_url=url)
    with pytest.raises(RulesRefusedError, match=r"LINT strategies\[1\]"):
        create_server(config, replace(small_scenario, rules=rules))
    assert _history(url) == ([], [])


def test_startup_stores_the_lint_warnings_with_the_version(
    tmp_path: Path, small_scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bootstrap lints like PublishRules and stores the warnings' text with the version."""
    warning = Finding("weight-changes-nothing", Severity.WARNING, "strategies[0]", "idle")
    monkeypatch.setattr("router.rules.publish.lint_rules", lambda *args, **kw: (warning,))
    path = _file(tmp_path, "rules.yaml", HEAVIER_SPLITS)
    with open_ledger("memory://") as ledger:
        bootstrap_rules(ledger, small_scenario)
        bootstrap_rules(ledger, small_scenario, path)
        assert [v.lint for v in ledger.rule_versions()] == [str(warning)] * 2


# --- nothing is overridden ----------------------------------------------------------------


def test_a_restart_with_a_rules_file_keeps_a_planners_later_activation(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """Restarting ``--rules FILE`` does not undo a rollback made since; a new FILE activates.

    v1 is the scenario's rules; FILE becomes v2 and active; a planner rolls back to v1;
    the replica restarts with the same FILE: v1 stays active, nothing is recorded. With a
    changed FILE (new to the ledger, v3) the restart activates it.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for _ in run(small_scenario, ledger_url=url):
        pass
    path = _file(tmp_path, "rules.yaml", HEAVIER_SPLITS)
    for running in run(small_scenario, ledger_url=url, rules_file=path):
        assert plan_label(running) == "default@v2"
        running.rules.RollbackRules(router_pb2.RollbackRulesRequest(**WHO), timeout=30)
    for running in run(small_scenario, ledger_url=url, rules_file=path):
        assert plan_label(running) == "default@v1"
    assert _history(url) == ([1, 2], [(1, SERVE_ACTOR), (2, SERVE_ACTOR), (1, "ana")])

    path.write_text(HEAVIER_SPLITS.replace("9.5", "8.5"))
    for running in run(small_scenario, ledger_url=url, rules_file=path):
        assert plan_label(running) == "default@v3"


def test_a_rules_file_published_before_is_activated_only_when_nothing_is(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """A FILE a planner published earlier (not active) is left alone while v1 is active."""
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    for running in run(small_scenario, ledger_url=url):
        running.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=HEAVIER_SPLITS, **WHO), timeout=30
        )
    path = _file(tmp_path, "rules.yaml", HEAVIER_SPLITS)
    for running in run(small_scenario, ledger_url=url, rules_file=path):
        assert plan_label(running) == "default@v1"
    assert _history(url) == ([1, 2], [(1, SERVE_ACTOR)])

    fresh = f"sqlite://{tmp_path / 'fresh.db'}"
    with open_ledger(fresh) as ledger:  # published, never activated: nothing is active
        ledger.publish_rules("default", HEAVIER_SPLITS, "ana", "later", "", NOW)
    for running in run(small_scenario, ledger_url=fresh, rules_file=path):
        assert plan_label(running) == "default@v1"
    assert _history(fresh) == ([1], [(1, SERVE_ACTOR)])


class _Paused(PostgresLedger):
    """A replica's ledger that runs ``meanwhile`` just before its first publish goes in."""

    meanwhile: Callable[[], None] | None = None

    def publish_rules(self, *args: Any, **kwargs: Any) -> Publication:
        hook, self.meanwhile = self.meanwhile, None
        if hook is not None:
            hook()
        return super().publish_rules(*args, **kwargs)


def test_a_replica_without_rules_does_not_override_one_activated_meanwhile(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
    small_scenario: Scenario,
) -> None:
    """The no-file bootstrap's activation is a compare-and-set, not check-then-act.

    Replica A (no ``--rules``) finds nothing active; before it publishes, replica B starts
    with ``--rules FILE`` and activates FILE. A then publishes the scenario's rules but
    must not activate them: FILE stays active and A's version is never activated.
    """
    path = _file(tmp_path, "rules.yaml", HEAVIER_SPLITS)
    with _Paused(pg_url, max_connections=2) as a, open_ledger(pg_url) as b:
        assert isinstance(a, _Paused)
        a.meanwhile = lambda: bootstrap_rules(b, small_scenario, path)
        bootstrap_rules(a, small_scenario)
        assert b.active_rule_version() == 1
        assert b.rule_version(1).document == HEAVIER_SPLITS
        assert [(x.version, x.previous) for x in b.rule_activations()] == [(1, None)]
        assert b.rule_version(2).document == canonical_text(small_scenario.rules)


@contextmanager
def _schema(server: str) -> Iterator[str]:
    """A ledger URL on a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in server else "?"
        yield f"{server}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _start_together(starts: list[Callable[[], None]]) -> None:
    barrier = threading.Barrier(len(starts))
    errors: list[BaseException] = []

    def start(go: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            go()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(go,)) for go in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a replica hung"
    assert not errors, errors


@pytest.mark.parametrize("round_", range(4))
def test_replicas_with_and_without_a_rules_file_starting_together(
    round_: int,
    pg_server: str,  # noqa: F811
    tmp_path: Path,
    small_scenario: Scenario,
) -> None:
    """Three replicas without ``--rules`` and one with, started at once on an empty schema.

    Real threads, one ledger (pool) each. Whatever the interleaving, FILE ends up active,
    activated once; the scenario's rules are activated at most once, and only before FILE
    (nothing overrides FILE); the history chains.
    """
    path = _file(tmp_path, "rules.yaml", HEAVIER_SPLITS)
    with _schema(pg_server) as url:
        ledgers: list[Ledger] = [PostgresLedger(url, max_connections=2) for _ in range(4)]
        try:
            starts = [lambda lg=lg: bootstrap_rules(lg, small_scenario) for lg in ledgers[:3]]
            starts.append(lambda: bootstrap_rules(ledgers[3], small_scenario, path))
            _start_together(starts)
            versions = {v.document: v.version for v in ledgers[0].rule_versions()}
            history = ledgers[0].rule_activations()
        finally:
            for ledger in ledgers:
                ledger.close()
    file_version = versions[HEAVIER_SPLITS]
    activated = [a.version for a in history]
    assert activated[-1] == file_version and activated.count(file_version) == 1
    assert activated in ([file_version], [versions[canonical_text(small_scenario.rules)],
                                          file_version])  # fmt: skip
    assert [a.previous for a in history] == [None, *activated[:-1]]


def test_startup_refuses_an_active_version_that_does_not_load_here(
    tmp_path: Path, small_scenario: Scenario
) -> None:
    """A replica whose network cannot load the active version does not start.

    Every plan would fail INTERNAL; the error names the version and the problem.
    """
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        made = ledger.publish_rules("default", NOWHERE, "elsewhere", "", "", NOW).version
        ledger.activate_rules(made.version, "elsewhere", "other network", NOW)
    config = ServerConfig(port=0, ledger_url=url)
    with pytest.raises(RuleVersionStateError, match=r"version 1 does not load .*'nowhere'"):
        create_server(config, small_scenario)
