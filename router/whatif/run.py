"""The what-if command: replay order streams under policies and settings, fanned out.

A :class:`Stream` names what is replayed: a registered scenario and seed, its first
``n_orders`` orders in arrival order and the replenishments. A :class:`RunSpec` routes one
stream under a policy of :data:`~router.whatif.policies.POLICIES`, with the
scenario's rules or a rule-set file, changed by a setting of a sweep. :func:`run_all`
executes specs (and, if asked, the hindsight bound of every stream) in this process, on a
local process pool or on Ray, and returns one record table, sorted deterministically, so
the same specs give the same :data:`~router.whatif.records.DETERMINISTIC` columns on
every engine whenever every solve is proven (see :data:`PROVEN`).

Every run is priced with the scenario's own rules (the evaluation model), whatever rules
or settings it routed with. The command::

    python -m router.whatif --scenario standard --seeds 7 8 --out out/whatif
    python -m router.whatif --sweep split_penalty=0,2,4,8,16 --sweep sla=hard,soft
    router whatif --scenario standard --policies engine look-ahead --horizon-hours 36
    router whatif --smoke --scenario dc-outage --rules a.yaml --rules b.yaml
    router whatif --smoke --executor ray --workers 4

``--executor ray`` (the ``whatif`` extra: ``pip install -e '.[whatif]'``) starts a local Ray
runtime (``--workers`` CPUs) unless ``RAY_ADDRESS`` is set, in which case it attaches to
that cluster (``RAY_ADDRESS=ray://head:10001``) and ships the project's packages
(``benchmarks``, ``models``, ``router``) to it as ``py_modules``; the cluster's Python
must have the pinned dependencies installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from tqdm import tqdm

from models.errors import InvalidArgumentError, Violations
from models.lookahead import Forecast
from models.order import Order
from models.plan import SolveStatus
from models.replenishment import Replenishment
from models.rules import RuleSet
from models.scenario import Scenario
from router.rules.document import NOT_READ, read_rules_file, read_yaml
from router.scenario import read_forecast, read_replenishment
from router.scenario.registry import REGISTRY
from router.whatif import missing_extra, not_installed
from router.whatif.bound import Bound, hindsight_bound
from router.whatif.decision import HEURISTIC
from router.whatif.kpis import METRICS, comparisons, kpis, kpis_long, order_table
from router.whatif.lookahead import LOOK_AHEAD, LookAhead
from router.whatif.policies import POLICIES
from router.whatif.records import COLUMNS, OrderRecord
from router.whatif.replay import arrival_order, replay
from router.whatif.report import TRADEOFF_COLUMNS, markdown, write_report, write_tables
from router.whatif.sweep import Setting, grid, tradeoff

T = TypeVar("T")

EXECUTORS: tuple[str, ...] = ("local", "ray")
"""Where runs execute: a local process pool, or Ray."""

PROVEN: frozenset[str] = frozenset(str(s) for s in SolveStatus if s.proven)
"""Statuses of an engine decision that no time limit or machine can change."""

DEFAULT_POLICIES: tuple[str, ...] = tuple(p for p in POLICIES if p != LOOK_AHEAD)
"""The policies a run replays unless ``--policies`` says otherwise (look-ahead is opt-in)."""

SORT_KEYS: list[str] = ["run", "scenario", "seed", "seq"]
"""How :func:`run_all` orders its records: by run, then stream (scenario, seed), then seq."""

MARKDOWN_COLUMNS: tuple[str, ...] = (
    "run", "orders", "cost_per_order", "cost_ratio_to_bound", "shipments_per_order",
    "split_rate", "on_time_rate", "mean_distance_km", "fill_rate", "store_share",
    "p50_latency_ms", "p99_latency_ms",
)  # fmt: skip
"""The KPI columns the command prints (every column is in ``kpis.csv``)."""


_SCENARIOS: dict[tuple[str, int, bool], Scenario] = {}
"""Scenarios built in this process, by (name, seed, smoke): building one takes seconds."""


def scenario_for(name: str, seed: int, smoke: bool = False) -> Scenario:
    """The registered scenario ``name`` built with ``seed`` (cached per process)."""
    key = (name, seed, smoke)
    if key not in _SCENARIOS:
        spec = REGISTRY[name]
        _SCENARIOS[key] = (spec.smoke if smoke else spec.build)(seed)
    return _SCENARIOS[key]


@dataclass(frozen=True, slots=True)
class Stream:
    """An order stream: the first ``n_orders`` (all if None) of a scenario built with ``seed``.

    ``smoke`` builds the scenario at the registry's smoke size; ``replenishment`` arrives
    on the stream's stock. Frozen, hashable and picklable.
    """

    scenario: str
    seed: int
    n_orders: int | None = None
    replenishment: tuple[Replenishment, ...] = ()
    smoke: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in REGISTRY:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(REGISTRY)}")
        object.__setattr__(self, "replenishment", tuple(self.replenishment))

    def build(self) -> Scenario:
        """The scenario (cached per process)."""
        return scenario_for(self.scenario, self.seed, self.smoke)

    def orders(self) -> tuple[Order, ...]:
        """The orders replayed, in arrival order."""
        return arrival_order(self.build().orders, self.n_orders)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: ``stream`` routed by ``policy`` (a key of POLICIES) under one setting.

    The policy routes with the rule set in the file ``rules`` (default: the scenario's),
    with ``changes`` (Policy fields, ``{"split_penalty": 8.0}``) set in every strategy;
    ``setting`` is the label of both (``"split_penalty=8"``; replay appends it to the
    policy's name to label the run). The evaluation always uses the scenario's own rules.
    ``lookahead`` configures the ``look-ahead`` policy (default: :class:`LookAhead`()).
    """

    stream: Stream
    policy: str = "engine"
    setting: str = ""
    rules: Path | None = None
    changes: Mapping[str, object] = field(default_factory=dict, hash=False)
    lookahead: LookAhead | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; one of {', '.join(POLICIES)}")
        object.__setattr__(self, "changes", dict(self.changes))


