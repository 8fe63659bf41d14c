"""Look-ahead stock prices in the live service: refresher, versions, metrics, forecast.

Real servers on port 0 with their metrics scraped over HTTP, real gRPC calls from several
threads, the memory ledger. Prices come from an injected price function (a test double
of :func:`router.engine.prices.price_stock` that can be made slow or failing) so each
test controls when a refresh ends; one test runs the real LP end to end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import pytest

from models.lookahead import Forecast
from models.network import Network, Stock
from models.order import Order
from models.rules import Policy, RuleSet
from models.scenario import Scenario
from router.cli import main
from router.sample import sample_scenario
from router.service.config import PriceSettings, ServerConfig
from router.service.convert import order_to_proto
from router.service.metrics import KEPT_PRICE_VERSIONS, ServiceMetrics
from router.service.prices import RecentOrders
from router.service.server import RouterServer, create_server
from router.v1 import router_pb2
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.service.conftest import Running, order, scrape

PRICED = RuleSet.single(Policy(opportunity_cost=1.0))
"""One strategy that adds each unit's price to its cost: the service computes prices."""
AT_ONCE = PriceSettings(
    refresh_interval_s=3600.0, min_gap_s=0.0, forecast_min_orders=0, forecast_min_hours=0.0
)
"""Refreshes as soon as asked, and a rolling forecast that prices from no evidence at all
(an empty one at first): the tests of the refresher's mechanics start from ``prices@v1``."""
WAIT_S = 20.0
"""Longest wait for something the refresher does in the background."""


class Pricer:
    """An injected price function that records its calls and can be held or made to fail.

    ``hold`` (set by default) is waited on inside each call, so a test decides when a
    refresh ends; ``fail`` makes calls raise.
    """

    def __init__(self, prices: Mapping[tuple[str, str], float] | None = None) -> None:
        self.prices = dict(prices or {("west", "A"): 2.5})
        self.calls: list[tuple[Stock, Forecast, Policy | None]] = []
        self.entered = threading.Semaphore(0)
        self.hold = threading.Event()
        self.hold.set()
        self.fail = False

    def __call__(
        self, network: Network, stock: Stock, forecast: Forecast, policy: Policy | None
    ) -> Mapping[tuple[str, str], float]:
        self.calls.append((stock, forecast, policy))
        self.entered.release()
        assert self.hold.wait(WAIT_S), "the test never let the refresh end"
        if self.fail:
            raise RuntimeError("pricing LP failed (injected)")
        return self.prices


@dataclass(frozen=True)
class Live(Running):
    """A started server with a channel to it (the stubs of :class:`Running`) and its metrics."""

    server: RouterServer

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``GET /metrics``, by name and sorted labels."""
        port = self.server.metrics_port
        assert port is not None
        return scrape(port)

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when the series does not exist (yet)."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def plan(self, the_order: Order | None = None, timeout: float = 30) -> router_pb2.Plan:
        """The PlanOrder answer for ``the_order`` (default: A×2 and B×1)."""
        request = router_pb2.PlanOrderRequest(
            order=order_to_proto(the_order or order(("A", 2), ("B", 1)))
        )
        return self.routing.PlanOrder(request, timeout=timeout).plan

    def snapshot(self, sequence: int, node_id: str = "east", on_hand: int = 10) -> None:
        """Apply a feed snapshot of ``node_id`` holding ``on_hand`` units of B."""
        self.inventory.ApplyStockSnapshot(
            router_pb2.ApplyStockSnapshotRequest(
                feed="wms",
                sequence=sequence,
                node_id=node_id,
                positions=[router_pb2.SnapshotPosition(sku="B", on_hand=on_hand)],
            ),
            timeout=30,
        )

    def delta(self, sequence: int, sku: str, change: int, node_id: str = "west") -> None:
        """Apply a feed delta changing ``sku``'s on hand at ``node_id`` by ``change``."""
        self.inventory.ApplyStockDelta(
            router_pb2.ApplyStockDeltaRequest(
                feed="wms",
                sequence=sequence,
                node_id=node_id,
                deltas=[router_pb2.StockDelta(sku=sku, on_hand_change=change)],
            ),
            timeout=30,
        )


