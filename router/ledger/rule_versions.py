"""Rule-set versions and their activations: :class:`RuleVersionStore` and its SQL."""

from __future__ import annotations

#: Operations recorded under a request_id; one id serves exactly one operation.
from abc import abstractmethod
from datetime import datetime
from typing import Protocol

from models.rule_versions import ACTIVATE, ROLLBACK, RuleActivation, RuleVersion
from router.ledger.base import (
    Publication,
    RuleCheck,
    check_activation,
    check_version,
    no_rule_version,
    rollback_target,
    rules_digest,
    validate_publish,
    validate_rule_change,
)
from router.ledger.driver import Row, SqlDriver, Tx

#: Rule versions (every column :class:`RuleVersion` is read from), by key, by digest, all.
_RULE_BY_VERSION = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions WHERE version = ?"
)

_RULE_BY_DIGEST = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions WHERE digest = ?"
)

_RULES = (
    "SELECT version, name, document, digest, published_at, published_by, reason, lint "
    "FROM rule_versions ORDER BY version"
)

_INSERT_RULE = (
    "INSERT INTO rule_versions "
    "(version, name, document, digest, published_at, published_by, reason, lint) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

#: Activations (every column :class:`RuleActivation` is read from): the last one, all.
_LAST_ACTIVATION = (
    "SELECT seq, version, action, activated_at, activated_by, reason, previous "
    "FROM rule_activations ORDER BY seq DESC LIMIT 1"
)

_ACTIVATIONS = (
    "SELECT seq, version, action, activated_at, activated_by, reason, previous "
    "FROM rule_activations ORDER BY seq"
)

_INSERT_ACTIVATION = (
    "INSERT INTO rule_activations "
    "(seq, version, action, activated_at, activated_by, reason, previous) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

#: The active version: the activation with the highest seq, joined on the version's key.
_ACTIVE_RULES = (
    "SELECT v.version, v.name, v.document, v.digest, v.published_at, v.published_by, "
    "v.reason, v.lint FROM rule_activations a JOIN rule_versions v ON v.version = a.version "
    "ORDER BY a.seq DESC LIMIT 1"
)

#: The number of the active version alone: the activation with the highest seq.
_ACTIVE_VERSION = "SELECT version FROM rule_activations ORDER BY seq DESC LIMIT 1"


class RuleVersionStore(Protocol):
    """Immutable rule-set versions and the append-only history of which one is active."""

    @abstractmethod
    def publish_rules(
        self, name: str, document: str, by: str, reason: str, lint: str, now: datetime
    ) -> Publication:
        """Store ``document`` as the next version (1, 2, 3 … without gaps); does not activate.

        The version's digest is :func:`rules_digest` of ``document``, computed here.
        Idempotent by content: when a version with that digest exists already, nothing is
        stored and that version is returned (with its own name, reason and lint) with
        ``created`` False. ``name``, ``document`` and ``by`` must not be empty.
        """

    @abstractmethod
    def rule_versions(self) -> tuple[RuleVersion, ...]:
        """Every published version, ascending by version."""

    @abstractmethod
    def rule_version(self, version: int) -> RuleVersion:
        """The version numbered ``version``; raises NotFoundError naming it when absent."""

    @abstractmethod
    def activate_rules(
        self,
        version: int,
        by: str,
        reason: str,
        now: datetime,
        *,
        only_if_none: bool = False,
        check: RuleCheck | None = None,
    ) -> RuleActivation | None:
        """Make ``version`` the active rule set (action "activate").

        Raises NotFoundError when it does not exist and RuleVersionStateError when it is
        already active. The activation records the version active before as ``previous``.

        With ``only_if_none`` it is a compare-and-set: when any version is active already,
        nothing is recorded and None is returned (decided under the same lock and in the
        same transaction as the activation, so of replicas racing, exactly one activates).
        Without it the result is never None. ``check`` is called with the version before
        anything is recorded (see :data:`RuleCheck`).
        """

    @abstractmethod
    def rollback_rules(
        self,
        by: str,
        reason: str,
        now: datetime,
        to: int | None = None,
        *,
        check: RuleCheck | None = None,
    ) -> RuleActivation:
        """Make an earlier version active again (action "rollback").

        The target is ``to`` when given (NotFoundError when it does not exist,
        RuleVersionStateError when it is the active one), else the version that was active
        before the current activation, so a second rollback undoes the first. Raises
        RuleVersionStateError when nothing is active, or when the current activation has
        no previous version and ``to`` is not given. ``check`` is called with the target
        version before anything is recorded (see :data:`RuleCheck`).
        """

    @abstractmethod
    def active_rule_version(self) -> int | None:
        """The number of the active version (latest activation); None when none was ever.

        Read on every routing request: one primary-key lookup of the activation log, no
        document (:meth:`rule_version` fetches that, once per version and process).
        """

    @abstractmethod
    def active_rules(self) -> RuleVersion | None:
        """The version of the latest activation, with its document; None when none was ever."""

    @abstractmethod
    def rule_activations(self) -> tuple[RuleActivation, ...]:
        """The activation history, ascending by seq."""


class SqlRuleVersions(SqlDriver):
    """The :class:`RuleVersionStore` operations in SQL (docs/ledger.md)."""

    # --- rule-set versions -------------------------------------------------------------

    def _rules_lock(self, tx: Tx) -> None:
        """Serialise rule-set writers until the transaction ends (SQLite: BEGIN IMMEDIATE does).

        Numbers (max + 1) and ``previous`` are read and then written; the lock makes that
        read-then-write atomic across replicas.
        """

    def _rule(self, row: Row) -> RuleVersion:
        return RuleVersion(
            version=int(row["version"]),
            name=str(row["name"]),
            document=str(row["document"]),
            digest=str(row["digest"]),
            published_at=self.from_ts(row["published_at"]),
            published_by=str(row["published_by"]),
            reason=str(row["reason"]),
            lint=str(row["lint"]),
        )

    def _activation(self, row: Row) -> RuleActivation:
        return RuleActivation(
            seq=int(row["seq"]),
            version=int(row["version"]),
            action=str(row["action"]),
            at=self.from_ts(row["activated_at"]),
            by=str(row["activated_by"]),
            reason=str(row["reason"]),
            previous=None if row["previous"] is None else int(row["previous"]),
        )

    def publish_rules(
        self, name: str, document: str, by: str, reason: str, lint: str, now: datetime
    ) -> Publication:
        """See :meth:`Ledger.publish_rules`."""
        at = validate_publish(name, document, by, reason, lint, now)
        digest = rules_digest(document)

        def work(tx: Tx) -> Publication:
            self._rules_lock(tx)
            same = tx.one(_RULE_BY_DIGEST, (digest,))
            if same is not None:
                return Publication(self._rule(same), created=False)
            top = tx.one("SELECT COALESCE(MAX(version), 0) AS top FROM rule_versions")
            assert top is not None
            made = RuleVersion(int(top["top"]) + 1, name, document, digest, at, by, reason, lint)
            tx.run(
                _INSERT_RULE,
                (made.version, name, document, digest, self.ts(at), by, reason, lint),
            )
            return Publication(made, created=True)

        return self.transaction(work)

    def rule_versions(self) -> tuple[RuleVersion, ...]:
        """See :meth:`Ledger.rule_versions`."""
        rows = self.read(lambda tx: tx.all(_RULES))
        return tuple(self._rule(r) for r in rows)

    def rule_version(self, version: int) -> RuleVersion:
        """See :meth:`Ledger.rule_version`."""
        check_version(version)
        row = self.read(lambda tx: self._rule_row(tx, version))
        if row is None:
            raise no_rule_version(version)
        return self._rule(row)

    def _rule_row(self, tx: Tx, version: int) -> Row | None:
        return tx.one(_RULE_BY_VERSION, (version,))

    def _current_activation(self, tx: Tx) -> RuleActivation | None:
        row = tx.one(_LAST_ACTIVATION)
        return None if row is None else self._activation(row)

    def _rule_exists(self, tx: Tx, version: int) -> bool:
        return tx.one("SELECT 1 FROM rule_versions WHERE version = ?", (version,)) is not None

    def _check_target(self, tx: Tx, version: int, check: RuleCheck | None) -> None:
        """Call ``check`` with the stored ``version`` (which exists), if there is a check."""
        if check is not None:
            row = self._rule_row(tx, version)
            assert row is not None, "the target version was found in this transaction"
            check(self._rule(row))

    def _append_activation(
        self,
        tx: Tx,
        current: RuleActivation | None,
        version: int,
        action: str,
        at: datetime,
        by: str,
        reason: str,
    ) -> RuleActivation:
        made = RuleActivation(
            seq=1 if current is None else current.seq + 1,
            version=version,
            action=action,
            at=at,
            by=by,
            reason=reason,
            previous=None if current is None else current.version,
        )
        tx.run(
            _INSERT_ACTIVATION,
            (made.seq, version, action, self.ts(at), by, reason, made.previous),
        )
        return made

    def activate_rules(
        self,
        version: int,
        by: str,
        reason: str,
        now: datetime,
        *,
        only_if_none: bool = False,
        check: RuleCheck | None = None,
    ) -> RuleActivation | None:
        """See :meth:`Ledger.activate_rules`: the compare-and-set runs under ``_rules_lock``."""
        at = validate_rule_change(by, reason, now, version)

        def work(tx: Tx) -> RuleActivation | None:
            self._rules_lock(tx)
            current = self._current_activation(tx)
            if only_if_none and current is not None:
                return None
            active = None if current is None else current.version
            check_activation(active, version, lambda n: self._rule_exists(tx, n))
            self._check_target(tx, version, check)
            return self._append_activation(tx, current, version, ACTIVATE, at, by, reason)

        return self.transaction(work)

    def rollback_rules(
        self,
        by: str,
        reason: str,
        now: datetime,
        to: int | None = None,
        *,
        check: RuleCheck | None = None,
    ) -> RuleActivation:
        """See :meth:`Ledger.rollback_rules`."""
        at = validate_rule_change(by, reason, now, to, "to")

        def work(tx: Tx) -> RuleActivation:
            self._rules_lock(tx)
            current = self._current_activation(tx)
            target = rollback_target(
                None if current is None else (current.version, current.previous),
                to,
                lambda n: self._rule_exists(tx, n),
            )
            self._check_target(tx, target, check)
            return self._append_activation(tx, current, target, ROLLBACK, at, by, reason)

        return self.transaction(work)

    def active_rule_version(self) -> int | None:
        """See :meth:`Ledger.active_rule_version`: the last activation by its primary key."""
        return self.read(self._active_rule_version)

    def _active_rule_version(self, tx: Tx) -> int | None:
        row = tx.one(_ACTIVE_VERSION)
        return None if row is None else int(row["version"])

    def active_rules(self) -> RuleVersion | None:
        """See :meth:`Ledger.active_rules`: the latest activation by its primary key, one query."""
        row = self.read(lambda tx: tx.one(_ACTIVE_RULES))
        return None if row is None else self._rule(row)

    def rule_activations(self) -> tuple[RuleActivation, ...]:
        """See :meth:`Ledger.rule_activations`."""
        rows = self.read(lambda tx: tx.all(_ACTIVATIONS))
        return tuple(self._activation(r) for r in rows)
