"""The fulfillment benchmark command: policies over instances × sequences, cost / DLP.

::

    python -m benchmarks.fulfillment --config small --instances 10 --sequences 5
    python -m benchmarks.fulfillment --config large --resolves 1 --workers 2 --out out/large

For every instance (drawn from ``--seed`` and its number) the DLP is solved once; every
sequence (its arrivals drawn from the seed, the instance and the sequence number) is run
under every policy, so policies are compared on the same arrivals (paired). Each policy's
random draws come from their own stream per sequence. Outputs, in ``--out``: one row per
(instance, sequence, policy) in ``records.csv``, the summary in ``summary.csv`` and
``summary.md``, and ``ratios.png`` (cost / DLP per policy, one box per policy).

Intervals are 95% bootstrap intervals over instances (sequences are nested in their
instance, so an instance is resampled with all its sequences); paired differences to
``--base`` (dilated rounding) are bootstrapped the same way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmarks.fulfillment.dlp import solve_dlp
from benchmarks.fulfillment.instance import CONFIGS, Config, arrivals, generate
from benchmarks.fulfillment.policies import POLICIES, Greedy, make_policy
from benchmarks.fulfillment.simulate import run_sequence
from router.whatif.kpis import bootstrap_interval

PUBLISHED: dict[str, dict[str, float]] = {
    "small": {"myopic": 1.119, "js": 1.096, "dilated": 1.085, "greedy": 1.089},
    "large": {"myopic": 1.248, "js": 1.140, "dilated": 1.107},
}
"""Cost / DLP of the published policies (the benchmark's README, re-run of the generator)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One instance with all its sequences under all policies."""

    config: Config
    seed: int
    instance: int
    sequences: int
    policies: tuple[str, ...]
    resolves: int


def run_instance(job: Job) -> list[dict[str, object]]:
    """The records of one instance (one per sequence and policy)."""
    instance = generate(job.config, np.random.default_rng([job.seed, job.instance]))
    dlp = solve_dlp(instance)
    rows: list[dict[str, object]] = []
    policies = [make_policy(name, resolves=job.resolves) for name in job.policies]
    for sequence in range(job.sequences):
        arrived = arrivals(instance, np.random.default_rng([job.seed, job.instance, sequence, 0]))
        for p, (name, policy) in enumerate(zip(job.policies, policies, strict=True)):
            rng = np.random.default_rng([job.seed, job.instance, sequence, 1 + p])
            result = run_sequence(instance, dlp, arrived, policy, rng)
            rows.append(
                {
                    "config": job.config.name,
                    "periods": job.config.periods,
                    "instance": job.instance,
                    "sequence": sequence,
                    "policy": name,
                    "dlp": dlp.objective,
                    "ratio": result.cost / dlp.objective,
                    **asdict(result),
                    "resolve_seconds": policy.resolve_seconds
                    if isinstance(policy, Greedy)
                    else 0.0,
                    "dlp_seconds": dlp.seconds,
                    "dlp_variables": dlp.variables,
                }
            )
        print(
            f"{job.config.name} instance {job.instance} sequence {sequence}: "
            + ", ".join(f"{r['policy']} {r['ratio']:.4f}" for r in rows[-len(job.policies) :]),
            file=sys.stderr,
            flush=True,
        )
    return rows


def run_all(jobs: Sequence[Job], workers: int) -> pd.DataFrame:
    """Every job's records, on ``workers`` processes (1: in this process), in job order."""
    results: list[list[dict[str, object]]] = []
    if workers <= 1:
        results = [run_instance(job) for job in tqdm(jobs, desc="instances", unit="inst")]
    else:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            results = list(
                tqdm(pool.map(run_instance, jobs), total=len(jobs), desc="instances", unit="inst")
            )
    return pd.DataFrame([row for rows in results for row in rows])


def _interval(per_instance: np.ndarray, seed: int) -> tuple[float, float]:
    if len(per_instance) < 2:
        return (float("nan"), float("nan"))
    return bootstrap_interval(per_instance, resamples=10_000, seed=seed)


def summarise(records: pd.DataFrame, base: str | None, seed: int = 0) -> pd.DataFrame:
    """Per policy: cost / DLP with its interval, and the other measures.

    The paired difference to ``base``, boxes per item, unserved share, µs per decision
    (DLP re-solves included).
    """
    rows = []
    by_instance = records.groupby(["policy", "instance"], sort=False)["ratio"].mean()
    policies = list(dict.fromkeys(records["policy"]))
    if base is not None and base not in policies:
        base = None
    for name in policies:
        mine = records[records["policy"] == name]
        instances = by_instance[name].to_numpy()
        low, high = _interval(instances, seed)
        row: dict[str, object] = {
            "policy": name,
            "published": PUBLISHED.get(str(mine["config"].iloc[0]), {}).get(name, float("nan")),
            "cost_dlp": float(mine["ratio"].mean()),
            "ci_low": low,
            "ci_high": high,
            "runs": len(mine),
            "boxes_per_item": float(mine["boxes"].sum() / mine["items"].sum()),
            "unserved_pct": float(100 * mine["unserved"].sum() / mine["items"].sum()),
            "us_per_decision": float(1e6 * mine["seconds"].sum() / mine["orders"].sum()),
            "resolve_share": float(
                mine["resolve_seconds"].sum() / max(float(mine["seconds"].sum()), 1e-12)
            ),
        }
        if base is not None:
            diff = instances - by_instance[base].to_numpy()
            d_low, d_high = _interval(diff, seed)
            row |= {
                f"minus_{base}": float(diff.mean()),
                f"minus_{base}_low": d_low,
                f"minus_{base}_high": d_high,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(summary: pd.DataFrame, base: str | None) -> str:
    """The summary as a Markdown table (the README's form)."""
    head = (
        "| policy | cost / DLP [95% CI] | published | boxes / item | unserved % | µs / decision |"
    )
    rule = "|---|---|---|---|---|---|"
    if base is not None and f"minus_{base}" in summary:
        head += f" − {base} [95% CI] |"
        rule += "---|"
    lines = [head, rule]
    for d in summary.to_dict("records"):
        line = (
            f"| {d['policy']} | {d['cost_dlp']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}] "
            f"| {'' if np.isnan(d['published']) else format(d['published'], '.3f')} "
            f"| {d['boxes_per_item']:.3f} | {d['unserved_pct']:.2f} "
            f"| {d['us_per_decision']:.0f}"
            + (f" ({d['resolve_share']:.0%} LP) |" if d["resolve_share"] else " |")
        )
        if base is not None and f"minus_{base}" in d:
            line += (
                f" {d[f'minus_{base}']:+.4f} [{d[f'minus_{base}_low']:+.4f}, "
                f"{d[f'minus_{base}_high']:+.4f}] |"
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def plot(records: pd.DataFrame, path: Path, title: str) -> None:
    """One box of cost / DLP per policy (one point per instance × sequence).

    The published value of a policy, when there is one, is a red cross.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(records["policy"]))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.boxplot(
        [records.loc[records["policy"] == p, "ratio"] for p in policies],
        tick_labels=policies,
        showmeans=True,
    )
    published = PUBLISHED.get(str(records["config"].iloc[0]), {})
    marks = [(x, published[p]) for x, p in enumerate(policies, start=1) if p in published]
    if marks:
        ax.scatter(*zip(*marks, strict=True), marker="x", color="red", zorder=3, label="published")
        ax.legend(loc="upper right")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("cost / DLP")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The command line (see the module doc)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--sequences", type=int, default=5)
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument(
        "--resolves",
        type=int,
        default=10,
        help="DLP solves per sequence for look-ahead prices (1: the starting DLP only)",
    )
    parser.add_argument("--periods", type=int, help="override T (arrivals per sequence)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", default="dilated", help="policy the others are paired with")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=Path("out/fulfillment"))
    args = parser.parse_args(argv)
    for flag in ("instances", "sequences", "resolves", "workers"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    config = CONFIGS[args.config]
    if args.periods is not None:
        if args.periods < 1:
            parser.error(f"--periods must be >= 1, got {args.periods}")
        config = replace(config, periods=args.periods)
    base = args.base if args.base in args.policies else None
    jobs = [
        Job(config, args.seed, i, args.sequences, tuple(args.policies), args.resolves)
        for i in range(args.instances)
    ]
    started = time.perf_counter()
    records = run_all(jobs, args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    records.to_csv(args.out / "records.csv", index=False)
    title, table = report(records, args.out, base, args.seed)
    print(f"{title} ({time.perf_counter() - started:.0f} s)\n\n{table}")
    print(f"written to {args.out}/ (records.csv, summary.csv, summary.md, ratios.png)")
    return 0


def report(records: pd.DataFrame, out: Path, base: str | None, seed: int) -> tuple[str, str]:
    """Write ``summary.csv``, ``summary.md`` and ``ratios.png`` of ``records`` to ``out``.

    Returns the title and the Markdown table.
    """
    summary = summarise(records, base, seed)
    summary.to_csv(out / "summary.csv", index=False)
    table = markdown_table(summary, base)
    sequences = records.groupby("instance")["sequence"].nunique().max()
    title = (
        f"{records['config'].iloc[0]}: {records['instance'].nunique()} instances × "
        f"{sequences} sequences, T = {int(records['periods'].iloc[0]):,}"
    )
    (out / "summary.md").write_text(f"{title}\n\n{table}")
    plot(records, out / "ratios.png", title)
    return title, table