def with_changes(rules: RuleSet, changes: Mapping[str, object]) -> RuleSet:
    """``rules`` with ``changes`` set in every strategy's policy (``dataclasses.replace``)."""
    if not changes:
        return rules
    fields: dict[str, Any] = dict(changes)  # checked by the rule language (sweep.grid)
    strategies = tuple(
        replace(s, policy=replace(s.policy, **fields), overrides=s.overrides | set(changes))
        for s in rules.strategies
    )
    return replace(rules, strategies=strategies)


def execute(spec: RunSpec) -> list[OrderRecord]:
    """Replay ``spec`` in this process: one record per order, in arrival order."""
    stream = spec.stream
    scenario = stream.build()
    base = scenario.rules if spec.rules is None else read_rules_file(spec.rules, scenario.network)
    rules = with_changes(base, spec.changes)
    orders = stream.orders()
    policy = POLICIES[spec.policy](rules, lookahead_for(spec, orders))
    return replay(
        scenario,
        policy,
        scenario_name=stream.scenario,
        seed=stream.seed,
        setting=spec.setting,
        orders=orders,
        replenishment=stream.replenishment,
    )


def lookahead_for(spec: RunSpec, orders: Sequence[Order]) -> LookAhead:
    """The run's look-ahead configuration, looking no further than its last order (``until``).

    An ``until`` the run's configuration already sets stays.
    """
    config = spec.lookahead or LookAhead()
    if not orders or config.until is not None:
        return config
    return replace(config, until=max(o.created_at for o in orders))


def _work(job: RunSpec | Stream) -> list[OrderRecord] | Bound:
    """One job of an executor: a run's records, or a stream's hindsight bound."""
    if isinstance(job, RunSpec):
        return execute(job)
    return hindsight_bound(job.build(), orders=job.orders(), replenishment=job.replenishment)


def records_frame(records: Iterable[OrderRecord]) -> pd.DataFrame:
    """Records as a table: :data:`COLUMNS`, sorted by run, scenario, seed, then seq."""
    table = pd.DataFrame([r.row() for r in records], columns=list(COLUMNS))
    table["on_time"] = table["on_time"].astype(object)
    return table.sort_values(SORT_KEYS, kind="stable", ignore_index=True)


