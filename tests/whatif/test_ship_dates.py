"""Replay and the hindsight bound count daily capacity on each shipment's ship date.

The equator network of tests/engine/conftest.py, customers at (0, 0): N (lon 0, UTC,
cutoff 18:00, one order a day) and W (lon -10, 1,112 km, no capacity) hold plenty of A.
One unit of A costs 7 from N (handling 1 + base 5 + 1 kg × 1) and 11 from W (1 + 8 + 2).

o1 is created Fri 2026-11-20 at 12:00 UTC, before N's cutoff: N would ship it Fri 20.
o2 at 20:00 the same UTC day, after the cutoff: N would ship it Sat 21. o3 on Sat 21 at
10:00, before the cutoff: N would ship it Sat 21 too. So N can take o1 and o2 (one a
ship date), not o2 and o3. Counted per UTC day of creation (as before), N would instead
take o1, lose o2 to W and take o3.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time

import pytest

from models.order import Order
from models.rules import RuleSet
from models.scenario import Scenario
from router.whatif.bound import hindsight_bound
from router.whatif.policies import EnginePolicy, GreedyNearest, RankedChain
from router.whatif.replay import replay
from tests.engine.conftest import network, node, order, stock

RULES = RuleSet()


def _order(order_id: str, created_at: datetime) -> Order:
    return replace(order(("A", 1)), order_id=order_id, created_at=created_at)


def _scenario(*orders: Order) -> Scenario:
    net = network(node("N", 0.0, cutoff=time(18), capacity=1), node("W", -10.0))
    return Scenario(net, stock(("N", "A", 10), ("W", "A", 10)), RULES, orders)


O1 = _order("o1", datetime(2026, 11, 20, 12, tzinfo=UTC))
O2 = _order("o2", datetime(2026, 11, 20, 20, tzinfo=UTC))
O3 = _order("o3", datetime(2026, 11, 21, 10, tzinfo=UTC))


@pytest.mark.parametrize("policy", [EnginePolicy(RULES), GreedyNearest(), RankedChain()])
def test_replay_counts_a_node_order_on_its_ship_date(policy):
    """N takes o1 (ships Fri 20) and o2 (ships Sat 21); o3 (ships Sat 21) goes to W.

    Failed before the fix: replay counted o2 on Fri 20, its UTC creation day, sent it to W
    and gave N o3, so N shipped two orders on Sat 21, one over its capacity.
    """
    records = replay(_scenario(O1, O2, O3), policy, scenario_name="t", seed=0)
    assert [r.node_units for r in records] == ["N:1", "N:1", "W:1"]
    assert [r.cost for r in records] == [7.0, 7.0, 11.0]


def test_bound_counts_capacity_on_ship_dates_and_meets_the_replay():
    """The bound counts N's capacity per ship date, and equals the replay here.

    Bound of o1, o2 = 7 + 7 = 14 (one order on each of N's ship dates); with o3 as well,
    25 = 7 + 7 + 11, the replay's cost (an LP vertex here: nothing fractional pays).

    Failed before the fix: per UTC creation day, o1 and o2 shared N's one slot of Fri 20,
    so the bound of o1, o2 was 18 (7 + 11).
    """
    assert hindsight_bound(_scenario(O1, O2)).value == pytest.approx(14.0, abs=1e-6)
    scenario = _scenario(O1, O2, O3)
    bound = hindsight_bound(scenario)
    assert bound.value == pytest.approx(25.0, abs=1e-6)
    records = replay(scenario, EnginePolicy(RULES), scenario_name="t", seed=0)
    assert sum(r.cost for r in records) == pytest.approx(bound.value, abs=1e-6)