@contextmanager
def live(scenario: Scenario, pricer: Pricer | None, **config: Any) -> Iterator[Live]:
    """Start a server with metrics on a free port and ``pricer`` injected; stop it after."""
    config.setdefault("ledger_url", "memory://")
    config.setdefault("prices", AT_ONCE)
    server, port = create_server(
        ServerConfig(port=0, metrics_port=0, price_function=pricer, **config), scenario
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Live(port, channel, server)
    finally:
        if pricer is not None:
            pricer.hold.set()
        server.stop(0).wait()


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds, at most :data:`WAIT_S` seconds."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def number(price_version: str) -> int:
    """7 for ``prices@v7``, 0 for ""."""
    return int(price_version.removeprefix("prices@v") or 0)


def priced(scenario: Scenario) -> Scenario:
    """``scenario`` under :data:`PRICED` rules."""
    return replace(scenario, rules=PRICED)


def first_prices(running: Live) -> None:
    """Route once (the board learns the rules) and wait for ``prices@v1`` in plans."""
    running.plan()
    eventually(lambda: running.plan().price_version == "prices@v1", "prices@v1 in plans")


def test_a_refresh_publishes_a_version_seen_in_metrics_and_plans(
    small_scenario: Scenario,
) -> None:
    """A refresh's version names the plans after it and shows in /metrics.

    Before any refresh plans carry no price version (nor a computed-at time); the first
    request under pricing rules starts one, and plans then carry its computed-at time.
    """
    pricer = Pricer()
    pricer.hold.clear()  # the first refresh waits until the test has seen a plan without
    with live(priced(small_scenario), pricer) as running:
        assert running.metric("router_price_version") == 0
        unpriced = running.plan()
        assert unpriced.price_version == "" and not unpriced.HasField("prices_computed_at")
        assert pricer.entered.acquire(timeout=WAIT_S)  # that request started the refresh
        pricer.hold.set()
        eventually(lambda: running.plan().price_version == "prices@v1", "prices@v1")
        before = time.time()
        plans = [running.plan() for _ in range(3)]
        assert {p.price_version for p in plans} == {"prices@v1"}
        assert running.metric("router_price_version") == 1
        refreshed = running.metric("router_price_last_refresh_timestamp_seconds")
        assert before - 60 < refreshed <= before
        for plan in plans:
            computed = plan.prices_computed_at.ToDatetime(tzinfo=UTC).timestamp()
            assert computed == pytest.approx(refreshed, abs=1e-3)
        assert running.metric("router_price_refreshes_total", trigger="rules_change") == 1
        assert running.metric("router_price_refresh_duration_seconds_count") == 1
        assert running.metric("router_price_refresh_failures_total") == 0
        assert running.metric("router_price_enabled") == 1
        optimal = {"price_version": "prices@v1", "status": "SOLVE_STATUS_OPTIMAL"}
        assert running.metric("router_plans_total", **optimal) >= 3
        assert (
            running.metric("router_plans_total", price_version="none", status=optimal["status"])
            >= 1
        )
        assert running.server.prices.current is not None
        assert running.server.prices.current.of("west", "A") == 2.5
        _, _, policy = pricer.calls[0]
        assert policy == PRICED.strategies[0].policy  # the pricing strategy's policy


def test_prices_steer_the_plan_and_stay_exact_for_the_priced_model(
    small_scenario: Scenario,
) -> None:
    """Prices steer plans, and a priced plan is proven optimal for its priced model.

    Unpriced, A×2 ships from the store mid (as near as DC west, and cheaper); a price of 40
    on mid's A moves it to west. The explained unit costs are the unpriced ones plus the
    price.
    """
    a_only = order(("A", 2))
    with live(small_scenario, None) as plain:
        unpriced = plain.plan(a_only)
    assert {s.node_id for s in unpriced.shipments} == {"mid"}
    pricer = Pricer({("mid", "A"): 40.0})
    with live(priced(small_scenario), pricer) as running:
        first_prices(running)
        request = router_pb2.PlanOrderRequest(
            order=order_to_proto(a_only), explain_level=router_pb2.EXPLAIN_LEVEL_FULL
        )
        plan = running.routing.PlanOrder(request, timeout=30).plan
    assert plan.price_version == "prices@v1"
    assert plan.status == router_pb2.SOLVE_STATUS_OPTIMAL
    assert {s.node_id for s in plan.shipments} == {"west"}
    unit_cost = {c.node_id: c.lines[0].unit_cost for c in plan.explain.model.candidates}
    plain_cost = {c.node_id: c.lines[0].unit_cost for c in _explained(small_scenario, a_only)}
    assert unit_cost["mid"] == pytest.approx(plain_cost["mid"] + 40.0)
    assert unit_cost["west"] == pytest.approx(plain_cost["west"])


def _explained(scenario: Scenario, the_order: Order) -> list[router_pb2.Candidate]:
    """The candidates of ``the_order``'s explained model on a server without prices."""
    with live(scenario, None) as running:
        request = router_pb2.PlanOrderRequest(
            order=order_to_proto(the_order), explain_level=router_pb2.EXPLAIN_LEVEL_FULL
        )
        return list(running.routing.PlanOrder(request, timeout=30).plan.explain.model.candidates)


def test_routing_is_not_blocked_while_a_refresh_is_slow(small_scenario: Scenario) -> None:
    """Routing never waits for a refresh.

    While a refresh hangs inside the price function, PlanOrder and RouteOrder answer
    promptly from 4 threads with the old version; the new one follows when it ends.
    """
    pricer = Pricer()
    with live(priced(small_scenario), pricer) as running:
        first_prices(running)
        pricer.hold.clear()
        running.snapshot(1)  # a feed snapshot starts an early refresh
        assert pricer.entered.acquire(timeout=WAIT_S)
        assert pricer.entered.acquire(timeout=WAIT_S)  # the second call: the slow refresh

        def route(i: int) -> tuple[str, float]:
            started = time.monotonic()
            if i % 2:
                version = running.plan(order(("B", 1), order_id=f"p{i}"), timeout=5).price_version
            else:
                request = router_pb2.RouteOrderRequest(
                    request_id=f"r{i}", order=order_to_proto(order(("B", 1), order_id=f"r{i}"))
                )
                version = running.routing.RouteOrder(request, timeout=5).plan.price_version
            return version, time.monotonic() - started

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(route, range(12)))
        assert {version for version, _ in answers} == {"prices@v1"}
        assert max(seconds for _, seconds in answers) < 2.0
        assert running.metric("router_price_version") == 1  # still computing
        pricer.hold.set()
        # v2 follows; the routed orders may refresh again (forecast_change) right after.
        eventually(lambda: number(running.plan().price_version) >= 2, "prices@v2")
        assert running.metric("router_price_refreshes_total", trigger="stock_change") == 1


