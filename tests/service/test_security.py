"""Identity, roles, ownership, TLS and admission on real servers over real sockets.

Every server here runs with authentication on and TLS from a CA made for the test
(tests/pki.py); tokens are issued in the server's own ledger, as ``router tokens issue``
does. Calls go over ``127.0.0.1`` with the CA as the only trust root.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from models.access import Role
from models.scenario import Scenario
from router.cli_security import bearer_token
from router.ledger import Ledger, open_ledger
from router.service.access import METHOD_ROLES
from router.service.config import AdmissionSettings, ServerConfig, TlsSettings
from router.service.convert import order_to_proto
from router.service.server import create_server
from router.v1 import router_pb2, router_pb2_grpc
from tests.pki import Authority, Issued
from tests.service.conftest import order
from tests.service.conftest import run as run_server
from tests.service.test_buf_curl import BUF

ROUTER_METHODS = [
    f"/{service.full_name}/{method.name}"
    for service in router_pb2.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


class Pki:
    """The test CA, the server's certificate, a client certificate, and an impostor's."""

    def __init__(self, directory: Path) -> None:
        self.ca = Authority(directory, "good")
        self.server = self.ca.issue("server", "router.test")
        self.feed_client = self.ca.issue("feed-client", "feed-cert", ("feed",))
        impostor_ca = Authority(directory, "impostor")
        self.impostor = impostor_ca.issue("impostor", "intruder", ("admin",))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class Secured:
    """A started server with auth and TLS, its ledger, and a token per role."""

    def __init__(self, scenario: Scenario, pki: Pki, **config: Any) -> None:
        self.pki = pki
        self.ledger: Ledger = open_ledger("memory://")
        self.ledger.seed(scenario.network, scenario.stock)
        now = datetime.now(UTC)
        self.tokens = {
            f"{role}-1": self.ledger.issue_token(f"{role}-1", frozenset({role}), now)[1]
            for role in Role
        }
        self.tokens["oms-2"] = self.ledger.issue_token("oms-2", frozenset({Role.OMS}), now)[1]
        config.setdefault("tls", TlsSettings(pki.server.cert, pki.server.key))
        # Every test calls from 127.0.0.1, and some fail on purpose, many times.
        config.setdefault("admission", AdmissionSettings(failed_auth_burst=100_000))
        self.server, self.port = create_server(
            ServerConfig(port=0, auth=True, token_cache_s=0.0, **config), scenario, self.ledger
        )
        self.server.start()

    def channel(self, token: str | None = None, client: Issued | None = None) -> grpc.Channel:
        """A TLS channel trusting the test CA, with a bearer token and/or a client cert."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.pki.ca.cert.read_bytes(),
            private_key=None if client is None else client.key.read_bytes(),
            certificate_chain=None if client is None else client.cert.read_bytes(),
        )
        channel = grpc.secure_channel(f"127.0.0.1:{self.port}", credentials)
        return channel if token is None else grpc.intercept_channel(channel, bearer_token(token))

    def as_(self, principal: str) -> grpc.Channel:
        """A channel with ``principal``'s token."""
        return self.channel(self.tokens[principal])

    def close(self) -> None:
        self.server.stop(0).wait()
        self.ledger.close()


@pytest.fixture(scope="module")
def secured(small_scenario: Scenario, pki: Pki) -> Iterator[Secured]:
    served = Secured(small_scenario, pki)
    yield served
    served.close()


def call(channel: grpc.Channel, method: str, request: Any = None, timeout: float = 20) -> Any:
    """Call ``method`` with ``request`` (default: its empty request); the response or error."""
    service, name = method.strip("/").split("/")
    descriptor = router_pb2.DESCRIPTOR.services_by_name[service.split(".")[-1]]
    method_desc = descriptor.methods_by_name[name]
    if request is None:
        request = message_factory.GetMessageClass(method_desc.input_type)()
    reply_cls = message_factory.GetMessageClass(method_desc.output_type)
    stub = channel.unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=reply_cls.FromString,
    )
    try:
        return stub(request, timeout=timeout)
    except grpc.RpcError as error:
        return error


