"""Look-ahead stock prices: the duals of the pricing LP, and the priced canonical model.

The worked network (tests/engine/conftest.py: nodes on the equator, 111.195 km per degree;
ground ≤ 500 km costs 5 + 1/kg, ≤ 1,500 km 8 + 2/kg; SKU A weighs 1 kg; backorder 60):

- X at 0°: handling 1 per shipment, 0 per unit; holds 1 unit of A (scarce).
- Y at −4° (444.8 km west): handling 1 per shipment, 2 per unit; holds 5 units of A.
- Region US-W at 0° wants 1 unit of A; region US-E at 12° (1,334 km east of X, 1,779 km
  of Y: beyond the last band) wants 2 units of A.

With ``units_per_shipment=1`` a unit's cost is per unit + kg cost + (handling per
shipment + base cost): W from X 0 + 1 + (1 + 5) = 7, W from Y 2 + 1 + 6 = 9, E from X
0 + 2 + (1 + 8) = 11, E from Y impossible. The LP sends X's unit east (it saves the
backorder 60 − 11 = 49 there, against 9 − 7 = 2 in the west) and serves W from Y; E's
second unit is backordered. One more unit at X would save 49 (E's second unit), one fewer
would cost 49: the dual of X's stock row is 49, unique. Y's is 0 (plentiful: it ships 1
of 5). These worked duals are those of the LP without the price bound (``UNBOUNDED``); the
bound's own tests follow them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.optimize import linprog

from models.lookahead import Forecast, RegionDemand, StockPrices
from models.money import MONEY_SCALE
from models.plan import CandidateTerms, ExplainedModel
from models.rules import Fallback, FallbackAction, Policy, RuleSet, Strategy
from router.engine import route_order
from router.engine.candidates import build_model
from router.engine.prices import price_stock, pricing_lp
from router.engine.solve import FULL_MODEL, plan_order
from tests.engine.conftest import network, node, order, stock
from tests.engine.test_independent import highs_optimum

NET = network(node("X", 0.0), node("Y", -4.0, per_unit=2.0))
WEST = RegionDemand("US-W", "A", 1.0, 0.0, 0.0)
EAST = RegionDemand("US-E", "A", 2.0, 0.0, 12.0)
FORECAST = Forecast((WEST, EAST), horizon_hours=24.0, source="test")
UNBOUNDED = math.inf
"""``max_price_ratio`` that leaves prices unbounded: the LP's duals as they are."""
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_scarce_unit_a_far_region_needs_gets_its_dual_plentiful_stock_prices_zero():
    """X's only unit is worth 49 (backorder 60 − E's cost 11); Y's plentiful units 0."""
    held = stock(("X", "A", 1), ("Y", "A", 5))
    prices = price_stock(NET, held, FORECAST, units_per_shipment=1, max_price_ratio=UNBOUNDED)
    assert prices == pytest.approx({("X", "A"): 49.0})


def test_price_matches_the_finite_differences_of_an_independent_lp():
    """The dual equals the saving of one more unit at X, and the cost of one fewer.

    A hand-written dense LP of the worked costs (module docstring): variables x_WX, x_WY,
    x_EX, u_W, u_E; X holds s units, Y 5. The first two units at X serve E (each saves
    its backorder less 11 = 49), so at s = 1 both differences are 49 and the dual is
    unique; a third unit serves W (saves 2), a fourth nothing. At s = 5, X is plentiful
    and prices 0.
    """

    def optimum(s: int) -> float:
        cost = [7.0, 9.0, 11.0, 60.0, 60.0]
        a_eq = [[1, 1, 0, 1, 0], [0, 0, 1, 0, 1]]
        a_ub = [[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]]
        result = linprog(cost, A_ub=a_ub, b_ub=[s, 5], A_eq=a_eq, b_eq=[1, 2], method="highs")
        assert result.status == 0
        return float(result.fun)

    assert optimum(0) - optimum(1) == optimum(1) - optimum(2) == pytest.approx(49.0)
    assert optimum(2) - optimum(3) == pytest.approx(2.0)
    assert optimum(4) - optimum(5) == pytest.approx(0.0)
    held = stock(("X", "A", 1), ("Y", "A", 5))
    priced = price_stock(NET, held, FORECAST, units_per_shipment=1, max_price_ratio=UNBOUNDED)
    assert priced == pytest.approx({("X", "A"): optimum(0) - optimum(1)})
    plenty = stock(("X", "A", 5), ("Y", "A", 5))
    assert price_stock(NET, plenty, FORECAST, units_per_shipment=1) == {}


