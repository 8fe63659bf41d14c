"""What-if benchmarks for analysts: replay order streams under policies, compare with confidence.

- :mod:`~benchmarks.whatif.records`: one tidy row per (run, order), the shared schema;
- :mod:`~benchmarks.whatif.policies`: the engine under a rule set, and the baselines;
- :mod:`~benchmarks.whatif.replay`: an order stream in arrival order on depleting stock;
- :mod:`~benchmarks.whatif.bound`: the hindsight LP lower bound over the whole stream;
- :mod:`~benchmarks.whatif.kpis`: KPIs per run and paired comparisons with bootstrap intervals;
- :mod:`~benchmarks.whatif.sweep`: weight grids, trade-off curves, Pareto-efficient settings;
- :mod:`~benchmarks.whatif.report`: CSV, Parquet, PNG and one self-contained HTML report;
- :mod:`~benchmarks.whatif.run`: the command (``python -m benchmarks.whatif``, ``router whatif``),
  fanning runs out over a local process pool or Ray.

benchmarks/README.md describes the protocol and the latest numbers.
"""
