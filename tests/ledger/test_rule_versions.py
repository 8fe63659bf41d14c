"""Rule-set versions in the ledger: numbered publishes, explicit activation and rollback.

Every backend numbers versions 1, 2, 3 … without gaps, returns the existing version for
a document published again, records each activation with the version active before it,
and (SQLite, PostgreSQL) refuses any change to the stored history in the database itself.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from models.errors import InvalidArgumentError, NotFoundError, RuleVersionStateError
from models.rule_versions import RuleActivation, RuleVersion
from router.ledger import Ledger, open_ledger
from router.ledger.base import rules_digest
from router.ledger.postgres import PostgresLedger
from router.ledger.sqlite import SqliteLedger
from router.service.errors import status_of
from tests.ledger.conftest import NOW

pytestmark = pytest.mark.timeout(60)

THREADS = 8
PER_THREAD = 5


def doc(n: int) -> str:
    """A small, distinct rule-set document."""
    return f"rules:\n  - name: rule-{n}\n    exclude_node: N{n}\n"


def sha256(text: str) -> str:
    """The SHA-256 hex of ``text``'s UTF-8 bytes, computed here, independently of the ledger."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def publish(ledger: Ledger, n: int, *, by: str = "alice", at: datetime = NOW) -> RuleVersion:
    """Publish document ``n`` under the name ``set-n``."""
    return ledger.publish_rules(f"set-{n}", doc(n), by, f"why {n}", "", at).version


@pytest.fixture
def rules(backend_url: str) -> Iterator[Ledger]:
    """An empty ledger of each backend."""
    with open_ledger(backend_url) as opened:
        yield opened


