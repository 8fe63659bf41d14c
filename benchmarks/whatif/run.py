"""The what-if command: replay order streams under policies and settings, fanned out.

One :class:`RunSpec` names one run: a registered scenario and seed, a policy (``engine``,
``full-model``, ``greedy-nearest``, ``ranked-chain``), the setting of a sweep (weights
applied to the routing rules), optionally another rule set to route with, the first
``n_orders`` orders in arrival order, and replenishments. :func:`execute` replays it in the
calling process (the scenario is built once per process and seed); :func:`run_all` fans
many out over a local process pool or Ray and returns one record table, sorted
deterministically, so the same specs give the same :data:`~benchmarks.whatif.records.DETERMINISTIC`
columns whichever executor ran them.

Every run is priced with the scenario's own rules (the evaluation model), whatever rules
or weights it routed with. The command::

    python -m benchmarks.whatif --scenario standard --seeds 7 8 --out out/whatif
    python -m benchmarks.whatif --sweep split_penalty=0,2,4,8,16 --policies engine
    router whatif --smoke --scenario dc-outage --executor ray --workers 4

``--executor ray`` starts a local Ray runtime (``--workers`` CPUs) unless ``RAY_ADDRESS``
is set, in which case it attaches to that cluster (``RAY_ADDRESS=ray://head:10001``) and
ships the project's packages (``benchmarks``, ``models``, ``router``) to it as
``py_modules``; the cluster's Python must have the pinned dependencies installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from tqdm import tqdm

from benchmarks.scenarios import REGISTRY
from benchmarks.whatif.bound import Bound, hindsight_bound
from benchmarks.whatif.kpis import comparisons, kpis
from benchmarks.whatif.policies import EnginePolicy, GreedyNearest, RankedChain, RoutingPolicy
from benchmarks.whatif.policies import full_model as full_model_policy
from benchmarks.whatif.records import COLUMNS, OrderRecord
from benchmarks.whatif.replay import Replenishment, replay
from benchmarks.whatif.sweep import grid, tradeoff, weight_names
from models import fields as f
from models.errors import InvalidArgumentError, Violations
from models.network import Network
from models.order import Order
from models.rules import RuleSet
from models.scenario import Scenario

T = TypeVar("T")

ENGINE = "engine"
FULL_MODEL = "full-model"
GREEDY_NEAREST = "greedy-nearest"
RANKED_CHAIN = "ranked-chain"
POLICY_KINDS: tuple[str, ...] = (ENGINE, FULL_MODEL, GREEDY_NEAREST, RANKED_CHAIN)
"""Every policy a run may use, in the order the command runs and reports them."""

METRICS: tuple[str, ...] = ("cost", "shipments", "split", "on_time", "distance_km")
"""The metrics of the paired comparisons against the base run."""

EXECUTORS: tuple[str, ...] = ("local", "ray")

REPLENISHMENT_COLUMNS: tuple[str, ...] = ("at", "node_id", "sku", "units")
"""The columns of a ``--replenishment`` CSV file."""

SORT_KEYS: list[str] = ["run", "scenario", "seed", "seq"]
"""How :func:`run_all` orders its records: by run, then stream (scenario, seed), then seq."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: what to replay, under which policy and setting. Frozen and picklable.

    ``weights`` (``{"split_penalty": 8.0}``) replace those fields of every strategy's
    policy of the routing rules; ``setting`` is their label (``"split_penalty=8"``).
    ``rules`` names a rule-set file to route with instead of the scenario's (the engine
    policies only); the evaluation always uses the scenario's own rules. ``n_orders``
    keeps the first orders in arrival order (``None``: all). ``smoke`` builds the scenario
    at the registry's smoke size.
    """

    scenario: str
    seed: int
    policy: str = ENGINE
    setting: str = ""
    weights: Mapping[str, float] = field(default_factory=dict, hash=False)
    rules: Path | None = None
    n_orders: int | None = None
    replenishment: tuple[Replenishment, ...] = ()
    smoke: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in REGISTRY:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(REGISTRY)}")
        if self.policy not in POLICY_KINDS:
            raise ValueError(f"unknown policy {self.policy!r}; one of {', '.join(POLICY_KINDS)}")
        unknown = sorted(set(self.weights) - set(weight_names()))
        if unknown:
            raise ValueError(
                f"unknown weight(s) {', '.join(unknown)}; one of {', '.join(weight_names())}"
            )
        # A plain dict of floats: picklable, and equal specs compare equal.
        object.__setattr__(self, "weights", {k: float(v) for k, v in self.weights.items()})
        object.__setattr__(self, "replenishment", tuple(self.replenishment))

    @property
    def run(self) -> str:
        """The run's label in records: the policy, then the setting when there is one."""
        return f"{self.policy} {self.setting}" if self.setting else self.policy


