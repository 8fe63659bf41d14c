"""JSON Schemas of the router.v1 messages in the proto3 JSON mapping, from their descriptors.

The HTTP intake takes and returns the same messages as the gRPC service, written as proto3
JSON (https://protobuf.dev/programming-guides/json/): field names in lowerCamelCase, 64-bit
integers as strings (integers accepted), enums by value name, Timestamps as RFC 3339
strings and Durations as ``"1.5s"``. The schemas are generated from the compiled
descriptors, so they cannot drift from the proto. Proto3 has no required fields, so no
schema lists any; unknown fields are not allowed (the JSON parser refuses them too).
Descriptions are not included: proto comments are not kept in the descriptors.

Messages a request can hold state the service's wire limits (:mod:`router.service.limits`):
``maxLength`` on every string (the service counts UTF-8 bytes, so a string of ASCII
characters may be exactly that long; others fewer), ``maxItems`` on every repeated field,
and the bounds the service checks on values (``top_k``, ``max_shipments``, a ``time_limit``
or ``ttl`` above 0, ...): a request the schema refuses, the service refuses too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from router.service import limits
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

TIMESTAMP = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
"""The spelling of a Timestamp the JSON parser reads (upper-case ``T`` and ``Z``)."""
TIMESTAMP_SCHEMA: Schema = {"type": "string", "format": "date-time", "pattern": f"^{TIMESTAMP}$"}
"""google.protobuf.Timestamp: an RFC 3339 instant, e.g. ``"2026-11-20T15:00:00Z"``."""

DURATION = r"-?[0-9]+(\.[0-9]{1,9})?s"
"""The spelling of a Duration: seconds with up to 9 decimals and an ``s``."""
DURATION_SCHEMA: Schema = {"type": "string", "pattern": f"^{DURATION}$"}
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


def message_schema(descriptor: Descriptor, *, limited: bool = False) -> Schema:
    """The JSON Schema of one message; fields of message types refer to their components.

    ``limited``: the message is part of a request, so its fields state the wire's limits.
    """
    if descriptor.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[descriptor.full_name])
    properties = {
        field.json_name: field_schema(field, limited=limited) for field in descriptor.fields
    }
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


def field_schema(field: FieldDescriptor, *, limited: bool = False) -> Schema:
    """The JSON Schema of one field's value (an array for repeated fields).

    ``limited``: with the wire's limits on lengths, counts and values.
    """
    if _is_map(field):
        assert field.message_type is not None
        value = field.message_type.fields_by_name["value"]
        schema: Schema = {"type": "object", "additionalProperties": _single(value, limited)}
        if limited:
            schema["maxProperties"] = limits.max_items(field)
        return schema
    if _is_repeated(field):
        schema = {"type": "array", "items": _single(field, limited)}
        if limited:
            schema["maxItems"] = limits.max_items(field)
        return schema
    return _single(field, limited)


def enum_schema(descriptor: EnumDescriptor) -> Schema:
    """An enum as proto3 JSON writes it: the value's name."""
    return {"type": "string", "enum": [value.name for value in descriptor.values]}


def openapi_components() -> dict[str, Schema]:
    """Every message of router.v1 by name, for OpenAPI's ``components.schemas``."""
    components: dict[str, Schema] = {}
    requests = request_messages()
    pending = list(PACKAGE.message_types_by_name.values())
    while pending:
        descriptor = pending.pop(0)
        if descriptor.GetOptions().map_entry:
            continue
        limited = descriptor.full_name in requests
        components[_component_name(descriptor)] = message_schema(descriptor, limited=limited)
        pending.extend(descriptor.nested_types)
    return components


def request_messages() -> frozenset[str]:
    """Full names of the messages a request of a router.v1 method can hold (itself included)."""
    found: set[str] = set()
    pending = [m.input_type for s in PACKAGE.services_by_name.values() for m in s.methods]
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in found:
            continue
        found.add(descriptor.full_name)
        pending.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return frozenset(found)


