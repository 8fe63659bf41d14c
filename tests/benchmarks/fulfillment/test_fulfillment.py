"""The published fulfillment benchmark: generator, DLP, policies and accounting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from geopy.distance import great_circle
from ortools.linear_solver import pywraplp

from benchmarks.fulfillment import run
from benchmarks.fulfillment.dlp import solve_dlp
from benchmarks.fulfillment.instance import (
    BOX_COST,
    CONFIGS,
    Geography,
    Instance,
    arrivals,
    generate,
    geography,
)
from benchmarks.fulfillment.policies import Dilated, Greedy, JasinSinha, Myopic, make_policy
from benchmarks.fulfillment.product import ProductInstance, sku_of
from benchmarks.fulfillment.simulate import run_sequence

SMALL = CONFIGS["small"]


def small_instance(seed: int = 0) -> Instance:
    return generate(SMALL, np.random.default_rng(seed))


def test_costs_follow_the_published_formula_on_real_distances():
    """Costs follow the published formula.

    Box 8.759, item 0.423 + 0.000541·miles; haversine miles agree with geopy within 0.5%;
    the dummy row costs twice the box and twice the farthest centre's item cost.
    """
    geo = geography(SMALL)
    assert geo.centres[0] == "OAK4" and geo.cities[0] == "New York"
    oak4, new_york = (37.7448, -121.3985), (40.6943, -73.9249)
    miles = great_circle(oak4, new_york).km / 1.61
    assert geo.miles[0, 0] == pytest.approx(miles, rel=5e-3)
    assert geo.item[0, 0] == pytest.approx(0.423 + 0.000541 * geo.miles[0, 0])
    assert np.all(geo.box[:-1] == BOX_COST) and np.all(geo.box[-1] == 2 * BOX_COST)
    assert geo.item[-1, 3] == pytest.approx(2 * geo.item[:-1, 3].max())


def test_generated_instance_has_the_published_structure():
    """The generated instance has the published structure.

    26 types (empty + 5 sizes × 5 distinct-item subsets), rates summing to 1 in
    proportion to population, and stock from the closest-carrying-centre demand.
    """
    instance = small_instance(3)
    geo = instance.geography
    assert len(instance.types) == 1 + SMALL.nmax * SMALL.nper
    assert instance.types[0] == ()
    sizes = [len(t) for t in instance.types[1:]]
    assert sizes == [s for s in range(1, 6) for _ in range(5)]
    assert all(len(set(t)) == len(t) for t in instance.types)
    assert instance.rate.sum() == pytest.approx(1.0)
    share = instance.rate.sum(axis=0)
    assert share == pytest.approx(geo.population / geo.population.sum())

    # Recompute the stock the slow way, item by item and city by city.
    n_centres = len(geo.centres)
    demand = np.zeros((n_centres, SMALL.items))
    for q, items in enumerate(instance.types):
        for i in items:
            for j in range(len(geo.cities)):
                k = instance.closest[i, j]
                if k < n_centres:
                    demand[k, i] += instance.rate[q, j]
    t, z = SMALL.periods, SMALL.z_safety
    expected = np.rint(t * demand + z * np.sqrt(t * demand * (1 - demand)))
    assert np.array_equal(instance.stock, expected.astype(np.int64))
    # The closest carrying centre is the closest of the centres with any stock of the item
    # that some city is routed to; a centre no city is routed to gets none.
    for i in range(SMALL.items):
        for j in range(len(geo.cities)):
            k = instance.closest[i, j]
            if k < n_centres:
                assert instance.stock[k, i] > 0


def test_arrivals_follow_the_rates():
    """Empirical (type, city) frequencies of 200,000 draws match the rates."""
    instance = replace(small_instance(1), config=replace(SMALL, periods=200_000))
    drawn = arrivals(instance, np.random.default_rng(5))
    counts = np.zeros(instance.rate.shape)
    np.add.at(counts, (drawn[:, 0], drawn[:, 1]), 1)
    assert np.abs(counts / len(drawn) - instance.rate).max() < 0.004


def _tiny_instance(stock: list[list[int]], periods: int = 10) -> Instance:
    """Two centres, one city; type 1 = {item 0}, type 2 = {items 0, 1}; worked-out costs."""
    geo = Geography(
        centres=("near", "far"),
        cities=("city",),
        centre_points=np.array([[40.0, -100.0], [40.0, -80.0]]),
        city_points=np.array([[40.0, -100.0]]),
        population=np.array([1.0]),
        miles=np.array([[0.0], [1000.0]]),
        box=np.array([[1.0], [1.0], [10.0]]),
        item=np.array([[1.0], [3.0], [20.0]]),
    )
    config = replace(SMALL, items=2, periods=periods)
    rate = np.array([[0.2], [0.4], [0.4]])
    return Instance(
        config, geo, ((), (0,), (0, 1)), rate, np.zeros((2, 1), dtype=np.int64), np.array(stock)
    )


def test_dlp_on_a_worked_example():
    """The DLP on a worked example: optimum, shares and the dual price.

    Type 1 ({0}) and type 2 ({0, 1}) each arrive 4 times in 10 periods. Near holds 4 of
    item 0 and plenty of item 1; far holds plenty of both. Near costs box 1 + item 1, far
    box 1 + item 3. Optimum: type 2 from near entirely (4 × (1 + 2) = 12), type 1 from far
    (4 × (1 + 3) = 16), total 28: near's 4 units of item 0 save type 2 more (a second box
    and a dearer item) than they would save type 1 (2 each). One more unit would go to
    type 1 and save 2, so the dual of near's item-0 row, its price, is 2.
    """
    dlp = solve_dlp(_tiny_instance([[4, 100], [100, 100]]))
    assert dlp.objective == pytest.approx(28.0)
    assert dlp.prices[0, 0] == pytest.approx(2.0)
    assert dlp.prices[0, 1] == pytest.approx(0.0) and dlp.prices[1, 0] == pytest.approx(0.0)
    type2 = dlp.shares[2][0]
    assert type2 is not None and type2[0] == pytest.approx([1.0, 1.0])
    type1 = dlp.shares[1][0]
    assert type1 is not None and type1[:, 0] == pytest.approx([0.0, 1.0, 0.0])
    # More stock at near lowers the bound by the price per unit (non-degenerate here).
    more = solve_dlp(_tiny_instance([[5, 100], [100, 100]]))
    assert dlp.objective - more.objective == pytest.approx(2.0)


def _dlp_by_glop(instance: Instance) -> float:
    """The DLP by an independent formulation and solver.

    Written out as in the published JuMP model (every centre, no pruning),
    solved by OR-Tools' GLOP: an independent formulation and solver.
    """
    solver = pywraplp.Solver.CreateSolver("GLOP")
    geo, t = instance.geography, instance.periods
    n_rows, n_cities = geo.box.shape
    n_centres = n_rows - 1
    objective = solver.Objective()
    shipped: dict[tuple[int, int], list[tuple[float, pywraplp.Variable]]] = {}
    for q, items in enumerate(instance.types):
        for j in range(n_cities):
            if not items:
                continue
            weight = t * instance.rate[q, j]
            y = [solver.NumVar(0, solver.infinity(), "") for _ in range(n_rows)]
            for k in range(n_rows):
                objective.SetCoefficient(y[k], weight * geo.box[k, j])
            for i in items:
                u = [solver.NumVar(0, solver.infinity(), "") for _ in range(n_rows)]
                solver.Add(sum(u) == 1)
                for k in range(n_rows):
                    solver.Add(u[k] <= y[k])
                    objective.SetCoefficient(u[k], weight * geo.item[k, j])
                    if k < n_centres:
                        shipped.setdefault((k, i), []).append((weight, u[k]))
    for (k, i), terms in shipped.items():
        solver.Add(sum(w * u for w, u in terms) <= float(instance.stock[k, i]))
    objective.SetMinimization()
    assert solver.Solve() == pywraplp.Solver.OPTIMAL
    return float(objective.Value())


def test_dlp_matches_an_independent_solve_of_the_published_model():
    """HiGHS on the pruned, vectorised LP = GLOP on the LP written as published."""
    instance = small_instance(2)
    assert solve_dlp(instance).objective == pytest.approx(_dlp_by_glop(instance), rel=1e-7)


def _draw_marginals(policy, shares: np.ndarray, draws: int) -> np.ndarray:
    instance = _tiny_instance([[1, 1], [1, 1]])
    n_items = shares.shape[1]
    types = ((), tuple(range(n_items)))
    instance = replace(instance, types=types, rate=np.array([[0.0], [1.0]]))
    dlp = replace(solve_dlp(_tiny_instance([[1, 1], [1, 1]])), shares=((None,), (shares,)))
    policy.start(instance, dlp, np.random.default_rng(11))
    counts = np.zeros_like(shares)
    for t in range(draws):
        centres = policy.decide(t, 1, 0, instance.stock)
        counts[centres, np.arange(n_items)] += 1
    return counts / draws


SHARES = np.array([[0.6, 0.0, 0.4, 0.0], [0.3, 1.0, 0.5, 0.3], [0.1, 0.0, 0.1, 0.7]])
"""The example in Ma's published Jasin–Sinha code (centres × items, columns sum to 1)."""