@dataclass(frozen=True, slots=True)
class BoundSpec:
    """The hindsight bound of one stream: the orders and replenishments a run replays."""

    scenario: str
    seed: int
    n_orders: int | None = None
    replenishment: tuple[Replenishment, ...] = ()
    smoke: bool = False


_SCENARIOS: dict[tuple[str, int, bool], Scenario] = {}
"""Scenarios built in this process, by (name, seed, smoke): building one takes seconds."""


def scenario_for(name: str, seed: int, smoke: bool = False) -> Scenario:
    """The registered scenario ``name`` built with ``seed`` (cached per process)."""
    key = (name, seed, smoke)
    if key not in _SCENARIOS:
        spec = REGISTRY[name]
        _SCENARIOS[key] = (spec.smoke if smoke else spec.build)(seed)
    return _SCENARIOS[key]


def stream(scenario: Scenario, n_orders: int | None) -> tuple[Order, ...]:
    """The first ``n_orders`` orders in arrival order (created_at, then id); all if None."""
    ordered = sorted(scenario.orders, key=lambda o: (o.created_at, o.order_id))
    return tuple(ordered if n_orders is None else ordered[:n_orders])


def load_rules_file(path: Path, network: Network) -> RuleSet:
    """The rule set in ``path`` validated against ``network``; InvalidArgumentError if bad."""
    from models.errors import FieldViolation
    from router.rules.document import load_rules

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError([FieldViolation(str(path), f"cannot be read: {exc}")]) from exc
    return load_rules(text, path.name, network)


def with_weights(rules: RuleSet, weights: Mapping[str, float]) -> RuleSet:
    """``rules`` with ``weights`` set in every strategy's policy (``dataclasses.replace``)."""
    if not weights:
        return rules
    changes: dict[str, Any] = dict(weights)
    strategies = tuple(
        replace(s, policy=replace(s.policy, **changes), overrides=s.overrides | set(weights))
        for s in rules.strategies
    )
    return replace(rules, strategies=strategies)


def make_policy(spec: RunSpec, scenario: Scenario) -> RoutingPolicy:
    """The policy of ``spec``: the engine policies route with its rules and weights."""
    if spec.policy == GREEDY_NEAREST:
        return GreedyNearest()
    if spec.policy == RANKED_CHAIN:
        return RankedChain()
    base = scenario.rules if spec.rules is None else load_rules_file(spec.rules, scenario.network)
    rules = with_weights(base, spec.weights)
    return EnginePolicy(rules) if spec.policy == ENGINE else full_model_policy(rules)


def execute(spec: RunSpec) -> list[OrderRecord]:
    """Replay ``spec`` in this process: one record per order, in arrival order."""
    scenario = scenario_for(spec.scenario, spec.seed, spec.smoke)
    return replay(
        scenario,
        make_policy(spec, scenario),
        scenario_name=spec.scenario,
        seed=spec.seed,
        setting=spec.setting,
        run=spec.run,
        orders=stream(scenario, spec.n_orders),
        replenishment=spec.replenishment,
    )


def execute_bound(spec: BoundSpec) -> Bound:
    """The hindsight bound of ``spec``'s stream, computed in this process."""
    scenario = scenario_for(spec.scenario, spec.seed, spec.smoke)
    return hindsight_bound(
        scenario, orders=stream(scenario, spec.n_orders), replenishment=spec.replenishment
    )


def _work(job: RunSpec | BoundSpec) -> list[OrderRecord] | Bound:
    """One job of an executor: a run's records or a stream's bound."""
    return execute(job) if isinstance(job, RunSpec) else execute_bound(job)


