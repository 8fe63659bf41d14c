"""API tokens and who holds each reservation: :class:`AccessStore` and its SQL.

Tokens live in the ledger so that every replica on one database knows the same ones and a
revocation reaches all of them. Only a token's SHA-256 digest is stored
(:mod:`models.access`); the token is shown once, when issued.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol

from models.access import ApiToken, Role, new_token
from models.errors import FieldViolation, InvalidArgumentError, NotFoundError
from router.ledger.driver import Row, SqlDriver, Tx

MAX_TOKEN_NAME = 128
"""The longest principal name a token may carry."""

_TOKEN_COLUMNS = "token_id, name, roles, created_at, revoked_at"


class AccessStore(Protocol):
    """Issued tokens and the owner (principal) of each reservation."""

    @abstractmethod
    def issue_token(self, name: str, roles: frozenset[Role], now: datetime) -> tuple[ApiToken, str]:
        """A new token for principal ``name`` with ``roles``: its record and the token itself.

        Raises InvalidArgumentError on an empty or over-long name or no role.
        """

    @abstractmethod
    def revoke_token(self, token_id: str, now: datetime) -> ApiToken:
        """Revoke the token (idempotent: a revoked one stays revoked at its first time)."""

    @abstractmethod
    def tokens(self) -> list[ApiToken]:
        """Every token ever issued, oldest first."""

    @abstractmethod
    def token_digest(self, token_id: str) -> tuple[ApiToken, str] | None:
        """The token with this id and its stored digest; None when there is none."""

    @abstractmethod
    def reservation_owner(self, reservation_id: str) -> str | None:
        """The principal that made the reservation; None when it was made without one."""


def check_token_request(name: str, roles: frozenset[Role]) -> None:
    """InvalidArgumentError unless ``name`` is 1..MAX_TOKEN_NAME characters and a role is given."""
    problems = []
    if not name.strip() or len(name) > MAX_TOKEN_NAME:
        problems.append(FieldViolation("name", f"must be 1 to {MAX_TOKEN_NAME} characters"))
    if not roles:
        problems.append(FieldViolation("roles", "name at least one role"))
    if problems:
        raise InvalidArgumentError(problems)


class SqlAccess(SqlDriver):
    """The :class:`AccessStore` operations in SQL."""

    def _token(self, row: Row) -> ApiToken:
        """An :class:`ApiToken` from a row of ``api_tokens``."""
        revoked = row["revoked_at"]
        return ApiToken(
            token_id=str(row["token_id"]),
            name=str(row["name"]),
            roles=Role.parse_all([r for r in str(row["roles"]).split(",") if r]),
            created_at=self.from_ts(row["created_at"]),
            revoked_at=None if revoked is None else self.from_ts(revoked),
        )

    def issue_token(self, name: str, roles: frozenset[Role], now: datetime) -> tuple[ApiToken, str]:
        """See :meth:`AccessStore.issue_token`."""
        check_token_request(name, roles)
        token_id, token, digest = new_token()
        made = ApiToken(token_id, name, roles, now)

        def work(tx: Tx) -> None:
            tx.run(
                "INSERT INTO api_tokens (token_id, name, roles, digest, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_id, name, ",".join(sorted(roles)), digest, self.ts(now)),
            )

        self.transaction(work)
        return made, token

    def revoke_token(self, token_id: str, now: datetime) -> ApiToken:
        """See :meth:`AccessStore.revoke_token`."""

        def work(tx: Tx) -> ApiToken:
            tx.run(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (self.ts(now), token_id),
            )
            row = tx.one(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_id = ?", (token_id,))
            if row is None:
                raise NotFoundError(f"token_id: no token {token_id!r}")
            return self._token(row)

        return self.transaction(work)

    def tokens(self) -> list[ApiToken]:
        """See :meth:`AccessStore.tokens`."""
        rows = self.read(
            lambda tx: tx.all(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at")
        )
        return [self._token(row) for row in rows]

    def token_digest(self, token_id: str) -> tuple[ApiToken, str] | None:
        """See :meth:`AccessStore.token_digest`."""
        row = self.read(
            lambda tx: tx.one(
                f"SELECT {_TOKEN_COLUMNS}, digest FROM api_tokens WHERE token_id = ?", (token_id,)
            )
        )
        return None if row is None else (self._token(row), str(row["digest"]))

    def reservation_owner(self, reservation_id: str) -> str | None:
        """See :meth:`AccessStore.reservation_owner`."""
        row = self.read(
            lambda tx: tx.one(
                "SELECT owner FROM reservation_owners WHERE reservation_id = ?", (reservation_id,)
            )
        )
        return None if row is None else str(row["owner"])
