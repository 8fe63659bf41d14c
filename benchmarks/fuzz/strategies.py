"""Hypothesis strategies for request bytes, built from the router.v1 descriptors.

Three kinds of input per request message, mixed by :func:`request_bytes`:

- **structured**: a message drawn field by field from its descriptor (:func:`messages`),
  recursively, every field type; strings from the scenario's vocabulary (known SKUs,
  nodes, services, a valid rule set) as often as from random text, so that requests reach
  the servicers' deeper code; enums with known and unknown numbers; now and then a
  string or a repeated field just over (or exactly at) its wire limit;
- **raw**: random bytes;
- **mutated**: the serialisation of a valid request (a seed) or of a structured one, with
  bytes flipped, inserted, deleted, duplicated or cut off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from router.service import limits

_T = FieldDescriptor
_INT_RANGES = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
MAX_DEPTH = 6
"""Message fields below this depth are left unset (no router.v1 request recurses)."""
EPOCH_2026 = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
"""Timestamps are drawn around the scenarios' order dates, and anywhere now and then."""


@dataclass(frozen=True)
class Vocabulary:
    """Strings that mean something to the server, by field name: ids it knows, documents.

    ``words`` maps a field's name (``sku``, ``node_id``, ``document``...) to values drawn
    for it as often as random text; ``documents`` are texts a document may be mutated from.
    """

    words: Mapping[str, Sequence[str]] = field(default_factory=dict)
    documents: Sequence[str] = ()


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of ``descriptor``."""
    return message_factory.GetMessageClass(descriptor)


def messages(descriptor: Descriptor, vocabulary: Vocabulary) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``: each field set or not, values of every kind."""
    return _message(descriptor, vocabulary, 0)


def _message(
    descriptor: Descriptor, vocabulary: Vocabulary, depth: int, big: bool = True
) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``; ``big``: a repeated field may be drawn at or over its limit.

    Items of such a list are drawn with ``big`` false, so that a request stays within a few
    megabytes (1,000 orders of 500 lines each would not).
    """
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamps()
    fields = list(descriptor.fields)
    cls = message_class(descriptor)

    @st.composite
    def draw_message(draw: st.DrawFn) -> Message:
        msg = cls()
        for fd in fields:
            if fd.message_type is not None and depth >= MAX_DEPTH:
                continue
            if not draw(st.booleans()):
                continue
            if fd.is_repeated:
                _set_repeated(msg, fd, draw(_repeated(fd, vocabulary, depth, big)))
            elif fd.message_type is not None:
                sub = _message(fd.message_type, vocabulary, depth + 1, big)
                getattr(msg, fd.name).CopyFrom(draw(sub))
            else:
                setattr(msg, fd.name, draw(_scalar(fd, vocabulary)))
        return msg

    return draw_message()


def _set_repeated(msg: Message, fd: FieldDescriptor, values: list[Any]) -> None:
    container = getattr(msg, fd.name)
    if fd.message_type is not None:
        for value in values:
            container.add().CopyFrom(value)
    else:
        container.extend(values)


def _repeated(fd: FieldDescriptor, vocabulary: Vocabulary, depth: int, big: bool) -> Any:
    """A few items mostly; with ``big``, now and then just over the limit, or at a small one."""

    def items(big_inside: bool) -> Any:
        if fd.message_type is None:
            return _scalar(fd, vocabulary)
        return _message(fd.message_type, vocabulary, depth + 1, big_inside)

    few = st.lists(items(big), max_size=4)
    if not big:
        return few
    limit = limits.max_items(fd)
    sizes = [few, few, few, items(False).map(lambda x: [x] * (limit + 1))]  # over: refused
    if limit <= limits.DEFAULT_ITEMS:
        sizes.append(items(False).map(lambda x: [x] * limit))  # at the limit: let through
    return st.one_of(*sizes)


def _scalar(fd: FieldDescriptor, vocabulary: Vocabulary) -> Any:
    kind = fd.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        edges = sorted(e for e in {low, high, 0, 1, -1, 2, 10, 11, 20, 1000} if low <= e <= high)
        return st.one_of(st.sampled_from(edges), st.integers(-3, 30), st.integers(low, high))
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return st.one_of(
            st.floats(-200, 200),
            st.sampled_from([0.0, -0.0, 1e-9, 0.01, 1e300, float("inf"), float("nan")]),
            st.floats(width=32 if kind == _T.TYPE_FLOAT else 64),
        )
    if kind == _T.TYPE_BOOL:
        return st.booleans()
    if kind == _T.TYPE_ENUM:
        assert fd.enum_type is not None
        known = [value.number for value in fd.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    if kind == _T.TYPE_BYTES:
        return st.binary(max_size=16)
    if kind == _T.TYPE_STRING:
        return _strings(fd, vocabulary)
    raise ValueError(f"unsupported field type {kind} of {fd.full_name}")


def _strings(fd: FieldDescriptor, vocabulary: Vocabulary) -> Any:
    """Known words for the field, random text, and strings at and over the byte limit."""
    limit = limits.max_bytes(fd)
    choices = [st.text(max_size=12), st.text(st.characters(codec="utf-8"), max_size=40)]
    words = vocabulary.words.get(fd.name)
    if words:
        choices += [st.sampled_from(list(words))] * 3
    if fd.name in ("document", "golden") and vocabulary.documents:
        choices += [mutated_text(vocabulary.documents)] * 2
    over = st.sampled_from(["x" * (limit + 1), "é" * (limit // 2 + 1), "x" * limit])
    return st.one_of(*choices, over)


def _timestamps() -> st.SearchStrategy[Message]:
    """Timestamps around the scenarios' dates mostly, anywhere in int64 now and then."""
    cls = message_class(timestamp_pb2.Timestamp.DESCRIPTOR)

    def make(seconds: int, nanos: int) -> Message:
        return cls(seconds=seconds, nanos=nanos)

    near = st.integers(EPOCH_2026 - 400 * 86400, EPOCH_2026 + 400 * 86400)
    anywhere = st.integers(-(2**63), 2**63 - 1)
    nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(-(2**31), 2**31 - 1))
    return st.builds(make, st.one_of(near, near, anywhere), nanos)