def run_threads(targets: list[Callable[[], Any]]) -> list[Any]:
    """Run the targets on real threads started together; their results, or the first error."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = targets[i]()
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def replicas(backend_url: str, n: int) -> list[Ledger]:
    """``n`` ledgers on one database, like replicas (memory: one shared ledger)."""
    if backend_url == "memory://":
        return [open_ledger(backend_url)] * n
    if backend_url.startswith("postgresql://"):
        return [PostgresLedger(backend_url, max_connections=2) for _ in range(n)]
    return [open_ledger(backend_url) for _ in range(n)]


def check_chain(history: tuple[RuleActivation, ...]) -> None:
    """Seq runs 1..n; each previous is the version of the row before it (None first)."""
    assert [a.seq for a in history] == list(range(1, len(history) + 1))
    for before, after in zip((None, *history), history, strict=False):
        assert after.previous == (None if before is None else before.version), after
        assert after.version != after.previous


# --- publishing ---------------------------------------------------------------------------


def test_versions_are_numbered_without_gaps_and_stored_as_given(rules: Ledger) -> None:
    """Publishes get 1, 2, 3 in order; every field round-trips; publishing activates nothing."""
    east = timezone(timedelta(hours=5))
    made = [publish(rules, n, at=NOW + timedelta(minutes=n)) for n in (1, 2, 3)]
    lint_text = "warning: rule 1 never matches"
    linted = rules.publish_rules("set-4", doc(4), "bob", "", lint_text, NOW.astimezone(east))
    assert linted.created
    linted_version = linted.version
    assert [v.version for v in made] == [1, 2, 3]
    linted = linted_version
    assert linted.version == 4 and linted.lint == lint_text and linted.reason == ""
    assert linted.published_at == NOW and linted.published_at.utcoffset() == timedelta(0)
    stored = rules.rule_versions()
    assert stored == (*made, linted)
    assert stored[1] == RuleVersion(
        2, "set-2", doc(2), sha256(doc(2)), NOW + timedelta(minutes=2), "alice", "why 2", ""
    )
    assert rules.rule_version(2) == stored[1]
    assert rules.active_rules() is None and rules.rule_activations() == ()


def test_publishing_the_same_document_again_returns_its_version(rules: Ledger) -> None:
    """Same digest: nothing stored, the first version (with its own name) comes back."""
    first = publish(rules, 1)
    publish(rules, 2)
    again = rules.publish_rules(
        "renamed", doc(1), "carol", "again", "lint", NOW + timedelta(days=1)
    )
    assert again == (first, False)
    assert [v.version for v in rules.rule_versions()] == [1, 2]
    assert publish(rules, 3).version == 3  # the repeat used up no number


def test_the_ledger_computes_the_digest_itself(rules: Ledger) -> None:
    """publish_rules takes no digest: it stores the SHA-256 hex of the document's UTF-8 text.

    One implementation (``rules_digest``); no module of the service, the command line or
    the publish checks hashes documents itself (router/rules/document.py's copy goes).
    """
    assert "digest" not in inspect.signature(Ledger.publish_rules).parameters
    text = "name: café\nstrategies:\n  - name: a\n"
    made = rules.publish_rules("s", text, "a", "", "", NOW)
    assert made.created and made.version.digest == sha256(text) == rules_digest(text)
    assert rules.publish_rules("t", text, "b", "", "", NOW) == (made.version, False)
    root = Path(__file__).parents[2]
    for path in [
        *sorted((root / "router" / "service").glob("*.py")),
        *sorted((root / "router" / "ledger").glob("*.py")),
        root / "router" / "cli.py",
        root / "router" / "rules" / "publish.py",
    ]:
        tree = ast.parse(path.read_text())
        names = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert ("router.rules.document", "digest") not in names, path
        hashes = any(
            isinstance(n, ast.Import) and n.names[0].name == "hashlib" for n in ast.walk(tree)
        )
        assert not hashes or path.name == "base.py", path


# --- activation and rollback --------------------------------------------------------------


def test_activate_and_rollback_record_previous_like_cd_minus(rules: Ledger) -> None:
    """Activate 1, 2; rollback → 1; rollback again → 2 (undoes it); rollback to=1 names it."""
    for n in (1, 2, 3):
        publish(rules, n)
    steps = [
        rules.activate_rules(1, "ops", "first rules", NOW),
        rules.activate_rules(2, "ops", "tuned", NOW + timedelta(hours=1)),
        rules.rollback_rules("ops", "2 misroutes", NOW + timedelta(hours=2)),
    ]
    assert rules.active_rules() == rules.rule_version(1)
    steps.append(rules.rollback_rules("ops", "false alarm", NOW + timedelta(hours=3)))
    assert rules.active_rules() == rules.rule_version(2)
    steps.append(rules.activate_rules(3, "ops", "new", NOW + timedelta(hours=4)))
    steps.append(rules.rollback_rules("ops", "back to the first", NOW + timedelta(hours=5), to=1))
    assert rules.active_rules() == rules.rule_version(1)
    assert [(a.seq, a.action, a.version, a.previous) for a in steps] == [
        (1, "activate", 1, None),
        (2, "activate", 2, 1),
        (3, "rollback", 1, 2),
        (4, "rollback", 2, 1),
        (5, "activate", 3, 2),
        (6, "rollback", 1, 3),
    ]
    assert steps[2] == RuleActivation(3, 1, "rollback", NOW + timedelta(hours=2), "ops",
                                      "2 misroutes", 2)  # fmt: skip
    assert rules.rule_activations() == tuple(steps)
    check_chain(rules.rule_activations())


def test_refused_activations_and_rollbacks_record_nothing(rules: Ledger) -> None:
    """Already active, nothing to roll back, rollback to the active one: RuleVersionStateError."""
    publish(rules, 1)
    publish(rules, 2)
    with pytest.raises(RuleVersionStateError, match="nothing to roll back"):
        rules.rollback_rules("ops", "undo", NOW)
    with pytest.raises(RuleVersionStateError, match="nothing to roll back"):
        rules.rollback_rules("ops", "undo", NOW, to=1)
    rules.activate_rules(1, "ops", "go", NOW)
    with pytest.raises(RuleVersionStateError, match="version 1 is already active"):
        rules.activate_rules(1, "ops", "again", NOW)
    with pytest.raises(RuleVersionStateError, match="no earlier version"):
        rules.rollback_rules("ops", "undo", NOW)
    with pytest.raises(RuleVersionStateError, match="version 1 is already active"):
        rules.rollback_rules("ops", "undo", NOW, to=1)
    assert len(rules.rule_activations()) == 1
    assert rules.rollback_rules("ops", "a named target works", NOW, to=2).previous == 1


def test_unknown_versions_are_not_found_and_named(rules: Ledger) -> None:
    """rule_version, activate_rules and rollback_rules(to=…) of a missing version: NotFound."""
    publish(rules, 1)
    with pytest.raises(NotFoundError, match="version: no rule set version 7"):
        rules.rule_version(7)
    with pytest.raises(NotFoundError, match="version: no rule set version 7"):
        rules.activate_rules(7, "ops", "go", NOW)
    rules.activate_rules(1, "ops", "go", NOW)
    with pytest.raises(NotFoundError, match="to: no rule set version 9"):
        rules.rollback_rules("ops", "undo", NOW, to=9)
    assert len(rules.rule_activations()) == 1


def test_rule_version_state_error_is_failed_precondition() -> None:
    """The service answers RuleVersionStateError with FAILED_PRECONDITION and its message."""
    status = status_of(RuleVersionStateError("version 3 is already active"))
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    assert status.details == "version 3 is already active"


def test_only_if_none_activates_only_while_nothing_is_active(rules: Ledger) -> None:
    """activate_rules(only_if_none=True) is a compare-and-set on "nothing is active".

    Once any version is active (whichever, even the one asked for) it returns None and
    records nothing.
    """
    publish(rules, 1)
    publish(rules, 2)
    first = rules.activate_rules(2, "boot", "initial", NOW, only_if_none=True)
    assert first == RuleActivation(1, 2, "activate", NOW, "boot", "initial", None)
    assert rules.activate_rules(1, "boot", "initial", NOW, only_if_none=True) is None
    assert rules.activate_rules(2, "boot", "initial", NOW, only_if_none=True) is None
    assert rules.rule_activations() == (first,)
    assert rules.activate_rules(1, "ops", "go", NOW) is not None  # unconditional still works


def test_concurrent_compare_and_set_activations_activate_once(backend_url: str) -> None:
    """8 replicas (real threads) CAS-activate different versions at once: exactly one wins."""
    ledgers = replicas(backend_url, THREADS)
    try:
        for n in range(1, THREADS + 1):
            publish(ledgers[0], n)
        made = run_threads(
            [
                partial(ledgers[w].activate_rules, w + 1, f"r{w}", "boot", NOW, only_if_none=True)
                for w in range(THREADS)
            ]
        )
        winners = [a for a in made if a is not None]
        assert len(winners) == 1
        assert ledgers[0].rule_activations() == tuple(winners)
        assert ledgers[-1].active_rule_version() == winners[0].version
    finally:
        for ledger in set(ledgers):
            ledger.close()


def test_a_failing_check_refuses_the_activation_and_records_nothing(rules: Ledger) -> None:
    """A failing ``check`` refuses an activation or rollback; nothing is recorded.

    ``check`` sees the version about to become active (for a rollback, its target).
    """
    for n in (1, 2, 3):
        publish(rules, n)
    rules.activate_rules(1, "ops", "go", NOW)
    rules.activate_rules(2, "ops", "go", NOW)
    seen: list[RuleVersion] = []

    def refuse(version: RuleVersion) -> None:
        seen.append(version)
        raise RuleVersionStateError(f"version {version.version} does not fit")

    with pytest.raises(RuleVersionStateError, match="version 3 does not fit"):
        rules.activate_rules(3, "ops", "go", NOW, check=refuse)
    with pytest.raises(RuleVersionStateError, match="version 1 does not fit"):
        rules.rollback_rules("ops", "undo", NOW, check=refuse)  # back to the previous: 1
    with pytest.raises(RuleVersionStateError, match="version 3 does not fit"):
        rules.rollback_rules("ops", "undo", NOW, to=3, check=refuse)
    assert seen == [rules.rule_version(3), rules.rule_version(1), rules.rule_version(3)]
    assert len(rules.rule_activations()) == 2 and rules.active_rule_version() == 2
    rolled = rules.rollback_rules("ops", "undo", NOW, check=seen.append)
    assert rolled.version == 1 and seen[-1] == rules.rule_version(1)


def test_active_rule_version_is_the_number_of_the_active_rules(rules: Ledger) -> None:
    """active_rule_version() follows activations and rollbacks: active_rules()'s number."""
    assert rules.active_rule_version() is None
    for n in (1, 2):
        publish(rules, n)
    assert rules.active_rule_version() is None
    rules.activate_rules(2, "ops", "go", NOW)
    assert rules.active_rule_version() == 2
    rules.activate_rules(1, "ops", "go", NOW)
    rules.rollback_rules("ops", "undo", NOW)
    active = rules.active_rules()
    assert active is not None and rules.active_rule_version() == active.version == 2


# --- validation ---------------------------------------------------------------------------

NAIVE = datetime(2026, 11, 20, 15, 0)
INVALID: list[tuple[Callable[[Ledger], object], set[str]]] = [
    (lambda lg: lg.publish_rules("", doc(1), "a", "", "", NOW), {"name"}),
    (lambda lg: lg.publish_rules("s", "", "a", "", "", NOW), {"document"}),
    (lambda lg: lg.publish_rules("s", doc(1), " ", "", "", NOW), {"by"}),
    (lambda lg: lg.publish_rules("s", doc(1), "a", "", "", NAIVE), {"now"}),
    (lambda lg: lg.publish_rules("", " \n", "", "", "", NOW), {"name", "document", "by"}),
    (lambda lg: lg.activate_rules(1, "", "go", NOW), {"by"}),
    (lambda lg: lg.activate_rules(1, "ops", "", NOW), {"reason"}),
    (lambda lg: lg.activate_rules(0, "", "", NAIVE), {"version", "by", "reason", "now"}),
    (lambda lg: lg.rollback_rules("", "undo", NOW), {"by"}),
    (lambda lg: lg.rollback_rules("ops", " ", NOW), {"reason"}),
    (lambda lg: lg.rollback_rules("ops", "undo", NOW, to=0), {"to"}),
    (lambda lg: lg.rule_version(0), {"version"}),
    (lambda lg: lg.rule_version(-3), {"version"}),
]  # fmt: skip


@pytest.mark.parametrize(("call", "fields"), INVALID)
def test_invalid_input_names_every_bad_field(
    rules: Ledger, call: Callable[[Ledger], object], fields: set[str]
) -> None:
    """Bad input raises InvalidArgumentError naming exactly the bad fields; nothing changes."""
    publish(rules, 1)
    rules.activate_rules(1, "ops", "go", NOW)
    with pytest.raises(InvalidArgumentError) as caught:
        call(rules)
    assert {v.field for v in caught.value.violations} == fields
    assert len(rules.rule_versions()) == 1 and len(rules.rule_activations()) == 1


# --- the databases enforce the history ----------------------------------------------------

#: Version 1 again as the next number (3): its digest, another number.
_V1_AS_NEXT = (
    "INSERT INTO rule_versions SELECT (SELECT MAX(version) + 1 FROM rule_versions), name, "
    "document, digest, published_at, published_by, reason, lint FROM rule_versions "
    "WHERE version = 1"
)
#: Raw writes that would rewrite the history; the database refuses each one.
TAMPERING = [
    "UPDATE rule_versions SET document = 'rules: []' WHERE version = 1",
    "UPDATE rule_versions SET lint = 'edited'",
    "DELETE FROM rule_versions WHERE version = 2",
    "DELETE FROM rule_versions",
    "UPDATE rule_activations SET version = 2 WHERE seq = 1",
    "DELETE FROM rule_activations",
    # a gap in the numbering, a reused digest, an activation out of order
    "INSERT INTO rule_versions SELECT version + 5, name, document, digest || 'x', published_at, "
    "published_by, reason, lint FROM rule_versions WHERE version = 2",
    "INSERT INTO rule_versions SELECT version + 1, name, document, digest, published_at, "
    "published_by, reason, lint FROM rule_versions WHERE version = 2",
    "INSERT INTO rule_activations SELECT seq + 1, 1, 'activate', activated_at, activated_by, "
    "reason, NULL FROM rule_activations WHERE seq = 1",
    "INSERT INTO rule_activations SELECT seq + 2, 1, 'activate', activated_at, activated_by, "
    "reason, 2 FROM rule_activations WHERE seq = 1",
    "INSERT INTO rule_activations SELECT seq + 1, 2, 'rollback', activated_at, activated_by, "
    "reason, 2 FROM rule_activations WHERE seq = 1",
    # upserts: the next number with a stored digest, a stored seq (PostgreSQL and SQLite)
    f"{_V1_AS_NEXT} ON CONFLICT (digest) DO UPDATE SET document = excluded.document",
    f"{_V1_AS_NEXT} ON CONFLICT (digest) DO NOTHING",
    f"{_V1_AS_NEXT} ON CONFLICT DO NOTHING",
    "INSERT INTO rule_activations SELECT seq, 1, action, activated_at, activated_by, reason, "
    "previous FROM rule_activations WHERE seq = 1 ON CONFLICT (seq) DO UPDATE SET version = 1",
    "INSERT INTO rule_activations SELECT seq, version, action, activated_at, activated_by, "
    "reason, previous FROM rule_activations WHERE seq = 1 ON CONFLICT DO NOTHING",
]
#: SQLite's REPLACE resolves a key or digest clash by deleting the stored row, without
#: firing DELETE triggers; IGNORE would skip the row silently. Each is refused.
SQLITE_TAMPERING = [
    _V1_AS_NEXT.replace("INSERT", "INSERT OR REPLACE", 1),
    _V1_AS_NEXT.replace("INSERT", "REPLACE", 1),
    _V1_AS_NEXT.replace("INSERT", "INSERT OR IGNORE", 1),
    "INSERT OR REPLACE INTO rule_versions SELECT * FROM rule_versions WHERE version = 1",
    "REPLACE INTO rule_versions SELECT version, 'x', 'rules: []', 'x', published_at, "
    "published_by, reason, lint FROM rule_versions WHERE version = 2",
    "INSERT OR REPLACE INTO rule_activations SELECT * FROM rule_activations WHERE seq = 1",
    "REPLACE INTO rule_activations SELECT seq, 1, action, activated_at, activated_by, reason, "
    "previous FROM rule_activations WHERE seq = 1",
    "UPDATE OR REPLACE rule_versions SET version = 1 WHERE version = 2",
]


def _history(url: str) -> tuple[tuple[RuleVersion, ...], tuple[RuleActivation, ...]]:
    """Publish 1 and 2, activate 2; the stored history."""
    with open_ledger(url) as ledger:
        publish(ledger, 1)
        publish(ledger, 2)
        ledger.activate_rules(2, "ops", "go", NOW)
        return ledger.rule_versions(), ledger.rule_activations()


def _unchanged(url: str, before: tuple[object, object]) -> None:
    with open_ledger(url) as ledger:
        assert (ledger.rule_versions(), ledger.rule_activations()) == before


@pytest.mark.parametrize("sql", [*TAMPERING, *SQLITE_TAMPERING])
def test_sqlite_refuses_rewriting_the_history(sql: str, tmp_path: Path) -> None:
    """A raw SQLite connection cannot update, delete, replace or misnumber the history.

    Nor skip a clash silently: INSERT OR REPLACE / REPLACE INTO / INSERT OR IGNORE and
    upserts of a stored digest or seq are refused, and every version stays (the REPLACE of
    version 1's digest as version 3 used to delete version 1).
    """
    url = f"sqlite://{tmp_path / 'l.db'}"
    before = _history(url)
    with sqlite3.connect(tmp_path / "l.db") as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)
    _unchanged(url, before)


