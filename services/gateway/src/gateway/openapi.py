"""One OpenAPI document for the gateway: every service's paths under ``/api/<svc>``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from service_defaults.openapi import (
    PROBLEM_SCHEMA_NAME,
    WRITE_METHODS,
    add_problem_schema,
    problem_response,
)

GATEWAY_STATUSES = (401, 429, 503)
"""What the gateway itself may answer for any ``/api/<svc>`` operation: no or a bad token
(before the service sees the request), rate limited, service not ready."""
GATEWAY_WRITE_STATUSES = (400, 409, 422)
"""Writes: a malformed ``Idempotency-Key``, the key still running or reused with another body."""
GATEWAY_PROXY_STATUSES = (502, 504)
"""Proxy mode: the service could not be reached or did not answer in time."""

REF_PREFIX = "#/components/schemas/"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _rename_refs(node: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value[len(REF_PREFIX) :]
                out[key] = REF_PREFIX + mapping.get(name, name)
            else:
                out[key] = _rename_refs(value, mapping)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, mapping) for item in node]
    return node


def merge_openapi(
    gateway: dict[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    *,
    prefix_of: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Merge each service schema into `gateway`: paths get ``/api/<svc>`` prefixed, component
    schemas are renamed ``<svc>.<Name>`` (refs rewritten) so equal names cannot collide,
    operation ids get ``<svc>_`` prefixed and untagged operations are tagged ``<svc>``."""
    merged = copy.deepcopy(gateway)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components: dict[str, Any] = merged.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    for service, spec in services.items():
        prefix = (prefix_of or {}).get(service, f"/api/{service}")
        svc_schemas: Mapping[str, Any] = spec.get("components", {}).get("schemas", {})
        mapping = {
            name: name if name == PROBLEM_SCHEMA_NAME else f"{service}.{name}"
            for name in svc_schemas
        }
        for name, schema in svc_schemas.items():
            schemas[mapping[name]] = _rename_refs(schema, mapping)
        for scheme, definition in spec.get("components", {}).get("securitySchemes", {}).items():
            components.setdefault("securitySchemes", {}).setdefault(scheme, definition)
        for path, item in spec.get("paths", {}).items():
            new_item = _rename_refs(item, mapping)
            for method, operation in new_item.items():
                if method not in HTTP_METHODS or not isinstance(operation, dict):
                    continue
                if "operationId" in operation:
                    operation["operationId"] = f"{service}_{operation['operationId']}"
                operation["tags"] = [f"{service}: {t}" for t in operation.get("tags", [])] or [
                    service
                ]
                _document_gateway_problems(method, operation)
            paths[f"{prefix}{path}"] = new_item
        tags.append({"name": service, "description": spec.get("info", {}).get("title", "")})
    add_problem_schema(merged)
    return merged


def _document_gateway_problems(method: str, operation: dict[str, Any]) -> None:
    statuses = {*GATEWAY_STATUSES, *GATEWAY_PROXY_STATUSES}
    if "requestBody" in operation:
        statuses.add(413)
    if method in WRITE_METHODS:
        statuses.update(GATEWAY_WRITE_STATUSES)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses.setdefault(str(status), problem_response(status))
