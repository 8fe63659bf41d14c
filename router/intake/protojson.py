"""Proto3 JSON bodies: parse them into proto messages, and name every field they get wrong.

``json_format.ParseDict`` stops at the first problem and words it for programmers;
:func:`parse` answers INVALID_ARGUMENT with a field violation per bad field, pathed as the
client wrote the body (``order.lines[1].quantity``), found by :func:`_locate`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from models.errors import FieldViolation
from router.intake.errors import invalid_argument, invalid_field, parse_error_description

M = TypeVar("M", bound=Message)


def parse(value: dict[str, Any], cls: type[M], prefix: str = "") -> M:
    """``value`` (proto3 JSON) as a ``cls``; INVALID_ARGUMENT naming each bad field if not."""
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


def json_object(data: bytes, field: str = "body") -> dict[str, Any]:
    """``data`` as a JSON object; INVALID_ARGUMENT on ``field`` when it is not one."""
    if not data.strip():
        raise invalid_field(field, "is empty; expected a JSON object")
    try:
        value = json.loads(data)
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
