"""Rule-set documents: YAML text in, a validated :class:`RuleSet` out, and back.

The text a planner publishes is stored as written (comments and all; the ledger keeps its
SHA-256). :func:`canonical_text` is the normal form used to compare two rule sets.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from models.errors import FieldViolation, InvalidArgumentError, Violations
from models.network import Network
from models.rules import RuleSet


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans and no timestamps.

    YAML 1.1 reads ``NO`` (Norway), ``ON`` (Ontario), ``y`` and ``off`` as booleans and
    ``2026-11-24`` as a date; here only ``true``/``false`` are booleans and dates stay text
    (the readers of orders and conditions parse them).
    """


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in (_BOOL, "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

NOT_READ = object()
"""What :func:`read_yaml` returns when the text is not valid YAML."""


def read_yaml(text: str, where: str, v: Violations) -> object:
    """The YAML document in ``text`` (``None`` when empty), or :data:`NOT_READ`.

    A syntax error is recorded in ``v`` at ``where:<line>``.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        v.add(where if mark is None else f"{where}:{mark.line + 1}", f"is not valid YAML: {exc}")
        return NOT_READ


def parse_rules(
    text: str, where: str, v: Violations, network: Network | None = None
) -> RuleSet | None:
    """The rule set in YAML ``text``; violations go to ``v`` prefixed by ``where``.

    ``where`` names the source (``rules.yaml``, ``document``); a YAML syntax error is
    reported with its line (``rules.yaml:7``).
    """
    document = read_yaml(text, where, v)
    if document is NOT_READ:
        return None
    if document is None:  # an empty file: the default rules
        return RuleSet()
    if not isinstance(document, dict):
        v.add(where, "must be a mapping with name and strategies (docs/rules.md)")
        return None
    found = Violations(f"{where}:")
    rules = RuleSet.from_raw({str(k): value for k, value in document.items()}, found, network)
    v.extend(found.items)
    return rules


def load_rules(text: str, where: str = "rules", network: Network | None = None) -> RuleSet:
    """The rule set in YAML ``text``; raises InvalidArgumentError with every violation."""
    v = Violations()
    rules = parse_rules(text, where, v, network)
    v.raise_if_any()
    assert rules is not None
    return rules


def read_rules_file(path: Path, network: Network | None = None) -> RuleSet:
    """The rule set in the file ``path``, validated against ``network``.

    Raises InvalidArgumentError with every violation, each prefixed by the file's name
    (``rules.yaml:strategies[0].weights.split_penalty``); an unreadable file is one
    violation naming the path.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError([FieldViolation(str(path), f"cannot be read: {exc}")]) from exc
    return load_rules(text, path.name, network)


def canonical_text(rules: RuleSet) -> str:
    """The rule set as canonical YAML: same rules, same text, whatever the formatting."""
    return yaml.safe_dump(rules.to_raw(), sort_keys=False, allow_unicode=True, width=100)


def diff_rules(old: RuleSet, new: RuleSet, old_label: str, new_label: str) -> str:
    """A unified diff of two rule sets' canonical documents; empty when the rules are equal."""
    lines = difflib.unified_diff(
        canonical_text(old).splitlines(keepends=True),
        canonical_text(new).splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(lines)
