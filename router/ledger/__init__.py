"""Stock, reservations and node capacity: one :class:`Ledger` interface, three backends.

``open_ledger(url)`` picks the backend from the URL (docs/ledger.md):

- ``memory://``: dictionaries in this process (tests);
- ``sqlite:///var/lib/router/ledger.db`` (the path after ``sqlite://``; ``sqlite://:memory:``
  for a throw-away database): the embedded default;
- ``postgresql://user@host:5432/db`` (any libpq URL, e.g. ``?options=-csearch_path%3Dschema``):
  shared by any number of replicas.
"""

from __future__ import annotations

from models.errors import InvalidArgumentError, Violations
from router.ledger.ledger import Ledger

__all__ = ["DEFAULT_LEDGER_URL", "Ledger", "open_ledger"]

DEFAULT_LEDGER_URL = "sqlite://.router/ledger.db"
"""The embedded default: a SQLite file in ``.router/`` under the working directory."""


def open_ledger(url: str) -> Ledger:
    """Open (and create the schema of, when missing) the ledger ``url`` names."""
    if url == "memory://":
        from router.ledger.memory import MemoryLedger

        return MemoryLedger()
    if url.startswith("sqlite://"):
        from router.ledger.sqlite import SqliteLedger

        path = url.removeprefix("sqlite://")
        if path in (":memory:", "/:memory:"):
            return SqliteLedger(":memory:")
        if path:
            return SqliteLedger(path)
    if url.startswith(("postgresql://", "postgres://")):
        from router.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    v = Violations()
    given = url.split("://", 1)[0] + "://…" if "://" in url else "no scheme"
    v.add("ledger", f"expected memory://, sqlite://PATH or postgresql://…, got {given}")
    raise InvalidArgumentError(v.items)