@pytest.mark.parametrize("policy", [JasinSinha(), Dilated()], ids=["js", "dilated"])
def test_roundings_keep_each_items_marginal_share(policy):
    """Both roundings keep each item's marginal share.

    Both correlated roundings send item i to centre k with probability x[k, i] (their
    defining property); 40,000 draws land within 0.01 of every share.
    """
    freq = _draw_marginals(policy, SHARES, 40_000)
    assert np.abs(freq - SHARES).max() < 0.01


def test_correlated_roundings_open_fewer_boxes_than_independent_rounding():
    """Correlated roundings open fewer boxes than independent draws.

    Correlation is the point: both schemes put items together more often than
    independent draws from the same marginals would.
    """

    def boxes(freq_policy) -> float:
        instance = _tiny_instance([[1, 1], [1, 1]])
        types = ((), (0, 1, 2, 3))
        instance = replace(instance, types=types, rate=np.array([[0.0], [1.0]]))
        dlp = replace(solve_dlp(_tiny_instance([[1, 1], [1, 1]])), shares=((None,), (SHARES,)))
        freq_policy.start(instance, dlp, np.random.default_rng(3))
        return float(
            np.mean(
                [
                    len(set(freq_policy.decide(t, 1, 0, instance.stock).tolist()))
                    for t in range(5_000)
                ]
            )
        )

    # Independent rounding: expected distinct centres = Σ_k (1 − Π_i (1 − x[k, i])).
    independent = float((1 - np.prod(1 - SHARES, axis=1)).sum())
    assert boxes(JasinSinha()) < independent - 0.2
    assert boxes(Dilated()) < independent - 0.2


