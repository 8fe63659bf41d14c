"""The benchmark through the product: its costs in the canonical model, its optimum."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from benchmarks.fulfillment.instance import CONFIGS, Instance, generate
from benchmarks.fulfillment.product import DUMMY_NODE, LiveStock, ProductInstance
from benchmarks.fulfillment.simulate import run_sequence
from models.money import MONEY_SCALE, to_units
from models.plan import ExclusionReason

SMALL = CONFIGS["small"]


class Fixed:
    """A benchmark policy that sends the items where it is told (to price an assignment)."""

    name = "fixed"

    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres

    def start(self, instance, dlp, rng) -> None:
        """Nothing to prepare."""

    def decide(self, t, q, j, stock) -> np.ndarray:
        """The given centres."""
        return self.centres


def benchmark_cost(instance: Instance, stock: np.ndarray, q: int, j: int, centres) -> float:
    """What the benchmark's own accounting (simulate.py) charges for one order so routed."""
    one = replace(instance, config=replace(instance.config, periods=1), stock=stock)
    arrival = np.array([[q, j]])
    return run_sequence(one, None, arrival, Fixed(centres), np.random.default_rng(0)).cost


def rounded_terms(
    instance: Instance, q: int, j: int, prices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's costs of order (q, j) in solver units, each rounded once.

    ``box[r]``, the box of row r (centres, then the dummy), and ``item[r, p]``, the p-th
    item from row r: ``to_units`` of the published costs, plus at a real centre the
    item's price rounded to the unit, as the priced model adds it.
    """
    geo = instance.geography
    items = list(instance.types[q])
    box = np.array([to_units(float(b)) for b in geo.box[:, j]])
    item = np.array([[to_units(float(c))] * len(items) for c in geo.item[:, j]])
    item[: geo.dummy] += np.rint(prices[:, items] * MONEY_SCALE).astype(np.int64)
    return box, item


def cost_of(box: np.ndarray, item: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The cost of each assignment (rows of ``centres``): a box per row used, each item."""
    centres = np.atleast_2d(centres)
    used = (centres[:, :, None] == np.arange(len(box))).any(axis=1)
    return used @ box + item[centres, np.arange(centres.shape[1])].sum(axis=1)


def random_orders(
    instance: Instance, rng: np.random.Generator, count: int
) -> Iterator[tuple[np.ndarray, np.ndarray, int, int]]:
    """``count`` random (stock, prices, type, city) draws.

    Stock: about a third of the positions empty, the rest 1 to 3 units. Prices: 0 on
    every other draw (greedy's model), else 0 on half the positions and up to 15 (about a
    box and an item) on the others.
    """
    shape = instance.stock.shape
    for draw in range(count):
        stock = np.where(rng.random(shape) < 1 / 3, 0, rng.integers(1, 4, shape))
        prices = np.where(rng.random(shape) < 0.5, 0.0, rng.random(shape) * 15)
        q = int(rng.integers(1, len(instance.types)))
        j = int(rng.integers(len(instance.geography.cities)))
        yield stock.astype(np.int64), prices * (draw % 2), q, j


def plan_of(product: ProductInstance, q: int, j: int, stock: np.ndarray, prices: np.ndarray):
    """The product's plan: greedy's model when every price is 0, look-ahead's otherwise."""
    priced = product.dlp_prices(prices, 1, 1) if prices.any() else None
    return product.plan(q, j, product.stock(stock), priced)


@pytest.mark.parametrize("config", ["small", "large"])
def test_product_model_charges_the_benchmark_costs(config):
    """The product's canonical model charges the benchmark's costs, rounded once per term.

    On 300 random (order, stock, prices, assignment) draws of each configuration's real
    geography: the candidates are the centres holding an item of the order, each with its
    stock, and the dummy; the model's objective at the assignment equals the benchmark's
    box and item costs (plus prices) each rounded to the solver unit, exactly, and the
    benchmark's own accounting (unpriced) within half a unit per term.
    """
    rng = np.random.default_rng(7)
    instance = generate(CONFIGS[config], rng)
    product = ProductInstance.of(instance)
    geo = instance.geography
    for stock, prices, q, j in random_orders(instance, rng, 300):
        items = list(instance.types[q])
        plan = plan_of(product, q, j, stock, prices)
        model = plan.model
        index = {c.node_id: n for n, c in enumerate(model.candidates)}
        holding = [k for k in range(geo.dummy) if stock[k, items].any()]
        assert set(index) == {geo.centres[k] for k in holding} | {DUMMY_NODE}
        for k in holding:
            candidate = model.candidates[index[geo.centres[k]]]
            assert candidate.available == tuple(stock[k, items].tolist())
        assert all(e.reason is ExclusionReason.NO_AVAILABLE_STOCK for e in plan.excluded)

        # Each item from a random centre holding it, or from the dummy.
        centres = np.array(
            [rng.choice([*np.flatnonzero(stock[:, i] > 0).tolist(), geo.dummy]) for i in items]
        )
        nodes = [geo.centres[k] if k < geo.dummy else DUMMY_NODE for k in centres.tolist()]
        objective = model.objective({(index[node], p): 1 for p, node in enumerate(nodes)})
        assert objective == cost_of(*rounded_terms(instance, q, j, prices), centres)[0]
        if not prices.any():
            terms = len(items) + len(set(nodes))
            assert objective / MONEY_SCALE == pytest.approx(
                benchmark_cost(instance, stock, q, j, centres), abs=terms * 0.5 / MONEY_SCALE
            )


def test_product_plan_is_the_exact_optimum_of_the_benchmark_order():
    """The product's plan is the order's optimum, by brute force over every assignment.

    On 200 random orders of small instances with random stock and prices, every
    assignment of the order's items to centres holding them or to the dummy is priced
    with the rounded costs: the product's plan costs their minimum, exactly. Unpriced,
    its cost in the benchmark's own accounting is within the rounding (one solver unit
    per term) of the unrounded minimum.
    """
    rng = np.random.default_rng(11)
    for _ in range(4):
        instance = generate(SMALL, rng)
        product = ProductInstance.of(instance)
        geo = instance.geography
        for stock, prices, q, j in random_orders(instance, rng, 50):
            items = instance.types[q]
            rows = [[*np.flatnonzero(stock[:, i] > 0).tolist(), geo.dummy] for i in items]
            every = np.array(list(itertools.product(*rows)))
            box, item = rounded_terms(instance, q, j, prices)
            plan = plan_of(product, q, j, stock, prices)
            centres = product.centres(plan)
            assert plan.objective == cost_of(box, item, every).min()
            assert plan.objective == cost_of(box, item, centres)[0]
            if not prices.any():
                unrounded = cost_of(
                    geo.box[:, j], np.repeat(geo.item[:, j, None], len(items), 1), every
                )
                assert benchmark_cost(instance, stock, q, j, centres) <= (
                    unrounded.min() + 2 * len(items) / MONEY_SCALE
                )


def test_live_stock_follows_the_simulation():
    """The live stock equals a fresh conversion of the array after every change.

    200 random decrements and restocks; each view has the same positions as
    ``ProductInstance.stock`` of the array, the dummy's T units included.
    """
    rng = np.random.default_rng(3)
    instance = generate(SMALL, rng)
    product = ProductInstance.of(instance)
    stock = instance.stock.copy()
    live = LiveStock(product, stock)
    for _ in range(200):
        k, i = rng.integers(stock.shape[0]), rng.integers(stock.shape[1])
        stock[k, i] = max(0, stock[k, i] + int(rng.choice([-1, -1, 2])))
        assert live.view(stock).positions == product.stock(stock).positions


def test_pairs_at_one_distance_share_a_band_only_when_they_cost_the_same():
    """Two centres at one point share each city's band; at different costs they are refused."""
    instance = generate(SMALL, np.random.default_rng(0))
    geo = instance.geography
    points = geo.centre_points.copy()
    points[1] = points[0]
    item = geo.item.copy()
    item[1] = item[0]
    same = replace(instance, geography=replace(geo, centre_points=points, item=item))
    assert ProductInstance.of(same).network.rates.bands
    item[1] += 0.01
    clash = replace(instance, geography=replace(geo, centre_points=points, item=item))
    with pytest.raises(ValueError, match="two pairs at"):
        ProductInstance.of(clash)
