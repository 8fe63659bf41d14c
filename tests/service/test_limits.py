"""The wire's limits: the walk over request messages, the interceptor, the tables and docs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from models.errors import FieldViolation
from models.order import MAX_LINES_PER_ORDER
from models.scenario import Scenario
from router.service import limits
from router.service.convert import order_to_proto
from router.service.errors import MAX_DETAIL_BYTES, MAX_MESSAGE_CHARS
from router.v1 import router_pb2, router_pb2_grpc
from tests.service.conftest import Running, bad_request_fields, order

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def paths(message: Any) -> list[str]:
    return [v.field for v in limits.violations(message)]


def test_paths_name_each_field_over_its_limit_from_the_request() -> None:
    """A string over its bytes is named by its path; ids are tighter than the default."""
    request = router_pb2.PlanOrderRequest()
    for i in range(4):
        request.order.lines.add(line_id=str(i), sku="S" * (limits.ID_BYTES + (i == 3)))
    request.order.channel = "c" * limits.ID_BYTES * 2  # the default limit: within it
    request.order.ship_to.country = "x" * (limits.DEFAULT_STRING_BYTES + 1)
    assert paths(request) == ["order.ship_to.country", "order.lines[3].sku"]  # field order
    assert paths(router_pb2.PlanOrderRequest(order=order_to_proto(order(("A", 1))))) == []


def test_strings_are_measured_in_utf8_bytes() -> None:
    """128 ASCII characters are within an id's limit; 65 two-byte characters (130 bytes) not."""
    assert paths(router_pb2.ConfirmReservationRequest(reservation_id="x" * 128)) == []
    [violation] = limits.violations(router_pb2.ConfirmReservationRequest(reservation_id="é" * 65))
    assert violation == FieldViolation("reservation_id", "is 130 bytes, at most 128")


def test_a_list_over_its_count_is_named_once_and_not_walked() -> None:
    """501 lines (over MAX_LINES_PER_ORDER) are one violation at the list, whatever they hold."""
    request = router_pb2.PlanOrderRequest()
    line = router_pb2.OrderLine(sku="S" * 10_000)
    request.order.lines.extend([line] * (MAX_LINES_PER_ORDER + 1))
    assert paths(request) == ["order.lines"]
    request.order.lines.pop()
    assert len(paths(request)) == limits.MAX_VIOLATIONS + 1  # each line's sku, capped


def test_at_most_max_violations_are_named_and_the_rest_counted() -> None:
    """Past MAX_VIOLATIONS fields, one last entry on "…" counts the fields left out."""
    request = router_pb2.GetStockRequest(skus=["S" * 200] * 30)
    found = limits.violations(request)
    assert len(found) == limits.MAX_VIOLATIONS + 1
    assert found[-1] == FieldViolation("…", "and 10 more fields over their limits")


def test_every_field_the_tables_name_exists_and_has_the_right_kind() -> None:
    """LIMITS names string, bytes or repeated fields; VALUE_BOUNDS numbers or Durations."""
    fields = {
        f.full_name: f
        for message in router_pb2.DESCRIPTOR.message_types_by_name.values()
        for f in message.fields
    }
    for name, limit in limits.LIMITS.items():
        kind = fields[name]
        if limit.max_bytes is not None:
            assert kind.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES), name
        if limit.max_items is not None:
            assert kind.is_repeated, name
    for name in limits.VALUE_BOUNDS:
        kind = fields[name]
        assert kind.message_type is None or kind.message_type.name == "Duration", name


def test_the_log_throttle_admits_a_burst_per_window_and_counts_the_rest() -> None:
    """Two lines per 10 s window: the third is suppressed, the next window's first says 1."""
    now = [0.0]
    throttle = limits.LogThrottle(burst=2, window_s=10.0, clock=lambda: now[0])
    assert [throttle.admit() for _ in range(3)] == [0, 0, None]
    now[0] = 10.0
    assert throttle.admit() == 1
    assert throttle.admit() == 0


@dataclass
class Recorder(router_pb2_grpc.RoutingServiceServicer):
    """A RoutingService that records the requests it receives."""

    seen: list[Any] = field(default_factory=list)

    def ConfirmReservation(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.seen.append(request)
        return router_pb2.ConfirmReservationResponse()


@pytest.fixture
def recording() -> Iterator[tuple[Recorder, grpc.Channel]]:
    """A server of :class:`Recorder` behind the limits interceptor, and a channel to it."""
    recorder = Recorder()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        interceptors=[limits.LimitsInterceptor()],
        options=limits.SERVER_OPTIONS,
    )
    router_pb2_grpc.add_RoutingServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield recorder, channel
    finally:
        server.stop(0).wait()


def test_a_request_over_a_limit_never_reaches_the_servicer(
    recording: tuple[Recorder, grpc.Channel],
) -> None:
    """INVALID_ARGUMENT naming the field, and the servicer never called; within: called."""
    recorder, channel = recording
    stub = router_pb2_grpc.RoutingServiceStub(channel)
    too_long = router_pb2.ConfirmReservationRequest(request_id="r" * 201, reservation_id="x")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ConfirmReservation(too_long, timeout=10)
    assert bad_request_fields(caught.value) == ["request_id"]
    assert recorder.seen == []
    stub.ConfirmReservation(router_pb2.ConfirmReservationRequest(request_id="r" * 200), timeout=10)
    assert len(recorder.seen) == 1