def test_simulation_charges_boxes_items_and_the_dummy_as_published():
    """The simulation charges boxes, items and the dummy as published.

    Order {0, 1} four times on near's stock [1, 1]: the first ships from near (box 1 +
    2 items × 1 = 3), the next three find near empty and go to the dummy (box 10 + 2 × 20 =
    50 each) under myopic; greedy on current stock ships them from far (1 + 2 × 3 = 7).
    """
    instance = _tiny_instance([[1, 1], [5, 5]], periods=4)
    instance = replace(instance, closest=np.zeros((2, 1), dtype=np.int64))
    dlp = solve_dlp(instance)
    seq = np.array([[2, 0]] * 4)
    myopic = run_sequence(instance, dlp, seq, Myopic(), np.random.default_rng(0))
    assert (myopic.cost, myopic.boxes, myopic.unserved) == (3 + 3 * 50, 4, 6)
    greedy = run_sequence(instance, dlp, seq, Greedy(), np.random.default_rng(0))
    assert (greedy.cost, greedy.boxes, greedy.unserved) == (3 + 3 * 7, 4, 0)


def test_lookahead_saves_the_scarce_unit_for_the_order_that_needs_it():
    """Look-ahead keeps a scarce unit for the order that needs it more.

    Near has one unit of item 0; type 1 ({0}) arrives first, then type 2 ({0, 1}).
    Greedy gives the unit to type 1 (2 instead of 4 from far) and type 2 then splits
    (item 0 from far, item 1 from near: 6 instead of 3). Type 2 is the likelier type, so
    the DLP prices the unit above type 1's saving of 2, and look-ahead keeps it for type 2.
    """
    instance = _tiny_instance([[1, 100], [100, 100]], periods=2)
    instance = replace(instance, rate=np.array([[0.0], [0.4], [0.6]]))
    dlp = solve_dlp(instance)
    assert dlp.prices[0, 0] > 2.0
    seq = np.array([[1, 0], [2, 0]])
    greedy = run_sequence(instance, dlp, seq, Greedy(), np.random.default_rng(0))
    ahead = run_sequence(instance, dlp, seq, make_policy("lookahead"), np.random.default_rng(0))
    assert greedy.cost == 2 + 6
    assert ahead.cost == 4 + 3


