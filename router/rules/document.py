"""Rule-set documents: YAML text in, a validated :class:`RuleSet` out, and back.

The text a planner publishes is stored as written (comments and all; the ledger keeps its
SHA-256). :func:`canonical_text` is the normal form used to compare two rule sets.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from models.errors import FieldViolation, InvalidArgumentError, Violations, clipped
from models.network import Network
from models.rules import RuleSet
from router.rules import strict_yaml

NOT_READ = object()
"""What :func:`read_yaml` returns when the text is not a document it may read."""


def read_yaml(text: str, where: str, v: Violations) -> object:
    """The YAML document in ``text`` (``None`` when empty), or :data:`NOT_READ`.

    The text is read by :mod:`router.rules.strict_yaml`, after its size is checked. Why it
    was not read is recorded in ``v``: at ``where`` for its size, at ``where:<line>`` for
    a syntax error or a broken rule (``document:3: is not valid YAML: aliases (*base) are
    not allowed in rule documents: write the value out (line 3, column 18)``). Nothing
    raises: any failure while reading is a violation, never an error of the server.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > strict_yaml.MAX_DOCUMENT_BYTES:
        v.add(where, f"is {size} bytes, more than the {strict_yaml.MAX_DOCUMENT_BYTES} allowed")
        return NOT_READ
    try:
        return strict_yaml.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(clipped(str(x), 200) for x in (exc.context, exc.problem) if x)
        if mark is None:
            v.add(where, f"is not valid YAML: {what}")
        else:
            at = f"line {mark.line + 1}, column {mark.column + 1}"
            v.add(f"{where}:{mark.line + 1}", f"is not valid YAML: {what} ({at})")
    except yaml.YAMLError as exc:  # the reader's: a character YAML does not allow
        v.add(where, f"is not valid YAML: {clipped(str(exc), 200)}")
    except Exception as exc:  # RecursionError, MemoryError…: still the document's fault
        v.add(where, f"cannot be read as YAML ({type(exc).__name__})")
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
    return yaml.dump(
        rules.to_raw(),
        Dumper=strict_yaml.CanonicalDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def diff_rules(old: RuleSet, new: RuleSet, old_label: str, new_label: str) -> str:
    """A unified diff of two rule sets' canonical documents; empty when the rules are equal."""
    lines = difflib.unified_diff(
        canonical_text(old).splitlines(keepends=True),
        canonical_text(new).splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(lines)