def test_a_failed_refresh_keeps_the_old_prices_and_counts_a_failure(
    small_scenario: Scenario,
) -> None:
    """A refresh whose price function raises publishes nothing, and is counted.

    Plans keep prices@v1, router_price_version stays 1 and
    router_price_refresh_failures_total counts it; the next refresh that succeeds is v2
    (versions count successes only).
    """
    pricer = Pricer()
    with live(priced(small_scenario), pricer) as running:
        first_prices(running)
        pricer.fail = True
        running.snapshot(1)
        eventually(lambda: running.metric("router_price_refresh_failures_total") == 1, "a failure")
        assert running.plan().price_version == "prices@v1"
        assert running.metric("router_price_version") == 1
        assert running.server.prices.current is not None
        assert running.server.prices.current.version == 1
        pricer.fail = False
        running.snapshot(2)
        eventually(lambda: running.plan().price_version == "prices@v2", "prices@v2")
        assert running.metric("router_price_refresh_failures_total") == 1


def test_a_big_stock_change_triggers_an_early_refresh(
    small_scenario: Scenario, tmp_path: Path
) -> None:
    """Stock moves past the set fraction, and any snapshot, refresh the prices early.

    With A and B priced (20 units available), moves of up to 10 % (2 units) wait for the
    interval; a delta past it, units reserved by RouteOrder past it, and any snapshot each
    refresh early. Moves of SKUs without prices never count.
    """
    forecast = tmp_path / "forecast.csv"
    forecast.write_text(
        "region,sku,units,latitude,longitude\nUS,A,4,0,1\nUS,B,2,0,1\n", encoding="utf-8"
    )
    pricer = Pricer()
    settings = PriceSettings(refresh_interval_s=3600.0, min_gap_s=0.0, stock_change_fraction=0.1)
    with live(priced(small_scenario), pricer, prices=settings, forecast_file=forecast) as running:
        first_prices(running)
        stock, _, _ = pricer.calls[0]
        assert {sku for _, sku in stock.positions} == {"A", "B"}  # what the forecast needs

        def version() -> float:
            return running.metric("router_price_version")

        running.delta(1, "A", 1)
        running.delta(2, "C", 50)  # C is not priced
        running.delta(3, "B", -1, node_id="east")
        time.sleep(0.3)
        assert version() == 1  # 2 units moved: not above 10 % of 20
        running.delta(4, "A", 1)
        eventually(lambda: version() == 2, "an early refresh after 3 units moved")
        request = router_pb2.RouteOrderRequest(
            request_id="big", order=order_to_proto(order(("B", 3), order_id="big"))
        )
        assert running.routing.RouteOrder(request, timeout=30).reservation.lines
        eventually(lambda: version() == 3, "an early refresh after 3 units were reserved")
        running.snapshot(5)
        eventually(lambda: version() == 4, "an early refresh after a snapshot")
        assert running.metric("router_price_refreshes_total", trigger="stock_change") == 3
        assert running.metric("router_price_forecast_orders") == 0  # the file's forecast
        _, used, _ = pricer.calls[-1]
        assert used.source == "forecast.csv"


