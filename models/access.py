"""Who calls: roles, principals and API tokens (docs/security.md).

A caller is a :class:`Principal`: a name and the roles it holds, proven by a bearer token
the ledger issued (:class:`ApiToken`) or by a client certificate signed by the CA the
server trusts. What each role may call is the service's method table
(``router.service.access``).

A token is ``rt_<token_id>_<secret>``: the id finds the token's row, the secret is checked
against the SHA-256 digest stored there. The secret is 32 random bytes (256 bits), so a
plain digest is as strong as a slow password hash would be and costs microseconds per call;
the token itself is shown once, when it is issued, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models.errors import quoted

TOKEN_PREFIX = "rt_"
"""Every token starts with this, so scanners and people can tell what leaked."""


class Role(StrEnum):
    """What a principal may do; the method table says which role may call which method."""

    OMS = "oms"
    """The order management system: plan, route, confirm and release its own reservations."""
    FEED = "feed"
    """Stock feeds: snapshots and deltas of on-hand stock."""
    PLANNER = "planner"
    """Rule sets: validate, lint, test, publish, activate, roll back."""
    ANALYST = "analyst"
    """Read-only: plans without side effects, stock, rules, calendars."""
    ADMIN = "admin"
    """Everything, including other principals' reservations."""

    @staticmethod
    def parse_all(values: Iterable[str]) -> frozenset[Role]:
        """The roles named (case-insensitive); ValueError naming an unknown one."""
        known = {r.value: r for r in Role}
        roles = set()
        for value in values:
            role = known.get(value.strip().lower())
            if role is None:
                raise ValueError(f"unknown role {quoted(value)} (roles: {', '.join(known)})")
            roles.add(role)
        return frozenset(roles)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its name, roles and how it proved them (token, mtls, open)."""

    name: str
    roles: frozenset[Role]
    via: str

    def has_any(self, allowed: frozenset[Role]) -> bool:
        """Whether it holds one of ``allowed`` (admin holds them all)."""
        return Role.ADMIN in self.roles or bool(self.roles & allowed)


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An issued token as the ledger keeps it (never its secret): id, principal, roles, life."""

    token_id: str
    name: str
    roles: frozenset[Role]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def new_token() -> tuple[str, str, str]:
    """A fresh token: (token_id, the token to hand out, the digest to store)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    """The SHA-256 hex digest of a token's secret (what the ledger stores)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not token_id or not secret or len(token) > 200:
        return None
    return token_id, secret


def secret_matches(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` hashes to ``stored_digest`` (compared in constant time)."""
    return hmac.compare_digest(digest(secret), stored_digest)
