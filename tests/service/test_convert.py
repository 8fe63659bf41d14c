"""Conversion between router.v1 messages and the domain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import InvalidArgumentError
from models.network import NodeType
from models.order import Order, OrderLine, ShipTo
from models.plan import (
    Alternative,
    Counterfactual,
    Exclusion,
    ExclusionReason,
    ExplainedModel,
    ExplainLevel,
    Plan,
    SolveStatus,
    Unfulfilled,
    UnfulfilledReason,
    alternatives_wanted,
)
from models.reservation import PlanAcceptance, RouteOutcome
from router.service.convert import (
    order_from_proto,
    order_to_proto,
    plan_order_args_from_proto,
    plan_to_json,
)
from router.v1 import router_pb2
from tests.service.conftest import build_small_scenario, order

NETWORK = build_small_scenario().network


def _text(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    """Valid orders on the small network, in the domain's normal form (trimmed, upper-case)."""
    # At most 5 lines of 200,000 units: within the domain's cap of 1,000,000 units in all.
    lines = tuple(
        OrderLine(
            f"l{i}", draw(st.sampled_from(sorted(NETWORK.skus))), draw(st.integers(1, 200_000))
        )
        for i in range(draw(st.integers(1, 5)))
    )
    created_at = draw(
        st.datetimes(
            min_value=datetime(1971, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
        )
    )
    # The domain refuses a deliver_by more than a day before the order's creation date
    # (which is the UTC date once created_at has crossed the wire as a Timestamp).
    created_on = created_at.astimezone(UTC).date()
    deliver_by = draw(st.none() | st.integers(-1, 3650).map(lambda d: created_on + timedelta(d)))
    return Order(
        order_id=draw(_text(r"[A-Za-z0-9_-]{1,12}")),
        created_at=created_at,
        ship_to=ShipTo(
            draw(st.floats(-90, 90)),
            draw(st.floats(-180, 180)),
            draw(_text(r"[A-Z]{2}")),
            draw(_text(r"[0-9]{0,5}")),
        ),
        service="ground",
        lines=lines,
        channel=draw(_text(r"[a-z]{0,8}")),
        segment=draw(_text(r"[a-z]{0,8}")),
        deliver_by=deliver_by,
        ship_complete=draw(st.booleans()),
        allow_partial=draw(st.booleans()),
        max_shipments=draw(st.none() | st.integers(1, 20)),
        pickup_node_id=draw(st.none() | st.just("mid")),
    )


@given(orders())
def test_order_round_trips_domain_proto_domain(order: Order) -> None:
    """Every valid order survives domain → proto → domain unchanged."""
    assert order_from_proto(order_to_proto(order), NETWORK) == order


@given(orders())
def test_order_round_trips_proto_domain_proto(order: Order) -> None:
    """An order message with its optional fields set survives proto → domain → proto."""
    msg = order_to_proto(order)
    assert order_to_proto(order_from_proto(msg, NETWORK)) == msg


def test_unset_optional_fields_take_the_domain_defaults() -> None:
    """Unset allow_partial means true; unset max_shipments, deliver_by, pickup mean none."""
    msg = order_to_proto(order(("A", 1), allow_partial=False))
    msg.ClearField("allow_partial")
    msg.ClearField("max_shipments")
    msg.deliver_by = ""
    msg.pickup_node_id = ""

    converted = order_from_proto(msg, NETWORK)

    assert converted.allow_partial is True
    assert converted.max_shipments is None
    assert converted.deliver_by is None
    assert converted.pickup_node_id is None


def test_zero_quantity_is_out_of_range_not_missing() -> None:
    """A zero int32 (the proto3 default) is checked as the value 0."""
    msg = order_to_proto(order(("A", 1)))
    msg.lines[0].quantity = 0
    with pytest.raises(InvalidArgumentError) as caught:
        order_from_proto(msg, NETWORK)
    [violation] = caught.value.violations
    assert violation.field == "order.lines[0].quantity"
    assert "must be >= 1" in violation.description


def test_blank_sku_is_reported_once() -> None:
    """A blank sku is reported as missing, not also as an unknown sku."""
    msg = order_to_proto(order(("A", 1)))
    msg.lines[0].sku = ""
    with pytest.raises(InvalidArgumentError) as caught:
        order_from_proto(msg, NETWORK)
    assert [v.field for v in caught.value.violations] == ["order.lines[0].sku"]


def _with_time_limit(seconds: int, nanos: int) -> router_pb2.PlanOrderRequest:
    request = router_pb2.PlanOrderRequest(order=order_to_proto(order(("A", 1))))
    request.time_limit.seconds = seconds
    request.time_limit.nanos = nanos
    return request


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected_s"),
    [(0, 1, 1e-9), (2, 500_000_000, 2.5), (315_576_000_000, 999_999_999, 315_576_000_001.0)],
)
def test_time_limit_counts_to_the_nanosecond(seconds: int, nanos: int, expected_s: float) -> None:
    """A valid positive Duration is the time limit, however short or long: 1 ns is > 0."""
    args = plan_order_args_from_proto(_with_time_limit(seconds, nanos), NETWORK)
    assert args.time_limit_s == pytest.approx(expected_s, rel=1e-12)


