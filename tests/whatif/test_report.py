from __future__ import annotations

import base64
import re

import pandas as pd
from pandas.testing import assert_frame_equal

from router.whatif import report
from router.whatif.kpis import KPI_COLUMNS, comparisons, kpis, order_table
from router.whatif.sweep import tradeoff
from tests.whatif.test_kpis import tiny_network, tiny_records

PNG = b"\x89PNG\r\n\x1a\n"


def outputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    records = tiny_records()
    bounds = {("tiny", 1): 80.0}
    return records, kpis(records, bounds), comparisons(records, "engine", resamples=200)


def tiny_orders() -> pd.DataFrame:
    """The three orders of tiny_records, shipped to Denver, Phoenix and Seattle."""
    from datetime import UTC, datetime

    from models.order import Order, ShipTo

    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    places = {"O1": (39.74, -104.99), "O2": (33.45, -112.07), "O3": (47.61, -122.33)}
    orders = [
        Order(i, at, ShipTo(lat, lon, "US"), "ground", ()) for i, (lat, lon) in places.items()
    ]
    return order_table(orders, "tiny", 1)


def test_tables_are_written_as_csv_and_parquet_and_read_back_equal(tmp_path):
    """Any named tables: both formats, each read back equal to what was written."""
    records, kpi_table, paired = outputs()
    tables = {"records": records, "kpis": kpi_table, "paired": paired}
    paths = report.write_tables(tmp_path, tables)
    assert sorted(paths) == sorted(f"{name}.{ext}" for name in tables for ext in ("csv", "parquet"))
    for name, table in tables.items():
        for ext in ("csv", "parquet"):
            back = report.read_table(tmp_path / f"{name}.{ext}")
            assert_frame_equal(back, table, check_dtype=ext == "parquet", obj=f"{name}.{ext}")
    # the awkward values survive the CSV: empty setting and node_units, null on_time
    back = report.read_table(tmp_path / "records.csv")
    assert back["setting"].eq("").all() and back["node_units"].iloc[-1] == ""
    assert back["on_time"].tolist() == [True, False, None, True, True, None]


def test_write_report_is_one_self_contained_html_file_with_embedded_figures(tmp_path):
    """report.html embeds every figure as a PNG data URI, links nothing, names significance."""
    records, kpi_table, paired = outputs()
    sweep_table = tradeoff(kpi_table.assign(setting=["split_penalty=4", "split_penalty=0"]))
    path = report.write_report(
        tmp_path,
        title="What-if <tiny>",
        records=records,
        kpi_table=kpi_table,
        comparisons=paired,
        network=tiny_network(),
        bound=80.0,
        tradeoff_table=sweep_table,
        orders=tiny_orders(),
        notes=["replayed 3 orders", "rules: default"],
    )
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.glob("*.html")] == ["report.html"]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 5  # KPIs, paired, trade-off, map, utilisation
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert 'src="http' not in text and "<link" not in text and "<script" not in text
    assert "url(" not in text  # no external CSS assets either
    assert "<style>" in text and "<table" in text
    assert "What-if &lt;tiny&gt;" in text and "replayed 3 orders" in text
    assert "cost / hindsight bound" in text and "1.200" in text  # 96 / 80
    assert "Trade-off" in text and "Pareto" in text
    assert "treats orders as independent" in text and "--seeds" in text
    assert ">significant<" in text or "significant</td>" in text
    for name in ("kpis.png", "paired.png", "tradeoff.png", "map.png", "utilisation.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG)
        assert base64.b64encode(data).decode() in images


def test_write_report_without_sweep_bound_or_comparisons(tmp_path):
    """A single run with no bound and no sweep still gives a complete report (no empty sections)."""
    records = tiny_records().query("run == 'engine'")
    kpi_table = kpis(records)
    empty = comparisons(records, "engine")
    assert empty.empty
    path = report.write_report(
        tmp_path,
        title="one run",
        records=records,
        kpi_table=kpi_table,
        comparisons=empty,
        network=tiny_network(),
    )
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3  # KPIs, map, utilisation
    assert "Trade-off" not in text and "Paired differences" not in text
    assert "hindsight" not in text
    assert not (tmp_path / "tradeoff.png").exists()


def test_paired_table_says_significant_only_when_the_interval_excludes_zero(tmp_path):
    """The verdict column follows Paired.significant, row by row."""
    _, _, paired = outputs()
    table = report.paired_table(paired)
    rows = table.rows
    assert len(rows) == len(paired)
    for row, klass, significant in zip(rows, table.classes, paired["significant"], strict=True):
        assert (row[-1] == "significant") == bool(significant)
        assert (klass == "significant") == bool(significant)


def test_the_kpi_table_of_the_report_shows_every_value_of_the_kpi_table(tmp_path):
    """Each KPI row of the report's table is the KPI table's row, formatted by format_value."""
    records, kpi_table, paired = outputs()
    path = report.write_report(
        tmp_path, title="t", records=records, kpi_table=kpi_table, comparisons=paired,
        network=tiny_network(),
    )  # fmt: skip
    text = path.read_text(encoding="utf-8")
    section = text.split("<h2>KPIs per run</h2>", 1)[1].split("</table>", 1)[0]
    rows = [
        re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)
    ]
    rows = [r for r in rows if r]
    columns = [c for c in report.KPI_LABELS if c in kpi_table.columns]
    assert set(KPI_COLUMNS) <= set(columns) and "cost_ratio_to_bound" in columns
    assert len(rows) == len(kpi_table)
    for cells, (_, row) in zip(rows, kpi_table.iterrows(), strict=True):
        assert cells == [report.format_value(c, row[c]) for c in columns]
    assert rows[0][columns.index("cost_ratio_to_bound")] == "1.200"  # 96 / 80
    assert rows[0][columns.index("split_rate")] == "33.3%"