def test_per_shipment_costs_are_spread_over_units_per_shipment():
    """With the default 2 units per shipment E from X costs 0 + 2 + 9/2 = 6.5: price 53.5."""
    prices = price_stock(
        NET, stock(("X", "A", 1), ("Y", "A", 5)), FORECAST, max_price_ratio=UNBOUNDED
    )
    assert prices == pytest.approx({("X", "A"): 53.5})


def test_no_demand_no_stock_or_unknown_skus_price_nothing():
    """An empty forecast, a SKU the network lacks, or no stock give no prices."""
    held = stock(("X", "A", 1))
    assert price_stock(NET, held, Forecast((), 24.0, "none")) == {}
    unknown = Forecast((RegionDemand("US-W", "Z", 3.0, 0.0, 0.0),), 24.0, "t")
    assert price_stock(NET, held, unknown) == {}
    assert price_stock(NET, stock(), FORECAST) == {}


def test_the_lp_restricts_each_demand_to_its_nearest_cheapest_nodes():
    """``nearest=1``: each demand has one x column plus its backorder.

    Bounded, each stock row also has its outside-supply column; unbounded, none.
    """
    held = stock(("X", "A", 1), ("Y", "A", 5))
    lp = pricing_lp(NET, held, FORECAST, Policy(), nearest=1, max_price_ratio=UNBOUNDED)
    assert lp.n_demands == 2
    assert lp.n_variables == 2 + 2  # W: X (7 < 9); E: X only; one backorder each
    assert lp.positions == [("X", "A")]
    assert pricing_lp(NET, held, FORECAST, Policy(), nearest=1).n_variables == 2 + 2 + 1


@pytest.mark.parametrize(("ratio", "price"), [(1.0, 7.0), (2.0, 14.0), (10.0, 49.0)])
def test_a_price_is_at_most_the_ratio_times_the_units_own_cost(ratio, price):
    """X's unit is priced min(49, ratio × 7): its own cost is 7, its cheapest use (W).

    With ``units_per_shipment=1`` (module docstring) X's unit serves W at 7 or E at 11, so
    ``P_X = ratio × 7``. At ratio 1 the LP brings E's second unit to X from outside at
    11 + 7 = 18 < 60 rather than backorder it, and one more unit at X saves exactly 7; at
    ratio 2, 11 + 14 = 25 < 60: 14; at ratio 10 the outside unit (11 + 70) is dearer than
    the backorder (60), the bound does not bind and the price is the unbounded dual, 49.
    """
    held = stock(("X", "A", 1), ("Y", "A", 5))
    prices = price_stock(NET, held, FORECAST, units_per_shipment=1, max_price_ratio=ratio)
    assert prices == pytest.approx({("X", "A"): price})


def test_the_bound_is_part_of_the_lp_so_other_prices_follow_it():
    """Bounding X's price also lowers Z's to 0, where clipping the duals would give 27.

    Node Z at 9° (20 per unit) holds 1 unit of A; E now wants 3. With
    ``units_per_shipment=1`` E from Z costs 20 + 1 + (1 + 5) = 27 (333.6 km) and W from Z
    20 + 2 + (1 + 8) = 31, so Z's own cost is 27. Unbounded, X and Z each serve E and E's
    third unit is backordered: X's dual is 60 − 11 = 49, Z's 60 − 27 = 33. At ratio 1
    (``P_X`` = 7) E's marginal unit comes to X from outside at 11 + 7 = 18, cheaper than
    Z's 27: Z's unit is worth nothing to the forecast (one more or one fewer changes no
    cost), so its price is 0, not min(33, 27) = 27. X's is 7.
    """
    net = network(node("X", 0.0), node("Y", -4.0, per_unit=2.0), node("Z", 9.0, per_unit=20.0))
    held = stock(("X", "A", 1), ("Y", "A", 5), ("Z", "A", 1))
    forecast = Forecast((WEST, replace(EAST, units=3.0)), horizon_hours=24.0, source="test")
    unbounded = price_stock(net, held, forecast, units_per_shipment=1, max_price_ratio=UNBOUNDED)
    assert unbounded == pytest.approx({("X", "A"): 49.0, ("Z", "A"): 33.0})
    bounded = price_stock(net, held, forecast, units_per_shipment=1, max_price_ratio=1.0)
    assert bounded == pytest.approx({("X", "A"): 7.0})


def test_a_ratio_that_is_not_positive_is_refused():
    """``max_price_ratio`` 0 would price nothing while claiming a bound: ValueError."""
    with pytest.raises(ValueError, match="max_price_ratio"):
        price_stock(NET, stock(("X", "A", 1)), FORECAST, max_price_ratio=0.0)


PRICES = StockPrices(3, NOW, "test", 24.0, {("X", "A"): 49.0})


