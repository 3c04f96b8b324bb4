"""The merged OpenAPI document the gateway serves describes every successful answer: each 2xx
response of each operation (but 204/304, which have no body) has a content schema that is a
``$ref`` or has a ``type`` — the gateway's own routes and every service's, under ``/api/<svc>``.
The ops summary, answered as a pre-rendered JSON response, is checked against its model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.main import create_app
from gateway.ops_schemas import OpsSummary
from gateway.settings import SERVICES, GatewaySettings
from nexo_testing import app_client
from service_defaults.messaging import new_memory_broker

from .gateway_testkit import bearer

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
NO_BODY = {"204", "304"}
SERVICE_PREFIXES = tuple(f"/api/{service}/" for service in SERVICES)


def _described(schema: Any) -> bool:
    """A ``$ref``, a ``type``, or a union (``anyOf``/``oneOf``) whose every branch is one."""
    if not isinstance(schema, dict):
        return False
    if "$ref" in schema or "type" in schema:
        return True
    branches = schema.get("anyOf") or schema.get("oneOf")
    return bool(branches) and all(_described(b) for b in branches)


def undescribed_answers(spec: dict[str, Any]) -> list[str]:
    """``METHOD path status`` of every 2xx answer (bar 204/304) whose content has no schema
    with a ``$ref`` or a ``type`` (or that declares no content at all)."""
    missing: list[str] = []
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2") or status in NO_BODY:
                    continue
                content = response.get("content") or {}
                if not content or not all(_described(m.get("schema")) for m in content.values()):
                    missing.append(f"{method.upper()} {path} {status}")
    return missing


def test_the_check_catches_an_answer_without_a_schema() -> None:
    spec = {
        "paths": {
            "/a": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}},
            "/b": {"post": {"responses": {"201": {"description": "no content declared"}}}},
            "/c": {"delete": {"responses": {"204": {"description": "no body"}}}},
            "/d": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/x"}},
                                "text/csv": {"schema": {"title": "no type"}},
                            }
                        }
                    }
                }
            },
            "/e": {"get": {"responses": {"200": {"content": {"text/html": {"schema": {}}}}}}},
            "/f": {
                "put": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"type": "object"}}}}
                    }
                }
            },
            "/g": {
                "post": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "anyOf": [
                                            {"$ref": "#/components/x"},
                                            {"$ref": "#/components/y"},
                                        ]
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "/h": {
                "post": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"anyOf": [{"$ref": "#/components/x"}, {}]}
                                }
                            }
                        }
                    }
                }
            },
        }
    }
    assert undescribed_answers(spec) == [
        "GET /a 200",
        "POST /b 201",
        "GET /d 200",
        "GET /e 200",
        "POST /h 200",
    ]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document as the embedded gateway builds it (no I/O: the services are not started)."""
    app = create_app(GatewaySettings(data_dir=tmp_path_factory.mktemp("openapi-var"), env="test"))
    document: dict[str, Any] = app.openapi()
    return document


def test_the_document_has_the_gateway_and_every_service(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert "/health/ready" in paths
    assert "/ops/api/summary" in paths
    for prefix in SERVICE_PREFIXES:
        assert any(p.startswith(prefix) for p in paths), prefix


def test_every_gateway_answer_has_a_schema(spec: dict[str, Any]) -> None:
    own = {p: item for p, item in spec["paths"].items() if not p.startswith(SERVICE_PREFIXES)}
    assert len(own) >= 10  # index, health, dev login, the ops API and board
    assert undescribed_answers({"paths": own}) == []


def test_every_answer_of_the_merged_document_has_a_schema(spec: dict[str, Any]) -> None:
    missing = undescribed_answers(spec)
    assert missing == [], f"{len(missing)} 2xx answers without a schema: {missing}"


def test_the_event_stream_declares_its_media_type(spec: dict[str, Any]) -> None:
    answer = spec["paths"]["/ops/api/events/stream"]["get"]["responses"]["200"]
    assert answer["content"] == {"text/event-stream": {"schema": {"type": "string"}}}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        GatewaySettings(data_dir=tmp_path / "var", env="test"),
        memory_broker=new_memory_broker(),
    )
    async with app_client(app, "http://gateway") as client:
        yield client


async def test_the_ops_summary_is_what_its_model_describes(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/ops/api/summary", headers=bearer(["ops"]))
    assert r.status_code == 200, r.text
    body = r.json()
    summary = OpsSummary.model_validate(body)  # every key the model requires, of its type
    assert set(summary.health.services) == set(SERVICES)
    # and nothing the model leaves out
    assert summary.model_dump(mode="json", exclude_unset=True) == body
