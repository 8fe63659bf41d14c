"""KPIs per run, node utilisation, and paired comparisons of runs with bootstrap intervals.

Every function reads a record table: one row per (run, order) with exactly the columns
:data:`router.whatif.records.COLUMNS`. Costs are evaluation costs (currency units), so
runs compare alike whatever rules or weights each routed with.

Paired comparisons pair the same order (scenario, seed, order id) in two runs and bootstrap
the mean per-order difference (other − base): the percentile interval of ``resamples``
means of resampled differences, drawn with ``numpy.random.Generator(PCG64(seed))``, so a
seed gives the same interval on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.network import Network
from models.order import Order
from router.whatif.records import COLUMNS

RUN_KEYS: tuple[str, ...] = ("run", "policy", "setting")
"""The columns naming a run in every per-run table."""

STREAM_KEYS: tuple[str, ...] = ("scenario", "seed")
"""The columns naming an order stream: a scenario built with a seed."""

ORDER_KEYS: tuple[str, ...] = (*STREAM_KEYS, "order_id")
"""The columns naming an order: paired comparisons pair records on these."""

KPI_COLUMNS: tuple[str, ...] = (
    *RUN_KEYS,
    "orders",
    "total_cost",
    "cost_per_order",
    "shipments_per_order",
    "split_rate",
    "on_time_rate",
    "mean_distance_km",
    "fill_rate",
    "backordered_units",
    "backorder_rate",
    "store_share",
    "dc_share",
    "nodes_used",
    "p50_latency_ms",
    "p99_latency_ms",
)
"""The columns of :func:`kpis` (after the extra ``by`` columns; plus ``cost_ratio_to_bound``
when bounds are given)."""

METRICS: dict[str, str] = {
    "cost": "cost per order",
    "shipments": "shipments per order",
    "split": "split rate (orders with ≥2 shipments)",
    "on_time": "on-time rate (orders with a deliver-by date in both runs)",
    "distance_km": "mean distance km per order",
    "backordered": "backordered units per order",
}
"""The metrics :func:`paired` compares, and what their mean per-order difference means."""

_CHUNK_CELLS = 4_000_000
"""Resampled indices drawn at once (rows × orders): bounds the bootstrap's memory (~32 MB)."""


