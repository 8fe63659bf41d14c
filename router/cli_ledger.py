"""Which ledger a command opens: ``--ledger``, ``--ledger-url-file`` or $ROUTER_LEDGER_URL.

Shared by every command that opens a ledger (``router serve``, ``router stock import``,
``router tokens``), so that none needs the URL, and its password, on the command line
(docs/ledger.md, "Secrets").
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from models.errors import FieldViolation, InvalidArgumentError
from router.service.config import LEDGER_URL_ENV, ledger_url


def ledger_url_of(args: argparse.Namespace, default: str | None) -> str:
    """The URL of :func:`add_ledger_flags`' flags, else $ROUTER_LEDGER_URL, else ``default``.

    Raises InvalidArgumentError (exit 2) when none gives one, or the file is unreadable.
    """
    url = ledger_url(args.ledger, args.ledger_url_file, os.environ, default)
    if url is None:
        why = f"give --ledger, --ledger-url-file or {LEDGER_URL_ENV}"
        raise InvalidArgumentError([FieldViolation("--ledger", why)])
    return url


def add_ledger_flags(command: argparse.ArgumentParser, default: str | None, note: str = "") -> None:
    """``--ledger URL`` or ``--ledger-url-file PATH``; without either, $ROUTER_LEDGER_URL.

    A URL with a password is better not given with ``--ledger``: every user of the
    machine can read it in ``ps``. ``default`` is used when nothing names a ledger (None:
    one must be named); ``note`` ends the default's description in the help.
    """
    fallback = f"${LEDGER_URL_ENV}, else {default}" if default else f"${LEDGER_URL_ENV}"
    source = command.add_mutually_exclusive_group()
    source.add_argument(
        "--ledger",
        metavar="URL",
        help="ledger URL: sqlite://PATH, memory:// or postgresql://… (default: "
        f"{fallback}{note}). Visible in ps: give a password with --ledger-url-file, "
        f"{LEDGER_URL_ENV} or libpq's PGPASSWORD / PGPASSFILE instead (docs/ledger.md)",
    )
    source.add_argument(
        "--ledger-url-file",
        type=Path,
        metavar="PATH",
        help="read the ledger URL from the first line of this file (e.g. a mounted secret)",
    )