def records_frame(records: Iterable[OrderRecord]) -> pd.DataFrame:
    """Records as a table: :data:`COLUMNS`, sorted by run, scenario, seed, then seq."""
    table = pd.DataFrame([r.row() for r in records], columns=list(COLUMNS))
    table["on_time"] = table["on_time"].astype(object)
    return table.sort_values(SORT_KEYS, kind="stable", ignore_index=True)


def run_all(
    specs: Sequence[RunSpec],
    *,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Execute every spec and return all records (see :func:`records_frame`).

    ``executor="local"``: a process pool of ``workers`` (default ``os.cpu_count()``); one
    worker runs every spec in this process. ``executor="ray"``: one Ray task per spec on a
    local runtime of ``workers`` CPUs, or on the cluster at ``RAY_ADDRESS``. The result is
    the same whichever executor and however many workers.
    """
    results = _map(_work, list(specs), executor=executor, workers=workers, progress=progress)
    return records_frame(r for result in results for r in _records(result))


def run_with_bounds(
    specs: Sequence[RunSpec],
    bounds: Sequence[BoundSpec],
    *,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int], Bound]]:
    """:func:`run_all` and the bounds, as jobs of one executor; bounds by (scenario, seed)."""
    jobs: list[RunSpec | BoundSpec] = [*bounds, *specs]
    results = _map(_work, jobs, executor=executor, workers=workers, progress=progress)
    found = {(b.scenario, b.seed): r for b, r in zip(bounds, results, strict=False)}
    table = records_frame(r for result in results[len(bounds) :] for r in _records(result))
    return table, {key: b for key, b in found.items() if isinstance(b, Bound)}


def _records(result: list[OrderRecord] | Bound) -> list[OrderRecord]:
    assert isinstance(result, list)
    return result


def _map(
    fn: Callable[[Any], T],
    jobs: list[Any],
    *,
    executor: str,
    workers: int | None,
    progress: bool,
) -> list[T]:
    """``[fn(job) for job in jobs]`` on ``executor``, with a progress bar over completions."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    n = workers or os.cpu_count() or 1
    bar = tqdm(
        total=len(jobs),
        desc=f"what-if ({executor})",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    )
    with bar:
        if executor == "ray":
            return _map_ray(fn, jobs, n if workers else None, bar.update)
        if n == 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                out.append(fn(job))
                bar.update()
            return out
        results: list[T | None] = [None] * len(jobs)
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(n, len(jobs))) as pool:
            index = {pool.submit(fn, jobs[i]): i for i in _slow_first(jobs)}
            for future in concurrent.futures.as_completed(index):
                results[index[future]] = future.result()
                bar.update()
        return results  # type: ignore[return-value]


def _slow_first(jobs: Sequence[object]) -> list[int]:
    """Job indices in submission order: bounds, then full-model runs, then the rest.

    The longest jobs start first so they do not end up alone on one worker at the end
    (on the standard scenario the bound's LP and the full model take about a minute each).
    """

    def rank(i: int) -> int:
        job = jobs[i]
        if isinstance(job, BoundSpec):
            return 0
        return 1 if isinstance(job, RunSpec) and job.policy == FULL_MODEL else 2

    return sorted(range(len(jobs)), key=rank)


def _map_ray(
    fn: Callable[[Any], T], jobs: list[Any], workers: int | None, done: Callable[[], object]
) -> list[T]:
    """One Ray task per job; a local runtime of ``workers`` CPUs unless RAY_ADDRESS is set."""
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            import benchmarks
            import models
            import router

            ray.init(address=address, runtime_env={"py_modules": [benchmarks, models, router]})
        else:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        started = True
    try:
        task = ray.remote(num_cpus=1)(fn)
        index = {task.remote(jobs[i]): i for i in _slow_first(jobs)}
        results: list[T | None] = [None] * len(jobs)
        pending = list(index)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                results[index[ref]] = ray.get(ref)
                done()
        return results  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


# --- input files and flags ------------------------------------------------------------------


