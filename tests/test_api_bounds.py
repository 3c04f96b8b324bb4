"""Input that does not fit is a 4xx problem+json naming the field, never a 5xx (issue 14):
integers beyond their column, dates outside the domain's years, NUL in text, LIKE wildcards,
JSON nested too deeply, non-JSON bodies on JSON routes. Through the embedded gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_testing import app_client
from service_defaults.auth import issue_token
from service_defaults.bounds import MAX_JSON_DEPTH, json_depth_exceeds, like_contains
from service_defaults.openapi import operations

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        data_dir=tmp_path_factory.mktemp("bounds"),
        env="test",
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
    )
    token = issue_token(settings, "bounds", ["admin"])
    app = create_app(settings)
    async with app_client(app, "http://gateway", headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def _problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f.endswith(field) for f in fields), body
    return body


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/sales/materiales/9223372036854775808", "path.id_material"),
        ("/api/sales/materiales/2147483648", "path.id_material"),
        ("/api/evidence/gpus/99999999999999999999", "path.id_gpu"),
        ("/api/orders/lotes/2147483648", "path.id_lote"),
    ],
)
async def test_path_id_beyond_int32_is_422(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    _problem(await client.get(path), 422, field)


async def test_query_and_body_integers_beyond_int32(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/evidence/gpus", params={"id_ot": 2**31})
    _problem(r, 422, "id_ot")
    r = await client.post("/api/sales/materiales/1/reabasto", json={"cantidad": 2**63, "nota": "x"})
    _problem(r, 422, "cantidad")


@pytest.mark.parametrize("fecha", ["1999-12-31", "2101-01-01"])
async def test_daily_close_outside_domain_years_is_422(
    client: httpx.AsyncClient, fecha: str
) -> None:
    r = await client.post(
        "/api/evidence/reportes-diarios/cierre", json={"id_ot": 1, "fecha": fecha, "cerrado": True}
    )
    _problem(r, 422, "fecha")


async def test_nul_in_text_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/sales/clientes", json={"nombre": "Ana\u0000"})
    _problem(r, 422, "nombre")
    _problem(await client.get("/api/sales/productos", params={"q": "a\x00"}), 422, "q")


async def test_like_wildcards_match_literally(client: httpx.AsyncClient) -> None:
    for nombre in ("Acrílico 100% claro", "Acrílico negro"):
        r = await client.post("/api/sales/productos", json={"nombre": nombre})
        assert r.status_code == 201, r.text
    r = await client.get("/api/sales/productos", params={"q": "%"})
    assert r.status_code == 200, r.text
    assert [p["nombre"] for p in r.json()] == ["Acrílico 100% claro"]
    r = await client.get("/api/sales/productos", params={"q": "_"})
    assert r.json() == []


@pytest.mark.parametrize("path", ["/api/sales/ventas", "/api/sales/precios/preview"])
async def test_deep_json_is_400_on_hot_routes(client: httpx.AsyncClient, path: str) -> None:
    deep = "[" * 1000 + "]" * 1000
    r = await client.post(path, content=deep, headers={"Content-Type": "application/json"})
    _problem(r, 400, "body")


async def test_deep_json_is_400_on_regular_routes(client: httpx.AsyncClient) -> None:
    deep = '{"nombre": ' + "[" * 1000 + "]" * 1000 + "}"
    r = await client.post(
        "/api/orders/instituciones", content=deep, headers={"Content-Type": "application/json"}
    )
    _problem(r, 400, "body")


@pytest.mark.parametrize("path", ["/api/sales/clientes", "/api/orders/instituciones"])
async def test_text_plain_body_is_415(client: httpx.AsyncClient, path: str) -> None:
    r = await client.post(path, content=b'{"nombre": "x"}', headers={"Content-Type": "text/plain"})
    body = _problem(r, 415, "body")
    assert body["code"] == "unsupported-media-type"


def test_like_contains_escapes_wildcards() -> None:
    assert like_contains("100%_a\\B") == "%100\\%\\_a\\\\b%"


def test_json_depth() -> None:
    assert not json_depth_exceeds(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    # brackets inside strings do not nest
    assert not json_depth_exceeds(b'["' + b"[" * 100 + b'"]')
    assert not json_depth_exceeds(b'["\\"' + b"[" * 100 + b'"]')


def test_merged_openapi_documents_problem_answers(tmp_path: Path) -> None:
    spec = create_app(GatewaySettings(data_dir=tmp_path, env="test")).openapi()
    schemas = spec["components"]["schemas"]
    assert "Problem" in schemas
    assert not [n for n in schemas if n.endswith(("HTTPValidationError", ".Problem"))]
    ops = list(operations(spec))
    assert len(ops) > 100
    for path, method, op in ops:
        responses = op["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM], (method, path, status)
        if path.startswith("/api/") and "/health/" not in path:
            assert {"401", "403", "429", "503"} <= set(responses), (method, path)
        if "requestBody" in op and path.startswith("/api/"):
            assert {"400", "413", "415", "422"} <= set(responses), (method, path)


def test_every_integer_input_is_bounded(tmp_path: Path) -> None:
    """Each integer a client can send (parameter or body, at any depth) has a documented
    minimum and maximum that fit a 64-bit column — the OpenAPI tells the bounds it enforces."""
    spec = create_app(GatewaySettings(data_dir=tmp_path, env="test")).openapi()
    components = spec["components"]["schemas"]
    unbounded: list[str] = []

    def walk(node: Any, where: str, seen: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, where, seen)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], f"{where}>{name}", seen | {name})
            return
        if node.get("type") == "integer" and "enum" not in node:
            low = node.get("minimum", node.get("exclusiveMinimum"))
            high = node.get("maximum", node.get("exclusiveMaximum"))
            if low is None or high is None or high > 2**63 - 1 or low < -(2**63):
                unbounded.append(where)
        for key, value in node.items():
            walk(value, f"{where}.{key}" if key == "properties" else where, seen)

    for path, method, op in operations(spec):
        if path.startswith("/ops/"):
            continue  # the gateway's ops API: bounded by the gateway-edge part of issue 14
        for param in op.get("parameters", []):
            walk(param.get("schema", {}), f"{method} {path} {param['name']}", frozenset())
        body = op.get("requestBody", {}).get("content", {})
        walk(body, f"{method} {path} body", frozenset())
    assert not unbounded, "\n".join(sorted(set(unbounded)))
