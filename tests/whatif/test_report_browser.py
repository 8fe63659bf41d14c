"""The what-if report as a reader sees it: laid out by headless Chromium.

The page may not be wider than a 1280-pixel window (wide tables scroll inside their own
box), and it ends with its last section (no blank screen after it). The screenshot is
kept beside the report for a person to look at. Chromium comes from Debian's package
(``apt-get install chromium``, which ``.ci/run`` does); without it the test is skipped,
except under CI, where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from router.whatif import report
from router.whatif.kpis import comparisons, kpis
from router.whatif.sweep import tradeoff
from tests.whatif.test_kpis import tiny_network, tiny_records
from tests.whatif.test_report import tiny_orders

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1280

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no headless Chromium (apt-get install chromium)",
)

MEASURE = (
    "<script>document.body.setAttribute('data-layout', [document.documentElement.scrollWidth,"
    " window.innerWidth, document.documentElement.scrollHeight, Math.ceil("
    "document.querySelector('footer').getBoundingClientRect().bottom + window.scrollY)]"
    ".join(','));</script></body>"
)


def chromium(*args: str) -> str:
    assert CHROMIUM is not None, "CI=true: headless Chromium must be installed (.ci/run does)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    out = subprocess.run(
        [CHROMIUM, *flags, f"--window-size={WIDTH},900", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return out.stdout


def wide_report(tmp_path: Path) -> Path:
    """A report with every section, a 19-column KPI table and a swept trade-off."""
    records = tiny_records()
    kpi_table = kpis(records, {("tiny", 1): 80.0})
    sweep = tradeoff(kpi_table.assign(setting=["split_penalty=4", "split_penalty=0"]))
    return report.write_report(
        tmp_path, title="What-if in a browser", records=records, kpi_table=kpi_table,
        comparisons=comparisons(records, "engine", resamples=200), network=tiny_network(),
        bound=80.0, tradeoff_table=sweep, orders=tiny_orders(),
    )  # fmt: skip


def test_the_report_fits_the_window_and_ends_with_its_last_section(tmp_path):
    """Laid out at 1280 px: no sideways scroll of the page, nothing below the footer."""
    page = wide_report(tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE, 1))
    dom = chromium("--dump-dom", probe.as_uri())
    found = re.search(r'data-layout="(\d+),(\d+),(\d+),(\d+)"', dom)
    assert found is not None, dom[-500:]
    scroll_width, window, height, footer_bottom = map(int, found.groups())
    assert scroll_width <= window == WIDTH
    assert height - footer_bottom <= 40  # the body's bottom margin, no blank screen
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG")
