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
