"""Hostile or careless calls against the ledger, over real gRPC on loopback.

No state change is followed by a reply that can fail; a value no database can store is
INVALID_ARGUMENT (never "try again"), in our words; a lapsed reservation cannot be
confirmed; undecodable requests cost one log line, not a traceback each.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from models.fields import MAX_INT32
from models.reservation import ReservationLine
from models.scenario import Scenario
from router.ledger import open_ledger
from router.v1 import router_pb2
from tests.ledger.conftest import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.service.conftest import Running, bad_request_fields, run
from tests.service.test_reservations import Served, route, serve_on, stock_of

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["memory", "sqlite"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, small_scenario: Scenario
) -> Iterator[Served]:
    """A server over a ledger of each embedded backend, the ledger in the test's hands."""
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'l.db'}"
    yield from serve_on(open_ledger(url), small_scenario, sweep_interval_s=3600.0)


@pytest.fixture
def pg_served(pg_url: str, small_scenario: Scenario) -> Iterator[Running]:  # noqa: F811
    """A server over PostgreSQL, in a fresh schema."""
    yield from run(small_scenario, ledger_url=pg_url)


def delta(sequence: int, *changes: tuple[str, int]) -> router_pb2.ApplyStockDeltaRequest:
    """An ApplyStockDelta of feed ``wms`` at node ``west``."""
    return router_pb2.ApplyStockDeltaRequest(
        feed="wms",
        sequence=sequence,
        node_id="west",
        deltas=[router_pb2.StockDelta(sku=s, on_hand_change=c) for s, c in changes],
    )


def test_a_delta_clamping_beyond_int32_answers_what_it_did(served: Served):
    """A delta clamping more units than int32 holds commits AND answers the count.

    (It used to commit and then fail INTERNAL building the reply; its retry answered
    DUPLICATE, so the client never learnt the outcome.)
    """
    request = delta(1, ("X", -MAX_INT32), ("Y", -MAX_INT32))
    answer = served.inventory.ApplyStockDelta(request, timeout=10)
    assert answer.outcome == router_pb2.FEED_OUTCOME_APPLIED
    assert answer.clamped_units == 2 * MAX_INT32
    retry = served.inventory.ApplyStockDelta(request, timeout=10)
    assert retry.outcome == router_pb2.FEED_OUTCOME_DUPLICATE


def test_a_delta_beyond_int32_is_refused_before_any_change(served: Served):
    """A change of -2^31, or one SKU's changes summing beyond ±int32: INVALID_ARGUMENT.

    The field is named; the sequence is not consumed, so a good update with it applies.
    """
    before = stock_of(served, "A")
    for request, field in (
        (delta(1, ("A", -(2**31))), "deltas[0].on_hand_change"),
        (delta(1, ("A", -(2**30)), ("A", -(2**30))), "deltas"),
    ):
        with pytest.raises(grpc.RpcError) as error:
            served.inventory.ApplyStockDelta(request, timeout=10)
        assert field in bad_request_fields(error.value)
    assert stock_of(served, "A") == before
    applied = served.inventory.ApplyStockDelta(delta(1, ("A", -1)), timeout=10)
    assert applied.outcome == router_pb2.FEED_OUTCOME_APPLIED


def test_a_snapshot_clamping_beyond_int32_answers_what_it_did(served: Served):
    """A snapshot clamping 2 × int32-max reserved units answers that count (int64).

    It zeroes two positions holding int32-max reserved units each; its retry is a
    duplicate.
    """
    ledger = served.ledger
    ledger.apply_snapshot("wms", 1, "west", [("A", MAX_INT32, 0), ("B", MAX_INT32, 0)])
    lines = [ReservationLine("west", "A", MAX_INT32), ReservationLine("west", "B", MAX_INT32)]
    ledger.reserve("big", b"p", "o-big", lines, [], 60, datetime.now(UTC))
    request = router_pb2.ApplyStockSnapshotRequest(feed="wms", sequence=2, node_id="west")
    answer = served.inventory.ApplyStockSnapshot(request, timeout=10)
    assert answer.outcome == router_pb2.FEED_OUTCOME_APPLIED
    assert answer.clamped_units == 2 * MAX_INT32
    retry = served.inventory.ApplyStockSnapshot(request, timeout=10)
    assert retry.outcome == router_pb2.FEED_OUTCOME_DUPLICATE


LONE_SURROGATE = 'name: "default\\ud800"\nstrategies:\n  - name: default\n'