def test_the_forecast_from_recent_routed_orders_reflects_them(small_scenario: Scenario) -> None:
    """Orders RouteOrder routed make the forecast by region and SKU, and refresh it.

    Their units are scaled to the horizon over the hours the window covers (the time since
    start-up, at most the window) plus the prior's 1 h: just started, × 12 / (≈0 + 1).
    Each order id counts once, and PlanOrder's orders do not count. Routed orders past
    10 % of the window's units at the last refresh start the next one (forecast_change):
    no snapshot or interval is needed.
    """
    pricer = Pricer()
    settings = replace(
        AT_ONCE,
        forecast_window_hours=24.0,
        forecast_horizon_hours=12.0,
        forecast_prior_hours=1.0,
    )
    with live(priced(small_scenario), pricer, prices=settings) as running:
        first_prices(running)
        _, empty, _ = pricer.calls[0]
        assert empty.demand == ()
        routed = [order(("A", 2), ("B", 1), order_id="o1"), order(("A", 1), order_id="o2")]
        for i, the_order in enumerate([*routed, routed[0]]):  # o1 twice (a re-route)
            request = router_pb2.RouteOrderRequest(
                request_id=f"req-{i}", order=order_to_proto(the_order)
            )
            running.routing.RouteOrder(request, timeout=30)
        running.plan(order(("B", 5), order_id="quote"))  # planned only: no demand

        def last_units() -> dict[tuple[str, str], float]:
            _, forecast, _ = pricer.calls[-1]
            assert forecast.horizon_hours == 12.0
            return {(d.region, d.sku): d.units for d in forecast.demand}

        # Just started: (2 + 1) and 1 units over seconds + the prior's 1 h, × 12 h.
        expected = pytest.approx({("US", "A"): 36.0, ("US", "B"): 12.0}, rel=0.01)
        eventually(lambda: last_units() == expected, "a refresh with every routed order")
        assert running.metric("router_price_refreshes_total", trigger="forecast_change") >= 1
        eventually(lambda: running.metric("router_price_forecast_orders") == 2, "2 orders")