def _rules(weight: float) -> RuleSet:
    return RuleSet.single(Policy(opportunity_cost=weight))


def test_opportunity_cost_moves_the_plan_to_the_other_node():
    """One unit of A to 0°: X costs 6 + 1 = 7, Y 6 + 3 = 9; priced, X costs 6 + 1 + 49 = 56.

    Unpriced (weight 0, or no prices) the plan ships from X and names no prices; with
    weight 1 it ships from Y at objective 9 and names ``prices@v3``; with weight 0.01 X
    costs 7.49 < 9, so it stays at X, but the plan still names the prices it used.
    """
    one = order(("A", 1))
    held = stock(("X", "A", 1), ("Y", "A", 5))
    plain = route_order(one, NET, held, _rules(0.0), prices=PRICES)
    assert [s.node_id for s in plain.shipments] == ["X"]
    assert plain.objective == 7 * MONEY_SCALE and plain.price_version == ""
    unpriced = route_order(one, NET, held, _rules(1.0))
    assert [s.node_id for s in unpriced.shipments] == ["X"] and unpriced.price_version == ""
    priced = route_order(one, NET, held, _rules(1.0), prices=PRICES)
    assert [s.node_id for s in priced.shipments] == ["Y"]
    assert priced.objective == 9 * MONEY_SCALE and priced.price_version == "prices@v3"
    light = route_order(one, NET, held, _rules(0.01), prices=PRICES)
    assert [s.node_id for s in light.shipments] == ["X"]
    assert light.objective == 74_900 and light.price_version == "prices@v3"


def test_price_version_names_the_step_that_made_the_plan():
    """A priced first strategy that falls back to an unpriced one: the plan names no prices.

    The first strategy may ship only from X (filters.nodes) and X holds nothing for B, so
    it falls back (``next``) to the second, unpriced one, which makes the plan.
    """
    priced = Strategy(
        "priced",
        policy=Policy(opportunity_cost=1.0, nodes=frozenset({"X"})),
        fallback=Fallback(FallbackAction.NEXT),
    )
    rules = RuleSet(strategies=(priced, Strategy("plain", policy=Policy())))
    held = stock(("X", "A", 1), ("Y", "B", 5))
    plan = route_order(order(("B", 1)), NET, held, rules, prices=PRICES)
    assert plan.strategy == "plain" and plan.price_version == ""
    assert plan.prices_computed_at is None
    made_by_priced = route_order(order(("A", 1)), NET, held, rules, prices=PRICES)
    assert made_by_priced.strategy == "priced" and made_by_priced.price_version == "prices@v3"
    assert made_by_priced.prices_computed_at == PRICES.computed_at


@pytest.mark.parametrize("weight", [0.25, 1.0, 2.5])
@pytest.mark.parametrize("engine", ["fast", FULL_MODEL])
def test_priced_plan_is_exact_for_the_independently_priced_model(weight, engine):
    """The plan's objective is the HiGHS optimum of the unpriced model priced by hand.

    Three nodes, two SKUs, a three-line order; prices on several positions. The expected
    model adds ``round(weight × price × 10,000)`` to each candidate's unit cost of each
    line, written here from the unpriced model's terms, not by the engine.
    """
    net = network(node("X", 0.0), node("Y", -4.0, per_unit=2.0), node("Z", 3.0, per_shipment=0.5))
    held = stock(
        ("X", "A", 2), ("X", "B", 1), ("Y", "A", 5), ("Y", "B", 5), ("Z", "A", 1), ("Z", "B", 2)
    )
    prices = StockPrices(
        1, NOW, "t", 24.0, {("X", "A"): 3.3333, ("Z", "B"): 1.25, ("Y", "B"): 0.71, ("Z", "A"): 7.0}
    )
    big = order(("A", 2), ("B", 2), ("A", 1))
    policy = Policy(opportunity_cost=weight)
    plan = plan_order(big, net, held, policy, prices=prices, engine=engine)
    base = build_model(big, net, held, Policy()).model
    priced_candidates = []
    for c in base.candidates:
        extra = [
            int(np.rint(weight * prices.of(c.node_id, line.sku) * MONEY_SCALE))
            for line in base.lines
        ]
        priced_candidates.append(
            replace(c, unit_costs=tuple(u + e for u, e in zip(c.unit_costs, extra, strict=True)))
        )
    expected: ExplainedModel = replace(base, candidates=tuple(priced_candidates))
    assert all(isinstance(c, CandidateTerms) for c in expected.candidates)
    assert plan.price_version == "prices@v1"
    assert plan.objective == pytest.approx(highs_optimum(expected))
    assert plan.model == expected
