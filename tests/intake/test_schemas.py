from __future__ import annotations

import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from router.intake.schemas import (
    DURATION_SCHEMA,
    INT32,
    REF_PREFIX,
    TIMESTAMP_SCHEMA,
    field_schema,
    integer_pattern,
    message_schema,
    openapi_components,
    request_messages,
)
from router.service import limits
from router.v1 import router_pb2 as pb

COMPONENTS = openapi_components()


def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator of component ``name`` that resolves refs to the other components."""
    root = {**COMPONENTS[name], "components": {"schemas": COMPONENTS}}
    cls = jsonschema.Draft202012Validator
    cls.check_schema(root)
    return cls(root, format_checker=cls.FORMAT_CHECKER)


def errors(name: str, instance: Any) -> list[str]:
    return [e.message for e in validator(name).iter_errors(instance)]


def all_messages() -> list[Descriptor]:
    found: list[Descriptor] = []
    pending = list(pb.DESCRIPTOR.message_types_by_name.values())
    while pending:
        descriptor = pending.pop()
        found.append(descriptor)
        pending.extend(descriptor.nested_types)
    return found


def plan_order_request() -> pb.PlanOrderRequest:
    request = pb.PlanOrderRequest(explain=True, top_k=3, counterfactual_node_ids=["DC-01"])
    request.time_limit.FromMilliseconds(1500)
    order = request.order
    order.order_id = "SO-1"
    order.created_at.FromJsonString("2026-11-20T15:00:00Z")
    order.service = "ground"
    order.ship_to.CopyFrom(
        pb.ShipTo(latitude=41.88, longitude=-87.63, country="US", postal_code="60602")
    )
    order.allow_partial = False  # optional: present even when false
    order.max_shipments = 2
    order.lines.add(line_id="1", sku="SKU-00001", quantity=2, unit_price=19.99)
    order.lines.add(line_id="2", sku="SKU-00007", quantity=1)
    return request


def test_every_router_message_has_a_component():
    names = {d.full_name.removeprefix("router.v1.") for d in all_messages()}
    assert names == set(COMPONENTS)
    for schema in COMPONENTS.values():
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert not schema.get("required")  # proto3 has no required fields


def test_every_ref_names_a_component():
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    every = refs(COMPONENTS)
    assert every
    for target in every:
        assert target.startswith(REF_PREFIX)
        assert target.removeprefix(REF_PREFIX) in COMPONENTS


def test_a_plan_order_request_in_proto_json_validates():
    body = json_format.MessageToDict(plan_order_request())
    assert "timeLimit" in body and "createdAt" in body["order"]  # the JSON names
    assert errors("PlanOrderRequest", body) == []


def test_the_schema_refuses_what_the_json_parser_refuses():
    body = json_format.MessageToDict(plan_order_request())
    for bad in (
        {**body, "unknownField": 1},
        {**body, "explain": "yes"},
        {**body, "topK": 2**31},
        {**body, "timeLimit": "1.5 seconds"},
        {**body, "order": {**body["order"], "lines": {"line_id": "1"}}},
    ):
        assert errors("PlanOrderRequest", bad), bad
        with pytest.raises(json_format.ParseError):
            json_format.ParseDict(bad, pb.PlanOrderRequest())


def test_the_json_a_server_writes_validates_for_every_response():
    plan = pb.Plan(order_id="SO-1", status=pb.SOLVE_STATUS_OPTIMAL, objective=12.5)
    plan.solve_time.FromMilliseconds(3)
    plan.shipments.add(node_id="DC-01", ship_date="2026-11-20").lines.add(quantity=2)
    plan.unfulfilled.add(line_id="2", reason=pb.UNFULFILLED_REASON_NO_STOCK)
    body = json_format.MessageToDict(pb.PlanOrderResponse(plan=plan))
    assert errors("PlanOrderResponse", body) == []
    snapshot = pb.ApplyStockSnapshotRequest(feed="erp", sequence=2**40, node_id="DC-01")
    as_json = json_format.MessageToDict(snapshot)
    assert as_json["sequence"] == str(2**40)
    assert errors("ApplyStockSnapshotRequest", as_json) == []
    assert errors("ApplyStockSnapshotRequest", {**as_json, "sequence": 7}) == []


def scalar(message: str, field: str) -> dict[str, Any]:
    """The schema of ``field`` (its JSON name) in the component of ``message``."""
    properties: dict[str, dict[str, Any]] = COMPONENTS[message]["properties"]
    return properties[field]


def test_each_scalar_kind_follows_the_proto3_json_mapping():
    """A response message's fields: the proto3 JSON types, with no limits of the wire."""
    assert scalar("ShipmentLine", "quantity") == {
        "type": "integer",
        "minimum": INT32[0],
        "maximum": INT32[1],
    }
    sequence = scalar("ApplyStockDeltaRequest", "sequence")
    assert {alt["type"] for alt in sequence["anyOf"]} == {"string", "integer"}
    assert scalar("Shipment", "cost") == {"type": "number"}
    assert scalar("Order", "shipComplete") == {"type": "boolean"}
    assert scalar("Plan", "orderId") == {"type": "string"}
    assert scalar("Plan", "status") == {
        "type": "string",
        "enum": [v.name for v in pb.SolveStatus.DESCRIPTOR.values],
    }
    assert scalar("Order", "shipTo") == {"$ref": "#/components/schemas/ShipTo"}
    assert scalar("Plan", "shipments") == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Shipment"},
    }
    assert scalar("Order", "createdAt") == TIMESTAMP_SCHEMA
    assert scalar("Plan", "solveTime") == DURATION_SCHEMA


