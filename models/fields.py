"""Typed reads of raw records (CSV rows, JSON objects, proto dicts) that collect violations.

Each reader takes the raw mapping, the field name and a :class:`Violations` collector, and
returns a typed value or ``None`` after recording why the field is bad. CSV cells arrive as
strings, JSON values as numbers and booleans; both are accepted where they mean the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any

from models.errors import Violations, clipped, quoted

Raw = Mapping[str, object]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
YEARS = (1970, 2999)
"""Dates and timestamps outside these years are refused, so date arithmetic cannot overflow."""

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def is_blank(value: object) -> bool:
    """True for a missing value: None, an empty string or a float NaN (pandas' empty cell)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def text(raw: Raw, field: str, v: Violations, *, required: bool = True) -> str | None:
    """A non-empty string."""
    value = raw.get(field)
    if is_blank(value):
        if required:
            v.add(field, "is required")
        return None
    if isinstance(value, bool | int | float):
        return str(value)
    if not isinstance(value, str):
        v.add(field, f"must be a string, got {type(value).__name__}")
        return None
    return value.strip()


MAX_MONEY = 100_000.0
"""Largest single cost, rate or penalty accepted (currency units); keeps solver sums in int64."""
MAX_WEIGHT_KG = 1_000.0
"""Heaviest unit accepted: a parcel network, not freight."""
MAX_HOURS = 720.0
"""Longest processing time accepted (30 days)."""
MAX_DAYS = 60
"""Longest transit accepted."""
MAX_QUANTITY = 1_000_000
"""Most units on one order line."""
MAX_INT32 = 2**31 - 1
"""Largest count (stock, capacity, priority): what the wire's int32 fields carry."""
MAX_INT64 = 2**63 - 1
"""Largest sequence number or counter: what the wire's int64 fields (and SQL bigint) carry."""
MAX_NUMBER = 1e12
"""Bound on any other number, so arithmetic on it never overflows."""


def _real(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not one (too large included)."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _whole(value: object) -> int | None:
    """``value`` as an exact integer (``3``, ``"3"``, ``3.0``, ``"3e2"``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    real = _real(value)
    return int(real) if real is not None and real.is_integer() else None


def _is_number(value: object) -> bool:
    """True for an int or a float: what a strict reader takes as a number (not text)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text_hint(value: object, strict: bool) -> str:
    """What a strict reader says of text that a lenient one would have read as a number."""
    return (
        ", which is text: write a number without quotes"
        if strict and isinstance(value, str)
        else ""
    )


def number(
    raw: Raw,
    field: str,
    v: Violations,
    *,
    required: bool = True,
    minimum: float | None = None,
    maximum: float = MAX_NUMBER,
    strictly_positive: bool = False,
    strict: bool = False,
) -> float | None:
    """A finite float within the given bounds.

    ``strict`` reads a value as a YAML 1.2 document holds it: only a number is a number,
    and text (``"5"``, as quoted) is refused. Without it text such as ``"5"`` is read too,
    as CSV cells and form fields arrive.
    """
    value = raw.get(field)
    if is_blank(value):
        if required:
            v.add(field, "is required")
        return None
    result = _real(value) if _is_number(value) or not strict else None
    if result is None:
        v.add(field, f"must be a finite number, got {quoted(value)}{_text_hint(value, strict)}")
    elif strictly_positive and result <= 0:
        v.add(field, f"must be > 0, got {result:g}")
    elif minimum is not None and result < minimum:
        v.add(field, f"must be >= {minimum:g}, got {result:g}")
    elif result > maximum:
        v.add(field, f"must be <= {maximum:g}, got {result:g}")
    else:
        return result
    return None


def money(
    raw: Raw, field: str, v: Violations, *, required: bool = True, strict: bool = False
) -> float | None:
    """A cost in currency units, 0 to :data:`MAX_MONEY` (``strict`` as :func:`number`)."""
    return number(raw, field, v, required=required, minimum=0, maximum=MAX_MONEY, strict=strict)


def integer(
    raw: Raw,
    field: str,
    v: Violations,
    *,
    required: bool = True,
    minimum: int = -MAX_INT32,
    maximum: int = MAX_INT32,
    strict: bool = False,
) -> int | None:
    """A whole number (``3`` or ``"3"`` or ``3.0``; not ``3.5``) within the bounds.

    ``strict`` as :func:`number`: ``"3"`` is text, refused.
    """
    value = raw.get(field)
    if is_blank(value):
        if required:
            v.add(field, "is required")
        return None
    result = _whole(value) if _is_number(value) or not strict else None
    if result is None:
        v.add(field, f"must be an integer, got {quoted(value)}{_text_hint(value, strict)}")
    elif result < minimum:
        v.add(field, f"must be >= {minimum}, got {quoted(result)}")
    elif result > maximum:
        v.add(field, f"must be <= {maximum}, got {quoted(result)}")
    else:
        return result
    return None


def boolean(
    raw: Raw, field: str, v: Violations, *, default: bool | None = None, strict: bool = False
) -> bool | None:
    """``true``/``false`` (also 1/0, yes/no); ``default`` when blank, else required.

    ``strict`` reads a value as a YAML 1.2 document holds it: only ``true`` and ``false``
    are booleans; ``yes``, ``no``, ``on``, ``off`` and ``1`` are refused.
    """
    value = raw.get(field)
    if is_blank(value):
        if default is None:
            v.add(field, "is required")
        return default
    if isinstance(value, bool):
        return value
    if not strict:
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    v.add(field, f"must be true or false, got {quoted(value)}")
    return None


def local_time(raw: Raw, field: str, v: Violations) -> time | None:
    """A wall-clock time ``HH:MM`` (24 h)."""
    value = text(raw, field, v)
    if value is None:
        return None
    try:
        parsed = datetime.strptime(value, "%H:%M")
    except ValueError:
        v.add(field, f"must be a time HH:MM, got {quoted(value)}")
        return None
    return parsed.time()


def timestamp(raw: Raw, field: str, v: Violations) -> datetime | None:
    """An RFC 3339 timestamp with an offset (``2026-11-20T14:05:00Z``), years 1970–2999."""
    value = text(raw, field, v)
    if value is None:
        return None
    if not _RFC3339.fullmatch(value):
        v.add(
            field, f"must be an RFC 3339 timestamp like 2026-11-20T14:05:00Z, got {quoted(value)}"
        )
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as error:
        v.add(field, f"is not a valid timestamp: {error}")
        return None
    if not YEARS[0] <= parsed.year <= YEARS[1]:
        v.add(field, f"must be in the years {YEARS[0]}–{YEARS[1]}, got {quoted(value)}")
        return None
    return parsed


def calendar_date(raw: Raw, field: str, v: Violations, *, required: bool = False) -> date | None:
    """A calendar date ``YYYY-MM-DD``, years 1970–2999."""
    value = text(raw, field, v, required=required)
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError:
        v.add(field, f"must be a date YYYY-MM-DD, got {quoted(value)}")
        return None
    if not YEARS[0] <= parsed.year <= YEARS[1]:
        v.add(field, f"must be in the years {YEARS[0]}–{YEARS[1]}, got {quoted(value)}")
        return None
    return parsed


def tags(raw: Raw, field: str) -> frozenset[str]:
    """A ``;``-separated tag list (or a JSON list); blank means no tags."""
    value = raw.get(field)
    if is_blank(value):
        return frozenset()
    items = value if isinstance(value, list | tuple) else str(value).split(";")
    return frozenset(str(t).strip() for t in items if str(t).strip())


def unknown_keys(raw: Mapping[Any, object], known: Iterable[str], v: Violations) -> None:
    """Record every key of ``raw`` that is not ``known``: a typo must not pass as a no-op."""
    known = tuple(known)
    for key in sorted(set(map(str, raw)) - set(known)):
        v.add(clipped(key), f"is not a known key (known: {', '.join(known)})")


def names(raw: Raw, field: str, v: Violations) -> list[tuple[str, str]] | None:
    """A name or a non-empty list of names, each with its path (``field`` or ``field[i]``).

    ``None`` when the field is absent or is neither; bad items are recorded and left out.
    """
    value = raw.get(field)
    if value is None:
        return None
    items = [value] if isinstance(value, str | int) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not items:
        v.add(field, "must be a name or a non-empty list of names")
        return None
    out = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]" if isinstance(value, list) else field
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            v.add(path, f"must be a non-empty name, got {quoted(item)}")
        else:
            out.append((path, str(item).strip()))
    return out