@pytest.mark.parametrize("sql", [*TAMPERING, "TRUNCATE rule_versions, rule_activations"])
def test_postgres_refuses_rewriting_the_history(sql: str, pg_url: str) -> None:
    """A raw PostgreSQL connection cannot update, delete, truncate or misnumber the history.

    Upserts (``ON CONFLICT DO UPDATE`` / ``DO NOTHING``) of a stored digest or seq are
    refused too, before the conflict is considered.
    """
    before = _history(pg_url)
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.IntegrityError):
        conn.execute(sql)
    _unchanged(pg_url, before)


# --- durability ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_history_survives_reopening(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Versions, activations and the active version are the same after the ledger reopens."""
    url = (
        f"sqlite://{tmp_path / 'l.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    with open_ledger(url) as ledger:
        for n in (1, 2, 3):
            publish(ledger, n)
        ledger.activate_rules(3, "ops", "go", NOW)
        ledger.rollback_rules("ops", "undo", NOW, to=1)
        before = (ledger.rule_versions(), ledger.rule_activations(), ledger.active_rules())
    with open_ledger(url) as reopened:
        assert (reopened.rule_versions(), reopened.rule_activations()) == before[:2]
        assert reopened.active_rules() == before[2] == reopened.rule_version(1)
        assert publish(reopened, 4).version == 4


def test_sqlite_ledger_from_before_rule_versions_gets_the_tables(tmp_path: Path) -> None:
    """Opening a SQLite ledger file made without the rule tables adds them (IF NOT EXISTS)."""
    url = f"sqlite://{tmp_path / 'l.db'}"
    open_ledger(url).close()
    with sqlite3.connect(tmp_path / "l.db") as conn:
        conn.execute("DROP TABLE rule_activations")  # drops its triggers too
        conn.execute("DROP TABLE rule_versions")
    with open_ledger(url) as ledger:
        assert publish(ledger, 1).version == 1
        assert ledger.activate_rules(1, "ops", "go", NOW).seq == 1
    with sqlite3.connect(tmp_path / "l.db") as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM rule_versions")


def test_postgres_ledger_from_before_rule_versions_gets_the_tables(pg_url: str) -> None:
    """Opening a PostgreSQL ledger made without the rule tables adds them and their triggers."""
    open_ledger(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("DROP TABLE rule_activations, rule_versions")
        conn.execute("DROP FUNCTION rule_history_refuse, rule_history_in_order")
    with open_ledger(pg_url) as ledger:
        assert publish(ledger, 1).version == 1
        assert ledger.activate_rules(1, "ops", "go", NOW).seq == 1
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.IntegrityError):
        conn.execute("DELETE FROM rule_versions")


def test_active_rules_is_one_indexed_lookup(tmp_path: Path) -> None:
    """SQLite plans active_rules' query as primary-key lookups: no scan of the versions."""
    with open_ledger(f"sqlite://{tmp_path / 'l.db'}") as ledger:
        assert isinstance(ledger, SqliteLedger)
        seen: list[str] = []
        conn = ledger._connection()
        conn.set_trace_callback(seen.append)
        ledger.active_rules()
        conn.set_trace_callback(None)
        queries = [s for s in seen if s.startswith("SELECT")]
        assert len(queries) == 1
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + queries[0]))
        assert "SEARCH v USING INTEGER PRIMARY KEY" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_active_rule_version_reads_no_document(tmp_path: Path) -> None:
    """SQLite: active_rule_version is one query on the activation log's key, no version row."""
    with open_ledger(f"sqlite://{tmp_path / 'l.db'}") as ledger:
        assert isinstance(ledger, SqliteLedger)
        publish(ledger, 1)
        ledger.activate_rules(1, "ops", "go", NOW)
        seen: list[str] = []
        conn = ledger._connection()
        conn.set_trace_callback(seen.append)
        assert ledger.active_rule_version() == 1
        conn.set_trace_callback(None)
        queries = [q for q in seen if q.startswith("SELECT")]
        assert len(queries) == 1 and "rule_versions" not in queries[0]
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + queries[0]))
        assert "rule_activations" in plan and "TEMP B-TREE" not in plan, plan


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_publishes_get_distinct_gapless_versions(backend_url: str) -> None:
    """8 threads (separate ledgers on one database) × 5 publishes: versions 1..40, each once."""
    ledgers = replicas(backend_url, THREADS)

    def publisher(w: int) -> list[int]:
        return [publish(ledgers[w], w * PER_THREAD + i).version for i in range(PER_THREAD)]

    try:
        made = run_threads([partial(publisher, w) for w in range(THREADS)])
        numbers = sorted(v for versions in made for v in versions)
        assert numbers == list(range(1, THREADS * PER_THREAD + 1))
        for versions in made:
            assert versions == sorted(versions)  # each thread's publishes in its own order
        stored = ledgers[0].rule_versions()
        assert [v.version for v in stored] == numbers
        assert len({v.digest for v in stored}) == len(stored)
    finally:
        for ledger in set(ledgers):
            ledger.close()


