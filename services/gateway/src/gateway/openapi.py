"""One OpenAPI document for the gateway: every service's paths under ``/api/<svc>``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

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
        mapping = {name: f"{service}.{name}" for name in svc_schemas}
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
            paths[f"{prefix}{path}"] = new_item
        tags.append({"name": service, "description": spec.get("info", {}).get("title", "")})
    return merged