def on_time_values(records: pd.DataFrame) -> pd.Series[float]:
    """``on_time`` as 1.0 / 0.0, NaN where null (None, NaN or empty text from a CSV)."""
    mapping = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
    values = records["on_time"].map(lambda v: mapping.get(v, math.nan) if _hashable(v) else v)
    return values.astype(float)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def node_units(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (record, shipping node): the run keys, the order keys, node_id, units.

    Parses ``node_units`` (``"DC-01:3;ST-0007:1"``; empty when nothing shipped).
    """
    keys = [*RUN_KEYS, *ORDER_KEYS]
    text = records["node_units"].fillna("").astype(str)
    parts = pd.DataFrame({**{k: records[k] for k in keys}, "part": text.str.split(";")})
    parts = parts.explode("part", ignore_index=True)
    parts = parts[parts["part"].notna() & (parts["part"] != "")]
    bad = ~parts["part"].str.fullmatch(r"[^:;]+:\d+")
    if bad.any():
        raise ValueError(
            f"node_units entries must be NODE:UNITS, got {parts['part'][bad].iloc[0]!r}"
        )
    pieces = parts["part"].str.rsplit(":", n=1)
    out = parts[keys].copy()
    out["node_id"] = pieces.str[0].astype(str)
    out["units"] = pieces.str[1].astype(int)
    return out.reset_index(drop=True)


def kpis(
    records: pd.DataFrame,
    bounds: Mapping[tuple[str, int], float] | None = None,
    by: Sequence[str] = ("run",),
) -> pd.DataFrame:
    """One row per group of ``by`` (in order of first appearance) with :data:`KPI_COLUMNS`.

    ``by`` is ``("run",)`` (a run over every stream) or adds stream columns
    (``("scenario", "seed", "run")``: a row per stream and run); the groups always keep the
    run's ``policy`` and ``setting``, and the extra ``by`` columns come first.

    Rates are shares of orders; ``on_time_rate`` counts only orders whose ``on_time`` is not
    null (NaN when none is); ``mean_distance_km`` weighs each order's mean distance by its
    shipped units (orders that shipped nothing have no distance); ``fill_rate`` and the
    node-type shares are unit ratios (NaN when nothing was ordered/shipped); latencies are
    pandas' linear-interpolated percentiles.

    With ``bounds`` (the hindsight lower bound of each stream's total cost, currency units,
    keyed by (scenario, seed)) adds ``cost_ratio_to_bound``: the group's total cost over the
    sum of the bounds of the streams it covers (streams are independent, so their bounds
    add); NaN when one of those streams has no bound. This is the one place the ratio is
    computed.
    """
    _check_columns(records)
    extra = [c for c in by if c not in RUN_KEYS]
    unknown = [c for c in extra if c not in STREAM_KEYS]
    if unknown or "run" not in by:
        raise ValueError(f"by must name run and optionally scenario, seed; got {list(by)}")
    keys = [*extra, *RUN_KEYS]
    frame = records.assign(
        _split=(records["shipments"] >= 2).astype(float),
        _on_time=on_time_values(records),
        _unit_km=records["distance_km"] * records["units_shipped"],
        _backorder=(records["units_backordered"] > 0).astype(float),
        _latency_ms=records["latency_s"] * 1e3,
    )
    groups = frame.groupby(keys, sort=False, dropna=False)
    g = groups.agg(
        orders=("order_id", "size"),
        total_cost=("cost", "sum"),
        shipments_per_order=("shipments", "mean"),
        split_rate=("_split", "mean"),
        on_time_rate=("_on_time", "mean"),
        unit_km=("_unit_km", "sum"),
        units_shipped=("units_shipped", "sum"),
        units_ordered=("units_ordered", "sum"),
        backordered_units=("units_backordered", "sum"),
        backorder_rate=("_backorder", "mean"),
        store_units=("store_units", "sum"),
        dc_units=("dc_units", "sum"),
        p50_latency_ms=("_latency_ms", lambda s: s.quantile(0.5)),
        p99_latency_ms=("_latency_ms", lambda s: s.quantile(0.99)),
    ).reset_index()
    shipped = g["units_shipped"].where(g["units_shipped"] > 0)
    ordered = g["units_ordered"].where(g["units_ordered"] > 0)
    g["cost_per_order"] = g["total_cost"] / g["orders"]
    g["mean_distance_km"] = g["unit_km"] / shipped
    g["fill_rate"] = g["units_shipped"] / ordered
    g["store_share"] = g["store_units"] / shipped
    g["dc_share"] = g["dc_units"] / shipped
    used = node_units(records).groupby(keys, sort=False, dropna=False)["node_id"].nunique()
    g = g.merge(used.rename("_used").reset_index(), on=keys, how="left")
    g["nodes_used"] = g["_used"].fillna(0).astype(int)
    out = g[[*extra, *KPI_COLUMNS]].copy()
    if bounds is not None:
        total = _bound_totals(records, bounds, keys)
        merged = g[keys].merge(total.rename("_total").reset_index(), on=keys, how="left")
        out["cost_ratio_to_bound"] = out["total_cost"] / merged["_total"].to_numpy(dtype=float)
    return out


def _bound_totals(
    records: pd.DataFrame, bounds: Mapping[tuple[str, int], float], keys: list[str]
) -> pd.Series[float]:
    """Per group of ``keys``, the sum of the bounds of the streams it covers (NaN if one lacks)."""
    for key, value in bounds.items():
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"the bound of {key} must be a positive cost, got {value!r}")
    streams = records[list(dict.fromkeys([*keys, *STREAM_KEYS]))].drop_duplicates()
    streams = streams.assign(
        _bound=[
            bounds.get((str(s), int(n)), math.nan)
            for s, n in zip(streams["scenario"], streams["seed"], strict=True)
        ]
    )
    total: pd.Series[float] = streams.groupby(keys, sort=False, dropna=False)["_bound"].agg(
        lambda b: b.sum(skipna=False)
    )
    return total


def kpis_long(table: pd.DataFrame) -> pd.DataFrame:
    """A KPI table in tidy form: one row per (group, metric) with its ``value`` (float).

    The key columns (``run``, ``policy``, ``setting`` and whichever of ``scenario``,
    ``seed`` the table has) stay; every other column becomes a ``metric``.
    """
    keys = [c for c in (*RUN_KEYS, *STREAM_KEYS) if c in table.columns]
    metrics = [c for c in table.columns if c not in keys]
    long = table.melt(id_vars=keys, value_vars=metrics, var_name="metric", value_name="value")
    long["value"] = long["value"].astype(float)
    return long


def order_table(orders: Iterable[Order], scenario: str, seed: int) -> pd.DataFrame:
    """The orders of one stream as a table: :data:`ORDER_KEYS`, ``day`` and ship-to position.

    ``day`` is the UTC date of ``created_at`` (the day replay counts capacity on);
    ``latitude`` and ``longitude`` are the ship-to's. Feeds :func:`node_utilisation` (peak
    day against capacity) and the report's map (lines from node to customer).
    """
    rows = [
        (scenario, seed, o.order_id, o.created_at.astimezone(UTC).date(),
         o.ship_to.latitude, o.ship_to.longitude)
        for o in orders
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=[*ORDER_KEYS, "day", "latitude", "longitude"])


def node_utilisation(
    records: pd.DataFrame, network: Network, orders: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per run and shipping node: units and orders shipped, share of units, capacity use.

    Columns ``run, policy, setting, node_id, type, latitude, longitude, units, orders,
    share, capacity, peak_day_orders, peak_capacity_use``; ``type`` is the node's type
    value (``"unknown"`` and NaN coordinates for a node the network lacks). ``capacity`` is
    the node's ``daily_order_capacity`` (NaN when it has none). With ``orders``
    (:func:`order_table` of the streams), ``peak_day_orders`` is the most orders the node
    shipped on one UTC day of one stream, and ``peak_capacity_use`` that over its capacity
    (NaN without a capacity, or without ``orders``). Sorted by run (first appearance), then
    units descending, node id.
    """
    _check_columns(records)
    per = node_units(records)
    keys = [*RUN_KEYS, "node_id"]
    out = (
        per.groupby(keys, sort=False, dropna=False)
        .agg(units=("units", "sum"), orders=("units", "size"))
        .reset_index()
    )
    totals = out.groupby("run", sort=False)["units"].transform("sum")
    out["share"] = out["units"] / totals.where(totals > 0)
    nodes = {n.node_id: n for n in network.nodes}
    out["type"] = [str(nodes[i].type) if i in nodes else "unknown" for i in out["node_id"]]
    out["latitude"] = [nodes[i].latitude if i in nodes else math.nan for i in out["node_id"]]
    out["longitude"] = [nodes[i].longitude if i in nodes else math.nan for i in out["node_id"]]
    capacity = [nodes[i].daily_order_capacity if i in nodes else None for i in out["node_id"]]
    out["capacity"] = pd.array([math.nan if c is None else c for c in capacity], dtype=float)
    out["peak_day_orders"] = math.nan
    if orders is not None:
        days = per.merge(orders[[*ORDER_KEYS, "day"]], on=list(ORDER_KEYS), how="left")
        if days["day"].isna().any():
            missing = days.loc[days["day"].isna(), list(ORDER_KEYS)].iloc[0].tolist()
            raise ValueError(f"orders lacks an order of the records, e.g. {missing}")
        daily = days.groupby([*keys, *STREAM_KEYS, "day"], sort=False, dropna=False).size()
        peak = daily.groupby(level=list(range(len(keys)))).max()
        out["peak_day_orders"] = [
            float(peak.get(tuple(k), math.nan)) for k in out[keys].itertuples(index=False)
        ]
    out["peak_capacity_use"] = out["peak_day_orders"] / out["capacity"].where(out["capacity"] > 0)
    order = {r: i for i, r in enumerate(pd.unique(records["run"]))}
    out["_run_order"] = out["run"].map(order)
    out = out.sort_values(["_run_order", "units", "node_id"], ascending=[True, False, True])
    columns = [*keys, "type", "latitude", "longitude", "units", "orders", "share"]
    columns += ["capacity", "peak_day_orders", "peak_capacity_use"]
    return out[columns].reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class Paired:
    """The mean per-order difference other − base of one metric, with its bootstrap interval.

    ``n`` orders were paired (for ``on_time``: those with ``on_time`` not null in both
    runs); ``low``/``high`` bound the percentile interval at ``level``; ``significant``
    when the interval excludes 0. With ``n == 0`` the difference and interval are NaN.
    """

    base: str
    other: str
    metric: str
    n: int
    mean_difference: float
    low: float
    high: float
    significant: bool
    level: float = 0.95

    def row(self) -> dict[str, object]:
        """The result as a table row (field → value)."""
        return asdict(self)


PAIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Paired))
"""The columns of :func:`comparisons`."""


def _metric_values(records: pd.DataFrame, metric: str) -> pd.Series[float]:
    if metric == "cost":
        return records["cost"].astype(float)
    if metric == "shipments":
        return records["shipments"].astype(float)
    if metric == "split":
        return (records["shipments"] >= 2).astype(float)
    if metric == "on_time":
        return on_time_values(records)
    if metric == "distance_km":
        return records["distance_km"].astype(float)
    if metric == "backordered":
        return records["units_backordered"].astype(float)
    raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")


def _run_rows(records: pd.DataFrame, run: str) -> pd.DataFrame:
    rows = records[records["run"] == run]
    if rows.empty:
        known = ", ".join(map(repr, pd.unique(records["run"])))
        raise ValueError(f"no records of run {run!r} (runs: {known})")
    dup = rows.duplicated(list(ORDER_KEYS))
    if dup.any():
        first = rows.loc[dup, list(ORDER_KEYS)].iloc[0].tolist()
        raise ValueError(f"run {run!r} has {int(dup.sum())} repeated orders, e.g. {first}")
    return rows


def paired(
    records: pd.DataFrame,
    base_run: str,
    other_run: str,
    metric: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Paired:
    """Pair each order of ``other_run`` with the same order of ``base_run``; bootstrap the mean.

    Orders pair on (scenario, seed, order_id). Raises ``ValueError`` (naming both runs)
    unless both runs cover exactly the same orders. The interval is the percentile
    interval of ``resamples`` means of ``n`` differences drawn with replacement (indices
    from ``numpy.random.default_rng(seed)``, drawn as index matrices in fixed-size blocks,
    so equal inputs and seed give equal intervals).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    _check_columns(records)
    keys = list(ORDER_KEYS)
    base = _run_rows(records, base_run)
    other = _run_rows(records, other_run)
    both = (
        base[keys]
        .assign(_base=_metric_values(base, metric))
        .merge(
            other[keys].assign(_other=_metric_values(other, metric)),
            on=keys,
            how="outer",
            indicator=True,
        )
    )
    unpaired = both[both["_merge"] != "both"]
    if not unpaired.empty:
        only_base = int((unpaired["_merge"] == "left_only").sum())
        only_other = int((unpaired["_merge"] == "right_only").sum())
        example = unpaired[keys].iloc[0].tolist()
        raise ValueError(
            f"runs {base_run!r} and {other_run!r} do not cover the same orders: "
            f"{only_base} only in {base_run!r}, {only_other} only in {other_run!r} "
            f"(e.g. scenario, seed, order_id = {example})"
        )
    both = both.dropna(subset=["_base", "_other"])
    diff = (both["_other"] - both["_base"]).to_numpy(dtype=float)
    n = len(diff)
    if n == 0:
        nan = math.nan
        return Paired(base_run, other_run, metric, 0, nan, nan, nan, False, level)
    low, high = bootstrap_interval(diff, level=level, resamples=resamples, seed=seed)
    mean = float(diff.mean())
    significant = bool(low > 0 or high < 0)
    return Paired(base_run, other_run, metric, n, mean, low, high, significant, level)


def bootstrap_interval(
    values: npt.NDArray[np.float64], *, level: float = 0.95, resamples: int, seed: int
) -> tuple[float, float]:
    """The percentile interval at ``level`` of :func:`bootstrap_means` of ``values``."""
    tail = (1 - level) / 2
    low, high = np.quantile(
        bootstrap_means(values, resamples=resamples, seed=seed), [tail, 1 - tail]
    )
    return float(low), float(high)


def bootstrap_means(
    values: npt.NDArray[np.float64], *, resamples: int, seed: int
) -> npt.NDArray[np.float64]:
    """``resamples`` means of ``len(values)`` values drawn with replacement (seeded)."""
    n = len(values)
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_CELLS // max(1, n))
    means = np.empty(resamples, dtype=float)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[index].mean(axis=1)
    return means


def comparisons(
    records: pd.DataFrame,
    base_run: str,
    metrics: Sequence[str] = tuple(METRICS),
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """:func:`paired` of every other run (first-appearance order) against ``base_run``.

    One row per (other run, metric) with the columns :data:`PAIRED_COLUMNS`.
    """
    _check_columns(records)
    others = [r for r in pd.unique(records["run"]) if r != base_run]
    _run_rows(records, base_run)
    rows = [
        paired(records, base_run, str(other), metric, resamples=resamples, seed=seed, level=level)
        for other in others
        for metric in metrics
    ]
    return pd.DataFrame([r.row() for r in rows], columns=list(PAIRED_COLUMNS))


def _check_columns(records: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"record table lacks columns {', '.join(missing)}")
