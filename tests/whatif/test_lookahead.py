"""The look-ahead policy: prices steer the replay, costs stay the scenario's; deterministic.

The worked stream uses the equator network of tests/engine/test_prices.py: X at 0° holds
1 unit of A (handling 1 a shipment), Y at −4° holds 5 (handling 1 a shipment, 2 a unit).
o1 wants 1 A at 0°, then o2 wants 1 A at 12°, which only X reaches (Y is 1,779 km away,
beyond the last band). The worked prices are the LP's duals without the price bound
(``max_price_ratio`` inf); the bound's effect is worked in tests/engine/test_prices.py.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path

import pytest

from models.errors import InvalidArgumentError
from models.lookahead import Forecast, ForecastRule, RegionDemand
from models.order import ShipTo
from models.replenishment import Replenishment
from models.rules import RuleSet
from models.scenario import Scenario
from router.sample import sample_scenario
from router.scenario import read_forecast
from router.service.config import PriceSettings
from router.whatif.lookahead import LookAhead, LookAheadPolicy
from router.whatif.policies import POLICIES, EnginePolicy
from router.whatif.records import DETERMINISTIC
from router.whatif.replay import replay
from router.whatif.run import RunSpec, Stream, execute, lookahead_for, main
from tests.engine.conftest import CREATED, network, node, order, stock

NET = network(node("X", 0.0), node("Y", -4.0, per_unit=2.0))
O1 = dataclasses.replace(order(("A", 1)), order_id="o1")
O2 = dataclasses.replace(
    order(("A", 1)),
    order_id="o2",
    created_at=CREATED + timedelta(minutes=1),
    ship_to=ShipTo(0.0, 12.0, "US", "00000"),
)
# The east expects 2 units: X's only unit is worth 60 − (2 + (1 + 8)/2) = 53.5 there.
FORECAST = Forecast(
    (RegionDemand("US-W", "A", 1.0, 0.0, 0.0), RegionDemand("US-E", "A", 2.0, 0.0, 12.0)),
    24.0,
    "file worked.csv",
)
HALF = LookAhead(
    opportunity_cost=0.5, forecast=FORECAST, refresh_orders=1, max_price_ratio=math.inf
)
"""The file's forecast at weight 0.5, re-priced before every order, prices unbounded."""


def _scenario() -> Scenario:
    return Scenario(NET, stock(("X", "A", 1), ("Y", "A", 5)), RuleSet(), (O1, O2))


def test_prices_keep_the_scarce_unit_for_the_region_that_needs_it():
    """Engine: o1 from X (6 + 1 = 7), o2 finds nothing and backorders 60: total 67.

    Look-ahead (forecast file, weight 0.5): X's unit costs o1 7 + 26.75, more than Y's 9,
    so o1 ships from Y (9); o2 still prices X's unit at 26.75, and 11 + 26.75 < 60, so it
    ships from X (handling 1 + base 8 + 2 kg-cost = 11): total 20. (At weight 1, o2 would
    pay 11 + 53.5 > 60 and backorder: the price is the whole saving for the forecast's
    marginal demand, and o2 is that demand; docs/lookahead.md.) Costs are the scenario's
    own, without prices; each record names its prices (re-priced before every order).
    """
    engine = replay(_scenario(), EnginePolicy(RuleSet()), scenario_name="w", seed=1)
    assert [r.cost for r in engine] == [7.0, 60.0]
    ahead = replay(_scenario(), LookAheadPolicy(RuleSet(), HALF), scenario_name="w", seed=1)
    assert [r.node_units for r in ahead] == ["Y:1", "X:1"]
    assert [r.cost for r in ahead] == [9.0, 11.0]
    assert [r.price_version for r in ahead] == ["prices@v1", "prices@v2"]
    assert [r.policy for r in ahead] == ["look-ahead", "look-ahead"]
    assert all(r.price_version == "" for r in engine)


def test_a_replenishment_re_prices_before_the_next_order():
    """With re-pricing every 100 orders, only the arrival before o2 makes prices@v2."""
    config = dataclasses.replace(HALF, refresh_orders=100)
    arrival = Replenishment(O2.created_at, "Y", "A", 3)
    records = replay(
        _scenario(),
        LookAheadPolicy(RuleSet(), config),
        scenario_name="w",
        seed=1,
        replenishment=(arrival,),
    )
    assert [r.price_version for r in records] == ["prices@v1", "prices@v2"]
    quiet = replay(_scenario(), LookAheadPolicy(RuleSet(), config), scenario_name="w", seed=1)
    assert [r.price_version for r in quiet] == ["prices@v1", "prices@v1"]


