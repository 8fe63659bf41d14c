"""One arrival sequence under one policy: the published cost accounting.

Each non-empty arrival asks the policy for a centre per item. An item ships from its
centre when that centre still holds a unit (which is then gone), else it goes to the dummy
centre (unserved). The order pays the per-item cost of each item's centre and one box per
distinct centre, the dummy included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benchmarks.fulfillment.dlp import Dlp
from benchmarks.fulfillment.instance import Instance
from benchmarks.fulfillment.policies import FulfillmentPolicy


@dataclass(frozen=True, slots=True)
class SequenceResult:
    """Totals of one sequence; ``seconds`` is the time spent in the policy's decisions."""

    cost: float
    orders: int
    items: int
    boxes: int
    unserved: int
    seconds: float


def run_sequence(
    instance: Instance,
    dlp: Dlp,
    arrivals: NDArray[np.int64],
    policy: FulfillmentPolicy,
    rng: np.random.Generator,
) -> SequenceResult:
    """Run ``policy`` over ``arrivals`` from the instance's starting stock."""
    geo = instance.geography
    dummy = geo.dummy
    stock = instance.stock.copy()
    policy.start(instance, dlp, rng)
    types = instance.types
    item_cost, box_cost = geo.item, geo.box
    cost = 0.0
    orders = items = boxes = unserved = 0
    seconds = 0.0
    clock = time.perf_counter
    for t, (q, j) in enumerate(arrivals.tolist()):
        order = types[q]
        if not order:
            continue
        started = clock()
        tried = policy.decide(t, q, j, stock).tolist()
        seconds += clock() - started
        used = set()
        for i, k in zip(order, tried, strict=True):
            if k != dummy and stock[k, i] > 0:
                stock[k, i] -= 1
            else:
                k = dummy
                unserved += 1
            used.add(k)
            cost += item_cost[k, j]
        for k in used:
            cost += box_cost[k, j]
        orders += 1
        items += len(order)
        boxes += len(used)
    return SequenceResult(cost, orders, items, boxes, unserved, seconds)
