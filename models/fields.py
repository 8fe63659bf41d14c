"""Typed reads of raw records (CSV rows, JSON objects, proto dicts) that collect violations.

Each reader takes the raw mapping, the field name and a :class:`Violations` collector, and
returns a typed value or ``None`` after recording why the field is bad. CSV cells arrive as
strings, JSON values as numbers and booleans; both are accepted where they mean the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time

from models.errors import Violations

Raw = Mapping[str, object]

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


def number(
    raw: Raw,
    field: str,
    v: Violations,
    *,
    required: bool = True,
    minimum: float | None = None,
    maximum: float | None = None,
    strictly_positive: bool = False,
) -> float | None:
    """A finite float within the given bounds."""
    value = raw.get(field)
    if is_blank(value):
        if required:
            v.add(field, "is required")
        return None
    if isinstance(value, bool):
        v.add(field, "must be a number, got a boolean")
        return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v.add(field, f"must be a number, got {value!r}")
        return None
    if not math.isfinite(result):
        v.add(field, f"must be finite, got {value!r}")
        return None
    if strictly_positive and result <= 0:
        v.add(field, f"must be > 0, got {result:g}")
        return None
    if minimum is not None and result < minimum:
        v.add(field, f"must be >= {minimum:g}, got {result:g}")
        return None
    if maximum is not None and result > maximum:
        v.add(field, f"must be <= {maximum:g}, got {result:g}")
        return None
    return result


def integer(
    raw: Raw, field: str, v: Violations, *, required: bool = True, minimum: int | None = None
) -> int | None:
    """A whole number (``3`` or ``"3"`` or ``3.0``; not ``3.5``) at or above ``minimum``."""
    value = raw.get(field)
    if is_blank(value):
        if required:
            v.add(field, "is required")
        return None
    if isinstance(value, bool):
        v.add(field, "must be an integer, got a boolean")
        return None
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v.add(field, f"must be an integer, got {value!r}")
        return None
    if not math.isfinite(as_float) or as_float != int(as_float):
        v.add(field, f"must be an integer, got {value!r}")
        return None
    result = int(as_float)
    if minimum is not None and result < minimum:
        v.add(field, f"must be >= {minimum}, got {result}")
        return None
    return result


def boolean(raw: Raw, field: str, v: Violations, *, default: bool | None = None) -> bool | None:
    """``true``/``false`` (also 1/0, yes/no); ``default`` when blank, else required."""
    value = raw.get(field)
    if is_blank(value):
        if default is None:
            v.add(field, "is required")
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    v.add(field, f"must be true or false, got {value!r}")
    return None


def local_time(raw: Raw, field: str, v: Violations) -> time | None:
    """A wall-clock time ``HH:MM`` (24 h)."""
    value = text(raw, field, v)
    if value is None:
        return None
    try:
        parsed = datetime.strptime(value, "%H:%M")
    except ValueError:
        v.add(field, f"must be a time HH:MM, got {value!r}")
        return None
    return parsed.time()


def timestamp(raw: Raw, field: str, v: Violations) -> datetime | None:
    """An RFC 3339 timestamp with an offset (``2026-11-20T14:05:00Z``)."""
    value = text(raw, field, v)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        v.add(field, f"must be an RFC 3339 timestamp, got {value!r}")
        return None
    if parsed.tzinfo is None:
        v.add(field, f"must carry a UTC offset (e.g. 'Z'), got {value!r}")
        return None
    return parsed


def calendar_date(raw: Raw, field: str, v: Violations, *, required: bool = False) -> date | None:
    """A calendar date ``YYYY-MM-DD``."""
    value = text(raw, field, v, required=required)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        v.add(field, f"must be a date YYYY-MM-DD, got {value!r}")
        return None


def tags(raw: Raw, field: str) -> frozenset[str]:
    """A ``;``-separated tag list (or a JSON list); blank means no tags."""
    value = raw.get(field)
    if is_blank(value):
        return frozenset()
    items = value if isinstance(value, list | tuple) else str(value).split(";")
    return frozenset(str(t).strip() for t in items if str(t).strip())