def test_request_fields_state_the_wire_limits():
    """Each string of a request has its maxLength, each list its maxItems, from limits."""
    assert scalar("OrderLine", "quantity") == {"type": "integer", "minimum": 1, "maximum": 10**6}
    assert scalar("OrderLine", "unitPrice") == {"type": "number", "minimum": 0, "maximum": 1e5}
    assert scalar("Order", "orderId") == {"type": "string", "maxLength": limits.ID_BYTES}
    assert scalar("GetStockRequest", "skus") == {
        "type": "array",
        "items": {"type": "string", "maxLength": limits.ID_BYTES},
        "maxItems": limits.FILTER_ITEMS,
    }
    requests = request_messages()
    for descriptor in all_messages():
        limited = descriptor.full_name in requests
        for field in descriptor.fields:
            schema = field_schema(field, limited=limited)
            if field.is_repeated:
                assert schema.get("maxItems") == (limits.max_items(field) if limited else None)
                schema = schema["items"]
            if field.type == field.TYPE_STRING:
                assert schema.get("maxLength") == (limits.max_bytes(field) if limited else None)


def test_durations_match_what_json_format_accepts():
    for good in ("1.5s", "0s", "-2s", "3.000000001s"):
        assert errors("Plan", {"solveTime": good}) == []
        json_format.ParseDict({"solveTime": good}, pb.Plan())
    for bad in ("1.5", "s", "1.5 s", "1m"):
        assert errors("Plan", {"solveTime": bad}), bad


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"timeLimit": "0s"}, True),
        ({"timeLimit": "0.000000000s"}, True),
        ({"timeLimit": "-1s"}, True),
        ({"timeLimit": "0.000000001s"}, False),
        ({"timeLimit": "315576000000.5s"}, False),
        ({"timeLimit": "315576000001s"}, True),
        ({"order": {"maxShipments": 0}}, True),
        ({"order": {"maxShipments": 1}}, False),
        ({"order": {"maxShipments": 1001}}, True),
        ({"topK": 11}, True),
        ({"counterfactualNodeIds": ["n"] * 21}, True),
        ({"order": {"lines": [{"sku": "S" * 129}]}}, True),
    ],
)
def test_the_schema_states_the_bounds_the_service_checks(body: dict[str, Any], refused: bool):
    """``timeLimit: 0s`` and ``maxShipments: 0``, refused by the service, break the schema."""
    assert bool(errors("PlanOrderRequest", body)) is refused


@pytest.mark.parametrize(
    ("ttl", "refused"),
    [("604800s", False), ("604800.000s", False), ("604800.5s", True), ("604801s", True),
     ("0.5s", False), ("00010s", False), ("0s", True)],
)  # fmt: skip
def test_a_ttl_is_above_0s_and_at_most_7_days(ttl: str, refused: bool):
    """RouteOrderRequest.ttl's pattern: the service's (0, 604800 s], leading zeros allowed."""
    assert bool(errors("RouteOrderRequest", {"ttl": ttl})) is refused
    json_format.ParseDict({"ttl": ttl}, pb.RouteOrderRequest())  # the parser reads them all


def test_integer_patterns_match_exactly_their_range():
    """integer_pattern(low, high) matches the decimal integers low..high and nothing else."""
    for low, high in [(0, 0), (0, 10), (1, 9), (7, 1234), (9, 10), (1, 604_799)]:
        pattern = re.compile(f"^({integer_pattern(low, high)})$")
        for n in range(0, 2 * high + 20):
            assert bool(pattern.match(str(n))) is (low <= n <= high), (low, high, n)
        assert not pattern.match(f"0{low}")  # no leading zeros: duration patterns add them


def test_a_oneof_allows_at_most_one_of_its_fields():
    assert errors("TestDriveRequest", {"document": "name: x"}) == []
    assert errors("TestDriveRequest", {"version": 3}) == []
    assert errors("TestDriveRequest", {}) == []
    assert errors("TestDriveRequest", {"document": "name: x", "version": 3})
    # proto3 optional fields are synthetic oneofs: not exclusive with anything
    order = message_schema(pb.Order.DESCRIPTOR)
    assert "not" not in order and "allowPartial" in order["properties"]
