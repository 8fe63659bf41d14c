"""What-if outputs: tables (CSV and Parquet), PNG figures, and one self-contained HTML report.

* :func:`write_tables`: every table as ``<name>.csv`` and ``<name>.parquet``;
  :func:`read_table` reads any of them back with the dtypes they were written with.
* :func:`format_value` formats every number shown (HTML tables and :func:`markdown`).
* ``plot_*``: matplotlib figures (Agg canvas, no pyplot state), one per chart.
* :func:`write_report`: ``report.html``, one file with every figure embedded as a base64
  PNG data URI, the tables as HTML and inline CSS (no external assets), plus each figure
  as a PNG beside it.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from models.network import Network, NodeType
from router.whatif.kpis import METRICS, ORDER_KEYS, STREAM_KEYS, node_units, node_utilisation
from router.whatif.outline import contiguous_us

STRING_COLUMNS: frozenset[str] = frozenset(
    {"run", "policy", "setting", "scenario", "order_id", "status", "node_units", "price_version"}
    | {"base", "other", "metric", "node_id", "type"}
)
"""Text columns of the what-if tables: read back from CSV as text, empty stays ``""``."""

US_EXTENT: tuple[float, float, float, float] = (-125.0, -66.5, 24.0, 49.5)
"""Longitude and latitude limits of the continental US (west, east, south, north)."""

TYPE_STYLE: dict[str, tuple[str, str, str]] = {
    NodeType.DC.value: ("s", "#1f77b4", "DC"),
    NodeType.STORE.value: ("o", "#2ca02c", "store"),
    NodeType.DARK_STORE.value: ("D", "#9467bd", "dark store"),
    NodeType.THREE_PL.value: ("^", "#ff7f0e", "3PL"),
    NodeType.DROPSHIP.value: ("v", "#d62728", "drop-ship"),
    "unknown": ("x", "#7f7f7f", "unknown"),
}
"""Marker, colour and legend label of each node type on the map and utilisation chart."""

RATE_COLUMNS: frozenset[str] = frozenset(
    {"split_rate", "on_time_rate", "fill_rate", "backorder_rate", "store_share", "dc_share"}
    | {"share", "peak_capacity_use"}
)
"""Columns shown as percentages."""

MAX_MAP_LINES = 2_000
"""At most this many node → customer lines on the map (an even sample of the shipments)."""

KPI_LABELS: dict[str, str] = {
    "run": "run",
    "policy": "policy",
    "setting": "setting",
    "orders": "orders",
    "total_cost": "total cost",
    "cost_per_order": "cost / order",
    "cost_ratio_to_bound": "cost / hindsight bound",
    "shipments_per_order": "shipments / order",
    "split_rate": "split rate",
    "on_time_rate": "on-time rate",
    "mean_distance_km": "mean km / unit",
    "fill_rate": "fill rate",
    "backordered_units": "backordered units",
    "backorder_rate": "orders backordered",
    "store_share": "store share",
    "dc_share": "DC share",
    "nodes_used": "nodes used",
    "p50_latency_ms": "p50 ms",
    "p99_latency_ms": "p99 ms",
}
"""Column headings of the KPI table in the report."""

TRADEOFF_COLUMNS: tuple[str, ...] = (
    "run", "setting", "cost_per_order", "split_rate", "on_time_rate", "shipments_per_order",
    "pareto",
)  # fmt: skip
"""The columns of the trade-off table shown (in the report and by the command)."""


# tables ----------------------------------------------------------------------------------


def write_tables(out: Path, tables: Mapping[str, pd.DataFrame]) -> dict[str, Path]:
    """Write each table as ``<name>.csv`` and ``<name>.parquet`` under ``out``.

    Returns the paths keyed by file name (``records.csv``, ``records.parquet``, …).
    """
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        csv, parquet = out / f"{name}.csv", out / f"{name}.parquet"
        table.to_csv(csv, index=False)
        table.to_parquet(parquet, index=False)
        paths[csv.name], paths[parquet.name] = csv, parquet
    return paths


def format_value(column: str, value: object) -> str:
    """How every table of the report and the command shows a value of ``column``.

    Missing (None, NaN) is ``–``; flags ``yes``/``no``; whole numbers with thousands
    separators; rates as percentages; the bound ratio with 3 decimals; other numbers with 2.
    """
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if column in RATE_COLUMNS:
            return f"{v:.1%}"
        if column == "cost_ratio_to_bound":
            return f"{v:.3f}"
        return f"{v:,.2f}"
    return str(value)


def markdown(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """``table`` as a markdown table of ``columns`` (those it has; default all)."""
    shown = [c for c in (columns or table.columns) if c in table.columns]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table[shown].itertuples(index=False):
        lines.append(
            "| " + " | ".join(format_value(c, v) for c, v in zip(shown, row, strict=True)) + " |"
        )
    return "\n".join(lines)


def read_table(path: Path) -> pd.DataFrame:
    """A table :func:`write_tables` wrote (``.csv`` or ``.parquet``), with its dtypes.

    From CSV, text columns stay text (an empty setting is ``""``, not NaN), empty numbers
    are NaN and an empty ``on_time`` is ``None``, as in a table built from records.
    """
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    header = pd.read_csv(path, nrows=0).columns
    text = [c for c in header if c in STRING_COLUMNS]
    table = pd.read_csv(
        path,
        dtype=dict.fromkeys(text, str),
        keep_default_na=False,
        na_values={c: [""] for c in header if c not in STRING_COLUMNS},
    )
    if "on_time" in table.columns:
        values = table["on_time"].astype(object)
        table["on_time"] = values.where(values.notna(), None)
    return table


# figures ---------------------------------------------------------------------------------


def figure(width: float, height: float) -> Figure:
    """An empty figure of that size (inches), laid out constrained, drawn by Agg."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure rendered as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _runs(table: pd.DataFrame) -> list[str]:
    return [str(r) for r in table["run"]]