def test_unset_time_limit_is_none() -> None:
    """No time_limit leaves the server's default in force."""
    request = router_pb2.PlanOrderRequest(order=order_to_proto(order(("A", 1))))
    assert plan_order_args_from_proto(request, NETWORK).time_limit_s is None


@pytest.mark.parametrize(
    ("seconds", "nanos", "message"),
    [
        (1, -1, "not a valid Duration"),  # seconds and nanos of different signs
        (-1, 1, "not a valid Duration"),
        (315_576_000_001, 0, "not a valid Duration"),  # beyond 10,000 years
        (-315_576_000_001, 0, "not a valid Duration"),
        (0, 1_000_000_000, "not a valid Duration"),  # nanos of a whole second or more
        (0, -1_000_000_000, "not a valid Duration"),
        (0, 0, "must be > 0"),
        (0, -1, "must be > 0"),
        (-5, 0, "must be > 0"),
    ],
)
def test_bad_time_limit_is_a_field_violation(seconds: int, nanos: int, message: str) -> None:
    """An invalid or non-positive Duration is one violation at ``time_limit``."""
    with pytest.raises(InvalidArgumentError) as caught:
        plan_order_args_from_proto(_with_time_limit(seconds, nanos), NETWORK)
    [violation] = caught.value.violations
    assert violation.field == "time_limit"
    assert message in violation.description


@pytest.mark.parametrize(
    ("domain", "proto", "prefix"),
    [
        (SolveStatus, router_pb2.SolveStatus, "SOLVE_STATUS_"),
        (UnfulfilledReason, router_pb2.UnfulfilledReason, "UNFULFILLED_REASON_"),
        (ExclusionReason, router_pb2.ExclusionReason, "EXCLUSION_REASON_"),
        (NodeType, router_pb2.NodeType, "NODE_TYPE_"),
        (ExplainLevel, router_pb2.ExplainLevel, "EXPLAIN_LEVEL_"),
        (PlanAcceptance, router_pb2.PlanAcceptance, "PLAN_ACCEPTANCE_"),
        (RouteOutcome, router_pb2.RouteOutcome, "ROUTE_OUTCOME_"),
    ],
)
def test_proto_enums_mirror_the_domain(domain: type, proto: object, prefix: str) -> None:
    """Each proto enum has exactly the domain enum's members by name, plus _UNSPECIFIED."""
    names = {f"{prefix}{member.name}" for member in domain}  # type: ignore[attr-defined]
    assert set(proto.keys()) == names | {f"{prefix}UNSPECIFIED"}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Explained:
    model: ExplainedModel
    excluded: tuple[Exclusion, ...] = ()


def _plan(status: SolveStatus, objective: int | None) -> Plan:
    explained = _Explained(ExplainedModel(0, 0, (), (), None, False))
    return Plan("o1", status, objective, objective, (), (), explained, "v1", "test", 0.25)


def test_plan_json_keeps_a_zero_objective() -> None:
    """An objective of 0 prints, with the proto's field names and zero-valued fields."""
    data = plan_to_json(_plan(SolveStatus.OPTIMAL, 0), explain=ExplainLevel.NONE)
    assert data["objective"] == 0
    assert data["status"] == "SOLVE_STATUS_OPTIMAL"
    assert data["gap"] == 0
    assert data["shipments"] == []
    assert data["rule_version"] == "v1"
    assert data["solve_time"] == "0.250s"
    assert "explain" not in data


def test_plan_json_of_no_plan_has_no_objective() -> None:
    """An infeasible plan has no objective or bound (absent, not 0); FULL adds the model."""
    data = plan_to_json(_plan(SolveStatus.INFEASIBLE, None), explain=ExplainLevel.FULL)
    assert "objective" not in data
    assert "bound" not in data
    assert data["explain"]["model"]["ship_complete"] is False


