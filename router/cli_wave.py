"""``router wave``: plan the orders of a scenario as one wave, offline (docs/wave.md).

The orders (the scenario's ``orders.jsonl``, or ``--orders`` in the same format, read as
``router plan`` reads them) are planned jointly against the scenario's stock with
:func:`router.engine.wave.plan_wave`. A summary is printed: orders, status, objective,
bound, gap and time; with ``--one-by-one`` also the cost of routing the same orders one
by one in arrival order, each reserving, and the wave's saving against it. With ``--json``
stdout holds one proto3 JSON plan per order (as ``router plan`` writes them) and the
summary goes to stderr. A wave that runs for more than :data:`PROGRESS_EVERY_S` seconds
prints a progress line on stderr every so often.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from models.engines import ENGINES, FAST
from models.money import from_units

PROGRESS_EVERY_S = 2.0
"""Seconds between two progress lines on stderr (none for a wave that is done sooner)."""


def add_wave_command(commands: Any) -> None:
    """``router wave --scenario DIR [--orders FILE] [--time-limit S] [--json]``."""
    wave = commands.add_parser(
        "wave",
        help="plan the orders of a file jointly, as one wave, against the scenario stock "
        "(no server; docs/wave.md)",
    )
    wave.add_argument("--scenario", type=Path, required=True, help="scenario directory")
    wave.add_argument("--orders", type=Path, help="orders.jsonl (default: the scenario's)")
    wave.add_argument("--rules", type=Path, help="rules.yaml (default: the scenario's)")
    wave.add_argument(
        "--time-limit", type=float, default=None, help="seconds the wave may solve (default 60)"
    )
    wave.add_argument("--engine", choices=ENGINES, default=FAST, help="engine of each order")
    wave.add_argument(
        "--json",
        action="store_true",
        help="one JSON plan per order on stdout (the summary on stderr)",
    )
    wave.add_argument(
        "--one-by-one",
        action="store_true",
        help="also route the orders one by one in arrival order and compare (slower)",
    )
    wave.set_defaults(run=run_wave)


class _Progress:
    """Prints where the wave is on stderr, at most every :data:`PROGRESS_EVERY_S` seconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._last = self.started

    def __call__(self, progress: Any) -> None:
        now = time.perf_counter()
        if now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        known = [
            f"{name} {from_units(value):,.2f}"
            for name, value in (("objective", progress.objective), ("bound", progress.bound))
            if value is not None
        ]
        print(
            f"wave {now - self.started:.1f}s: {progress.phase} "
            f"{progress.done}/{progress.orders} orders" + "".join(f", {k}" for k in known),
            file=sys.stderr,
            flush=True,
        )


def run_wave(args: argparse.Namespace) -> int:
    """Plan the wave; print its summary (and per-order JSON lines with --json)."""
    from models.plan import ExplainLevel
    from router.engine.stop import Stop
    from router.engine.wave import WAVE_TIME_LIMIT_S, one_by_one, plan_wave
    from router.scenario import read_scenario
    from router.service.convert import plan_to_json

    scenario = read_scenario(args.scenario, orders_file=args.orders, rules_file=args.rules)
    net, stock, rules = scenario.network, scenario.stock, scenario.rules
    orders = scenario.orders
    progress = _Progress()
    limit = WAVE_TIME_LIMIT_S if args.time_limit is None else args.time_limit
    wave = plan_wave(
        orders, net, stock, rules, stop=Stop(limit), engine=args.engine, progress=progress
    )
    seconds = time.perf_counter() - progress.started
    if args.json:
        for plan in wave.plans:
            print(json.dumps(plan_to_json(plan, explain=ExplainLevel.NONE)))
    out = sys.stderr if args.json else sys.stdout
    print(
        f"wave of {len(orders)} orders: {wave.status}, "
        f"objective {from_units(wave.objective):,.2f}, bound {from_units(wave.bound):,.2f}, "
        f"gap {wave.gap:.4%}, {seconds:.1f}s "
        f"({wave.stats.contested_orders} contested)",
        file=out,
    )
    print(f"  {wave.detail}", file=out)
    if args.one_by_one:
        alone = one_by_one(orders, net, stock, rules, engine=args.engine)
        saving = (alone - wave.objective) / max(1, alone)
        print(
            f"one by one: {from_units(alone):,.2f}; the wave saves "
            f"{from_units(alone - wave.objective):,.2f} ({saving:.3%})",
            file=out,
        )
    return 0
