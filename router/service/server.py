"""Server bootstrap: routing and inventory on a ledger, health, reflection, sweeper, stop.

Beside them: the look-ahead price refresher and the Prometheus metrics endpoint.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import shlex
import signal
import sys
import threading
import time
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from models.decision import DecisionRetention
from models.errors import RulesRefusedError, RuleVersionStateError
from models.lookahead import Forecast
from models.order import Order, OrderLine, ShipTo
from models.rule_versions import RuleVersion
from models.scenario import Scenario
from router.ledger import Ledger, open_ledger
from router.rules.document import canonical_text, load_rules
from router.rules.publish import lint_text, publish_checks, version_rules
from router.scenario import order_to_json, read_forecast
from router.service.access import AccessInterceptor, Authenticator
from router.service.config import ServerConfig
from router.service.inventory import InventoryServicer
from router.service.limits import SERVER_OPTIONS, LimitsInterceptor
from router.service.metrics import MetricsEndpoint, ServiceMetrics, serve_metrics
from router.service.names import (
    INVENTORY_SERVICE,
    NETWORK_SERVICE,
    ROUTING_SERVICE,
    RULES_SERVICE,
)
from router.service.network import LiveNetwork, NetworkServicer
from router.service.observe import ObserveInterceptor
from router.service.pool import PriorityPool
from router.service.prices import PriceBoard
from router.service.routing import RoutingServicer, RuleSets
from router.service.rules import RulesServicer
from router.service.tls import server_credentials
from router.telemetry import configure_tracing
from router.v1 import router_pb2_grpc

logger = logging.getLogger(__name__)

SERVE_ACTOR = "router serve"
"""Who the versions and activations made at startup are recorded as."""


class Sweeper:
    """A daemon thread that calls ``ledger.expire(now)`` every ``interval_s`` until stopped.

    Each sweep is counted in ``metrics`` (``router_sweeps_total``, the time of the last
    good one, its duration, the reservations it expired), and refreshes the status timers:
    HELD reservations lapsing within ``expiring_window_s``, and those whose ship date
    passed unconfirmed. Every ``prune_interval_s`` (and at its first sweep) it also prunes
    the decision log to ``retention``.
    """

    def __init__(
        self,
        ledger: Ledger,
        interval_s: float,
        metrics: ServiceMetrics,
        expiring_window_s: float,
        retention: DecisionRetention | None = None,
        prune_interval_s: float = 60.0,
    ) -> None:
        self._ledger = ledger
        self._interval_s = interval_s
        self._metrics = metrics
        self._expiring_window = timedelta(seconds=expiring_window_s)
        self._retention = retention or DecisionRetention()
        self._prune_interval_s = prune_interval_s
        self._pruned_at = -math.inf
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def _run(self) -> None:
        m = self._metrics
        while not self._stopping.wait(self._interval_s):
            started = time.perf_counter()
            now = datetime.now(UTC)
            try:
                expired = self._ledger.expire(now)
            except Exception as error:  # keep sweeping: the next round may succeed
                m.sweeps.labels("failed").inc()
                logger.warning("sweeping expired reservations failed: %s", error)
                continue
            m.sweeps.labels("ok").inc()
            m.sweep_seconds.observe(time.perf_counter() - started)
            m.swept_at.set(time.time())
            self._count_timers(now)
            self._prune(now)
            if expired:
                m.reservations.labels("expired").inc(expired)
                logger.info("expired %d reservations", expired)

    def _prune(self, now: datetime) -> None:
        """Prune the decision log when it is time; a failure is tried again next sweep."""
        if time.monotonic() - self._pruned_at < self._prune_interval_s:
            return
        try:
            pruned = self._ledger.prune_decisions(now, self._retention)
        except Exception as error:  # the sweep itself succeeded; the next one tries again
            logger.warning("pruning the decision log failed: %s", error)
            return
        self._pruned_at = time.monotonic()
        self._metrics.pruned.inc(pruned)
        if pruned:
            logger.info("pruned %d decisions past the log's retention", pruned)

    def _count_timers(self, now: datetime) -> None:
        """Refresh the status timers' gauges; a failure leaves them as they were."""
        try:
            expiring, late = self._ledger.held_timers(now + self._expiring_window, now.date())
        except Exception as error:  # the sweep itself succeeded; the next one tries again
            logger.warning("counting the status timers failed: %s", error)
            return
        self._metrics.expiring.set(expiring)
        self._metrics.past_ship_date.set(late)

    def stop(self) -> None:
        """Stop sweeping and wait for a sweep in progress to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()


class RouterServer:
    """The gRPC server with its ledger, sweeper, price refresher and metrics endpoint.

    ``stop`` stops them all. The ledger is closed after the RPCs in flight have ended, when
    the server opened it.
    """

    def __init__(
        self,
        server: grpc.Server,
        ledger: Ledger,
        sweeper: Sweeper,
        *,
        owns_ledger: bool,
        prices: PriceBoard,
        metrics: ServiceMetrics,
        metrics_endpoint: MetricsEndpoint | None = None,
    ) -> None:
        self.grpc_server = server
        self.ledger = ledger
        self.prices = prices
        """The look-ahead stock prices routing uses, and their refresher."""
        self.metrics = metrics
        self._sweeper = sweeper
        self._owns_ledger = owns_ledger
        self._metrics_endpoint = metrics_endpoint

    @property
    def metrics_port(self) -> int | None:
        """The port serving ``/metrics``; None when metrics are off."""
        endpoint = self._metrics_endpoint
        return None if endpoint is None else endpoint.port

    def start(self) -> None:
        """Start serving RPCs, sweeping and refreshing prices (metrics are served already)."""
        self.grpc_server.start()
        self._sweeper.start()
        self.prices.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Stop serving (RPCs in flight get ``grace`` seconds) and the rest; set when done.

        Sweeping, price refreshes and metrics stop too; a price refresh still running after
        ``grace`` is abandoned.
        """
        done = threading.Event()
        stopped = self.grpc_server.stop(grace)

        def finish() -> None:
            self._sweeper.stop()
            self.prices.stop(timeout_s=grace or 0.0)
            stopped.wait()
            if self._metrics_endpoint is not None:
                self._metrics_endpoint.stop()
            if self._owns_ledger:
                self.ledger.close()
            done.set()

        threading.Thread(target=finish, name="router-stop", daemon=True).start()
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped or ``timeout`` passed."""
        return self.grpc_server.wait_for_termination(timeout)


def open_seeded_ledger(url: str, scenario: Scenario) -> Ledger:
    """Open the ledger at ``url`` and seed it when empty.

    A ledger that already holds stock positions is not re-seeded: its stock and calendars
    are live (a warning says so when its calendars differ from the scenario's).
    """
    ledger = open_ledger(url)
    try:
        # Check and load in one transaction: replicas starting together seed only once.
        if ledger.seed(scenario.network, scenario.stock):
            logger.info("seeded the empty ledger from the scenario")
        elif ledger.calendars()[1] != scenario.network.calendars:
            logger.warning(
                "the ledger's calendars differ from the scenario's calendars.csv: the "
                "ledger's are used (NetworkService.SetCalendar changes them)"
            )
    except BaseException:
        ledger.close()
        raise
    return ledger


def bootstrap_rules(ledger: Ledger, scenario: Scenario, rules_file: Path | None = None) -> None:
    """Make sure a rule-set version is active before the server answers, overriding none.

    A document is published only after the checks PublishRules runs without a golden
    suite (validation against the network, lint: :func:`router.rules.publish.publish_checks`);
    lint errors refuse start-up (:class:`RulesRefusedError` naming each), warnings are
    stored with the version.

    - Without ``rules_file``, and only when no version is active, the scenario's rules are
      published as their canonical document and activated if still none is active: a
      compare-and-set in the ledger (``only_if_none``), so of replicas starting together
      exactly one activates, and an activation made meanwhile by anyone else stands.
    - With ``rules_file``, its text is published as written. It is activated when this
      publish stored it (the file is new to the ledger), or else only when nothing is
      active; a file published before leaves the active version alone (a planner's later
      activation or rollback survives restarts), and which version is active is logged.

    Either way the version that ends up active must load on this server's network
    (:class:`RuleVersionStateError` otherwise: every plan would fail).
    """
    if rules_file is not None:
        document = rules_file.read_text(encoding="utf-8")
        where, reason = rules_file.name, f"router serve --rules {rules_file.name}"
    elif ledger.active_rule_version() is None:
        document = canonical_text(scenario.rules)
        where, reason = "the scenario's rules", "initial rules from the scenario"
    else:
        _check_active(ledger, scenario)
        return
    rules = load_rules(document, where, scenario.network)
    try:
        warnings, _ = publish_checks(rules, scenario.network)
    except RulesRefusedError as refused:
        logger.error(
            "%s fail the publish checks:\n%s", where, "\n".join(f"  {r}" for r in refused.refusals)
        )
        raise
    now = datetime.now(UTC)
    published = ledger.publish_rules(
        rules.name, document, SERVE_ACTOR, reason, lint_text(warnings), now
    )
    number = published.version.version

    def loads(version: RuleVersion) -> None:
        version_rules(version, scenario.network)

    activated = None
    if rules_file is not None and published.created:
        try:
            activated = ledger.activate_rules(number, SERVE_ACTOR, reason, now, check=loads)
        except RuleVersionStateError:
            if ledger.active_rule_version() != number:
                raise  # not "already active"
    else:
        activated = ledger.activate_rules(
            number, SERVE_ACTOR, reason, now, only_if_none=True, check=loads
        )
    if activated is not None:
        logger.info("activated rule set %s@v%d (%s)", rules.name, number, reason)
    else:
        logger.info(
            "%s is v%d, published before: left v%s active (router rules activate %d switches)",
            where,
            number,
            ledger.active_rule_version(),
            number,
        )
    _check_active(ledger, scenario)


def _check_active(ledger: Ledger, scenario: Scenario) -> None:
    """Raise RuleVersionStateError when the active version does not load on the network."""
    number = ledger.active_rule_version()
    if number is not None:
        version_rules(ledger.rule_version(number), scenario.network)


def create_server(
    config: ServerConfig, scenario: Scenario, ledger: Ledger | None = None
) -> tuple[RouterServer, int]:
    """Build the server (not started) and bind it; returns it with the bound port.

    Metrics, when :attr:`ServerConfig.metrics_port` is set, are served from here on (all
    zero until the server starts); ``stop`` ends them.

    Uses ``ledger`` when given (the caller closes it), else opens (and seeds when empty)
    :attr:`ServerConfig.ledger_url`; either way a rule-set version is made active when none
    is (:func:`bootstrap_rules`). A :attr:`ServerConfig.forecast_file` is read first: a bad
    one raises InvalidArgumentError naming each bad cell, and nothing is opened. Health
    reports SERVING overall and for ``router.v1.RoutingService``,
    ``router.v1.InventoryService``, ``router.v1.RulesService`` and
    ``router.v1.NetworkService``.
    """
    server, port, _ = _create(config, scenario, ledger)
    return server, port


def _create(
    config: ServerConfig, scenario: Scenario, ledger: Ledger | None = None
) -> tuple[RouterServer, int, health.HealthServicer]:
    forecast: Forecast | None = None
    if config.forecast_file is not None:
        forecast = read_forecast(config.forecast_file, config.prices.forecast_horizon_hours)
    owns = ledger is None
    if ledger is None:
        ledger = open_seeded_ledger(config.ledger_url, scenario)
    try:
        bootstrap_rules(ledger, scenario, config.rules_file)
        metrics = ServiceMetrics()
        pool_stats = getattr(ledger, "pool_stats", None)
        if pool_stats is not None:
            metrics.watch_pool(pool_stats)
        server = _grpc_server(config, ledger, metrics)
        prices = _add_services(server, config, scenario, ledger, metrics, forecast)
        health_servicer = _add_health_and_reflection(server)
        address = f"{config.host}:{config.port}"
        if config.tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, server_credentials(config.tls))
        endpoint = None
        if config.metrics_port is not None:
            endpoint = serve_metrics(metrics, config.metrics_host, config.metrics_port)
    except BaseException:
        if owns:
            ledger.close()
        raise
    sweeper = Sweeper(
        ledger,
        config.sweep_interval_s,
        metrics,
        config.expiring_window_s,
        config.decision_retention,
        config.prune_interval_s,
    )
    router = RouterServer(
        server,
        ledger,
        sweeper,
        owns_ledger=owns,
        prices=prices,
        metrics=metrics,
        metrics_endpoint=endpoint,
    )
    return router, port, health_servicer


def _grpc_server(config: ServerConfig, ledger: Ledger, metrics: ServiceMetrics) -> grpc.Server:
    """The gRPC server: its thread pool, admission bounds and interceptors.

    The interceptors, outermost first: what every call leaves behind (metrics, span, log
    line: :mod:`router.service.observe`), who calls and whether they may, then the limits
    of what they send.

    The pool has a thread for every solve slot, every place in the queue for one, and
    :attr:`ServerConfig.cheap_workers` more, so calls that do not solve find a thread while
    every slot is busy and the queue is full; and it serves them first
    (:class:`~router.service.pool.PriorityPool`).
    """
    solves = config.max_workers
    threads = solves + config.admission.queued_solves + config.cheap_workers
    pool = PriorityPool(threads)
    authenticator = (
        Authenticator(ledger, config.token_cache_s, config.admission)
        if config.auth_required
        else None
    )
    _announce_access(config)
    return grpc.server(
        cast(futures.ThreadPoolExecutor, pool),  # any Executor serves; the stubs say this one
        interceptors=[
            ObserveInterceptor(metrics),
            AccessInterceptor(authenticator, config.admission, solves),
            LimitsInterceptor(),
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        options=SERVER_OPTIONS,
    )


def _announce_access(config: ServerConfig) -> None:
    """Say at start-up who can call this server; loudly when it is open beyond loopback."""
    where = f"{config.host}:{config.port}"
    if not config.auth_required:
        if config.loopback_only:
            logger.warning(
                "authentication is OFF: %s is loopback, so any user of this machine may call "
                "every method (docs/security.md; --auth turns it on)",
                where,
            )
        else:
            logger.warning(
                "AUTHENTICATION IS OFF ON %s (--insecure-no-auth): ANYONE WHO REACHES THIS "
                "ADDRESS MAY CHANGE STOCK, RULES AND RESERVATIONS",
                where,
            )
    elif config.tls is None and not config.loopback_only:
        logger.warning(
            "tokens travel in plaintext on %s: give --tls-cert and --tls-key (docs/security.md)",
            where,
        )


def _add_services(
    server: grpc.Server,
    config: ServerConfig,
    scenario: Scenario,
    ledger: Ledger,
    metrics: ServiceMetrics,
    forecast: Forecast | None,
) -> PriceBoard:
    """The four router.v1 services on ``server``, sharing one ledger; their price board."""
    rule_sets = RuleSets(ledger, scenario.network, scenario.rules)
    network = LiveNetwork(ledger, scenario.network)
    prices = PriceBoard(
        scenario.network,
        ledger,
        metrics,
        config.prices,
        forecast=forecast,
        price=config.price_function,
    )
    router_pb2_grpc.add_RoutingServiceServicer_to_server(
        RoutingServicer(
            scenario,
            ledger,
            default_time_limit_s=config.default_time_limit_s,
            engine=config.engine,
            rule_sets=rule_sets,
            max_rejections=config.max_rejections,
            prices=prices,
            metrics=metrics,
            network=network,
        ),
        server,
    )
    router_pb2_grpc.add_InventoryServiceServicer_to_server(
        InventoryServicer(ledger, prices, metrics), server
    )
    router_pb2_grpc.add_RulesServiceServicer_to_server(
        RulesServicer(
            scenario,
            ledger,
            rule_sets,
            default_time_limit_s=config.default_time_limit_s,
            engine=config.engine,
            network=network,
        ),
        server,
    )
    router_pb2_grpc.add_NetworkServiceServicer_to_server(
        NetworkServicer(ledger, scenario.network), server
    )
    return prices


def _add_health_and_reflection(server: grpc.Server) -> health.HealthServicer:
    """The gRPC health service (every service SERVING) and reflection, on ``server``."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", ROUTING_SERVICE, INVENTORY_SERVICE, RULES_SERVICE, NETWORK_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            ROUTING_SERVICE,
            INVENTORY_SERVICE,
            RULES_SERVICE,
            NETWORK_SERVICE,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return health_servicer


def serve(config: ServerConfig, scenario: Scenario) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully.

    On a signal, health turns NOT_SERVING first (so load balancers drain the replica), the
    server goes on serving for :attr:`ServerConfig.drain_s`, then in-flight RPCs get
    :attr:`ServerConfig.grace_period_s` to finish. The process's tracer provider is set up
    here (:func:`router.telemetry.configure_tracing`).
    """
    sys.setswitchinterval(config.switch_interval_s)  # the process is the server's alone
    tracing = configure_tracing("router-serve", config.otlp_endpoint)
    try:
        _serve(config, scenario)
    finally:
        tracing.shutdown()  # the spans still buffered go out


def _serve(config: ServerConfig, scenario: Scenario) -> None:
    server, port, health_servicer = _create(config, scenario)
    # The scenario (68,000 positions and more) lives as long as the server: moved out of
    # the collector's sight, a full collection no longer walks it; and collections come
    # less often (pauses of a few hundred ms under load otherwise: benchmarks/README.md,
    # "Load shedding").
    gc.freeze()
    gc.set_threshold(*config.gc_thresholds)
    server.start()
    address = f"{config.host}:{port}"
    logger.info("router.v1 services listening on %s", address)
    if server.metrics_port is not None:
        logger.info("metrics at http://%s:%d/metrics", config.metrics_host, server.metrics_port)
    print(usage(address, scenario), flush=True)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    health_servicer.enter_graceful_shutdown()
    if config.drain_s > 0:
        logger.info("draining: health NOT_SERVING, still serving for %.1fs", config.drain_s)
        time.sleep(config.drain_s)
    logger.info("stopping: %.1fs grace for RPCs in flight", config.grace_period_s)
    server.stop(config.grace_period_s).wait()
    logger.info("stopped")


def usage(address: str, scenario: Scenario) -> str:
    """How to call the server at ``address`` with ``buf curl`` (which reads its reflection)."""
    # buf ships in the dev extras next to this interpreter; fall back to a buf on PATH.
    bundled = Path(sys.executable).parent / "buf"
    curl = f"{bundled if bundled.exists() else 'buf'} curl --protocol grpc --http2-prior-knowledge"
    url = f"http://{address}"
    order = order_to_json(_example_order(scenario))  # an orders.jsonl line is a proto3 JSON Order
    body = shlex.quote(json.dumps({"order": order}, separators=(",", ":")))
    route = shlex.quote(json.dumps({"request_id": "req-1", "order": order}, separators=(",", ":")))
    lines = order["lines"]
    assert isinstance(lines, list)
    skus = sorted({str(line["sku"]) for line in lines})
    stock = shlex.quote(json.dumps({"skus": skus}, separators=(",", ":")))
    return "\n".join(
        [
            f"router.v1.RoutingService listening on {address}",
            "List services:",
            f"  {curl} --list-services {url}",
            "Check health:",
            f"  {curl} {url}/grpc.health.v1.Health/Check",
            "Plan an order:",
            f"  {curl} -d {body} {url}/{ROUTING_SERVICE}/PlanOrder",
            "Route it (plan and reserve; retrying with the same request_id is safe):",
            f"  {curl} -d {route} {url}/{ROUTING_SERVICE}/RouteOrder",
            "Its SKUs' stock:",
            f"  {curl} -d {stock} {url}/{INVENTORY_SERVICE}/GetStock",
            "Rule-set versions and the active one (router rules list --target ADDRESS):",
            f"  {curl} {url}/{RULES_SERVICE}/ListRuleVersions",
            "Calendars: the days nodes do not ship and services do not run (docs/calendars.md):",
            f"  {curl} {url}/{NETWORK_SERVICE}/ListCalendars",
        ]
    )


def _example_order(scenario: Scenario) -> Order:
    """The scenario's first order, or a one-unit order of a catalogue SKU when it has none."""
    if scenario.orders:
        return scenario.orders[0]
    network = scenario.network
    node = network.nodes[0]
    return Order(
        order_id="example-1",
        created_at=datetime.now(UTC).replace(microsecond=0),
        ship_to=ShipTo(node.latitude, node.longitude, node.country),
        service=network.rates.services[0],
        lines=(OrderLine("1", next(iter(network.skus)), 1),),
    )
