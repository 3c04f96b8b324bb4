"""The problem+json answers of every operation, documented once, centrally.

`document_problems` rewrites a generated OpenAPI document so that each operation lists the
error statuses it can really answer, all with the one shared `Problem` schema (RFC 9457 as
written by :mod:`service_defaults.errors`), instead of FastAPI's ``{"detail": [...]}`` 422.
Routes add what only they answer (e.g. 412 on ``If-Match``) with ``responses=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from service_defaults.errors import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA_NAME = "Problem"
PROBLEM_REF = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM_SCHEMA_NAME,
    "type": "object",
    "description": "RFC 9457 problem details; extra members depend on the problem `code`.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": ["string", "null"]},
        "instance": {"type": ["string", "null"]},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

SERVICE_STATUSES_ANY = (503,)
"""What any operation of a service can answer (its database or broker unreachable)."""
SERVICE_STATUSES_INPUT = (400, 422)
"""Operations with parameters or a body: malformed input, failed validation."""
SERVICE_STATUSES_SECURED = (401, 403)
SERVICE_STATUSES_DOMAIN = (404, 409)
"""Secured (domain) operations: an entity that does not exist, a state conflict."""
SERVICE_STATUSES_BODY = (413, 415)


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For a route's ``responses=``: ``responses=problem_responses(412)``."""
    return {status: problem_response(status) for status in statuses}


def operations(schema: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                yield path, method, operation


def _set_problem(operation: dict[str, Any], status: int) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    existing = responses.get(str(status))
    if existing is None or status == 422:  # FastAPI's 422 is {"detail": [...]}: never sent
        responses[str(status)] = problem_response(status)
        return
    existing.setdefault("content", {})[PROBLEM_CONTENT_TYPE] = {"schema": {"$ref": PROBLEM_REF}}


def statuses_for_service_operation(method: str, operation: Mapping[str, Any]) -> set[int]:
    statuses = set(SERVICE_STATUSES_ANY)
    has_body = "requestBody" in operation
    if operation.get("parameters") or has_body:
        statuses.update(SERVICE_STATUSES_INPUT)
    if operation.get("security"):
        statuses.update(SERVICE_STATUSES_SECURED)
        statuses.update(SERVICE_STATUSES_DOMAIN)
    if has_body:
        statuses.update(SERVICE_STATUSES_BODY)
    if method in WRITE_METHODS and operation.get("security"):
        statuses.add(409)  # Idempotency-Key reused with another body, integrity conflicts
    return statuses


def add_problem_schema(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA_NAME] = PROBLEM_SCHEMA
    text = str(schema.get("paths", {}))
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        if f"/{name}'" not in text:
            schemas.pop(name, None)


def _parameter(operation: Mapping[str, Any], where: str, name: str) -> Mapping[str, Any] | None:
    for param in operation.get("parameters", []):
        if param.get("in") == where and str(param.get("name", "")).lower() == name:
            return param
    return None


def _document_conventions(operation: dict[str, Any]) -> None:
    """What follows from the shared conventions of the routes' parameters: ``If-None-Match``
    may answer 304, ``If-Match`` 412 (stale), ``formato=csv`` a ``text/csv`` body."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if _parameter(operation, "header", "if-none-match") is not None:
        responses.setdefault("304", {"description": "Not Modified (the ETag still matches)"})
    if _parameter(operation, "header", "if-match") is not None:
        _set_problem(operation, 412)
    formato = _parameter(operation, "query", "formato")
    if formato is not None and "csv" in str(formato.get("schema", {})):
        for status, response in responses.items():
            if status.startswith("2") and "content" in response:
                response["content"]["text/csv"] = {"schema": {"type": "string"}}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add each operation's problem+json answers (in place; returns `schema`)."""
    for _path, method, operation in operations(schema):
        for status in sorted(statuses_for_service_operation(method, operation)):
            _set_problem(operation, status)
        _document_conventions(operation)
    add_problem_schema(schema)
    return schema