@pytest.mark.parametrize(
    ("top_k", "explain", "expected"),
    [(0, False, 0), (1, False, 0), (0, True, 1), (1, True, 1), (2, False, 1), (4, True, 3)],
)
def test_alternatives_wanted_counts_the_plan_and_the_runner_up(
    top_k: int, explain: bool, expected: int
) -> None:
    """top_k counts the plan itself; explain asks for the runner-up at least."""
    assert alternatives_wanted(top_k, explain=explain) == expected


def test_request_carries_top_k_and_counterfactual_nodes() -> None:
    """A valid top_k and known node ids reach the engine's arguments, in the order asked."""
    request = router_pb2.PlanOrderRequest(
        order=order_to_proto(order(("A", 1))), top_k=3, counterfactual_node_ids=["east", "west"]
    )
    args = plan_order_args_from_proto(request, NETWORK)
    assert args.alternatives == 2
    assert args.counterfactual_node_ids == ("east", "west")


def test_bad_explanation_fields_are_reported_with_the_order_s() -> None:
    """Bad top_k and node ids are reported together with the order's own violations."""
    msg = order_to_proto(order(("A", 1)))
    msg.lines[0].quantity = 0
    request = router_pb2.PlanOrderRequest(
        order=msg, top_k=-2, counterfactual_node_ids=["west", "", "ghost"]
    )
    with pytest.raises(InvalidArgumentError) as caught:
        plan_order_args_from_proto(request, NETWORK)
    assert [v.field for v in caught.value.violations] == [
        "order.lines[0].quantity",
        "top_k",
        "counterfactual_node_ids[1]",
        "counterfactual_node_ids[2]",
    ]


def test_plan_json_has_alternatives_and_counterfactuals() -> None:
    """Alternatives and counterfactuals print in currency units.

    An unpriceable node's objective and delta are absent, not 0; a counterfactual cut
    short carries its bound and gap; with none asked for, both lists are empty.
    """
    backorder = Unfulfilled("l1", "A", 1, UnfulfilledReason.BACKORDER_CHEAPER)
    plan = replace(
        _plan(SolveStatus.OPTIMAL, 12_500),
        alternatives=(Alternative(60_000, (), (backorder,)),),
        counterfactuals=(
            Counterfactual("west", SolveStatus.OPTIMAL, 20_000, 7_500, "proven optimal"),
            Counterfactual("east", SolveStatus.INFEASIBLE, None, None, "excluded: ..."),
            Counterfactual("mid", SolveStatus.FEASIBLE, 40_000, 27_500, "stopped", bound=30_000),
        ),
    )
    data = plan_to_json(plan, explain=ExplainLevel.NONE)
    assert data["alternatives"] == [
        {
            "objective": 6.0,
            "shipments": [],
            "unfulfilled": [
                {
                    "line_id": "l1",
                    "sku": "A",
                    "quantity": 1,
                    "reason": "UNFULFILLED_REASON_BACKORDER_CHEAPER",
                }
            ],
        }
    ]
    west, east, mid = data["counterfactuals"]
    assert (west["objective"], west["delta"], west["status"]) == (2.0, 0.75, "SOLVE_STATUS_OPTIMAL")
    assert "objective" not in east and "delta" not in east and "bound" not in east
    assert (mid["status"], mid["objective"], mid["bound"]) == ("SOLVE_STATUS_FEASIBLE", 4.0, 3.0)
    assert mid["gap"] == 0.25
    assert east["status"] == "SOLVE_STATUS_INFEASIBLE" and east["detail"] == "excluded: ..."

    empty = plan_to_json(_plan(SolveStatus.OPTIMAL, 0), explain=ExplainLevel.NONE)
    assert empty["alternatives"] == [] and empty["counterfactuals"] == []


@pytest.mark.parametrize("seconds", [7 * 24 * 3600 + 1, 315_576_000_000])
def test_route_order_ttl_is_capped_at_seven_days(seconds: int):
    """A ttl over 7 days (up to the largest Duration) is INVALID_ARGUMENT on ``ttl``."""
    from google.protobuf import duration_pb2

    from router.service.convert import route_order_args_from_proto

    scenario = build_small_scenario()
    request = router_pb2.RouteOrderRequest(
        request_id="r1",
        order=order_to_proto(order(("A", 1))),
        ttl=duration_pb2.Duration(seconds=seconds),
    )
    with pytest.raises(InvalidArgumentError) as error:
        route_order_args_from_proto(request, scenario.network)
    assert [v.field for v in error.value.violations] == ["ttl"]
    request.ttl.CopyFrom(duration_pb2.Duration(seconds=7 * 24 * 3600))
    assert route_order_args_from_proto(request, scenario.network).ttl_s == 7 * 24 * 3600