def test_format_value_is_the_one_number_format_of_tables_and_markdown():
    """Missing, flags, counts, rates, the bound ratio and other numbers; markdown uses it."""
    assert report.format_value("cost_per_order", float("nan")) == "–"
    assert report.format_value("pareto", True) == "yes"
    assert report.format_value("orders", 12345) == "12,345"
    assert report.format_value("split_rate", 0.0191) == "1.9%"
    assert report.format_value("cost_ratio_to_bound", 1.00512) == "1.005"
    assert report.format_value("cost_per_order", 21.344) == "21.34"
    table = pd.DataFrame({"run": ["engine"], "split_rate": [0.5], "orders": [3]})
    assert report.markdown(table, ["run", "split_rate", "nope"]).splitlines() == [
        "| run | split_rate |", "|---|---|", "| engine | 50.0% |",
    ]  # fmt: skip


def test_the_map_joins_nodes_to_customers_and_caps_the_lines(tmp_path):
    """One line per (order, shipping node) of the map run, an even sample beyond the cap."""
    records, _, _ = outputs()
    fig = report.plot_map(tiny_network(), records, "greedy", tiny_orders())
    lines = [c for c in fig.axes[0].collections if type(c).__name__ == "LineCollection"]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 5  # O1: 2 nodes, O2: 3
    first = lines[0].get_segments()[0]
    assert tuple(first[1]) == (-104.99, 39.74)  # to O1's ship-to (lon, lat)
    capped = report.plot_map(tiny_network(), records, "greedy", tiny_orders(), max_lines=2)
    segments = [c for c in capped.axes[0].collections if type(c).__name__ == "LineCollection"]
    assert len(segments[0].get_segments()) == 2
    assert "2 of 5 shipments" in capped.axes[0].get_title()


def test_the_map_of_several_seeds_draws_the_first_and_says_so():
    """Positions differ by seed: the map draws seed 1 of 1, 2 and its title names it."""
    records = tiny_records()
    both = pd.concat([records, records.assign(seed=2)], ignore_index=True)
    orders = pd.concat([tiny_orders(), tiny_orders().assign(seed=2)], ignore_index=True)
    fig = report.plot_map(tiny_network(), both, "engine", orders)
    title = fig.axes[0].get_title()
    assert "seed 1 of 1, 2" in title and "6 units" in title  # one seed's units, not both


def test_runs_read_in_the_order_of_their_values_not_as_text():
    """A sweep's runs sort as 0, 4, 16, 64 (text order would give 0, 16, 4, 64)."""
    runs = ["engine split_penalty=16", "engine split_penalty=4", "greedy", "engine", "x=0.5"]
    runs += ["engine split_penalty=0", "engine split_penalty=64", "x=-1"]
    table = pd.DataFrame({"run": runs, "i": range(len(runs))})
    assert report.in_value_order(table)["run"].tolist() == [
        "engine", "engine split_penalty=0", "engine split_penalty=4",
        "engine split_penalty=16", "engine split_penalty=64", "greedy", "x=-1", "x=0.5",
    ]  # fmt: skip


def test_the_bound_is_a_legend_entry_not_a_label_over_the_axis():
    """The hindsight bound per order is named in a legend; no text is rotated onto the axis."""
    _, kpi_table, _ = outputs()
    fig = report.plot_kpis(kpi_table)
    cost = fig.axes[0]
    legend = cost.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["hindsight bound per order"]
    assert all(t.get_rotation() == 0 for ax in fig.axes for t in ax.texts)


def test_the_map_draws_the_outline_of_the_contiguous_us_under_the_nodes():
    """A filled outline from the zipcodes package's postal codes, behind every node."""
    from router.whatif.outline import contiguous_us

    outline = contiguous_us()
    assert outline.shape[1] == 2 and len(outline) > 100
    assert (outline[0] == outline[-1]).all()  # closed
    west, east, south, north = report.US_EXTENT
    assert outline[:, 0].min() > west - 1 and outline[:, 0].max() < east + 1
    assert outline[:, 1].min() > south - 1 and outline[:, 1].max() < north + 1
    records, _, _ = outputs()
    ax = report.plot_map(tiny_network(), records, "greedy", tiny_orders()).axes[0]
    polygons = [p for p in ax.patches if type(p).__name__ == "Polygon"]
    assert len(polygons) == 1 and polygons[0].get_zorder() < min(
        c.get_zorder() for c in ax.collections
    )


def test_utilisation_is_as_tall_as_its_bars_not_as_the_top_it_could_show():
    """Runs that use 2 nodes get a short chart whatever ``top`` is (no page of empty bars)."""
    records, _, _ = outputs()
    height = report.plot_utilisation(records, tiny_network(), top=30).get_figheight()
    assert height == report.plot_utilisation(records, tiny_network(), top=3).get_figheight()
    assert height < 3.0  # (1.0 + 0.18 x 30) = 6.4 inches before
