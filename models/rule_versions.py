"""Versions of the routing rule set: what planners published and which version is active.

Pure values; the ledger (router/ledger, docs/ledger.md) numbers, stores and activates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: :attr:`RuleActivation.action` of an explicit activation.
ACTIVATE = "activate"
#: :attr:`RuleActivation.action` of a rollback.
ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class RuleVersion:
    """One published rule set, immutable once stored.

    ``version`` is assigned by the ledger (1, 2, 3 … without gaps); ``digest`` is the
    SHA-256 hex of ``document``, which is the YAML text exactly as published.
    ``published_at`` is timezone-aware (UTC); ``lint`` holds the lint warnings (may be empty).
    """

    version: int
    name: str
    document: str
    digest: str
    published_at: datetime
    published_by: str
    reason: str
    lint: str = ""


@dataclass(frozen=True, slots=True)
class RuleActivation:
    """One entry of the activation history: ``version`` became the active rule set.

    ``seq`` orders the history (1, 2, 3 …); ``action`` is "activate" or "rollback";
    ``previous`` is the version active before (None for the first activation).
    ``at`` is timezone-aware (UTC).
    """

    seq: int
    version: int
    action: str
    at: datetime
    by: str
    reason: str
    previous: int | None
