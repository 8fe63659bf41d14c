"""Weight sweeps: grids of settings, trade-off tables and their Pareto-efficient rows.

A sweep routes the same order stream once per setting of one weight of the routing policy
(``grid``) and prices every run with the scenario's own rules, so the KPI table of the
runs (:func:`benchmarks.whatif.kpis.kpis`) traces how the weight trades cost against
splits and promises kept (:func:`tradeoff`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from models.rules import SECTIONS, Policy

_WEIGHT_LIMITS: dict[str, float] = {"distance_cost_per_km": 100.0}
"""Upper bounds the rule language puts on a weight (money weights: up to 100,000)."""
_MAX_MONEY = 100_000.0


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

    Rows keep their order; :func:`benchmarks.whatif.report.plot_tradeoff` draws ``y``
    against ``x`` coloured by ``z``. Pass ``z=""`` to leave the third objective out.
    """
    out = kpi_table.copy()
    out["pareto"] = pareto(kpi_table, [x, y], [z] if z else [])
    return out


def weight_names() -> tuple[str, ...]:
    """The weights of :class:`models.rules.Policy` a grid may sweep (the numeric ones)."""
    defaults = {f.name: f.default for f in fields(Policy)}
    return tuple(
        name
        for name in SECTIONS["weights"]
        if isinstance(defaults.get(name), float | int) and not isinstance(defaults[name], bool)
    )


def setting_label(name: str, value: float) -> str:
    """``"split_penalty=8"``: the weight and its value, shortest exact form."""
    return (
        f"{name}={float(value):g}" if float(value) == float(f"{value:g}") else f"{name}={value!r}"
    )


def grid(name: str, values: Sequence[float]) -> list[tuple[str, dict[str, float]]]:
    """One setting per value: ``("split_penalty=8", {"split_penalty": 8.0})``, in order.

    ``name`` must be a numeric weight of :class:`models.rules.Policy`
    (``SECTIONS["weights"]``; ``unit_penalty_by_node_type`` is a mapping and cannot be
    swept this way); values must be finite, within the rule language's bounds (0 to
    100,000; ``distance_cost_per_km`` 0 to 100) and distinct. The run orchestrator applies
    a setting with ``dataclasses.replace(policy, **weights)``.
    """
    allowed = weight_names()
    if name not in allowed:
        other = " (a mapping, not sweepable)" if name in SECTIONS["weights"] else ""
        raise ValueError(f"{name!r} is not a sweepable weight{other}; one of {', '.join(allowed)}")
    if not values:
        raise ValueError(f"grid over {name} needs at least one value")
    limit = _WEIGHT_LIMITS.get(name, _MAX_MONEY)
    out: list[tuple[str, dict[str, float]]] = []
    seen: set[float] = set()
    for raw in values:
        value = float(raw)
        if not math.isfinite(value) or not 0 <= value <= limit:
            raise ValueError(f"{name} must lie in 0..{limit:g}, got {raw!r}")
        if value in seen:
            raise ValueError(f"{name}={value:g} comes twice in the grid")
        seen.add(value)
        out.append((setting_label(name, value), {name: value}))
    return out
