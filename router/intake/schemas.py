"""JSON Schemas of the router.v1 messages in the proto3 JSON mapping, from their descriptors.

The HTTP intake takes and returns the same messages as the gRPC service, written as proto3
JSON (https://protobuf.dev/programming-guides/json/): field names in lowerCamelCase, 64-bit
integers as strings (integers accepted), enums by value name, Timestamps as RFC 3339
strings and Durations as ``"1.5s"``. The schemas are generated from the compiled
descriptors, so they cannot drift from the proto. Proto3 has no required fields, so no
schema lists any; unknown fields are not allowed (the JSON parser refuses them too).
Descriptions are not included: proto comments are not kept in the descriptors.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from router.v1 import router_pb2

Schema = dict[str, Any]

REF_PREFIX = "#/components/schemas/"
"""Where message schemas refer to each other: OpenAPI's components."""

PACKAGE = router_pb2.DESCRIPTOR
"""The file descriptor of the router.v1 package."""

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)

TIMESTAMP_SCHEMA: Schema = {"type": "string", "format": "date-time"}
"""google.protobuf.Timestamp: an RFC 3339 instant, e.g. ``"2026-11-20T15:00:00Z"``."""

DURATION_SCHEMA: Schema = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"}
"""google.protobuf.Duration: seconds with an ``s`` suffix, e.g. ``"1.5s"``."""

_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": TIMESTAMP_SCHEMA,
    "google.protobuf.Duration": DURATION_SCHEMA,
}

_T = FieldDescriptor
_INTEGERS = {
    _T.TYPE_INT32: INT32,
    _T.TYPE_SINT32: INT32,
    _T.TYPE_SFIXED32: INT32,
    _T.TYPE_UINT32: UINT32,
    _T.TYPE_FIXED32: UINT32,
}
_LONGS = {
    _T.TYPE_INT64: INT64,
    _T.TYPE_SINT64: INT64,
    _T.TYPE_SFIXED64: INT64,
    _T.TYPE_UINT64: UINT64,
    _T.TYPE_FIXED64: UINT64,
}


def message_schema(descriptor: Descriptor) -> Schema:
    """The JSON Schema of one message; fields of message types refer to their components."""
    if descriptor.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[descriptor.full_name])
    properties = {field.json_name: field_schema(field) for field in descriptor.fields}
    schema: Schema = {
        "title": descriptor.name,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    exclusive = [
        [field.json_name for field in oneof.fields]
        for oneof in descriptor.oneofs
        if not _is_synthetic(oneof) and len(oneof.fields) > 1
    ]
    if exclusive:
        # At most one field of each oneof may be set.
        pairs = [
            {"required": [a, b]}
            for names in exclusive
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
        schema["not"] = {"anyOf": pairs} if len(pairs) > 1 else pairs[0]
    return schema


def field_schema(field: FieldDescriptor) -> Schema:
    """The JSON Schema of one field's value (an array for repeated fields)."""
    if _is_map(field):
        assert field.message_type is not None
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value)}
    if _is_repeated(field):
        return {"type": "array", "items": _single(field)}
    return _single(field)


def enum_schema(descriptor: EnumDescriptor) -> Schema:
    """An enum as proto3 JSON writes it: the value's name."""
    return {"type": "string", "enum": [value.name for value in descriptor.values]}


def openapi_components() -> dict[str, Schema]:
    """Every message of router.v1 by name, for OpenAPI's ``components.schemas``."""
    components: dict[str, Schema] = {}
    pending = list(PACKAGE.message_types_by_name.values())
    while pending:
        descriptor = pending.pop(0)
        if descriptor.GetOptions().map_entry:
            continue
        components[_component_name(descriptor)] = message_schema(descriptor)
        pending.extend(descriptor.nested_types)
    return components


def ref(descriptor: Descriptor) -> Schema:
    """A reference to a message's component (or the inline schema of a well-known type)."""
    if descriptor.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[descriptor.full_name])
    return {"$ref": REF_PREFIX + _component_name(descriptor)}


def _single(field: FieldDescriptor) -> Schema:
    kind = field.type
    if kind in _INTEGERS:
        low, high = _INTEGERS[kind]
        return {"type": "integer", "minimum": low, "maximum": high}
    if kind in _LONGS:
        low, high = _LONGS[kind]
        pattern = r"^[0-9]+$" if low == 0 else r"^-?[0-9]+$"
        return {
            "anyOf": [
                {"type": "string", "pattern": pattern},
                {"type": "integer", "minimum": low, "maximum": high},
            ]
        }
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return {"type": "number"}
    if kind == _T.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == _T.TYPE_STRING:
        return {"type": "string"}
    if kind == _T.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == _T.TYPE_ENUM and field.enum_type is not None:
        return enum_schema(field.enum_type)
    if kind in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) and field.message_type is not None:
        return ref(field.message_type)
    raise ValueError(f"unsupported field type {kind} of {field.full_name}")


def _component_name(descriptor: Descriptor) -> str:
    """``Order`` for router.v1.Order; nested messages keep their parents: ``Outer.Inner``."""
    prefix = PACKAGE.package + "."
    return descriptor.full_name.removeprefix(prefix)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        _is_repeated(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _is_synthetic(oneof: Any) -> bool:
    """Whether a oneof only marks a proto3 ``optional`` field's presence."""
    fields = list(oneof.fields)
    return (
        len(fields) == 1
        and bool(getattr(fields[0], "has_presence", False))
        and (oneof.name == "_" + fields[0].name)
    )