def plot_kpis(kpi_table: pd.DataFrame) -> Figure:
    """Bars per run: cost per order, split rate, on-time rate, fill rate.

    With a ``cost_ratio_to_bound`` column and runs of equal size, the cost panel marks the
    hindsight bound per order (cost per order / ratio) as a dashed line.
    """
    panels = [
        ("cost_per_order", "cost per order"),
        ("split_rate", "split rate"),
        ("on_time_rate", "on-time rate"),
        ("fill_rate", "fill rate"),
    ]
    runs = _runs(kpi_table)
    fig = figure(14, 1.6 + 0.35 * max(1, len(runs)))
    axes = fig.subplots(1, len(panels), sharey=True)
    y = np.arange(len(runs))
    colours = colormaps["tab10"](np.arange(len(runs)) % 10)
    for ax, (column, label) in zip(axes, panels, strict=True):
        values = kpi_table[column].to_numpy(dtype=float)
        ax.barh(y, np.nan_to_num(values), color=colours)
        for yi, v in zip(y, values, strict=True):
            text = "n/a" if math.isnan(v) else (f"{v:.1%}" if "rate" in column else f"{v:.2f}")
            ax.annotate(
                text, (0 if math.isnan(v) else v, yi), xytext=(3, 0),
                textcoords="offset points", va="center", fontsize=8,
            )  # fmt: skip
        ax.set_title(label)
        ax.grid(True, axis="x", alpha=0.3)
        if "rate" in column:
            ax.set_xlim(0, 1.15)
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        else:
            ax.set_xlim(0, np.nanmax(np.append(values, 0.0)) * 1.2 or 1.0)
    orders = kpi_table["orders"].unique()
    ratio = kpi_table.get("cost_ratio_to_bound")
    per_order = math.nan
    if ratio is not None and len(orders) == 1 and ratio.notna().all():
        per_order = float((kpi_table["cost_per_order"] / ratio).iloc[0])
    if math.isfinite(per_order):
        axes[0].axvline(
            per_order, color="black", linestyle="--", linewidth=1,
            label="hindsight bound per order",
        )  # fmt: skip
        axes[0].legend(loc="upper right", fontsize=7, framealpha=0.9)
    axes[0].set_yticks(y, runs)
    axes[0].invert_yaxis()
    fig.suptitle("KPIs per run (evaluation cost, scenario rules)")
    return fig