def read_replenishment(path: Path, network: Network) -> tuple[Replenishment, ...]:
    """The replenishments of a CSV file (``at,node_id,sku,units``), checked against ``network``.

    ``at`` is an RFC 3339 timestamp with an offset; ``units`` a whole number >= 0. Raises
    :class:`InvalidArgumentError` with every problem as ``file:line:column``.
    """
    v = Violations()
    name = path.name
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False
        )
    except (OSError, ValueError) as exc:  # missing file, parser errors, empty file, bad UTF-8
        v.add(name, f"cannot be read as CSV: {exc}")
        v.raise_if_any()
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REPLENISHMENT_COLUMNS if c not in frame.columns]
    header = Violations(f"{name}:1:")
    for column in missing:
        header.add(column, "column is missing")
    for column in frame.columns:
        if column not in REPLENISHMENT_COLUMNS:
            header.add(
                column, f"is not a column; the columns are {', '.join(REPLENISHMENT_COLUMNS)}"
            )
    v.extend(header.items)
    v.raise_if_any()
    out: list[Replenishment] = []
    for i, raw in enumerate(frame.to_dict("records")):
        if all(f.is_blank(value) for value in raw.values()):
            continue
        row = Violations(f"{name}:{i + 2}:")
        values = {str(k): value for k, value in raw.items()}
        at = f.timestamp(values, "at", row)
        node_id = f.text(values, "node_id", row)
        sku = f.text(values, "sku", row)
        units = f.integer(values, "units", row, minimum=0, maximum=f.MAX_INT32)
        if node_id is not None and network.node(node_id) is None:
            row.add("node_id", f"unknown node {node_id!r}")
        if sku is not None and sku not in network.skus:
            row.add("sku", f"unknown sku {sku!r}")
        v.extend(row.items)
        if not row and at is not None and node_id and sku and units is not None:
            out.append(Replenishment(at, node_id, sku, units))
    v.raise_if_any()
    return tuple(out)


def _sweep_flag(text: str) -> tuple[str, list[tuple[str, dict[str, float]]]]:
    """``split_penalty=0,2,4`` as the weight and its grid of settings (argparse type)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not values.strip():
        raise argparse.ArgumentTypeError(f"expected WEIGHT=V1,V2,…, got {text!r}")
    try:
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"values of {name} must be numbers separated by commas, got {values!r}"
        ) from None
    try:
        return name, grid(name, numbers)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks.whatif`` (and ``router whatif``)."""
    p = argparse.ArgumentParser(
        prog=prog or "python -m benchmarks.whatif",
        description="What-if benchmarks: replay a scenario's order stream under routing "
        "policies and weight settings; KPIs, paired comparisons, hindsight bound, report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--scenario", choices=sorted(REGISTRY), default="standard")
    p.add_argument("--seeds", type=int, nargs="+", default=[7], help="one stream per seed")
    p.add_argument("--orders", type=_positive, help="first N orders in arrival order (all)")
    p.add_argument(
        "--policies",
        nargs="+",
        choices=POLICY_KINDS,
        default=list(POLICY_KINDS),
        help="policies to replay",
    )
    p.add_argument(
        "--rules",
        type=Path,
        help="rules.yaml the engine policies route with "
        "(default: the scenario's; evaluation always uses the scenario's)",
    )
    p.add_argument(
        "--sweep",
        type=_sweep_flag,
        action="append",
        default=[],
        metavar="WEIGHT=V1,V2,…",
        help="run the engine at each value of a weight (repeatable: the grid's product)",
    )
    p.add_argument("--replenishment", type=Path, help="CSV of at,node_id,sku,units arrivals")
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local process pool, or Ray (local runtime unless RAY_ADDRESS is set)",
    )
    p.add_argument("--workers", type=_positive, help="processes / Ray CPUs (os.cpu_count())")
    p.add_argument(
        "--bound",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compute the hindsight LP bound per scenario and seed",
    )
    p.add_argument("--base", default=ENGINE, help="the run the paired comparisons are against")
    p.add_argument("--out", type=Path, default=Path("out/whatif"), help="output directory")
    p.add_argument("--smoke", action="store_true", help="the scenario at its smoke size")
    return p


