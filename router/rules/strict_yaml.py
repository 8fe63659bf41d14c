"""YAML as rule documents are read: the YAML 1.2 core schema, strictly, within limits.

A rule document (or a golden suite) comes from anyone who can reach the service, so it is
read with these rules, each checked while the document is composed, before any value is
built (docs/rules.md, "Limits and strictness"):

* **no anchors or aliases** (``&base``, ``*base``, ``<<: *base``): an alias can make a few
  hundred bytes stand for billions of values ("billion laughs"), and a rule document is
  short enough to write each value out;
* **at most** :data:`MAX_DEPTH` **nested collections**, so that no reader recurses deeply;
* **no key twice in one mapping** (PyYAML keeps the last one silently);
* **the core schema's scalars only**: ``true``/``false`` are the booleans (not ``yes``,
  ``no``, ``on``, ``off``), ``12``, ``0o14``, ``0xC`` integers, ``1.5``, ``1e3``, ``.inf``
  floats, ``null``/``~``/empty null; everything else, dates and quoted numbers included, is
  text. No other tag (``!!set``, ``!!binary``, ``!!timestamp``…) is accepted.

The size limit (:data:`MAX_DOCUMENT_BYTES`) is checked by the caller before reading. Every
refusal is a :class:`yaml.MarkedYAMLError` with the line and column of what broke a rule.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from models.errors import quoted

MAX_DOCUMENT_BYTES = 256 * 1024
"""Largest document read, in UTF-8 bytes: about 100 times the largest example's.

Reading is pure Python, about 4 µs a byte: a document at the limit takes about a second.
"""
MAX_DEPTH = 20
"""Most collections nested in one another; the deepest document the language needs nests 6."""

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_CORE_RESOLVERS = (
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_INT, _CORE_INT, list("-+0123456789")),  # before floats: 12 is an int
    (_FLOAT, _CORE_FLOAT, list("-+0123456789.")),
)
"""The implicit tags of the YAML 1.2 core schema: (tag, pattern, first characters)."""


def _refused(problem: str, mark: Any) -> yaml.MarkedYAMLError:
    """The error for ``problem`` at ``mark`` (a node's or an event's ``start_mark``)."""
    return yaml.MarkedYAMLError(None, None, problem, mark)


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader reading the YAML 1.2 core schema with the rules of this module."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """A node, refused when it is an alias, has an anchor or nests too deep."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _refused(
                f"aliases (*{event.anchor}) are not allowed in rule documents: write the value out",
                event.start_mark,
            )
        if event.anchor is not None:
            raise _refused(
                f"anchors (&{event.anchor}) are not allowed in rule documents: "
                "write the value out where it is used",
                event.start_mark,
            )
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            raise _refused(f"nests deeper than {MAX_DEPTH} levels", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """The mapping of ``node``; refused when a key is given twice or is a collection."""
        if not isinstance(node, MappingNode):
            raise _refused(f"expected a mapping, found a {node.id}", node.start_mark)
        mapping: dict[Hashable, Any] = {}
        first_line: dict[Hashable, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _refused(
                    "a key must be a plain value, not a list or mapping", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                raise _refused(
                    f"the key {quoted(key)} is given twice in this mapping "
                    f"(first on line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_core_bool(self, node: ScalarNode) -> bool:
        """``true`` or ``false``, in any of the core schema's three spellings."""
        text = self.construct_scalar(node)
        if text.lower() not in ("true", "false"):
            raise _refused(f"{quoted(text)} is not a boolean: write true or false", node.start_mark)
        return text.lower() == "true"

    def construct_core_int(self, node: ScalarNode) -> int:
        """A decimal, ``0o`` octal or ``0x`` hexadecimal integer."""
        text = self.construct_scalar(node)
        if not _CORE_INT.match(text):
            raise _refused(f"{quoted(text)} is not an integer", node.start_mark)
        try:
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text)
        except ValueError:  # more digits than Python converts
            raise _refused(f"{quoted(text)} has too many digits", node.start_mark) from None

    def construct_core_float(self, node: ScalarNode) -> float:
        """A decimal float, ``.inf``, ``-.inf`` or ``.nan``."""
        text = self.construct_scalar(node)
        if not _CORE_FLOAT.match(text):
            raise _refused(f"{quoted(text)} is not a number", node.start_mark)
        lowered = text.lower()
        if lowered.endswith((".inf", ".nan")):
            return float(lowered.replace(".", ""))
        return float(text)

    def construct_other(self, node: Node) -> object:
        """Refuse a tag outside the core schema (``!!set``, ``!!binary``, ``!custom``…)."""
        raise _refused(
            f"the tag {quoted(node.tag)} is not allowed in rule documents", node.start_mark
        )


StrictLoader.yaml_implicit_resolvers = {}  # the core schema's only, not YAML 1.1's
for _tag, _pattern, _first in _CORE_RESOLVERS:
    StrictLoader.add_implicit_resolver(_tag, _pattern, _first)
StrictLoader.yaml_constructors = {  # the core schema's tags, and nothing else
    _NULL: StrictLoader.construct_yaml_null,
    _BOOL: StrictLoader.construct_core_bool,
    _INT: StrictLoader.construct_core_int,
    _FLOAT: StrictLoader.construct_core_float,
    "tag:yaml.org,2002:str": StrictLoader.construct_yaml_str,
    "tag:yaml.org,2002:seq": StrictLoader.construct_yaml_seq,
    "tag:yaml.org,2002:map": StrictLoader.construct_yaml_map,
    None: StrictLoader.construct_other,
}
StrictLoader.yaml_multi_constructors = {}


def load(text: str) -> object:
    """The one YAML document in ``text`` (``None`` when empty), read by :class:`StrictLoader`.

    Raises :class:`yaml.YAMLError` for text that is not YAML or breaks a rule.
    """
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class CanonicalDumper(yaml.SafeDumper):
    """A SafeDumper whose output :class:`StrictLoader` reads back as the same values.

    It writes no anchors or aliases (a value used twice is written twice) and quotes any
    text that either YAML 1.1 or the core schema would read as something else (``yes``,
    ``1e3``, ``0o7``), so that other YAML tools read the same values too.
    """

    def ignore_aliases(self, data: object) -> bool:
        """Always: every value is written where it is used."""
        return True


for _tag, _pattern, _first in _CORE_RESOLVERS:
    CanonicalDumper.add_implicit_resolver(_tag, _pattern, _first)