def test_the_rolling_window_drops_old_orders_and_counts_an_order_id_once() -> None:
    """Orders older than the window leave it, and an order id counts once.

    Re-recording an id moves it, not adds it; beyond ``max_orders`` the oldest go first.
    """
    window = RecentOrders(window_hours=1.0, max_orders=3)
    window.record(order(("A", 1), order_id="a"), now_s=0.0)
    window.record(order(("A", 1), order_id="b"), now_s=1800.0)
    window.record(order(("A", 2), order_id="a"), now_s=1900.0)
    assert [o.order_id for o in window.orders(now_s=2000.0)] == ["b", "a"]
    assert window.orders(now_s=2000.0)[1].lines[0].quantity == 2  # the latest version
    assert [o.order_id for o in window.orders(now_s=5500.0)] == ["a"]  # b is 3700 s old
    for name in "cde":
        window.record(order(("A", 1), order_id=name), now_s=5600.0)
    assert [o.order_id for o in window.orders(now_s=5600.0)] == ["c", "d", "e"]


def test_a_young_window_spreads_its_units_over_the_time_since_start_up() -> None:
    """After a restart the forecast's window covers the hours since start-up, not the window.

    Ten minutes are 1/6 h (the forecast rule then waits, or shrinks them toward its prior);
    the full window once the service has run that long.
    """
    window = RecentOrders(window_hours=24.0, max_orders=10, started_s=1000.0)
    assert window.covered_hours(now_s=1000.0 + 600) == pytest.approx(1 / 6)
    assert window.covered_hours(now_s=1000.0 + 5 * 3600) == 5.0
    assert window.covered_hours(now_s=1000.0 + 30 * 3600) == 24.0


def test_a_strategy_without_opportunity_cost_plans_without_prices(
    small_scenario: Scenario,
) -> None:
    """Under rules with no opportunity_cost plans carry price_version "".

    The refresher idles: no price is computed. Activating a version with a pricing strategy
    switches it on: the next request starts a refresh and plans name its version.
    """
    pricer = Pricer()
    with live(small_scenario, pricer) as running:
        assert running.plan().price_version == ""
        time.sleep(0.3)
        assert pricer.calls == []
        assert running.plan().price_version == ""
        assert running.metric("router_price_version") == 0
        assert running.metric("router_price_enabled") == 0
        who = {"actor": "ana", "reason": "look-ahead pricing"}
        document = (
            "name: default\nstrategies:\n  - name: priced\n"
            "    weights:\n      opportunity_cost: 1\n"
        )
        published = running.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=document, **who), timeout=30
        )
        running.rules.ActivateRules(
            router_pb2.ActivateRulesRequest(version=published.version.version, **who), timeout=30
        )
        running.plan()
        eventually(lambda: running.plan().price_version == "prices@v1", "prices@v1")
        assert running.metric("router_price_enabled") == 1


def test_replicas_on_one_postgresql_version_their_own_prices(
    pg_url: str,  # noqa: F811
    small_scenario: Scenario,
    tmp_path: Path,
) -> None:
    """Two servers on one PostgreSQL ledger each number their own refreshes.

    Both price the live stock they read from the shared ledger. A snapshot through
    replica a re-prices a only (a is at v2, b still at v1); activating new pricing rules
    through a re-prices b too, at b's next request (rules_change).
    """
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("region,sku,units,latitude,longitude\nUS,B,4,0,1\n", encoding="utf-8")
    scenario = priced(small_scenario)
    pricer_a, pricer_b = Pricer(), Pricer()
    with (
        live(scenario, pricer_a, ledger_url=pg_url, forecast_file=forecast) as a,
        live(scenario, pricer_b, ledger_url=pg_url, forecast_file=forecast) as b,
    ):
        first_prices(a)
        first_prices(b)
        a.snapshot(1, on_hand=7)  # east's B: 10 → 7, in the shared ledger
        eventually(lambda: a.plan().price_version == "prices@v2", "prices@v2 on a")
        assert b.plan().price_version == "prices@v1"
        stock_a, _, _ = pricer_a.calls[-1]
        assert stock_a.positions[("east", "B")].on_hand == 7
        who = {"actor": "ana", "reason": "price half"}
        document = (
            "name: default\nstrategies:\n  - name: half\n"
            "    weights:\n      opportunity_cost: 0.5\n"
        )
        version = a.rules.PublishRules(
            router_pb2.PublishRulesRequest(document=document, **who), timeout=30
        ).version.version
        a.rules.ActivateRules(router_pb2.ActivateRulesRequest(version=version, **who), timeout=30)
        b.plan()  # b reads the new active version and asks for prices under it
        eventually(lambda: b.plan().price_version == "prices@v2", "prices@v2 on b")
        stock_b, _, policy_b = pricer_b.calls[-1]
        assert stock_b.positions[("east", "B")].on_hand == 7
        assert policy_b is not None and policy_b.opportunity_cost == 0.5
        assert b.metric("router_price_refreshes_total", trigger="rules_change") == 2


