"""What-if benchmarks for analysts: replay order streams under policies, compare with confidence.

- :mod:`~router.whatif.records`: one tidy row per (run, order), the shared schema;
- :mod:`~router.whatif.policies`: the engine under a rule set, and the baselines;
- :mod:`~router.whatif.replay`: an order stream in arrival order on depleting stock;
- :mod:`~router.whatif.bound`: the hindsight LP lower bound over the whole stream;
- :mod:`~router.whatif.kpis`: KPIs per run and paired comparisons with bootstrap intervals;
- :mod:`~router.whatif.sweep`: weight grids, trade-off curves, Pareto-efficient settings;
- :mod:`~router.whatif.report`: CSV, Parquet, PNG and one self-contained HTML report;
- :mod:`~router.whatif.run`: the command (``python -m router.whatif``, ``router whatif``),
  fanning runs out over a local process pool or Ray.

benchmarks/README.md describes the protocol and the latest numbers.
"""

from __future__ import annotations

import importlib.util

EXTRA: tuple[str, ...] = ("jinja2", "matplotlib", "pyarrow", "shapely")
"""The modules of the ``whatif`` extra every run needs (Ray too, with ``--executor ray``)."""


def missing_extra(*also: str) -> list[str]:
    """The modules of the extra (and ``also``) that are not installed.

    Asked before anything of the harness is imported, which would fail on them first.
    """
    return [m for m in (*EXTRA, *also) if importlib.util.find_spec(m) is None]


def not_installed(missing: list[str]) -> str:
    """What to tell a user whose install lacks ``missing``."""
    return (
        f"{' and '.join(missing)} not installed; install the whatif extra "
        "(pip install -e '.[whatif]')"
    )