def build_specs(
    args: argparse.Namespace, replenishment: tuple[Replenishment, ...]
) -> list[RunSpec]:
    """The runs the flags ask for: each policy per seed, then each sweep setting per seed."""
    settings: list[tuple[str, dict[str, float]]] = []
    if args.sweep:
        for combo in itertools.product(*(g for _, g in args.sweep)):
            label = ",".join(label for label, _ in combo)
            weights = {k: v for _, w in combo for k, v in w.items()}
            settings.append((label, weights))
    common: dict[str, Any] = {
        "scenario": args.scenario,
        "rules": args.rules,
        "n_orders": args.orders,
        "replenishment": replenishment,
        "smoke": args.smoke,
    }
    specs = []
    for seed in args.seeds:
        specs += [RunSpec(seed=seed, policy=kind, **common) for kind in args.policies]
        specs += [
            RunSpec(seed=seed, policy=ENGINE, setting=label, weights=weights, **common)
            for label, weights in settings
        ]
    return specs


def _check_inputs(args: argparse.Namespace) -> tuple[Replenishment, ...]:
    """Validate --rules and --replenishment against every seed's network; every problem."""
    v = Violations()
    replenishment: tuple[Replenishment, ...] = ()
    for seed in args.seeds:
        network = scenario_for(args.scenario, seed, args.smoke).network
        if args.rules is not None:
            try:
                load_rules_file(args.rules, network)
            except InvalidArgumentError as error:
                v.extend(x for x in error.violations if x not in v.items)
        if args.replenishment is not None:
            try:
                replenishment = read_replenishment(args.replenishment, network)
            except InvalidArgumentError as error:
                v.extend(x for x in error.violations if x not in v.items)
    v.raise_if_any()
    return replenishment


def kpi_table(records: pd.DataFrame, bounds: Mapping[tuple[str, int], Bound]) -> pd.DataFrame:
    """KPIs per run over every stream, with ``cost_ratio_to_bound`` when every bound is usable.

    The streams (seeds) are independent, so their bounds add: the ratio is the run's total
    cost over the sum of the seeds' bounds.
    """
    return kpis(records, total_bound(records, bounds))


def kpi_table_by_seed(
    records: pd.DataFrame, bounds: Mapping[tuple[str, int], Bound]
) -> pd.DataFrame:
    """KPIs per (scenario, seed, run), each with its own stream's bound ratio."""
    parts = []
    for key, rows in records.groupby(["scenario", "seed"], sort=True):
        scenario, seed = str(key[0]), int(str(key[1]))
        bound = bounds.get((scenario, seed))
        part = kpis(rows, bound.value if bound is not None and _usable(bound) else None)
        part.insert(0, "seed", seed)
        part.insert(0, "scenario", scenario)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def total_bound(records: pd.DataFrame, bounds: Mapping[tuple[str, int], Bound]) -> float | None:
    """The sum of the bounds of every stream in ``records``; None unless each is usable."""
    keys = {(str(s), int(n)) for s, n in records[["scenario", "seed"]].drop_duplicates().values}
    if not keys or not all(k in bounds and _usable(bounds[k]) for k in keys):
        return None
    return sum(bounds[k].value for k in keys)


def _usable(bound: Bound) -> bool:
    return bound.status == "OPTIMAL" and math.isfinite(bound.value) and bound.value > 0


MARKDOWN_COLUMNS: tuple[str, ...] = (
    "run",
    "orders",
    "cost_per_order",
    "cost_ratio_to_bound",
    "shipments_per_order",
    "split_rate",
    "on_time_rate",
    "mean_distance_km",
    "fill_rate",
    "store_share",
    "p50_latency_ms",
    "p99_latency_ms",
)
"""The KPI columns the command prints (every column is in ``kpis.csv``)."""

TRADEOFF_COLUMNS: tuple[str, ...] = (
    "run",
    "setting",
    "cost_per_order",
    "split_rate",
    "on_time_rate",
    "shipments_per_order",
    "pareto",
)


