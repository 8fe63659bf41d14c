"""libpq's environment fills in what a ledger URL leaves out, so no secret need be in it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from router.ledger import open_ledger
from tests.ledger.conftest import CAPACITIES, POSITIONS, scenario

pytestmark = pytest.mark.timeout(60)


def test_user_database_and_options_come_from_libpq_variables(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    """``postgresql://HOST:PORT`` opens the ledger that PGUSER, PGDATABASE, PGOPTIONS name.

    (PGPASSWORD or PGPASSFILE supply a password the same way; the test server trusts.)
    """
    parts = urlsplit(pg_url)
    [options] = parse_qs(parts.query)["options"]  # -csearch_path=<the test's schema>
    schema = options.split("=", 1)[1]
    monkeypatch.setenv("PGUSER", parts.username or "")
    monkeypatch.setenv("PGDATABASE", parts.path.lstrip("/"))
    monkeypatch.setenv("PGOPTIONS", options)
    bare = f"postgresql://{parts.hostname}:{parts.port}"
    with open_ledger(bare) as ledger:
        ledger.load(*scenario(POSITIONS, CAPACITIES))
        assert ledger.stock().positions[("N1", "A")].on_hand == 10
    monkeypatch.delenv("PGOPTIONS")
    with psycopg.connect(pg_url) as conn:  # the tables are in the schema PGOPTIONS named
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = 'positions'",
            (schema,),
        ).fetchone()
    assert found == (1,)