def run_all(
    specs: Sequence[RunSpec],
    *,
    bounds: bool = False,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int], Bound]]:
    """Execute every spec: the records (:func:`records_frame`) and the bounds.

    With ``bounds``, also the hindsight bound of every stream the specs replay, keyed by
    (scenario, seed).

    ``executor="local"``: a process pool of ``workers`` (default ``os.cpu_count()``); one
    worker runs every job in this process. ``executor="ray"``: one Ray task per job on a
    local runtime of ``workers`` CPUs, or on the cluster at ``RAY_ADDRESS``. Bounds and
    runs are jobs of the same pool, the slowest submitted first. The result is the same
    whichever executor and however many workers (the latencies aside).
    """
    streams = list(dict.fromkeys(s.stream for s in specs)) if bounds else []
    if len({(s.scenario, s.seed) for s in streams}) < len(streams):
        raise ValueError("the specs replay different streams of one scenario and seed")
    jobs: list[RunSpec | Stream] = [*streams, *specs]
    results = _map(_work, jobs, executor=executor, workers=workers, progress=progress)
    found = {(s.scenario, s.seed): b for s, b in zip(streams, results, strict=False)}
    records = (r for result in results[len(streams) :] if isinstance(result, list) for r in result)
    return records_frame(records), {k: b for k, b in found.items() if isinstance(b, Bound)}