def test_undecodable_bytes_are_invalid_argument_with_one_warning(
    recording: tuple[Recorder, grpc.Channel], caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are not the request: INVALID_ARGUMENT at ``request``, a WARNING, no call.

    gRPC alone answers INTERNAL ("Exception deserializing request!") and logs a traceback.
    """
    recorder, channel = recording
    raw = channel.unary_unary("/router.v1.RoutingService/ConfirmReservation")
    with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as caught:
        raw(b"\xff\xff\xff", timeout=10)
    assert bad_request_fields(caught.value) == [limits.UNDECODABLE_FIELD]
    assert recorder.seen == []
    [record] = [r for r in caplog.records if r.name == limits.__name__]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "undecodable request to /router.v1.RoutingService/ConfirmReservation" in record.message


def test_a_message_over_the_receive_limit_is_resource_exhausted(server: Running) -> None:
    """A request over MAX_RECEIVE_MESSAGE_BYTES is refused by gRPC before it is decoded."""
    document = "x" * (limits.MAX_RECEIVE_MESSAGE_BYTES + 1)
    with pytest.raises(grpc.RpcError) as caught:
        server.rules.ValidateRules(router_pb2.ValidateRulesRequest(document=document), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_document_over_its_limit_is_named(server: Running) -> None:
    """A rule document of DOCUMENT_BYTES + 1 bytes: INVALID_ARGUMENT at ``document``."""
    document = "x" * (limits.DOCUMENT_BYTES + 1)
    with pytest.raises(grpc.RpcError) as caught:
        server.rules.ValidateRules(router_pb2.ValidateRulesRequest(document=document), timeout=30)
    assert bad_request_fields(caught.value) == ["document"]


def test_a_refusal_with_hundreds_of_fields_still_reaches_the_client(server: Running) -> None:
    """500 bad lines: INVALID_ARGUMENT whose message and details fit the client's trailers.

    The violations listed stop within MAX_DETAIL_BYTES and a last one counts the rest;
    before, the status outgrew the client's 16 KiB metadata limit and the client saw
    RESOURCE_EXHAUSTED instead.
    """
    request = router_pb2.PlanOrderRequest()
    for i in range(MAX_LINES_PER_ORDER):
        request.order.lines.add(line_id=f"line-{i}", sku=f"NO-SUCH-SKU-{i:040d}", quantity=0)
    with pytest.raises(grpc.RpcError) as caught:
        server.routing.PlanOrder(request, timeout=30)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.details() or "") <= MAX_MESSAGE_CHARS
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None
    [detail] = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad) and bad.ByteSize() <= MAX_DETAIL_BYTES
    assert bad.field_violations[-1].field == "…"
    assert re.fullmatch(r"and \d+ more", bad.field_violations[-1].description)


def _planned(server: Running, scenario: Scenario, **fields: Any) -> list[str]:
    """The BadRequest paths of PlanOrder with ``fields`` set; [] when it is answered."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(scenario.orders[0]), **fields)
    try:
        server.routing.PlanOrder(request, timeout=30)
    except grpc.RpcError as error:
        return bad_request_fields(error)
    return []


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("top_k", limits.MAX_TOP_K, limits.MAX_TOP_K + 1),
        ("top_k", 0, -1),
        ("max_shipments", 1, 0),
        ("max_shipments", 1000, 1001),
        ("quantity", 1, 0),
        ("unit_price", 100_000, 100_000.01),
        ("latitude", -90, -90.001),
        ("longitude", 180, 180.001),
        ("time_limit", 1e-9, 0),
    ],
)
def test_value_bounds_are_what_the_service_checks(
    server: Running, small_scenario: Scenario, name: str, inside: float, outside: float
) -> None:
    """Each bound of VALUE_BOUNDS (the gateway's schema states them) is where it refuses.

    A value just inside is answered; one just outside is refused at its path.
    """
    bound = next(b for n, b in limits.VALUE_BOUNDS.items() if n.endswith(f".{name}"))
    low = bound.minimum if bound.minimum is not None else bound.above
    assert low is not None and low <= inside and (bound.maximum or inside) >= inside

    def request(value: float) -> list[str]:
        if name == "time_limit":
            fields: dict[str, Any] = {"time_limit": {"nanos": round(value * 1e9)}}
            return _planned(server, small_scenario, **fields)
        if name == "top_k":
            return _planned(server, small_scenario, top_k=int(value))
        msg = router_pb2.PlanOrderRequest(order=order_to_proto(small_scenario.orders[0]))
        target: Any = {
            "max_shipments": msg.order,
            "quantity": msg.order.lines[0],
            "unit_price": msg.order.lines[0],
        }.get(name, msg.order.ship_to)
        setattr(target, name, type(getattr(target, name))(value))
        try:
            server.routing.PlanOrder(msg, timeout=30)
        except grpc.RpcError as error:
            return bad_request_fields(error)
        return []

    assert request(inside) == []
    [refused] = request(outside)
    assert refused.endswith(name)


def _documented() -> dict[str, tuple[str, str]]:
    """The rows of docs/api.md's table of length limits: field → (bytes, items)."""
    text = DOCS.read_text()
    lines = text[text.index("### Length limits") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| field"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1].replace(",", ""), cells[2].replace(",", ""))
    return rows


def test_the_docs_table_states_every_limit() -> None:
    """docs/api.md lists each field of LIMITS with its limits, and the defaults."""
    rows = _documented()
    expected = {
        name.removeprefix("router.v1."): (
            str(limit.max_bytes) if limit.max_bytes is not None else "",
            str(limit.max_items) if limit.max_items is not None else "",
        )
        for name, limit in limits.LIMITS.items()
    }
    expected["any other field"] = (str(limits.DEFAULT_STRING_BYTES), str(limits.DEFAULT_ITEMS))
    assert rows == expected