def plot_paired(comparisons: pd.DataFrame) -> Figure:
    """Mean per-order difference (other − base) per run with interval whiskers, per metric.

    One panel per metric; filled markers where the interval excludes 0 (significant),
    hollow where it does not.
    """
    rows = comparisons.dropna(subset=["mean_difference"])
    metrics = list(pd.unique(rows["metric"])) or ["cost"]
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    others = list(pd.unique(rows["other"]))
    fig = figure(5 * ncols, (1.4 + 0.35 * max(1, len(others))) * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        part = rows[rows["metric"] == metric].set_index("other").reindex(others)
        y = np.arange(len(others))
        mean = part["mean_difference"].to_numpy(dtype=float)
        err = np.vstack([mean - part["low"].to_numpy(float), part["high"].to_numpy(float) - mean])
        significant = part["significant"].fillna(False).to_numpy(dtype=bool)
        ax.errorbar(mean, y, xerr=err, fmt="none", ecolor="#555555", capsize=3)
        ax.scatter(
            mean[significant], y[significant], color="#d62728", zorder=3, label="significant"
        )
        ax.scatter(
            mean[~significant], y[~significant], facecolors="white", edgecolors="#555555",
            zorder=3, label="interval contains 0",
        )  # fmt: skip
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, [str(o) for o in others])
        ax.invert_yaxis()
        ax.set_title(f"Δ {METRICS.get(metric, metric).split(' (')[0]}", fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if len(rows):
        base = str(rows["base"].iloc[0])
        level = float(rows["level"].iloc[0]) if "level" in rows.columns else 0.95
        axes[0].legend(fontsize=8, loc="best")
        fig.suptitle(f"other − {base}: mean per-order difference, {level:.0%} bootstrap interval")
    return fig


def plot_tradeoff(
    tradeoff_table: pd.DataFrame,
    x: str = "split_rate",
    y: str = "cost_per_order",
    z: str = "on_time_rate",
) -> Figure:
    """Cost per order against split rate, coloured by on-time rate; Pareto points connected.

    Points are labelled with their setting (the run when the setting is empty); the
    Pareto-efficient ones (column ``pareto``) are ringed and joined in order of ``x``.
    """
    fig = figure(8, 6)
    ax = fig.subplots()
    t = tradeoff_table
    colour = t[z].to_numpy(dtype=float) if z in t.columns else np.full(len(t), np.nan)
    if np.isnan(colour).all():
        ax.scatter(t[x], t[y], color="#7f7f7f", s=40, zorder=3)
    else:
        points = ax.scatter(t[x], t[y], c=colour, cmap="viridis", s=40, zorder=3)
        fig.colorbar(points, ax=ax, label=z.replace("_", " "))
    if "pareto" in t.columns:
        front = t[t["pareto"].astype(bool)].sort_values([x, y])
        ax.plot(front[x], front[y], "-", color="#d62728", linewidth=1, zorder=2)
        ax.scatter(
            front[x], front[y], s=140, facecolors="none", edgecolors="#d62728", linewidths=1.5,
            zorder=4, label="Pareto-efficient",
        )  # fmt: skip
        ax.legend(loc="best", fontsize=8)
    for _, row in t.iterrows():
        label = str(row["setting"]) if "setting" in t.columns and row["setting"] else row["run"]
        ax.annotate(
            str(label), (row[x], row[y]), xytext=(5, 4), textcoords="offset points", fontsize=8
        )
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.grid(True, alpha=0.3)
    ax.set_title("trade-off: cost per order against splits (colour: on-time rate)")
    return fig


def _type_legend(types: Sequence[str]) -> list[Line2D]:
    handles = []
    for t in types:
        marker, colour, label = TYPE_STYLE.get(t, TYPE_STYLE["unknown"])
        handles.append(
            Line2D([], [], marker=marker, color=colour, linestyle="", markersize=7, label=label)
        )
    return handles


def _first_stream(records: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The records of the first stream (scenario, seed) and a note when there are several."""
    streams = records[list(STREAM_KEYS)].drop_duplicates()
    if len(streams) <= 1:
        return records, ""
    scenario, seed = streams.iloc[0]
    rows = records[(records["scenario"] == scenario) & (records["seed"] == seed)]
    seeds = ", ".join(str(n) for n in streams["seed"])
    return rows, f"seed {seed} of {seeds} (positions differ by seed)"


def plot_map(
    network: Network,
    records: pd.DataFrame,
    run: str,
    orders: pd.DataFrame | None = None,
    *,
    max_lines: int = MAX_MAP_LINES,
) -> Figure:
    """Where ``run`` shipped from and to, over the continental US; one stream.

    Every node of the network is drawn faintly at its longitude/latitude, marker and colour
    by type; each node that shipped in ``run`` is drawn again, its area proportional to
    its units. With ``orders`` (:func:`router.whatif.kpis.order_table`: ship-to
    positions), a thin translucent line joins each shipping node to the customer of each
    shipment (an even sample of ``max_lines`` when there are more). With several streams
    (seeds) only the first is drawn, as customers and stock differ by seed: the title says
    which. Nodes outside the continental extent are counted in the title.
    """
    fig = figure(11, 6.5)
    ax = fig.subplots()
    west, east, south, north = US_EXTENT
    outline = contiguous_us()
    ax.fill(
        outline[:, 0], outline[:, 1], facecolor="#f4f4f4", edgecolor="#9a9a9a",
        linewidth=0.8, zorder=0,
    )  # fmt: skip
    types = [t.value for t in NodeType]
    for t in types:
        nodes = [n for n in network.nodes if n.type.value == t]
        if nodes:
            marker, colour, _ = TYPE_STYLE[t]
            ax.scatter(
                [n.longitude for n in nodes], [n.latitude for n in nodes], marker=marker,
                s=8, color=colour, alpha=0.25, linewidths=0,
            )  # fmt: skip
    rows, which = _first_stream(records[records["run"] == run])
    use = node_utilisation(rows, network)
    drawn = total = 0
    if orders is not None and len(rows):
        drawn, total = _draw_legs(ax, rows, network, orders, max_lines)
    largest = float(use["units"].max()) if len(use) else 0.0
    for t in pd.unique(use["type"]):
        part = use[use["type"] == t]
        marker, colour, _ = TYPE_STYLE.get(str(t), TYPE_STYLE["unknown"])
        ax.scatter(
            part["longitude"], part["latitude"], s=15 + 485 * part["units"] / largest,
            marker=marker, color=colour, alpha=0.65, edgecolors="black", linewidths=0.5,
            zorder=3,
        )  # fmt: skip
    outside = sum(
        1
        for n in network.nodes
        if not (west <= n.longitude <= east and south <= n.latitude <= north)
    )
    _map_legend(ax, [t for t in types if any(n.type.value == t for n in network.nodes)], largest)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1 / math.cos(math.radians((south + north) / 2)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.grid(True, alpha=0.2)
    shipped = int(use["units"].sum()) if len(use) else 0
    notes = [f"{len(use)} nodes, {shipped} units"]
    if total:
        notes.append(
            f"lines to customers: {drawn:,} of {total:,} shipments" if drawn < total
            else f"lines to customers: {total:,} shipments"
        )  # fmt: skip
    if outside:
        notes.append(f"{outside} nodes outside the map")
    title = f"{run}: units shipped per node ({'; '.join(notes)})"
    ax.set_title(f"{title}\n{which}" if which else title, fontsize=10)
    return fig


def _map_legend(ax: Axes, present: list[str], largest: float) -> None:
    """The map's legend: a marker per node type present, and two sizes of units shipped."""
    handles = _type_legend(present)
    if largest > 0:
        for units in sorted({max(1, round(largest / 4)), round(largest)}):
            handles.append(
                Line2D(
                    [], [], marker="o", linestyle="", color="#bbbbbb", markeredgecolor="black",
                    markersize=math.sqrt(15 + 485 * units / largest), label=f"{units} units",
                )
            )  # fmt: skip
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)


def _draw_legs(
    ax: Axes, rows: pd.DataFrame, network: Network, orders: pd.DataFrame, max_lines: int
) -> tuple[int, int]:
    """A thin line from each shipping node to each shipment's customer; (drawn, in all).

    An even sample of ``max_lines`` when there are more; fainter the more there are.
    """
    by_node = {n.node_id: n for n in network.nodes}
    legs = node_units(rows).merge(
        orders[[*ORDER_KEYS, "latitude", "longitude"]], on=list(ORDER_KEYS), how="inner"
    )
    legs = legs[legs["node_id"].isin(list(by_node))]
    total = len(legs)
    if total > max_lines:
        legs = legs.iloc[np.linspace(0, total - 1, max_lines).astype(int)]
    drawn = len(legs)
    segments = [
        [(by_node[n].longitude, by_node[n].latitude), (lon, lat)]
        for n, lat, lon in zip(legs["node_id"], legs["latitude"], legs["longitude"], strict=True)
    ]
    colours = [TYPE_STYLE[by_node[n].type.value][1] for n in legs["node_id"]]
    alpha = float(np.clip(8 / math.sqrt(max(drawn, 1)), 0.08, 0.5))  # faint when many
    ax.add_collection(
        LineCollection(segments, colors=colours, linewidths=0.4, alpha=alpha, zorder=1)
    )
    return drawn, total


def plot_utilisation(
    records: pd.DataFrame,
    network: Network,
    orders: pd.DataFrame | None = None,
    *,
    top: int = 30,
    runs: Sequence[str] | None = None,
) -> Figure:
    """Per run, the ``top`` nodes by units shipped as horizontal bars, coloured by type.

    With ``orders``, each bar of a node with a daily order capacity is labelled with its
    peak day's orders as a share of that capacity
    (:func:`router.whatif.kpis.node_utilisation`).
    """
    use = node_utilisation(records, network, orders)
    names = [str(r) for r in (runs if runs is not None else pd.unique(records["run"]))]
    ncols = min(3, max(1, len(names)))
    nrows = math.ceil(max(1, len(names)) / ncols)
    # As tall as the longest run's bars, not as ``top`` would be: no empty panels.
    tallest = max([len(use[use["run"] == run].head(top)) for run in names] or [1])
    fig = figure(5 * ncols, (1.2 + 0.22 * max(tallest, 3)) * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, run in zip(axes, names, strict=False):
        part = use[use["run"] == run].head(top)
        y = np.arange(len(part))
        colours = [TYPE_STYLE.get(str(t), TYPE_STYLE["unknown"])[1] for t in part["type"]]
        ax.barh(y, part["units"], color=colours)
        for yi, units, peak in zip(y, part["units"], part["peak_capacity_use"], strict=True):
            if not math.isnan(peak):
                ax.annotate(
                    f"peak day {peak:.1%} of capacity", (units, yi), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=6,
                )  # fmt: skip
        ax.set_yticks(y, [str(n) for n in part["node_id"]], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("units shipped")
        if len(part):
            ax.set_xlim(0, float(part["units"].max()) * 1.45)
        covered = float(part["share"].sum()) if len(part) else 0.0
        ax.set_title(f"{run}: top {len(part)} nodes ({covered:.0%} of units)", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    present = [t for t in TYPE_STYLE if t in set(use["type"])]
    if present:
        fig.legend(handles=_type_legend(present), loc="outside lower center", ncols=len(present))
    fig.suptitle(f"node utilisation: at most the top {top} nodes by units shipped, per run")
    return fig


# report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A table as the report shows it: headers, rows of formatted cells, a class per row."""

    headers: list[str]
    rows: list[list[str]]
    classes: list[str]

    @staticmethod
    def of(frame: pd.DataFrame, labels: Mapping[str, str] | None = None) -> Table:
        """``frame``'s cells formatted by :func:`format_value`, headers renamed by ``labels``."""
        names = dict(labels or {})
        rows = [
            [format_value(str(c), v) for c, v in zip(frame.columns, values, strict=True)]
            for values in frame.itertuples(index=False, name=None)
        ]
        return Table([names.get(str(c), str(c)) for c in frame.columns], rows, [""] * len(rows))


def paired_table(comparisons: pd.DataFrame) -> Table:
    """The paired differences: run, metric, orders, mean, interval, verdict (rows marked)."""
    means = comparisons["mean_difference"].to_numpy(dtype=float)
    lows = comparisons["low"].to_numpy(dtype=float)
    highs = comparisons["high"].to_numpy(dtype=float)
    counts = comparisons["n"].to_numpy(dtype=int)
    flags = comparisons["significant"].fillna(False).to_numpy(dtype=bool)
    rows: list[list[str]] = []
    classes: list[str] = []
    for i, (other, metric) in enumerate(
        zip(comparisons["other"], comparisons["metric"], strict=True)
    ):
        mean, significant = float(means[i]), bool(flags[i])
        if math.isnan(mean):
            interval, verdict, klass = "–", "no paired orders", ""
        else:
            interval = f"[{float(lows[i]):+.4g}, {float(highs[i]):+.4g}]"
            klass = "significant" if significant else ""
            verdict = "significant" if significant else "not significant (interval contains 0)"
        label = METRICS.get(str(metric), str(metric))
        mean_text = "–" if math.isnan(mean) else f"{mean:+.4g}"
        rows.append([str(other), label, f"{int(counts[i]):,}", mean_text, interval, verdict])
        classes.append(klass)
    headers = ["run", "metric", "orders paired", "mean difference", "interval", "verdict"]
    return Table(headers, rows, classes)


def in_value_order(table: pd.DataFrame, column: str = "run") -> pd.DataFrame:
    """``table``'s rows with ``column`` in natural order: numbers in labels compare as numbers.

    So a sweep reads ``split_penalty=0, 4, 16, 64``, not ``0, 16, 4, 64``; the sort is
    stable, so rows of one label keep their order.
    """
    keys = [_natural_key(str(v)) for v in table[column]]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return table.iloc[order]


_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)")


def _natural_key(label: str) -> tuple[tuple[int, float, str], ...]:
    parts = _NUMBER.split(label)
    return tuple(
        (1, float(part), "") if i % 2 else (0, 0.0, part) for i, part in enumerate(parts) if part
    )


CAPACITY_LABELS: dict[str, str] = {
    "node_id": "node",
    "type": "type",
    "units": "units",
    "orders": "orders",
    "capacity": "orders / day capacity",
    "peak_day_orders": "peak day orders",
    "peak_capacity_use": "peak day / capacity",
}
"""Columns and headings of the report's capacity table."""


def write_report(
    out: Path,
    *,
    title: str,
    records: pd.DataFrame,
    kpi_table: pd.DataFrame,
    comparisons: pd.DataFrame,
    network: Network,
    bound: float | None = None,
    tradeoff_table: pd.DataFrame | None = None,
    orders: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    map_run: str | None = None,
    top_nodes: int = 30,
) -> Path:
    """Write ``out/report.html`` (self-contained) and each figure as a PNG under ``out``.

    Sections: title and notes (scenarios, seeds, runs, the hindsight bound ``bound``, the
    sum over the streams, stated as a fact); the KPI table as given (with its
    ``cost_ratio_to_bound`` column when it has one); the paired differences with their
    intervals; the trade-off curve (when ``tradeoff_table`` is given); the map of
    ``map_run`` (default: the comparisons' base run, else the first run), with lines to the
    customers when ``orders`` (:func:`router.whatif.kpis.order_table`) is given; the
    utilisation chart and, with ``orders``, the peak day of the nodes that have a daily
    capacity. Returns the report's path.
    """
    out.mkdir(parents=True, exist_ok=True)
    kpi = in_value_order(kpi_table)
    if map_run is None:
        map_run = str(comparisons["base"].iloc[0]) if len(comparisons) else _runs(kpi)[0]

    figures: list[tuple[str, str, Figure]] = [("kpis.png", "KPIs per run", plot_kpis(kpi))]
    comparisons = in_value_order(comparisons, "other") if len(comparisons) else comparisons
    if len(comparisons):
        figures.append(("paired.png", "paired differences", plot_paired(comparisons)))
    if tradeoff_table is not None and len(tradeoff_table):
        figures.append(("tradeoff.png", "trade-off curve", plot_tradeoff(tradeoff_table)))
    figures.append(("map.png", f"map of {map_run}", plot_map(network, records, map_run, orders)))
    utilisation = plot_utilisation(records, network, orders, top=top_nodes)
    figures.append(("utilisation.png", "node utilisation", utilisation))
    images: dict[str, dict[str, str]] = {}
    for name, alt, fig in figures:
        data = png(fig)
        (out / name).write_bytes(data)
        images[name] = {"alt": alt, "data": base64.b64encode(data).decode("ascii")}
    context = {
        "title": title,
        "facts": _facts(records, kpi, bound, notes),
        "kpis": Table.of(kpi[[c for c in KPI_LABELS if c in kpi.columns]], KPI_LABELS),
        "figures": images,
        "paired": None,
        "tradeoff": None,
        "map_run": map_run,
        "capacity": None,
    }
    if len(comparisons):
        level = float(comparisons["level"].iloc[0]) if "level" in comparisons.columns else 0.95
        context["paired"] = {
            "base": str(comparisons["base"].iloc[0]),
            "level": f"{level:.0%}",
            "table": paired_table(comparisons),
        }
    if "tradeoff.png" in images and tradeoff_table is not None:
        shown = in_value_order(tradeoff_table)
        shown = shown[[c for c in TRADEOFF_COLUMNS if c in shown.columns]]
        context["tradeoff"] = Table.of(shown, {**KPI_LABELS, "pareto": "Pareto-efficient"})
    if orders is not None:
        use = node_utilisation(records[records["run"] == map_run], network, orders)
        capped = use[use["capacity"].notna()].sort_values(
            ["peak_capacity_use", "node_id"], ascending=[False, True]
        )
        if len(capped):
            shown = capped[list(CAPACITY_LABELS)].head(top_nodes)
            context["capacity"] = Table.of(shown, CAPACITY_LABELS)
    path = out / "report.html"
    path.write_text(_TEMPLATES.get_template("report.html.j2").render(context), encoding="utf-8")
    return path


_TEMPLATES = Environment(
    loader=PackageLoader("router.whatif", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
"""The report's template (templates/report.html.j2), every value escaped."""


def _facts(
    records: pd.DataFrame, kpi: pd.DataFrame, bound: float | None, notes: Sequence[str]
) -> list[str]:
    """The report's opening facts: what was replayed, how it is priced, the bound, notes."""
    scenarios = ", ".join(sorted({str(s) for s in records["scenario"]}))
    seeds = ", ".join(str(s) for s in sorted({int(s) for s in records["seed"]}))
    facts = [
        f"Scenario {scenarios}, seed {seeds}; {len(kpi)} runs, {len(records):,} order records.",
        "Costs are evaluation costs: every run is priced by the canonical model under the "
        "scenario's own rules, whatever rules or settings it routed with.",
    ]
    if bound is not None:
        facts.append(
            f"Hindsight bound (LP relaxation of routing the whole stream with full "
            f"knowledge): {bound:,.2f}. No routing of the stream costs less, so a run's "
            f"cost / bound − 1 over-states (never under-states) how far it is from the best "
            f"possible."
        )
    return facts + list(notes)