def code(outcome: Any) -> grpc.StatusCode:
    return outcome.code() if isinstance(outcome, grpc.RpcError) else grpc.StatusCode.OK


def test_every_method_of_every_service_is_in_the_one_table() -> None:
    """No router.v1 method is left to a default: each has its row of roles."""
    assert sorted(ROUTER_METHODS) == sorted(m for m in METHOD_ROLES if "/router.v1." in m)


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_each_role_is_allowed_and_refused_as_the_table_says(secured: Secured, role: Role) -> None:
    """Each role is refused (PERMISSION_DENIED) exactly the methods the table denies it.

    Admin is refused nothing. Calls carry empty requests, so the ones let through end in
    the servicer's own validation, never in a denial.
    """
    with secured.as_(f"{role}-1") as channel:
        for method in ROUTER_METHODS:
            allowed = role is Role.ADMIN or role in METHOD_ROLES[method]
            got = code(call(channel, method))
            if allowed:
                assert got not in DENIED, (role, method, got)
            else:
                assert got is grpc.StatusCode.PERMISSION_DENIED, (role, method, got)


def test_no_credentials_a_bad_token_or_a_revoked_one_is_unauthenticated(
    secured: Secured,
) -> None:
    """Every method refuses a call that proves no identity; health checks answer anyone."""
    revoked_made, revoked = secured.ledger.issue_token(
        "gone", frozenset({Role.ADMIN}), datetime.now(UTC)
    )
    secured.ledger.revoke_token(revoked_made.token_id, datetime.now(UTC))
    forged = secured.tokens["admin-1"][:-4] + "AAAA"
    for token in (None, forged, revoked, "not-a-token"):
        with secured.channel(token) as channel:
            for method in ROUTER_METHODS:
                got = code(call(channel, method))
                assert got is grpc.StatusCode.UNAUTHENTICATED, (token, method, got)
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_needs_a_principal(secured: Secured) -> None:
    """Reflection (the API's shape) answers an authenticated caller only."""

    def list_services(channel: grpc.Channel) -> list[str]:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [answer] = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        return [s.name for s in answer.list_services_response.service]

    with secured.channel() as anonymous, pytest.raises(grpc.RpcError) as refused:
        list_services(anonymous)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with secured.as_("analyst-1") as channel:
        assert "router.v1.RoutingService" in list_services(channel)


def _route(channel: grpc.Channel, request_id: str, order_id: str) -> str:
    request = router_pb2.RouteOrderRequest(
        request_id=request_id, order=order_to_proto(order(("A", 1), order_id=order_id))
    )
    answer = router_pb2_grpc.RoutingServiceStub(channel).RouteOrder(request, timeout=30)
    assert answer.HasField("reservation")
    return str(answer.reservation.reservation_id)


def test_only_the_owner_or_an_admin_confirms_or_releases_a_reservation(
    secured: Secured,
) -> None:
    """oms-2 can neither confirm nor release oms-1's reservation; oms-1 and admin can.

    To oms-2 it answers as an unknown reservation would (NOT_FOUND): ids cannot be probed.
    """
    oms1, oms2, admin = (secured.as_(p) for p in ("oms-1", "oms-2", "admin-1"))
    with oms1, oms2, admin:
        first = _route(oms1, "own-1", "own-o1")
        second = _route(oms1, "own-2", "own-o2")
        for method, request_cls in (
            ("ConfirmReservation", router_pb2.ConfirmReservationRequest),
            ("ReleaseReservation", router_pb2.ReleaseReservationRequest),
        ):
            path = f"/router.v1.RoutingService/{method}"
            other = call(oms2, path, request_cls(request_id=f"x-{method}", reservation_id=first))
            assert code(other) is grpc.StatusCode.NOT_FOUND
        done = call(
            oms1,
            "/router.v1.RoutingService/ConfirmReservation",
            router_pb2.ConfirmReservationRequest(request_id="c-1", reservation_id=first),
        )
        assert code(done) is grpc.StatusCode.OK
        assert done.reservation.status == router_pb2.RESERVATION_STATUS_CONFIRMED
        released = call(
            admin,
            "/router.v1.RoutingService/ReleaseReservation",
            router_pb2.ReleaseReservationRequest(request_id="r-2", reservation_id=second),
        )
        assert code(released) is grpc.StatusCode.OK
    assert secured.ledger.reservation_owner(first) == "oms-1"