def test_prices_look_no_further_than_the_replays_last_order():
    """Demand expected after the replay ends does not steer it: look-ahead routes as the engine.

    The same worked stream as above, but the replay ends at o2, one minute after o1: at o1
    the file's 24 h forecast shrinks to that minute (W 1/1,440 unit, E 2/1,440), under X's
    one unit, so X prices 0 and o1 ships from it (7); o2 backorders (60), as with the
    engine. Without ``until`` the same configuration ships o1 from Y (first test).
    """
    ends = LookAheadPolicy(RuleSet(), dataclasses.replace(HALF, until=O2.created_at))
    records = replay(_scenario(), ends, scenario_name="w", seed=1)
    assert [r.cost for r in records] == [7.0, 60.0]
    assert ends.prices is not None and ends.prices.horizon_hours == pytest.approx(1e-6)
    assert [
        r.cost
        for r in replay(_scenario(), LookAheadPolicy(RuleSet(), HALF), scenario_name="w", seed=1)
    ] == [9.0, 11.0]


def test_rolling_forecast_waits_for_min_orders():
    """Without a file, no prices until ``min_orders`` orders were seen: o1 and o2 unpriced."""
    config = LookAhead(min_orders=2)
    records = replay(_scenario(), LookAheadPolicy(RuleSet(), config), scenario_name="w", seed=1)
    assert [r.price_version for r in records] == ["", ""]
    assert [r.cost for r in records] == [7.0, 60.0]  # the engine's decisions


@pytest.mark.parametrize(("min_hours", "versions"), [(1.0, ["", ""]), (0.0, ["", "prices@v1"])])
def test_rolling_forecast_waits_for_min_hours_as_the_service_does(min_hours, versions):
    """At o2 one order was seen, over one minute: priced only when no hours are required.

    The policy's rule is the service's :class:`~models.lookahead.ForecastRule`, with the
    same defaults (``router serve --forecast-min-orders`` and ``--forecast-min-hours``
    are ``router whatif --min-orders`` and ``--min-hours``).
    """
    config = LookAhead(min_orders=1, min_hours=min_hours)
    records = replay(_scenario(), LookAheadPolicy(RuleSet(), config), scenario_name="w", seed=1)
    assert [r.price_version for r in records] == versions
    assert LookAhead().forecast_rule == PriceSettings().forecast_rule == ForecastRule()


def test_look_ahead_replay_of_the_sample_is_deterministic_and_feasible():
    """Two replays of the smoke-size sample agree on every deterministic column.

    Replay checks every decision against the evaluation model (availability, shipment
    caps, all-or-nothing) and raises on a breach, so finishing is the feasibility check;
    prices were computed (a rolling forecast from the orders seen, re-priced every 3).
    """
    scenario = sample_scenario(7, n_stores=20, n_skus=100, n_orders=30)
    config = LookAhead(min_orders=5, refresh_orders=3, horizon_hours=36, window_hours=36)

    def run() -> list[dict[str, object]]:
        records = replay(
            scenario, LookAheadPolicy(scenario.rules, config), scenario_name="s", seed=7
        )
        return [{k: v for k, v in r.row().items() if k in DETERMINISTIC} for r in records]

    first, second = run(), run()
    assert first == second
    versions = [str(r["price_version"]) for r in first]
    assert versions[:5] == [""] * 5 and all(v.startswith("prices@v") for v in versions[5:])
    assert versions[-1] == f"prices@v{1 + (len(first) - 6) // 3}"