def mutated_text(texts: Sequence[str]) -> st.SearchStrategy[str]:
    """One of ``texts`` with a few characters replaced, inserted or deleted."""

    @st.composite
    def draw_text(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(list(texts)))
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(text)))
            piece = draw(st.sampled_from(["", ":", "-", " ", "\n", "[", "{", "&a", "*a", "'", "1"]))
            cut = draw(st.integers(0, 3))
            text = text[:at] + piece + text[at + cut :]
        return text

    return draw_text()


def mutated_bytes(bases: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Bytes of ``bases`` with one to four mutations: flips, inserts, deletes, copies, cuts."""

    @st.composite
    def draw_bytes(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(bases))
        for _ in range(draw(st.integers(1, 4))):
            _mutate(data, draw)
        return bytes(data)

    return draw_bytes()


def _mutate(data: bytearray, draw: st.DrawFn) -> None:
    at = draw(st.integers(0, len(data)))
    kind = draw(st.sampled_from(["flip", "byte", "insert", "delete", "copy", "cut"]))
    if kind == "flip" and at < len(data):
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "byte" and at < len(data):
        data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A]))
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 8))]
    elif kind == "copy":
        data[at:at] = data[at : at + draw(st.integers(1, 32))]
    else:
        del data[at:]


def tweaked(seeds: Sequence[Message], vocabulary: Vocabulary) -> st.SearchStrategy[Message]:
    """A valid request of ``seeds`` with one to three fields, at any depth, drawn anew."""

    @st.composite
    def draw_tweaked(draw: st.DrawFn) -> Message:
        msg = draw(st.sampled_from(list(seeds)))
        copy = type(msg)()
        copy.CopyFrom(msg)
        for _ in range(draw(st.integers(1, 3))):
            _tweak(copy, vocabulary, draw)
        return copy

    return draw_tweaked()


def _tweak(msg: Message, vocabulary: Vocabulary, draw: st.DrawFn) -> None:
    """Draw one field of ``msg`` anew, or of a message it holds (or clear it).

    A list that holds items may instead be filled with copies of its first up to its
    limit, or one past it: valid items, as many as a request may carry.
    """
    fields: list[Any] = list(msg.DESCRIPTOR.fields)
    fd: FieldDescriptor = draw(st.sampled_from(fields))
    items: Any = getattr(msg, fd.name) if fd.is_repeated else ()
    if len(items) and draw(st.integers(0, 4)) == 0:
        count = limits.max_items(fd) + draw(st.integers(0, 1))
        items.extend([items[0]] * (count - len(items)))
        return
    inside = fd.message_type is not None and draw(st.booleans())
    if inside and not fd.is_repeated and msg.HasField(fd.name):
        _tweak(getattr(msg, fd.name), vocabulary, draw)
        return
    if inside and fd.is_repeated and len(items):
        _tweak(items[draw(st.integers(0, len(items) - 1))], vocabulary, draw)
        return
    msg.ClearField(fd.name)
    if draw(st.integers(0, 4)) == 0:
        return  # left unset
    if fd.is_repeated:
        _set_repeated(msg, fd, draw(_repeated(fd, vocabulary, 1, True)))
    elif fd.message_type is not None:
        getattr(msg, fd.name).CopyFrom(draw(_message(fd.message_type, vocabulary, 1)))
    else:
        setattr(msg, fd.name, draw(_scalar(fd, vocabulary)))


def request_bytes(
    descriptor: Descriptor, vocabulary: Vocabulary, seeds: Sequence[Message] = ()
) -> st.SearchStrategy[bytes]:
    """Serialised requests of ``descriptor``.

    Structured (a message drawn whole, or a seed with fields drawn anew), raw bytes, or
    the bytes of either mutated; with ``seeds``, about half are valid requests tweaked.
    """
    structured = messages(descriptor, vocabulary).map(_serialise)
    raw = st.binary(max_size=64)
    if not seeds or not descriptor.fields:
        return st.one_of(structured, structured, raw, mutated_bytes(structured))
    valid = st.sampled_from([seed.SerializeToString() for seed in seeds])
    near = tweaked(seeds, vocabulary).map(_serialise)
    bases = st.one_of(valid, near, structured)
    return st.one_of(near, near, near, valid, structured, raw, mutated_bytes(bases))


def _serialise(msg: Message) -> bytes:
    return msg.SerializeToString()