def test_the_audit_log_names_the_principal_not_the_typed_actor(secured: Secured) -> None:
    """A planner who types another name is recorded under its own."""
    document = (
        "name: default\nstrategies:\n  - name: default\n    weights:\n      split_penalty: 7\n"
    )
    with secured.as_("planner-1") as channel:
        stub = router_pb2_grpc.RulesServiceStub(channel)
        published = stub.PublishRules(
            router_pb2.PublishRulesRequest(document=document, actor="ceo", reason="audit test"),
            timeout=30,
        ).version
        activated = stub.ActivateRules(
            router_pb2.ActivateRulesRequest(
                version=published.version, actor="someone", reason="audit test"
            ),
            timeout=30,
        ).activation
        stub.RollbackRules(router_pb2.RollbackRulesRequest(reason="back"), timeout=30)
    assert published.published_by == "planner-1"
    assert activated.by == "planner-1"
    assert [a.by for a in secured.ledger.rule_activations()[-2:]] == ["planner-1"] * 2


def test_a_client_certificate_is_a_principal_and_a_foreign_ca_is_refused(
    small_scenario: Scenario, pki: Pki
) -> None:
    """With mTLS a client CA's certificate proves its CN with the roles in its O entries.

    A certificate signed by another CA, or none, gets no connection at all.
    """
    tls = TlsSettings(pki.server.cert, pki.server.key, client_ca=pki.ca.cert)
    served = Secured(small_scenario, pki, tls=tls)
    try:
        with served.channel(client=pki.feed_client) as feed:
            assert code(call(feed, "/router.v1.InventoryService/GetStock")) is grpc.StatusCode.OK
            denied = call(feed, "/router.v1.RoutingService/RouteOrder")
            assert code(denied) is grpc.StatusCode.PERMISSION_DENIED
            assert "feed-cert (feed)" in denied.details()
        with served.channel(client=pki.impostor) as impostor:
            refused = call(impostor, "/router.v1.InventoryService/GetStock", timeout=5)
            assert code(refused) is grpc.StatusCode.UNAVAILABLE
        with served.channel(token=served.tokens["admin-1"]) as no_cert:
            refused = call(no_cert, "/router.v1.InventoryService/GetStock", timeout=5)
            assert code(refused) is grpc.StatusCode.UNAVAILABLE
    finally:
        served.close()


def test_a_renewed_certificate_is_served_without_a_restart(
    small_scenario: Scenario, pki: Pki, tmp_path: Path
) -> None:
    """Certificate files replaced on disk: the next connection gets the new certificate.

    A pair caught half-written (the new certificate, the old key) is not taken: the old
    pair is served until the key matches.
    """
    first_ca = Authority(tmp_path, "first")
    first = first_ca.issue("live", "router.test")
    cert, key = tmp_path / "server.pem", tmp_path / "server-key.pem"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    served = Secured(small_scenario, pki, tls=TlsSettings(cert, key))

    def reaches(ca: Path) -> bool:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{served.port}", credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            except grpc.RpcError:
                return False
            return True

    try:
        assert reaches(first_ca.cert) and not reaches(pki.ca.cert)
        renewed = pki.ca.issue("renewed", "router.test")
        cert.write_bytes(renewed.cert.read_bytes())  # caught half-way: the old key stays
        assert reaches(first_ca.cert) and not reaches(pki.ca.cert)
        key.write_bytes(renewed.key.read_bytes())
        assert reaches(pki.ca.cert) and not reaches(first_ca.cert)
    finally:
        served.close()