def test_policies_registry_and_execute_make_a_fresh_policy_per_run():
    """POLICIES makes look-ahead at its defaults; execute replays a RunSpec's own config."""
    made = POLICIES["look-ahead"](RuleSet())
    assert isinstance(made, LookAheadPolicy) and made.config == LookAhead()
    stream = Stream("standard", 7, n_orders=12, smoke=True)
    spec = RunSpec(stream, "look-ahead", lookahead=LookAhead(min_orders=4, refresh_orders=4))
    once, twice = execute(spec), execute(spec)
    assert [r.row() | {"latency_s": 0} for r in once] == [r.row() | {"latency_s": 0} for r in twice]
    assert once[4].price_version == "prices@v1" and once[8].price_version == "prices@v2"
    last = stream.orders()[-1].created_at
    assert lookahead_for(spec, stream.orders()) == LookAhead(
        min_orders=4, refresh_orders=4, until=last
    )
    preset = dataclasses.replace(spec, lookahead=LookAhead(until=CREATED))
    assert lookahead_for(preset, stream.orders()).until == CREATED


def test_read_forecast_names_bad_cells(tmp_path: Path):
    """A forecast file's bad cells come back as ``file:line:column``, all at once."""
    path = tmp_path / "forecast.csv"
    path.write_text("region,sku,units,latitude,longitude\nUS-CA,A,x,34,-118\nUS-NY,B,2,95,-74\n")
    with pytest.raises(InvalidArgumentError) as caught:
        read_forecast(path, 24.0)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["forecast.csv:2:units", "forecast.csv:3:latitude"]


def test_command_refuses_a_bad_forecast_file_before_running(tmp_path: Path, capsys):
    """``--forecast`` with a bad file exits 2 naming the cell; nothing runs."""
    path = tmp_path / "f.csv"
    path.write_text("region,sku,units,latitude,longitude\nUS-CA,A,-3,34,-118\n")
    flags = ["--smoke", "--policies", "engine", "look-ahead", "--no-bound"]
    code = main([*flags, "--forecast", str(path)])
    assert code == 2
    assert "f.csv:2:units" in capsys.readouterr().err


def test_rolling_forecast_spreads_units_over_the_window_once_the_replay_is_older():
    """A lull at the start of the window does not shrink it: units scale by horizon / window.

    Orders of 1 unit of A at 0 h and 30 h. At 40 h the 36 h window holds only the second,
    and the replay is 40 h old, so the 12 h forecast expects 1 × 12 / (36 + 6) units with
    the prior's 6 h (not 1 × 12 / (10 + 6), over the time since that order). At 35 h the
    replay is younger than the window and both orders count, over its age: 2 × 12 / 41.
    """

    def forecast_at(hours: float) -> list[float]:
        config = LookAhead(horizon_hours=12.0, window_hours=36.0, min_orders=1)
        policy = LookAheadPolicy(RuleSet(), config)
        for seen, order_id in ((0, "a"), (30, "b")):
            at = CREATED + timedelta(hours=seen)
            policy.seen.append(dataclasses.replace(O1, order_id=order_id, created_at=at))
            policy._seen_at.append(at)
        forecast = policy._forecast(CREATED + timedelta(hours=hours))
        assert isinstance(forecast, Forecast)
        return [d.units for d in forecast.demand]

    assert forecast_at(40) == [pytest.approx(12 / 42)]
    assert forecast_at(35) == [pytest.approx(2 * 12 / 41)]


def test_rolling_forecast_stops_at_the_replays_last_order():
    """With the replay ending at 44 h, the 12 h forecast at 40 h covers the 4 h left.

    The same orders as above: at 40 h the 36 h window holds 1 unit, so the 4 h left expect
    1 × 4 / (36 + 6); at 30 h the 12 h horizon ends before the replay and stays whole.
    """
    until = CREATED + timedelta(hours=44)
    config = LookAhead(horizon_hours=12.0, window_hours=36.0, min_orders=1, until=until)
    policy = LookAheadPolicy(RuleSet(), config)
    for seen, order_id in ((0, "a"), (30, "b")):
        at = CREATED + timedelta(hours=seen)
        policy.seen.append(dataclasses.replace(O1, order_id=order_id, created_at=at))
        policy._seen_at.append(at)
    at_40 = policy._forecast(CREATED + timedelta(hours=40))
    assert isinstance(at_40, Forecast) and at_40.horizon_hours == pytest.approx(4.0)
    assert [d.units for d in at_40.demand] == [pytest.approx(1 * 4 / 42)]
    at_30 = policy._forecast(CREATED + timedelta(hours=30))
    assert isinstance(at_30, Forecast) and at_30.horizon_hours == 12.0