def test_the_real_price_lp_runs_in_the_service(small_scenario: Scenario) -> None:
    """Without an injected function the refresher solves the engine's pricing LP."""
    with live(priced(small_scenario), None) as running:
        request = router_pb2.RouteOrderRequest(
            request_id="r1", order=order_to_proto(order(("A", 2), order_id="r1"))
        )
        running.routing.RouteOrder(request, timeout=30)  # also starts the first refresh
        eventually(lambda: running.plan().price_version.startswith("prices@v"), "prices")
        assert running.metric("router_price_refresh_failures_total") == 0


def test_bad_forecast_files_and_flags_exit_2_naming_the_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad forecast file exits 2 before serving, naming each cell.

    Cells are named as file:line:column; out-of-range price flags exit 2 too, naming the
    flag.
    """
    bad = tmp_path / "forecast.csv"
    bad.write_text(
        "region,sku,units,latitude,longitude\nUS-CA,A,4,34,-118\nUS-NY,B,-2,95,-74\n",
        encoding="utf-8",
    )
    serve = ["serve", "--ledger", "memory://", "--port", "0", "--metrics-port", "0"]
    assert main([*serve, "--forecast", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "forecast.csv:3:units" in err
    assert "forecast.csv:3:latitude" in err
    assert main([*serve, "--forecast", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main([*serve, "--price-refresh", "0", "--metrics-port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--price-refresh" in err
    assert "--metrics-port" in err
    evidence = ["--forecast-min-orders", "-1", "--forecast-min-hours", "-1"]
    bounds = ["--forecast-prior-hours", "0", "--max-price-ratio", "0"]
    assert main([*serve, *evidence, *bounds]) == 2
    err = capsys.readouterr().err
    for flag in (*evidence[::2], *bounds[::2]):
        assert f"{flag}:" in err


def test_plan_series_of_old_price_versions_are_dropped() -> None:
    """router_plans_total keeps the newest price versions' series (and `none`), not all."""
    metrics = ServiceMetrics()
    for version in range(1, 6):
        metrics.count_plan(f"prices@v{version}", "SOLVE_STATUS_OPTIMAL")
    metrics.count_plan("", "SOLVE_STATUS_INFEASIBLE")
    metrics.forget_price_versions_before(5 - KEPT_PRICE_VERSIONS + 1)
    kept = {
        sample.labels["price_version"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "router_plans_total"
    }
    assert kept == {"prices@v3", "prices@v4", "prices@v5", "none"}


CHICAGO = "ORD-000597"
"""A sample order to Chicago (SKU-00802 × 2): unpriced, it ships from DC-03, 7.8 km away."""


@pytest.fixture(scope="module")
def sample_priced() -> Scenario:
    """The standard sample scenario (seed 7) under :data:`PRICED` rules."""
    return priced(sample_scenario())


def test_a_cold_service_does_not_move_orders_on_a_few_orders_of_evidence(
    sample_priced: Scenario, tmp_path: Path
) -> None:
    """Three orders just after start-up do not move an order away from the DC next to it.

    The issue's defect, measured on main (where this test failed): a fresh server (SQLite
    ledger, the sample network, look-ahead on) routes three copies of a Chicago order (2
    units of SKU-00802 each); the forecast scaled them to 144 units in Illinois over 24 h,
    DC-03 (41 units available) got a price, and the next such order moved from DC-03
    (7.8 km, 14.13) to DC-01 in New York (1,150 km, 25.05). With the default evidence rule
    no prices are made from three orders: the order stays at DC-03, its plan names no
    prices, and the metrics say why (too few orders).
    """
    before, after, metrics = _cold_chicago(
        sample_priced, tmp_path, PriceSettings(refresh_interval_s=0.3)
    )
    assert [s.node_id for s in after.shipments] == ["DC-03"], "moved on 3 orders of evidence"
    assert after.price_version == ""
    assert after.objective == before.objective
    evidence = {"router_price_forecast_evidence": "too_few_orders"}
    assert metrics["router_price_forecast_evidence", tuple(evidence.items())] == 1
    assert metrics["router_price_version", ()] == 0


def test_admitted_thin_evidence_is_shrunk_and_still_does_not_move_the_order(
    sample_priced: Scenario, tmp_path: Path
) -> None:
    """With the evidence rule let down to 3 orders, shrinkage alone keeps the order at DC-03.

    The same three orders, seconds after start-up, now price the stock (a version is
    published), but their 6 units forecast 24 × 6 / (t + 6 h) ≈ 24 units in Illinois, not
    144: DC-03's 35 units left cover them, so its SKU-00802 is priced 0 and the order
    stays, at the same cost.
    """
    settings = PriceSettings(refresh_interval_s=0.3, forecast_min_orders=3, forecast_min_hours=0.0)
    before, after, metrics = _cold_chicago(sample_priced, tmp_path, settings, prices=True)
    assert [s.node_id for s in after.shipments] == ["DC-03"]
    assert after.price_version.startswith("prices@v")
    assert after.objective == before.objective
    evidence = {"router_price_forecast_evidence": "enough"}
    assert metrics["router_price_forecast_evidence", tuple(evidence.items())] == 1


def _cold_chicago(
    scenario: Scenario, tmp_path: Path, settings: PriceSettings, *, prices: bool = False
) -> tuple[router_pb2.Plan, router_pb2.Plan, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """A fresh server plans :data:`CHICAGO`, routes three copies, and plans it again.

    The second plan comes after a refresh has seen the three orders: with ``prices``,
    once prices made from them are published; else once a refresh has counted them.
    Returned with the metrics then.
    """
    chicago = next(o for o in scenario.orders if o.order_id == CHICAGO)
    settings = replace(settings, min_gap_s=0.0)
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    with live(scenario, None, prices=settings, ledger_url=url) as running:
        before = running.plan(chicago)
        assert [s.node_id for s in before.shipments] == ["DC-03"]
        for i in range(3):
            copy = replace(chicago, order_id=f"chicago-{i}")
            request = router_pb2.RouteOrderRequest(request_id=f"r{i}", order=order_to_proto(copy))
            assert running.routing.RouteOrder(request, timeout=60).reservation.lines

        def refreshed_on_three_orders() -> bool:
            current = running.server.prices.current
            if prices:
                return current is not None and "(3 orders" in current.source
            return running.metric("router_price_forecast_orders") == 3 and (
                current is None or "(3 orders" in current.source
            )

        eventually(refreshed_on_three_orders, "a refresh that saw the three orders")
        return before, running.plan(chicago), running.metrics()


def test_the_service_says_why_it_does_not_price_yet(small_scenario: Scenario) -> None:
    """Short of evidence no price is computed; the evidence metric names what is missing.

    Rule: 2 orders over 1 h. Before any order: too_few_orders; two routed orders a moment
    after start-up: too_few_hours. Plans name no prices and the LP is never called.
    """
    pricer = Pricer()
    settings = replace(
        AT_ONCE, refresh_interval_s=0.1, forecast_min_orders=2, forecast_min_hours=1.0
    )

    def evidence(running: Live, state: str) -> bool:
        return (
            running.metric("router_price_forecast_evidence", router_price_forecast_evidence=state)
            == 1
        )

    with live(priced(small_scenario), pricer, prices=settings) as running:
        assert running.plan().price_version == ""
        eventually(lambda: running.metric("router_price_forecast_hours") > 0, "an attempt")
        assert evidence(running, "too_few_orders")
        for i in range(2):
            request = router_pb2.RouteOrderRequest(
                request_id=f"r{i}", order=order_to_proto(order(("A", 1), order_id=f"o{i}"))
            )
            assert running.routing.RouteOrder(request, timeout=30).plan.price_version == ""
        eventually(lambda: evidence(running, "too_few_hours"), "too_few_hours")
        assert running.metric("router_price_forecast_orders") == 2
        assert running.plan().price_version == ""
        assert pricer.calls == []
        assert running.metric("router_price_version") == 0


def test_prices_follow_as_soon_as_the_window_has_enough_evidence(
    small_scenario: Scenario,
) -> None:
    """The order that completes the evidence starts a refresh (forecast_change) at once.

    Rule: 2 orders, no hours. After o1 nothing is priced; o2 makes prices@v1 without
    waiting for the interval, from the two orders shrunk toward zero demand over 6 h:
    A 3 units and B 1, seconds after start-up, are 24 × 3 / (≈0 + 6) ≈ 12 and ≈ 4 over the
    24 h horizon (not 72 and 24).
    """
    pricer = Pricer()
    settings = replace(AT_ONCE, forecast_min_orders=2)
    with live(priced(small_scenario), pricer, prices=settings) as running:
        assert running.plan().price_version == ""
        routed = [order(("A", 2), ("B", 1), order_id="o1"), order(("A", 1), order_id="o2")]
        for i, the_order in enumerate(routed):
            request = router_pb2.RouteOrderRequest(
                request_id=f"r{i}", order=order_to_proto(the_order)
            )
            running.routing.RouteOrder(request, timeout=30)
            if i == 0:
                time.sleep(0.2)
                assert running.plan().price_version == "" and pricer.calls == []
        eventually(lambda: running.plan().price_version == "prices@v1", "prices@v1")
        assert running.metric("router_price_refreshes_total", trigger="forecast_change") == 1
        _, forecast, _ = pricer.calls[-1]
        units = {(d.region, d.sku): d.units for d in forecast.demand}
        assert units == pytest.approx({("US", "A"): 12.0, ("US", "B"): 4.0}, rel=0.01)
        assert forecast.source.startswith("recent orders (2 orders over ")


def test_prices_are_withdrawn_when_the_window_loses_its_evidence(
    small_scenario: Scenario,
) -> None:
    """Once the window's orders age out, the next refresh withdraws the prices.

    Rule: 1 order, a window of 3 seconds. o1 makes prices@v1; 3.5 s later a feed snapshot
    refreshes with an empty window: plans name no prices again, router_price_version is 0
    and the evidence metric says too_few_orders. Versions are not reused: o2 brings v2.
    """
    pricer = Pricer()
    settings = replace(AT_ONCE, forecast_min_orders=1, forecast_window_hours=3 / 3600)
    with live(priced(small_scenario), pricer, prices=settings) as running:
        running.plan()
        request = router_pb2.RouteOrderRequest(
            request_id="r1", order=order_to_proto(order(("A", 1), order_id="o1"))
        )
        running.routing.RouteOrder(request, timeout=30)
        eventually(lambda: running.plan().price_version == "prices@v1", "prices@v1")
        time.sleep(3.5)
        running.snapshot(1)
        eventually(lambda: running.plan().price_version == "", "the prices withdrawn")
        assert running.metric("router_price_version") == 0
        assert (
            running.metric(
                "router_price_forecast_evidence", router_price_forecast_evidence="too_few_orders"
            )
            == 1
        )
        request = router_pb2.RouteOrderRequest(
            request_id="r2", order=order_to_proto(order(("A", 1), order_id="o2"))
        )
        running.routing.RouteOrder(request, timeout=30)
        eventually(lambda: running.plan().price_version == "prices@v2", "prices@v2")