def test_product_pricing_lp_prices_the_scarce_unit_within_its_bound():
    """The product's pricing LP prices near's one unit of item 0, within the price bound.

    Over 10 periods the city expects 8 units of item 0 (types 1 and 2 arrive 4 times
    each) and 4 of item 1. The LP spreads a box over 2 units: item 0 costs 1 + 1/2 = 1.5
    a unit from near (1 unit held), 3 + 1/2 = 3.5 from far (100), 20 + 10/2 = 25 from the
    dummy. One more unit at near would save 3.5 − 1.5 = 2, but the product bounds a price
    by the unit's own cost (``max_price_ratio`` 1 × 1.5), so near's price is 1.5; every
    other position is plentiful and priced 0. (It prices units one at a time: that type 2
    would also save a box with near's unit, as the DLP sees, is not in it.)
    """
    instance = _tiny_instance([[1, 100], [100, 100]], periods=10)
    product = ProductInstance.of(instance)
    forecast = product.forecast(10)
    assert {(d.region, d.sku): d.units for d in forecast.demand} == {
        ("city", sku_of(0)): pytest.approx(8.0),
        ("city", sku_of(1)): pytest.approx(4.0),
    }
    prices = product.lp_prices(product.stock(instance.stock), version=1, periods=10)
    assert dict(prices.prices) == {("near", sku_of(0)): pytest.approx(1.5)}


def test_plans_are_remembered_only_while_their_stock_lasts():
    """Remembered plans never change a decision.

    A fresh search on every arrival of a real sequence gives the same cost.
    """
    instance = replace(small_instance(4), config=replace(SMALL, periods=1_500))
    dlp = solve_dlp(instance)
    seq = arrivals(instance, np.random.default_rng(1))

    class Fresh(Greedy):
        def decide(self, t, q, j, stock):
            self._plans.clear()
            return super().decide(t, q, j, stock)

    for resolves in (0, 3):
        kept = run_sequence(instance, dlp, seq, Greedy(resolves=resolves), np.random.default_rng(0))
        fresh = run_sequence(instance, dlp, seq, Fresh(resolves=resolves), np.random.default_rng(0))
        assert kept.cost == pytest.approx(fresh.cost)
        assert kept.unserved == fresh.unserved


def test_command_writes_every_output_and_pairs_with_the_base(tmp_path, capsys):
    """The command end to end at a tiny T: every policy, paired differences, files.

    The smoke run of ``make test``: greedy and both look-aheads plan through the product.
    """
    argv = ["--instances", "2", "--sequences", "2", "--periods", "300", "--workers", "1"]
    assert run.main([*argv, "--resolves", "2", "--out", str(tmp_path)]) == 0
    records = pd.read_csv(tmp_path / "records.csv")
    assert len(records) == 2 * 2 * 6
    assert (records["ratio"] > 0.9).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["policy"]) == [
        "myopic",
        "js",
        "dilated",
        "greedy",
        "lookahead",
        "lookahead-lp",
    ]
    base = summary.set_index("policy").loc["dilated"]
    assert base["minus_dilated"] == 0.0
    assert (tmp_path / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| lookahead |" in capsys.readouterr().out