def ref(descriptor: Descriptor) -> Schema:
    """A reference to a message's component (or the inline schema of a well-known type)."""
    if descriptor.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[descriptor.full_name])
    return {"$ref": REF_PREFIX + _component_name(descriptor)}


def _single(field: FieldDescriptor, limited: bool = False) -> Schema:
    schema = _plain(field)
    if not limited:
        return schema
    kind = field.type
    if kind == _T.TYPE_STRING:
        schema["maxLength"] = limits.max_bytes(field)
    elif kind == _T.TYPE_BYTES:
        schema["maxLength"] = 4 * -(-limits.max_bytes(field) // 3)  # in base64
    bound = limits.VALUE_BOUNDS.get(field.full_name)
    if bound is None:
        return schema
    if field.message_type is not None:  # a Duration
        return {"type": "string", "pattern": duration_pattern(bound)}
    if bound.minimum is not None:
        schema["minimum"] = max(schema.get("minimum", bound.minimum), bound.minimum)
    if bound.maximum is not None:
        schema["maximum"] = min(schema.get("maximum", bound.maximum), bound.maximum)
    return _integral(schema)


def _integral(schema: Schema) -> Schema:
    """Bounds of an integer field as integers (``1``, not ``1.0``)."""
    if schema.get("type") != "integer":
        return schema
    return {k: int(v) if k in ("minimum", "maximum") else v for k, v in schema.items()}


def _plain(field: FieldDescriptor) -> Schema:
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


DURATION_SECONDS_MAX = 315_576_000_000
"""The seconds of the longest ``google.protobuf.Duration`` (10,000 years)."""


def duration_pattern(bound: limits.Bound) -> str:
    """A pattern of the Durations within ``bound``, which must be above 0 (``above=0``).

    Seconds with up to 9 decimals and an ``s``, leading zeros allowed as the JSON parser
    allows them: above 0 and at most ``bound.maximum`` seconds (a whole number), or at
    most the longest Duration when it sets none.
    """
    if bound.above != 0 or bound.minimum is not None:
        raise ValueError(f"only Durations above 0 have a pattern, not {bound}")
    fraction = r"(\.[0-9]{1,9})?"
    if bound.maximum is None:
        top, top_fraction = DURATION_SECONDS_MAX, fraction
    else:
        top, top_fraction = int(bound.maximum), r"(\.0{1,9})?"
        if top != bound.maximum:
            raise ValueError(f"a Duration's maximum must be whole seconds, not {bound.maximum}")
    branches = [
        rf"0*({integer_pattern(1, top - 1)}){fraction}",  # 1 up to the top, any fraction
        r"0+\.(?=[0-9]*[1-9])[0-9]{1,9}",  # under a second, not zero
        rf"0*{top}{top_fraction}",
    ]
    return "^(" + "|".join(branches) + ")s$"


def integer_pattern(low: int, high: int) -> str:
    """A regular expression (unanchored) of the decimal integers ``low``..``high``, both >= 0.

    Written without leading zeros; the ranges are split into blocks that share a prefix
    (``1[0-9]{2}`` for 100..199), the classic construction.
    """
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low}, {high}")
    blocks = []
    if low == 0:
        blocks.append("0")
        low = 1
    while low <= high:
        size = 1
        while low % (size * 10) == 0 and low + size * 10 - 1 <= high:
            size *= 10
        end = low + size - 1
        while end + size <= high and (end + 1) % (size * 10) != 0:
            end += size
        blocks.append(_block(low, end, len(str(size)) - 1))
        low = end + 1
    return "|".join(blocks)


def _block(low: int, high: int, free: int) -> str:
    """``low``..``high``: the same digits but one, then ``free`` digits that run 0 to 9."""
    a, b = str(low), str(high)
    head, first, last = a[: len(a) - free - 1], a[len(a) - free - 1], b[len(b) - free - 1]
    digit = first if first == last else f"[{first}-{last}]"
    return head + digit + ("" if free == 0 else "[0-9]" if free == 1 else f"[0-9]{{{free}}}")
