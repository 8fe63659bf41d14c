from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from router.intake.schemas import (
    DURATION_SCHEMA,
    INT32,
    REF_PREFIX,
    message_schema,
    openapi_components,
)
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
    properties: dict[str, dict[str, Any]] = message_schema(
        pb.DESCRIPTOR.message_types_by_name[message]
    )["properties"]
    return properties[field]


def test_each_scalar_kind_follows_the_proto3_json_mapping():
    assert scalar("OrderLine", "quantity") == {
        "type": "integer",
        "minimum": INT32[0],
        "maximum": INT32[1],
    }
    sequence = scalar("ApplyStockDeltaRequest", "sequence")
    assert {alt["type"] for alt in sequence["anyOf"]} == {"string", "integer"}
    assert scalar("OrderLine", "unitPrice") == {"type": "number"}
    assert scalar("Order", "shipComplete") == {"type": "boolean"}
    assert scalar("Order", "orderId") == {"type": "string"}
    assert scalar("Plan", "status") == {
        "type": "string",
        "enum": [v.name for v in pb.SolveStatus.DESCRIPTOR.values],
    }
    assert scalar("GetStockRequest", "skus") == {"type": "array", "items": {"type": "string"}}
    assert scalar("Order", "shipTo") == {"$ref": "#/components/schemas/ShipTo"}
    assert scalar("Plan", "shipments") == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Shipment"},
    }
    assert scalar("Order", "createdAt") == {"type": "string", "format": "date-time"}
    assert scalar("PlanOrderRequest", "timeLimit") == DURATION_SCHEMA


def test_durations_match_what_json_format_accepts():
    for good in ("1.5s", "0s", "-2s", "3.000000001s"):
        assert errors("PlanOrderRequest", {"timeLimit": good}) == []
        json_format.ParseDict({"timeLimit": good}, pb.PlanOrderRequest())
    for bad in ("1.5", "s", "1.5 s", "1m"):
        assert errors("PlanOrderRequest", {"timeLimit": bad}), bad


def test_a_oneof_allows_at_most_one_of_its_fields():
    assert errors("TestDriveRequest", {"document": "name: x"}) == []
    assert errors("TestDriveRequest", {"version": 3}) == []
    assert errors("TestDriveRequest", {}) == []
    assert errors("TestDriveRequest", {"document": "name: x", "version": 3})
    # proto3 optional fields are synthetic oneofs: not exclusive with anything
    order = message_schema(pb.Order.DESCRIPTOR)
    assert "not" not in order and "allowPartial" in order["properties"]
