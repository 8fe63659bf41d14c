"""The engines a request may name, and the time a solve may take by default.

The one source of both: the engine (:mod:`router.engine.solve`), the service, the CLI and
the benchmarks read them here, so the command line can offer them without loading a solver.
"""

from __future__ import annotations

FULL_MODEL = "cpsat-full"
"""Name of the straightforward engine: the whole canonical model in CP-SAT, no pruning.

Later engines must reach the same optimum; this one stays as the baseline they are
measured against.
"""

FAST = "fast"
"""Name of the fast exact engine: reductions, level bounds and best-first enumeration of
node sets (:mod:`router.engine.fast`)."""

HIGHS_FULL = "highs-full"
"""Name of the second baseline: the whole canonical model as a MILP in HiGHS (through
scipy), no pruning; the independent solver the benchmarks compare against."""

ENGINES = (FAST, FULL_MODEL, HIGHS_FULL)
"""Every engine a request may name."""

DEFAULT_TIME_LIMIT_S = 10.0
"""Seconds a solve may take when neither the request nor the server says otherwise."""