def test_binding_beyond_loopback_turns_authentication_on_unless_told_not_to() -> None:
    """The default: open on loopback only; any other address needs --insecure-no-auth."""
    assert not ServerConfig(host="127.0.0.1").auth_required
    assert not ServerConfig(host="::1").auth_required
    assert ServerConfig(host="0.0.0.0").auth_required
    assert ServerConfig(host="10.1.2.3").auth_required
    assert not ServerConfig(host="0.0.0.0", auth=False).auth_required
    assert ServerConfig(host="127.0.0.1", auth=True).auth_required


def test_a_server_on_all_addresses_refuses_an_anonymous_call(small_scenario: Scenario) -> None:
    """Started on 0.0.0.0 with no auth flag, it answers UNAUTHENTICATED over plaintext."""
    server, port = create_server(
        ServerConfig(host="0.0.0.0", port=0, ledger_url="memory://"), small_scenario
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            got = call(channel, "/router.v1.InventoryService/GetStock")
            assert code(got) is grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop(0).wait()


def _retry_delay(error: grpc.RpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    raise AssertionError("no RetryInfo")


def test_a_principal_over_its_rate_is_refused_at_once_with_a_retry_hint(
    small_scenario: Scenario, pki: Pki
) -> None:
    """Over its rate, a principal is refused at once with a retry hint; others are not.

    Rate 0.5/s, burst 3: the fourth call in a row is RESOURCE_EXHAUSTED with RetryInfo.
    """
    limits = AdmissionSettings(rate_per_s=0.5, burst=3, failed_auth_burst=100_000)
    served = Secured(small_scenario, pki, admission=limits)
    try:
        with served.as_("analyst-1") as analyst, served.as_("feed-1") as feed:
            stock = "/router.v1.InventoryService/GetStock"
            assert [code(call(analyst, stock)) for _ in range(3)] == [grpc.StatusCode.OK] * 3
            refused = call(analyst, stock)
            assert code(refused) is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert 0 < _retry_delay(refused) <= 2.0
            assert code(call(feed, stock)) is grpc.StatusCode.OK
    finally:
        served.close()


def test_solves_beyond_the_workers_and_queue_are_refused_while_cheap_calls_are_served(
    large_scenario: Scenario, pki: Pki
) -> None:
    """Solves beyond the workers and queue are refused at once; cheap calls still served.

    One worker, no queue: while a long solve runs, a second solve is refused with a retry
    hint, and GetStock and a health check are answered.
    """
    served = Secured(
        large_scenario,
        pki,
        max_workers=1,
        admission=AdmissionSettings(queued_solves=0, failed_auth_burst=100_000),
        default_time_limit_s=3.0,
    )
    request = router_pb2.PlanOrderRequest(order=order_to_proto(large_scenario.orders[0]))
    try:
        with served.as_("analyst-1") as channel:
            plan = "/router.v1.RoutingService/PlanOrder"
            results: list[Any] = []
            running = threading.Thread(target=lambda: results.append(call(channel, plan, request)))
            running.start()
            time.sleep(0.5)  # the long solve holds the only worker
            refused = call(channel, plan, request)
            cheap = call(channel, "/router.v1.InventoryService/GetStock")
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            running.join()
        assert code(refused) is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_delay(refused) > 0
        assert code(cheap) is grpc.StatusCode.OK
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert code(results[0]) is grpc.StatusCode.OK
    finally:
        served.close()


def test_buf_curl_calls_a_secured_server_as_docs_security_says(secured: Secured) -> None:
    """Buf curl with the CA and a bearer header reads stock; without the header, refused."""
    url = f"https://127.0.0.1:{secured.port}/router.v1.InventoryService/GetStock"
    base = [str(BUF), "curl", "--protocol", "grpc", "--cacert", str(secured.pki.ca.cert)]
    header = ["-H", f"Authorization: Bearer {secured.tokens['analyst-1']}", "--reflect-header", "*"]
    answered = subprocess.run(
        [*base, *header, "-d", '{"skus":["A"]}', url], capture_output=True, text=True, timeout=60
    )
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["positions"]
    refused = subprocess.run(
        [*base, "-d", '{"skus":["A"]}', url], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and not refused.stdout  # reflection refused it first


def test_bytes_that_are_not_the_request_are_invalid_argument_once_logged(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage for every method is INVALID_ARGUMENT, after the access checks, logged little.

    gRPC itself answers INTERNAL; the access checks come first (no token: UNAUTHENTICATED),
    and three rounds over every method write a few WARNING lines, no traceback.
    """
    with secured.as_("admin-1") as channel:
        for method in ROUTER_METHODS:
            raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            for _ in range(3):
                with pytest.raises(grpc.RpcError) as refused:
                    raw(b"\xff\xff\xff\xff", timeout=10)
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, method
                assert "does not decode" in refused.value.details()
    with secured.channel() as anonymous:
        raw = anonymous.unary_unary(ROUTER_METHODS[0])
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\xff\xff\xff\xff", timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    lines = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert 1 <= len(lines) <= 5  # LogThrottle: 5 lines a minute
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)


def test_no_refused_cancelled_or_overflowing_call_keeps_a_solve_place(
    small_scenario: Scenario,
) -> None:
    """After a burst, every solve place is free again.

    One worker, no queue, two RPCs at once: 40 PlanOrders at once, some cancelled by a 1 ms
    deadline, most over gRPC's bound or the single place; then three calls in turn are
    served (a place counted and never given back would refuse them all).
    """
    served = run_server(
        small_scenario,
        max_workers=1,
        admission=AdmissionSettings(queued_solves=0),
        max_concurrent_rpcs=2,
    )
    running = next(served)
    try:
        request = router_pb2.PlanOrderRequest(order=order_to_proto(small_scenario.orders[0]))
        plan = running.routing.PlanOrder
        calls = [plan.future(request, timeout=0.001 if i % 3 == 0 else 10) for i in range(40)]
        codes = {code(c.exception()) if c.exception() else grpc.StatusCode.OK for c in calls}
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        for _ in range(3):
            assert plan(request, timeout=10).plan.status
    finally:
        served.close()


def test_an_address_that_keeps_failing_authentication_is_refused_before_lookups(
    small_scenario: Scenario, pki: Pki
) -> None:
    """After three bad tokens the address is refused with a retry hint, whatever it sends.

    Guessing tokens then costs the ledger nothing more.
    """
    limits = AdmissionSettings(failed_auth_per_s=0.1, failed_auth_burst=3)
    served = Secured(small_scenario, pki, admission=limits)
    try:
        stock = "/router.v1.InventoryService/GetStock"
        for i in range(3):
            with served.channel(f"rt_{i:04x}_guess") as channel:
                assert code(call(channel, stock)) is grpc.StatusCode.UNAUTHENTICATED
        with served.as_("analyst-1") as channel:
            refused = call(channel, stock)
        assert code(refused) is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_delay(refused) > 1
    finally:
        served.close()


def test_a_request_id_does_not_replay_another_principals_reservation(secured: Secured) -> None:
    """oms-2 resending oms-1's RouteOrder byte for byte gets ALREADY_EXISTS, not the answer."""
    with secured.as_("oms-1") as oms1, secured.as_("oms-2") as oms2:
        held = _route(oms1, "shared-1", "shared-o1")
        request = router_pb2.RouteOrderRequest(
            request_id="shared-1", order=order_to_proto(order(("A", 1), order_id="shared-o1"))
        )
        stolen = call(oms2, "/router.v1.RoutingService/RouteOrder", request)
        assert code(stolen) is grpc.StatusCode.ALREADY_EXISTS
        assert held not in stolen.details()
        again = call(oms1, "/router.v1.RoutingService/RouteOrder", request)
        assert again.reservation.reservation_id == held
