"""Proto3 JSON bodies: parse them into proto messages, and name every field they get wrong.

``json_format.ParseDict`` stops at the first problem and words it for programmers;
:func:`parse` answers INVALID_ARGUMENT with a field violation per bad field, pathed as the
client wrote the body (``order.lines[1].quantity``), found by :func:`_locate`.

The gateway reads what its OpenAPI schema states and nothing more (:func:`_spelling`):
``ParseDict`` also takes quoted numbers (``"topK": "5"``), enums by number, and Durations
and Timestamps in other spellings (``" 5s"``, ``"1_0s"``, ``"2026-1-2T3:04:05Z"``), which
the schema refuses; so does the gateway.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from models.errors import FieldViolation
from router.intake.errors import invalid_argument, invalid_field, parse_error_description
from router.intake.schemas import DURATION, TIMESTAMP

M = TypeVar("M", bound=Message)


def parse(value: dict[str, Any], cls: type[M], prefix: str = "") -> M:
    """``value`` (proto3 JSON) as a ``cls``; INVALID_ARGUMENT naming each bad field if not."""
    try:
        spelled = _spelling(value, cls.DESCRIPTOR, prefix)
    except RecursionError:
        raise invalid_field(prefix or "body", "nested too deeply") from None
    if spelled:
        raise invalid_argument(spelled)
    try:
        return json_format.ParseDict(value, cls())
    except RecursionError:
        raise invalid_field(prefix or "body", "nested too deeply") from None
    except json_format.ParseError as error:
        found: list[FieldViolation] = []
        try:
            _locate(value, cls.DESCRIPTOR, prefix, found)
        except RecursionError:
            raise invalid_field(prefix or "body", "nested too deeply") from None
        if not found:
            found.append(FieldViolation(prefix or "body", parse_error_description(str(error))))
        raise invalid_argument(found) from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def json_object(data: bytes, field: str = "body") -> dict[str, Any]:
    """``data`` as a JSON object; INVALID_ARGUMENT on ``field`` when it is not one.

    ``NaN`` and ``Infinity``, which Python's reader takes, are not JSON and refused.
    """
    if not data.strip():
        raise invalid_field(field, "is empty; expected a JSON object")
    try:
        value = json.loads(data, parse_constant=_not_json)
    except RecursionError:
        raise invalid_field(field, "nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_field(field, f"is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise invalid_field(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def pop_either(value: dict[str, Any], name: str, json_name: str) -> Any:
    """Remove the field under either spelling; the value (None when absent)."""
    found = value.pop(name, None)
    other = value.pop(json_name, None)
    return found if found is not None else other


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _is_plain_message(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return (
        mt is not None
        and not mt.full_name.startswith("google.protobuf.")
        and not mt.GetOptions().map_entry
    )


def _locate(value: Any, descriptor: Any, path: str, out: list[FieldViolation]) -> None:
    """Append a violation, with its field path, for every part of ``value`` ParseDict refuses."""
    if not isinstance(value, dict):
        kind = type(value).__name__
        out.append(FieldViolation(path or "body", f"must be a JSON object, got {kind}"))
        return
    by_name: dict[str, FieldDescriptor] = {}
    for known in descriptor.fields:
        by_name[known.name] = known
        by_name[known.json_name] = known
    for key, item in value.items():
        fd = by_name.get(key)
        sub = f"{path}.{fd.name if fd else key}" if path else (fd.name if fd else key)
        if fd is None:
            out.append(FieldViolation(sub, f"is not a field of {descriptor.name}"))
            continue
        if item is None:
            continue
        if _is_plain_message(fd):
            assert fd.message_type is not None
            if fd.is_repeated:
                if not isinstance(item, list):
                    out.append(FieldViolation(sub, "must be a JSON array"))
                    continue
                for i, element in enumerate(item):
                    _locate(element, fd.message_type, f"{sub}[{i}]", out)
            else:
                _locate(item, fd.message_type, sub, out)
            continue
        try:
            json_format.ParseDict({key: item}, _message_class(descriptor)())
        except json_format.ParseError as error:
            out.append(FieldViolation(sub, parse_error_description(str(error))))


_T = FieldDescriptor
_NUMBERS = frozenset(
    {
        _T.TYPE_INT32,
        _T.TYPE_SINT32,
        _T.TYPE_SFIXED32,
        _T.TYPE_UINT32,
        _T.TYPE_FIXED32,
        _T.TYPE_FLOAT,
        _T.TYPE_DOUBLE,
    }
)
"""Kinds the schema states as JSON numbers only."""
_LONGS = frozenset({_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64})
_UNSIGNED_LONGS = frozenset({_T.TYPE_UINT64, _T.TYPE_FIXED64})
_SPELLINGS = {
    "google.protobuf.Duration": (re.compile(DURATION), 'a Duration in seconds, e.g. "1.5s"'),
    "google.protobuf.Timestamp": (
        re.compile(TIMESTAMP),
        'an RFC 3339 timestamp, e.g. "2026-11-20T15:00:00Z"',
    ),
}
"""Strings the schema states for the well-known types, and how to say what is expected."""


def _spelling(value: Any, descriptor: Any, path: str) -> list[FieldViolation]:
    """A violation for each value ``ParseDict`` would read but the schema does not state."""
    found: list[FieldViolation] = []
    if not isinstance(value, dict):
        return found  # ParseDict and _locate say so
    by_name = {f.name: f for f in descriptor.fields} | {f.json_name: f for f in descriptor.fields}
    for key, item in value.items():
        fd = by_name.get(key)
        if fd is None or item is None:
            continue
        sub = f"{path}.{fd.name}" if path else fd.name
        if fd.is_repeated and isinstance(item, list):
            for i, element in enumerate(item):
                found += _spelled(fd, element, f"{sub}[{i}]")
        elif not fd.is_repeated:
            found += _spelled(fd, item, sub)
    return found


def _spelled(fd: FieldDescriptor, value: Any, path: str) -> list[FieldViolation]:
    """What is wrong with the spelling of one value of ``fd`` (nothing: an empty list)."""
    message = fd.message_type
    if message is not None and message.full_name in _SPELLINGS:
        pattern, expected = _SPELLINGS[message.full_name]
        if isinstance(value, str) and not pattern.fullmatch(value):
            return [FieldViolation(path, f"must be {expected}, got {value[:40]!r}")]
        return []
    if message is not None and not message.GetOptions().map_entry:
        return _spelling(value, message, path)
    if fd.type in _NUMBERS and isinstance(value, str):
        return [FieldViolation(path, "must be a JSON number, not a string")]
    if fd.type == _T.TYPE_ENUM and not isinstance(value, str):
        return [FieldViolation(path, "must be the name of a value of the enum")]
    if fd.type in _LONGS | _UNSIGNED_LONGS and isinstance(value, str):
        digits = r"[0-9]+" if fd.type in _UNSIGNED_LONGS else r"-?[0-9]+"
        if not re.fullmatch(digits, value):
            return [FieldViolation(path, f"must be an integer, got {value[:40]!r}")]
    return []
