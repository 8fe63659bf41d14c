"""The gateway's OpenAPI document: proto message schemas and ``google.rpc.Status`` errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from router.intake import schemas
from router.intake.batch import CSV_COLUMNS
from router.service import limits
from router.v1 import router_pb2


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": schemas.REF_PREFIX + name}


def body(name: str, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is the message ``name``."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": ref(name)}},
        }
    }


def batch_body() -> dict[str, Any]:
    """``openapi_extra`` for the batch route: JSON lines, CSV or a multipart upload."""
    jsonl = {"type": "string", "description": "one proto3 JSON Order per line"}
    csv_text = {"type": "string", "description": "CSV: " + ", ".join(CSV_COLUMNS)}
    upload = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": jsonl},
                "text/csv": {"schema": csv_text},
                "multipart/form-data": {"schema": upload},
            },
        }
    }


_ERROR_STATUSES = {
    400: "INVALID_ARGUMENT or FAILED_PRECONDITION: bad input; fieldViolations name each field",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS (Idempotency-Key reused with another body) or ABORTED",
    405: "UNIMPLEMENTED: no such method on this path",
    413: "INVALID_ARGUMENT: body larger than --max-body-bytes, or a batch of more than "
    "--max-batch-orders orders",
    415: "INVALID_ARGUMENT: a batch Content-Type other than JSON lines, CSV or multipart",
    429: "more than --max-in-flight requests at once; Retry-After: 1",
    503: "UNAVAILABLE: the gRPC service (or the geocoder) is down; Retry-After: 1",
    504: "DEADLINE_EXCEEDED",
}


def responses(name: str) -> dict[int | str, dict[str, Any]]:
    """A route's responses: ``name`` on 200, the error shape on every error status."""
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": ref(name)}}}
    }
    for status, text in _ERROR_STATUSES.items():
        out[status] = {
            "description": text,
            "content": {"application/json": {"schema": ref("ErrorResponse")}},
        }
    return out


_LOCAL_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object",
        "description": "Every error body: google.rpc.Status in JSON.",
        "required": ["error"],
        "properties": {"error": ref("Error")},
    },
    "Error": {
        "type": "object",
        "description": "google.rpc.Status in JSON, its code being the HTTP status.",
        "required": ["code", "message", "status", "details"],
        "properties": {
            "code": {"type": "integer", "description": "HTTP status"},
            "message": {"type": "string"},
            "status": {"type": "string", "description": "gRPC status code name"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": True,
                },
            },
        },
    },
    "BatchResult": {
        "type": "object",
        "description": "One order's outcome: the PlanOrderResponse or RouteOrderResponse "
        "fields (plan, reservation, attempts) or error.",
        "required": ["orderId", "httpStatus"],
        "properties": {
            "orderId": {"type": "string"},
            "httpStatus": {"type": "integer"},
            "plan": ref("Plan"),
            "reservation": ref("Reservation"),
            "attempts": {"type": "integer"},
            "error": ref("Error"),
        },
    },
    "BatchResponse": {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": ref("BatchResult")}},
    },
}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document: FastAPI's, with the gateway's real bodies and errors.

    Request and response bodies are the proto messages' JSON schemas
    (:mod:`router.intake.schemas`), errors the ``google.rpc.Status`` shape; FastAPI's own
    422 validation schemas go (the gateway answers 400), and so do the ``null`` branches
    of optional parameters. Built once and kept on the app.
    """
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                _drop_null(parameter)
                _limit(parameter)
                if parameter["name"] == "Idempotency-Key":
                    # as idempotency_key checks it; required except for batches
                    parameter["required"] = not path.endswith(":batch")
                    parameter["schema"] = {
                        **parameter["schema"],
                        "type": "string",
                        "minLength": 1,
                        "pattern": r"\S",
                    }
    components.update(schemas.openapi_components())
    components.update(_LOCAL_SCHEMAS)
    app.openapi_schema = spec
    return spec


_PARAMETER_FIELDS = {
    "Idempotency-Key": router_pb2.RouteOrderRequest.DESCRIPTOR.fields_by_name["request_id"],
    "reservation_id": router_pb2.ConfirmReservationRequest.DESCRIPTOR.fields_by_name[
        "reservation_id"
    ],
    "decision_id": router_pb2.GetDecisionRequest.DESCRIPTOR.fields_by_name["decision_id"],
    "sku": router_pb2.GetStockRequest.DESCRIPTOR.fields_by_name["skus"],
    "node_id": router_pb2.GetStockRequest.DESCRIPTOR.fields_by_name["node_ids"],
}
"""The request field each parameter becomes: its wire limits are the parameter's."""


def _limit(parameter: dict[str, Any]) -> None:
    """State the wire's limits of the field a parameter becomes (maxLength, maxItems)."""
    field = _PARAMETER_FIELDS.get(parameter["name"])
    if field is None:
        return
    schema = parameter.setdefault("schema", {})
    if field.is_repeated:
        schema["maxItems"] = limits.max_items(field)
        schema["items"] = {**schema.get("items", {}), "maxLength": limits.max_bytes(field)}
    else:
        schema["maxLength"] = limits.max_bytes(field)


def _drop_null(parameter: dict[str, Any]) -> None:
    """Strip the ``null`` branch FastAPI gives optional parameters: absent is not null."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    parameter["schema"] = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
