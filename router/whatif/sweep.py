"""Sweeps of the routing rules: grids of settings, trade-off tables, Pareto-efficient rows.

A sweep routes the same order stream once per setting of one scalar field of the routing
policy (a weight such as ``split_penalty``, or a filter or constraint such as
``max_shipments`` or ``sla``; :func:`grid`) and prices every run with the scenario's own
rules, so the KPI table of the runs (:func:`router.whatif.kpis.kpis`) traces how the
setting trades cost against splits and promises kept (:func:`tradeoff`).

Every value is validated by the rule language itself: each becomes a one-strategy rule
document read by :meth:`models.rules.RuleSet.from_raw`, so a sweep accepts exactly what a
``rules.yaml`` accepts, and the setting holds the value as the rules hold it
(``sla=hard`` is :attr:`models.rules.SlaMode.HARD`).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from models.errors import Violations
from models.rules import SECTIONS, Policy, RuleSet

Setting = tuple[str, dict[str, object]]
"""A setting's label (``"split_penalty=8"``) and the Policy fields it sets."""

_SCALARS: tuple[type, ...] = (float, int, bool, str, enum.Enum, type(None))


def pareto(
    table: pd.DataFrame, minimise: Sequence[str], maximise: Sequence[str]
) -> pd.Series[bool]:
    """True for the rows no other row dominates; indexed like ``table``.

    Row *a* dominates row *b* when *a* is ≤ *b* on every ``minimise`` column, ≥ on every
    ``maximise`` column, and strictly better on at least one. Equal rows do not dominate
    each other (both stay efficient). A row with NaN in an objective is never efficient
    and dominates nothing.
    """
    columns = [*minimise, *maximise]
    if not columns:
        raise ValueError("pareto needs at least one column to minimise or maximise")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {', '.join(missing)}")
    signs = np.array([1.0] * len(minimise) + [-1.0] * len(maximise))
    values = table[columns].to_numpy(dtype=float) * signs  # now: smaller is better everywhere
    valid = ~np.isnan(values).any(axis=1)
    # le[a, b, k]: row a is at least as good as row b on objective k
    le = values[:, None, :] <= values[None, :, :]
    lt = values[:, None, :] < values[None, :, :]
    dominates = le.all(axis=2) & lt.any(axis=2) & valid[:, None]
    dominated = dominates.any(axis=0)
    return pd.Series(valid & ~dominated, index=table.index, name="pareto", dtype=bool)


def tradeoff(
    kpi_table: pd.DataFrame,
    x: str = "split_rate",
    y: str = "cost_per_order",
    z: str = "on_time_rate",
) -> pd.DataFrame:
    """``kpi_table`` with a ``pareto`` column: minimise ``x`` and ``y``, maximise ``z``.

    Rows keep their order; :func:`router.whatif.report.plot_tradeoff` draws ``y``
    against ``x`` coloured by ``z``. Pass ``z=""`` to leave the third objective out.
    """
    out = kpi_table.copy()
    out["pareto"] = pareto(kpi_table, [x, y], [z] if z else [])
    return out


def _scalar(hint: object) -> bool:
    """True for a type hint of plain values: numbers, flags, enums, optionally None."""
    parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return all(isinstance(p, type) and issubclass(p, _SCALARS) for p in parts)


def sweepable() -> tuple[str, ...]:
    """The :class:`models.rules.Policy` fields a grid may sweep: every scalar one.

    The numeric weights and the scalar filters and constraints (``max_distance_km``,
    ``same_country``, ``max_shipments``, ``ship_complete``, ``sla``,
    ``no_split_below_value``); not the sets and mappings (``node_types``,
    ``unit_penalty_by_node_type``, …). In the order of :data:`models.rules.SECTIONS`.
    """
    hints = typing.get_type_hints(Policy)
    return tuple(name for keys in SECTIONS.values() for name in keys if _scalar(hints[name]))


def section_of(name: str) -> str:
    """The section of a rule document (``weights``, ``filters``, ``constraints``) of ``name``."""
    for section, keys in SECTIONS.items():
        if name in keys:
            return section
    raise ValueError(f"{name!r} is not a field of a strategy's policy")


def setting_label(name: str, value: object) -> str:
    """``"split_penalty=8"``: the field and its value as a rule document writes it."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}" if value == float(f"{value:g}") else repr(value)
    elif isinstance(value, enum.Enum):
        text = str(value.value)
    else:
        text = "null" if value is None else str(value)
    return f"{name}={text}"


def grid(name: str, values: Sequence[object]) -> list[Setting]:
    """One setting per value, in order: ``("split_penalty=8", {"split_penalty": 8.0})``.

    ``name`` must be one of :func:`sweepable`. Each value is read by the rule language as
    ``{"name": "sweep", "strategies": [{"name": "s", SECTION: {name: value}}]}``; the
    setting holds the value the rules hold (a number as float, ``"hard"`` as
    ``SlaMode.HARD``). Raises ``ValueError`` naming every refused value (with the rule
    language's reason), or a value that comes twice (after reading: ``8`` and ``8.0``).
    """
    allowed = sweepable()
    if name not in allowed:
        kind = (
            " (not a scalar field: cannot be swept)"
            if name in {f.name for f in fields(Policy)}
            else ""
        )
        raise ValueError(f"{name!r} is not a sweepable field{kind}; one of {', '.join(allowed)}")
    if not values:
        raise ValueError(f"grid over {name} needs at least one value")
    section = section_of(name)
    problems: list[str] = []
    out: list[Setting] = []
    for raw in values:
        v = Violations()
        document = {"name": "sweep", "strategies": [{"name": "s", section: {name: raw}}]}
        rules = RuleSet.from_raw(document, v)
        if rules is None or v:
            problems += [f"{name}={raw!r}: {x.description}" for x in v.items]
            continue
        value = getattr(rules.strategies[0].policy, name)
        label = setting_label(name, value)
        if any(label == seen for seen, _ in out):
            problems.append(f"{label} comes twice in the grid")
            continue
        out.append((label, {name: value}))
    if problems:
        raise ValueError("; ".join(problems))
    return out