def test_a_rule_set_no_reply_could_carry_is_not_stored(served: Served):
    """A rule set named with a lone surrogate escape: INVALID_ARGUMENT, nothing stored.

    The field is ``document``; the versions stay listable (the memory ledger used to
    store it and then fail every reply naming it).
    """
    rules = Running(served.port, served.channel).rules
    with pytest.raises(grpc.RpcError) as error:
        rules.PublishRules(
            router_pb2.PublishRulesRequest(document=LONE_SURROGATE, actor="ana", reason="r"),
            timeout=30,
        )
    assert bad_request_fields(error.value) == ["document"]
    listed = rules.ListRuleVersions(router_pb2.ListRuleVersionsRequest(), timeout=10)
    assert [v.version for v in listed.versions] == [1]


def test_an_over_long_request_id_is_invalid_not_unavailable(pg_served: Running):
    """A 3 KB request_id (PostgreSQL could not index it): INVALID_ARGUMENT on request_id.

    Never UNAVAILABLE, nothing said of the database, nothing held.
    """
    request_id = secrets.token_urlsafe(2300)  # ~3 KB, incompressible
    with pytest.raises(grpc.RpcError) as error:
        pg_served.routing.RouteOrder(route(request_id, ("A", 1)), timeout=30)
    assert bad_request_fields(error.value) == ["request_id"]
    details = str(error.value.details())
    assert "index" not in details and "tuple" not in details
    positions = pg_served.inventory.GetStock(router_pb2.GetStockRequest(skus=["A"]), timeout=10)
    assert all(p.reserved == 0 for p in positions.positions)


def test_a_value_the_database_refuses_is_invalid_in_our_words(pg_served: Running):
    """A SKU too large for PostgreSQL's index: INVALID_ARGUMENT, not UNAVAILABLE.

    The message has no index, tuple or value; the update did not consume its sequence.
    (Since the wire limits such a SKU is refused before the ledger; tests/ledger/
    test_db_errors.py holds the ledger's own classification of the database's refusal.)
    """
    sku = secrets.token_urlsafe(4000)
    request = router_pb2.ApplyStockSnapshotRequest(
        feed="wms",
        sequence=1,
        node_id="west",
        positions=[router_pb2.SnapshotPosition(sku=sku, on_hand=1)],
    )
    with pytest.raises(grpc.RpcError) as error:
        pg_served.inventory.ApplyStockSnapshot(request, timeout=30)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = str(error.value.details())
    assert "index" not in details and "tuple" not in details and sku[:16] not in details
    assert "at most" in details  # the wire limit refuses it before the database sees it
    fine = router_pb2.ApplyStockSnapshotRequest(feed="wms", sequence=1, node_id="west")
    assert pg_served.inventory.ApplyStockSnapshot(fine, timeout=10).applied


def test_a_lapsed_reservation_cannot_be_confirmed_before_the_sweep(served: Served):
    """Confirm after expires_at, before the sweep: FAILED_PRECONDITION saying when.

    Its units are back at once (it used to confirm and ship them); a retry fails alike.
    """
    before = stock_of(served, "B")
    held = served.routing.RouteOrder(route("r1", ("B", 2), ttl_s=0.2), timeout=10).reservation
    time.sleep(0.3)
    confirm = router_pb2.ConfirmReservationRequest(
        request_id="c1", reservation_id=held.reservation_id
    )
    for _ in range(2):  # a retry is refused alike
        with pytest.raises(grpc.RpcError) as error:
            served.routing.ConfirmReservation(confirm, timeout=10)
        assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "expired at" in str(error.value.details())
    assert stock_of(served, "B") == before


def test_undecodable_requests_cost_a_few_warning_lines_not_tracebacks(
    served: Served, caplog: pytest.LogCaptureFixture
):
    """30 undecodable requests: INVALID_ARGUMENT, no ERROR, no traceback, a few WARNINGs.

    (grpc used to answer INTERNAL and log an ERROR with a traceback for each; the limits
    interceptor reads the bytes itself and logs within its throttle.)
    """
    call = served.channel.unary_unary("/router.v1.InventoryService/ApplyStockDelta")
    with caplog.at_level(logging.DEBUG):
        for _ in range(30):
            with pytest.raises(grpc.RpcError) as refused:
                call(b"\xff\xff\xff\xff", timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert all(r.levelno < logging.ERROR and r.exc_info is None for r in caplog.records)
    lines = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert 1 <= len(lines) <= 5  # LogThrottle: 5 lines a minute
    assert "Traceback" not in caplog.text
