from __future__ import annotations

import base64
import re

import pandas as pd
from pandas.testing import assert_frame_equal

from benchmarks.whatif import report
from benchmarks.whatif.kpis import comparisons, kpis
from benchmarks.whatif.sweep import tradeoff
from tests.benchmarks.whatif.test_kpis import tiny_network, tiny_records

PNG = b"\x89PNG\r\n\x1a\n"


def outputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    records = tiny_records()
    return records, kpis(records, bound=80.0), comparisons(records, "engine", resamples=200)


def test_tables_are_written_as_csv_and_parquet_and_read_back_equal(tmp_path):
    """records, kpis and paired: both formats, each read back equal to what was written."""
    records, kpi_table, paired = outputs()
    paths = report.write_tables(tmp_path, records, kpi_table, paired)
    assert sorted(paths) == sorted(
        f"{name}.{ext}" for name in report.TABLES for ext in ("csv", "parquet")
    )
    for name, table in zip(report.TABLES, (records, kpi_table, paired), strict=True):
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
        bound=None,
        tradeoff_table=None,
    )
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3  # KPIs, map, utilisation
    assert "Trade-off" not in text and "Paired differences" not in text
    assert "hindsight" not in text
    assert not (tmp_path / "tradeoff.png").exists()


def test_paired_table_says_significant_only_when_the_interval_excludes_zero(tmp_path):
    """The verdict column follows Paired.significant, row by row."""
    _, _, paired = outputs()
    html = report._paired_html(paired)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html)[1:]
    assert len(rows) == len(paired)
    for row, significant in zip(rows, paired["significant"], strict=True):
        assert ("<td>significant</td>" in row) == bool(significant)