def test_concurrent_publishes_of_one_document_store_it_once(backend_url: str) -> None:
    """8 threads publish the same document at once: one version, and all get it back."""
    ledgers = replicas(backend_url, THREADS)
    try:
        made = run_threads([partial(publish, ledgers[w], 1) for w in range(THREADS)])
        assert {v.version for v in made} == {1}
        assert len(ledgers[0].rule_versions()) == 1
    finally:
        for ledger in set(ledgers):
            ledger.close()


def test_concurrent_activations_chain_previous(backend_url: str) -> None:
    """8 threads × 5 activations/rollbacks at once: seq gapless, each previous = row before."""
    ledgers = replicas(backend_url, THREADS)

    def operator(w: int) -> int:
        done = 0
        for i in range(PER_THREAD):
            try:
                if (w + i) % 3 == 2:
                    ledgers[w].rollback_rules(f"ops-{w}", f"undo {i}", NOW)
                else:
                    ledgers[w].activate_rules((w + i) % 4 + 1, f"ops-{w}", f"go {i}", NOW)
                done += 1
            except RuleVersionStateError:  # already active, or nothing to roll back yet
                pass
        return done

    try:
        for n in (1, 2, 3, 4):
            publish(ledgers[0], n)
        done = run_threads([partial(operator, w) for w in range(THREADS)])
        history = ledgers[0].rule_activations()
        assert len(history) == sum(done) > THREADS
        check_chain(history)
        for before, after in itertools.pairwise(history):
            if after.action == "rollback":  # no `to`: back to the version before
                assert after.version == before.previous
        assert ledgers[-1].active_rules() == ledgers[0].rule_version(history[-1].version)
    finally:
        for ledger in set(ledgers):
            ledger.close()