def markdown(table: pd.DataFrame, columns: Sequence[str] = MARKDOWN_COLUMNS) -> str:
    """``table`` as a markdown table of ``columns`` (those it has); numbers rounded."""
    shown = [c for c in columns if c in table.columns]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table[shown].itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the command; 2 on bad flags or a bad rules/replenishment file (every problem)."""
    p = parser(prog)
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a bad flag (2, message printed)
        return int(stop.code or 0)
    try:
        replenishment = _check_inputs(args)
    except InvalidArgumentError as error:
        print(f"invalid input ({len(error.violations)} problems):", file=sys.stderr)
        for violation in error.violations:
            print(f"  {violation}", file=sys.stderr)
        return 2
    specs = build_specs(args, replenishment)
    runs = list(dict.fromkeys(s.run for s in specs))
    if args.base not in runs:
        p.print_usage(sys.stderr)
        print(
            f"{p.prog}: error: argument --base: {args.base!r} is not one of the runs: "
            f"{', '.join(runs)}",
            file=sys.stderr,
        )
        return 2
    bound_specs = (
        [
            BoundSpec(args.scenario, seed, args.orders, replenishment, args.smoke)
            for seed in args.seeds
        ]
        if args.bound
        else []
    )
    records, bounds = run_with_bounds(
        specs, bound_specs, executor=args.executor, workers=args.workers
    )
    table = kpi_table(records, bounds)
    by_seed = kpi_table_by_seed(records, bounds) if len(args.seeds) > 1 else None
    compared = comparisons(records, args.base, METRICS)
    trade = None
    if args.sweep:
        swept = [s.run for s in specs if s.setting]
        trade = tradeoff(kpis(records[records["run"].isin(swept)]))
    report = _write(args, records, table, by_seed, compared, trade, bounds)
    print(markdown(table))
    if by_seed is not None:
        print()
        print(markdown(by_seed, ("scenario", "seed", *MARKDOWN_COLUMNS)))
    if trade is not None:
        print()
        print(markdown(trade, TRADEOFF_COLUMNS))
    for (scenario, seed), bound in sorted(bounds.items()):
        print(
            f"hindsight bound {scenario} seed {seed}: {bound.value:,.2f} ({bound.status}, "
            f"{bound.variables:,} variables, {bound.constraints:,} constraints, "
            f"{bound.seconds:.1f} s)"
        )
    print(f"report: {report}")
    return 0


def _write(
    args: argparse.Namespace,
    records: pd.DataFrame,
    table: pd.DataFrame,
    by_seed: pd.DataFrame | None,
    compared: pd.DataFrame,
    trade: pd.DataFrame | None,
    bounds: Mapping[tuple[str, int], Bound],
) -> Path:
    """Write the tables and the report under ``args.out``; the report's path.

    ``records``, ``kpis`` and ``paired`` as CSV and Parquet (report.write_tables), plus
    ``tradeoff`` (when sweeping) and ``kpis_by_seed`` (several seeds); ``report.html``.
    """
    from benchmarks.whatif.report import write_report, write_tables

    out: Path = args.out
    write_tables(out, records, table, compared)
    for name, extra in (("tradeoff", trade), ("kpis_by_seed", by_seed)):
        if extra is not None:
            extra.to_csv(out / f"{name}.csv", index=False)
            extra.to_parquet(out / f"{name}.parquet", index=False)
    notes = [
        f"Routing rules: {args.rules if args.rules else 'the scenario rules'}; "
        f"{len(args.policies)} policies, base run {args.base!r}.",
    ]
    if args.replenishment is not None:
        notes.append(f"Replenishment: {args.replenishment}.")
    for (scenario, seed), bound in sorted(bounds.items()):
        if not _usable(bound):
            notes.append(
                f"The hindsight bound of {scenario} seed {seed} is unusable: "
                f"{bound.status} ({bound.value})."
            )
    size = "smoke size" if args.smoke else "full size"
    orders = f"first {args.orders} orders" if args.orders else "every order"
    return write_report(
        out,
        title=f"What-if: {args.scenario} ({size}, {orders})",
        records=records,
        kpi_table=table,
        comparisons=compared,
        network=scenario_for(args.scenario, args.seeds[0], args.smoke).network,
        bound=total_bound(records, bounds),
        tradeoff_table=trade,
        notes=notes,
    )