def _map(
    fn: Callable[[Any], T], jobs: list[Any], *, executor: str, workers: int | None, progress: bool
) -> list[T]:
    """``[fn(job) for job in jobs]`` on ``executor``, with a progress bar over completions."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    n = workers or os.cpu_count() or 1
    bar = tqdm(
        total=len(jobs), desc=f"what-if ({executor})", unit="job", disable=not progress,
        file=sys.stderr,
    )  # fmt: skip
    with bar:
        if executor == "ray":
            return _map_ray(fn, jobs, n if workers else None, bar.update)
        if n == 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                out.append(fn(job))
                bar.update()
            return out
        results: dict[int, T] = {}
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(n, len(jobs))) as pool:
            index = {pool.submit(fn, jobs[i]): i for i in _slow_first(jobs)}
            for future in concurrent.futures.as_completed(index):
                results[index[future]] = future.result()
                bar.update()
        return [results[i] for i in range(len(jobs))]


def _slow_first(jobs: Sequence[object]) -> list[int]:
    """Job indices in submission order: bounds, then full-model runs, then the rest.

    The longest jobs start first so they do not end up alone on one worker at the end
    (on the standard scenario the bound's LP and the full model take about a minute each).
    """

    def rank(i: int) -> int:
        job = jobs[i]
        if isinstance(job, Stream):
            return 0
        return 1 if isinstance(job, RunSpec) and job.policy == "full-model" else 2

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
            import models
            import router

            ray.init(address=address, runtime_env={"py_modules": [models, router]})
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
        results: dict[int, T] = {}
        pending = list(index)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                results[index[ref]] = ray.get(ref)
                done()
        return [results[i] for i in range(len(jobs))]
    finally:
        if started:
            ray.shutdown()


# --- input files and flags ------------------------------------------------------------------


def _sweep_flag(text: str) -> tuple[str, list[Setting]]:
    """``split_penalty=0,2,4`` as the field and its grid of settings (argparse type).

    Each value is read as YAML (``sla=hard,soft``, ``ship_complete=true,false``) and then
    by the rule language (:func:`router.whatif.sweep.grid`).
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not values.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=V1,V2,…, got {text!r}")
    v = Violations()
    parsed = [read_yaml(value, f"{name}={value}", v) for value in values.split(",")]
    if v or NOT_READ in parsed:
        raise argparse.ArgumentTypeError("; ".join(map(str, v.items)))
    try:
        return name, grid(name, parsed)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_number(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_number(text: str) -> float:
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _ratio(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (inf: no bound), got {text}")
    return value


def _weight(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m router.whatif`` (and ``router whatif``)."""
    p = argparse.ArgumentParser(
        prog=prog or "python -m router.whatif",
        description="What-if benchmarks: replay a scenario's order stream under routing "
        "policies, rule sets and settings; KPIs, paired comparisons, hindsight bound, report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--scenario", choices=sorted(REGISTRY), default="standard")
    p.add_argument("--seeds", type=int, nargs="+", default=[7], help="one stream per seed")
    p.add_argument("--orders", type=_positive, help="first N orders in arrival order (all)")
    p.add_argument(
        "--policies", nargs="+", choices=list(POLICIES), default=list(DEFAULT_POLICIES),
        help="policies to replay under the scenario's rules (look-ahead only when named)",
    )  # fmt: skip
    p.add_argument(
        "--rules", type=Path, action="append", default=[], metavar="FILE",
        help="a rules.yaml the engine routes with: one run per file, labelled by the file's "
        "stem (repeatable; evaluation always uses the scenario's rules)",
    )  # fmt: skip
    p.add_argument(
        "--sweep", type=_sweep_flag, action="append", default=[], metavar="FIELD=V1,V2,…",
        help="run the engine at each value of a scalar policy field (weights, max_shipments, "
        "ship_complete, sla, max_distance_km, same_country, no_split_below_value); "
        "repeatable: the grid's product; with --rules, on each file",
    )  # fmt: skip
    p.add_argument("--replenishment", type=Path, help="CSV of at,node_id,sku,units arrivals")
    p.add_argument(
        "--executor", choices=EXECUTORS, default="local",
        help="local process pool, or Ray (the whatif extra; a local runtime unless "
        "RAY_ADDRESS is set)",
    )  # fmt: skip
    p.add_argument("--workers", type=_positive, help="processes / Ray CPUs (os.cpu_count())")
    p.add_argument(
        "--bound", action=argparse.BooleanOptionalAction, default=True,
        help="compute the hindsight LP bound per scenario and seed",
    )  # fmt: skip
    p.add_argument(
        "--base", default="engine",
        help="what the paired comparisons are against: a policy or a setting's label",
    )  # fmt: skip
    _add_lookahead_flags(p)
    p.add_argument("--out", type=Path, default=Path("out/whatif"), help="output directory")
    p.add_argument("--smoke", action="store_true", help="the scenario at its smoke size")
    return p


def _add_lookahead_flags(p: argparse.ArgumentParser) -> None:
    """The look-ahead policy's flags, defaulting to :class:`LookAhead`'s."""
    defaults = LookAhead()
    look = p.add_argument_group("look-ahead", "the look-ahead policy (docs/lookahead.md)")
    look.add_argument(
        "--forecast", type=Path, metavar="CSV",
        help="a fixed forecast (region,sku,units,latitude,longitude over --horizon-hours) "
        "instead of the rolling one from the orders already replayed",
    )  # fmt: skip
    look.add_argument(
        "--opportunity-cost", type=_weight, default=defaults.opportunity_cost,
        help="weight of the stock prices, set in every strategy that leaves it at 0",
    )  # fmt: skip
    look.add_argument(
        "--horizon-hours", type=_positive_number, default=defaults.horizon_hours,
        help="hours of expected demand the prices look ahead",
    )  # fmt: skip
    look.add_argument(
        "--window-hours", type=_positive_number, default=defaults.window_hours,
        help="hours of recent orders the rolling forecast counts",
    )  # fmt: skip
    look.add_argument(
        "--refresh-orders", type=_positive, default=defaults.refresh_orders,
        help="re-price after this many orders (and after any replenishment arrives)",
    )  # fmt: skip
    look.add_argument(
        "--min-orders", type=_positive, default=defaults.min_orders,
        help="orders the rolling forecast needs before the first pricing",
    )  # fmt: skip
    look.add_argument(
        "--min-hours", type=_non_negative_number, default=defaults.min_hours,
        help="and hours they must span (the service's --forecast-min-hours)",
    )  # fmt: skip
    look.add_argument(
        "--prior-hours", type=_positive_number, default=defaults.prior_hours,
        help="the rolling forecast's rates shrink toward zero demand with the weight of "
        "this many hours of orders (the service's --forecast-prior-hours)",
    )  # fmt: skip
    look.add_argument(
        "--max-price-ratio", type=_ratio, default=defaults.max_price_ratio,
        help="a unit's price is at most this multiple of its own cost; inf: no bound",
    )  # fmt: skip


def settings(args: argparse.Namespace) -> list[tuple[str, Path | None, dict[str, object]]]:
    """The engine's settings the flags ask for: (label, rules file, Policy field changes).

    Each ``--rules`` file, times each combination of the ``--sweep`` grids (on the
    scenario's rules when no file is given); labels join the file's stem and the values.
    """
    combos: list[tuple[Setting, ...]] = list(itertools.product(*(g for _, g in args.sweep)))
    files: list[Path | None] = list(args.rules) or [None]
    out = []
    for path, combo in itertools.product(files, combos if args.sweep else [()]):
        if path is None and not combo:
            continue
        labels = ([path.stem] if path is not None else []) + [label for label, _ in combo]
        changes = {k: value for _, c in combo for k, value in c.items()}
        out.append((",".join(labels), path, changes))
    return out


def lookahead_config(args: argparse.Namespace, forecast: Forecast | None = None) -> LookAhead:
    """The look-ahead configuration the flags ask for."""
    return LookAhead(
        opportunity_cost=args.opportunity_cost,
        horizon_hours=args.horizon_hours,
        window_hours=args.window_hours,
        refresh_orders=args.refresh_orders,
        min_orders=args.min_orders,
        min_hours=args.min_hours,
        prior_hours=args.prior_hours,
        max_price_ratio=args.max_price_ratio,
        forecast=forecast,
    )


def build_specs(
    args: argparse.Namespace,
    replenishment: tuple[Replenishment, ...],
    forecast: Forecast | None = None,
) -> list[RunSpec]:
    """The runs the flags ask for: each policy per seed, then each setting per seed."""
    specs = []
    config = lookahead_config(args, forecast)
    for seed in args.seeds:
        stream = Stream(args.scenario, seed, args.orders, replenishment, args.smoke)
        specs += [
            RunSpec(stream, policy, lookahead=config if policy == LOOK_AHEAD else None)
            for policy in args.policies
        ]
        specs += [RunSpec(stream, "engine", label, path, c) for label, path, c in settings(args)]
    return specs


def _check_inputs(args: argparse.Namespace) -> tuple[tuple[Replenishment, ...], Forecast | None]:
    """Validate the --rules, --replenishment and --forecast files (the first two per network)."""
    v = Violations()
    replenishment: tuple[Replenishment, ...] = ()
    forecast: Forecast | None = None
    if args.forecast is not None:
        try:
            forecast = read_forecast(args.forecast, args.horizon_hours)
        except InvalidArgumentError as error:
            v.extend(error.violations)
    for seed in args.seeds:
        network = scenario_for(args.scenario, seed, args.smoke).network
        for path in args.rules:
            try:
                read_rules_file(path, network)
            except InvalidArgumentError as error:
                v.extend(x for x in error.violations if x not in v.items)
        if args.replenishment is not None:
            try:
                replenishment = read_replenishment(args.replenishment, network)
            except InvalidArgumentError as error:
                v.extend(x for x in error.violations if x not in v.items)
    v.raise_if_any()
    return replenishment, forecast


def _problem(args: argparse.Namespace) -> str | None:
    """A problem argparse cannot see alone (flags that disagree, a missing extra), or None."""
    swept = [name for name, _ in args.sweep]
    repeated = sorted({name for name in swept if swept.count(name) > 1})
    if repeated:
        return f"argument --sweep: {', '.join(repeated)} is swept twice; give its values once"
    stems = [path.stem for path in args.rules]
    if len(set(stems)) < len(stems):
        return f"argument --rules: two files named {', '.join(stems)} would share a label"
    choices = [*args.policies, *(label for label, _, _ in settings(args))]
    if args.base not in choices:
        return f"argument --base: {args.base!r} is none of the runs: {', '.join(choices)}"
    missing = missing_extra(*(["ray"] if args.executor == "ray" else []))
    if not missing:
        return None
    flag = "argument --executor: " if "ray" in missing else ""
    return flag + not_installed(missing)


def base_run(records: pd.DataFrame, base: str) -> str:
    """The run label of ``--base``: the policy's plain run, else the setting's run."""
    plain = records[(records["policy"] == base) & (records["setting"] == "")]
    rows = plain if len(plain) else records[records["setting"] == base]
    return str(rows["run"].iloc[0])


def unproven(records: pd.DataFrame) -> pd.DataFrame:
    """The engine decisions (status not HEURISTIC) whose status is not in :data:`PROVEN`."""
    status = records["status"].astype(str)
    return records[(status != HEURISTIC) & ~status.isin(PROVEN)]


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the command; 2 on bad flags or a bad rules/replenishment file (every problem)."""
    p = parser(prog)
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a bad flag (2, message printed)
        return int(stop.code or 0)
    problem = _problem(args)
    if problem is not None:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: {problem}", file=sys.stderr)
        return 2
    try:
        replenishment, forecast = _check_inputs(args)
    except InvalidArgumentError as error:
        print(f"invalid input ({len(error.violations)} problems):", file=sys.stderr)
        for violation in error.violations:
            print(f"  {violation}", file=sys.stderr)
        return 2
    specs = build_specs(args, replenishment, forecast)
    streams = list(dict.fromkeys(s.stream for s in specs))
    records, found = run_all(specs, bounds=args.bound, executor=args.executor, workers=args.workers)
    usable = {k: b.value for k, b in found.items() if b.status == "OPTIMAL" and b.value > 0}
    bounds = usable if args.bound else None
    tables = {
        "records": records,
        "kpis": kpis(records, bounds),
        "kpis_long": kpis_long(kpis(records, bounds, by=("scenario", "run"))),
        "paired": comparisons(records, base_run(records, args.base), tuple(METRICS)),
    }
    if len(args.seeds) > 1:
        tables["kpis_by_seed"] = kpis(records, bounds, by=("scenario", "seed", "run"))
    if args.sweep or args.rules:
        swept = tables["kpis"][tables["kpis"]["setting"] != ""]
        tables["tradeoff"] = tradeoff(swept.reset_index(drop=True))
    write_tables(args.out, tables)
    notes = _notes(args, records, found)
    report = write_report(
        args.out,
        title=_title(args),
        records=records,
        kpi_table=tables["kpis"],
        comparisons=tables["paired"],
        network=scenario_for(args.scenario, args.seeds[0], args.smoke).network,
        bound=sum(usable.values()) if usable and len(usable) == len(args.seeds) else None,
        tradeoff_table=tables.get("tradeoff"),
        orders=pd.concat([order_table(s.orders(), s.scenario, s.seed) for s in streams]),
        notes=notes,
        map_run=base_run(records, args.base),
    )
    print(markdown(tables["kpis"], MARKDOWN_COLUMNS))
    shown = {"kpis_by_seed": ("scenario", "seed", *MARKDOWN_COLUMNS), "tradeoff": TRADEOFF_COLUMNS}
    for name, columns in shown.items():
        if name in tables:
            print(f"\n{markdown(tables[name], columns)}")
    for (scenario, seed), bound in sorted(found.items()):
        print(
            f"hindsight bound {scenario} seed {seed}: {bound.value:,.2f} ({bound.status}, "
            f"{bound.variables:,} variables, {bound.constraints:,} constraints, "
            f"{bound.seconds:.1f} s)"
        )
    for note in notes:
        if note.startswith("Warning"):
            print(note, file=sys.stderr)
    print(f"report: {report}")
    return 0


def _title(args: argparse.Namespace) -> str:
    size = "smoke size" if args.smoke else "full size"
    orders = f"first {args.orders} orders" if args.orders else "every order"
    return f"What-if: {args.scenario} ({size}, {orders})"


def _notes(
    args: argparse.Namespace, records: pd.DataFrame, bounds: Mapping[tuple[str, int], Bound]
) -> list[str]:
    """The report's notes: inputs, unusable bounds, and whether the engines agree by design."""
    rules = ", ".join(map(str, args.rules)) or "none"
    notes = [
        f"Policies {', '.join(args.policies)} route with the scenario's rules; rule-set "
        f"files: {rules}; base run {args.base!r}; executor {args.executor}.",
    ]
    if args.replenishment is not None:
        notes.append(f"Replenishment: {args.replenishment}.")
    if LOOK_AHEAD in args.policies:
        config = lookahead_config(args)
        if args.forecast is not None:
            config = replace(
                config, forecast=Forecast((), args.horizon_hours, f"file {args.forecast}")
            )
        notes.append(f"Look-ahead: {config.label()}; costs exclude the prices.")
    for (scenario, seed), bound in sorted(bounds.items()):
        if bound.status != "OPTIMAL" or not bound.value > 0:
            notes.append(
                f"The hindsight bound of {scenario} seed {seed} is unusable: "
                f"{bound.status} ({bound.value})."
            )
    notes.append(
        "Records are identical whichever executor (local, any number of workers, Ray) ran "
        "them when every solve is proven (status OPTIMAL, INFEASIBLE or REJECTED): a "
        "time-limited solve may stop at a different plan on a slower or busier machine."
    )
    late = unproven(records)
    if len(late):
        counts = late.groupby("run", sort=False).size()
        runs = ", ".join(f"{run} {n}" for run, n in counts.items())
        notes.append(
            f"Warning: {len(late)} engine decisions are not proven ({runs}; statuses "
            f"{', '.join(sorted(set(late['status'])))}): these runs may differ between "
            "engines and machines."
        )
    return notes
