"""The edge: authentication and per-route roles, Idempotency-Key, rate limit, body limit, CORS,
request id / traceparent propagation (embedded mode, real services)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.gate import ServiceGate
from gateway.idempotency import MemoryIdempotencyStore
from gateway.main import create_app
from gateway.policy import ServicePolicy
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from nexo_testing import app_client
from sales.api import ADMINISTRADOR, VENDEDOR

from .gateway_testkit import bearer

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        data_dir=tmp_path_factory.mktemp("edge-var"),
        env="test",
        max_body_bytes=64 * 1024,
        cors_origins=["http://dashboard.example"],
    )
    app = create_app(settings)
    async with app_client(app, "http://gateway") as client:
        yield client


async def test_no_token_is_401_problem(gw: httpx.AsyncClient) -> None:
    r = await gw.get("/api/sales/clientes")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "unauthorized"
    bad = await gw.get("/api/sales/clientes", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    assert bad.headers["content-type"] == PROBLEM


async def test_wrong_role_is_403_problem(gw: httpx.AsyncClient) -> None:
    r = await gw.get("/api/sales/clientes", headers=bearer(["orders.solicitante"]))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert set(r.json()["required_roles"]) == {VENDEDOR, ADMINISTRADOR}
    assert r.json()["denied_by"] == "gateway"
    ok = await gw.get("/api/sales/clientes", headers=bearer([VENDEDOR]))
    assert ok.status_code == 200, ok.text


async def test_per_route_roles_follow_the_service(gw: httpx.AsyncClient) -> None:
    # configuration changes are admin-only in sales: a vendedor is stopped at the edge
    r = await gw.put(
        "/api/sales/configuracion/tarifa",
        json={"tarifa_laser_minuto": "16.00"},
        headers=bearer([VENDEDOR]),
    )
    assert r.status_code == 403
    assert r.json()["required_roles"] == [ADMINISTRADOR]
    assert r.json()["denied_by"] == "gateway"
    # global admin passes everywhere (the service decides the rest)
    r = await gw.get("/api/sales/clientes", headers=bearer(["admin"]))
    assert r.status_code == 200


def test_policy_reads_every_service_route() -> None:
    from evidence.api import ROLES as EVIDENCE_ROLES

    policy = ServicePolicy.load("evidence")
    assert policy.roles == tuple(r.lower() for r in EVIDENCE_ROLES)
    assert any(rule.requirements for rule in policy.rules)
    scope = {"type": "http", "method": "GET", "path": "/gpus/grid", "root_path": ""}
    assert policy.required(scope, "/gpus/grid"), "the grid route needs a role"


async def test_health_and_docs_stay_public(gw: httpx.AsyncClient) -> None:
    assert (await gw.get("/api/sales/health/live")).status_code == 200
    assert (await gw.get("/api/sales/openapi.json")).status_code == 200


async def test_idempotent_post_five_concurrent_retries_one_effect(gw: httpx.AsyncClient) -> None:
    name = f"Cliente {uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    headers = {**bearer([VENDEDOR], sub="pos-1"), "Idempotency-Key": key}
    body = {"nombre": name, "telefono": "55 1234 5678"}

    responses = await asyncio.gather(
        *(gw.post("/api/sales/clientes", json=body, headers=headers) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1, "five identical answers"
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 4

    listed = await gw.get("/api/sales/clientes", params={"q": name}, headers=bearer([VENDEDOR]))
    assert [c["nombre"] for c in listed.json()] == [name], "exactly one client created"

    # a later retry replays too; another body under the same key is refused
    again = await gw.post("/api/sales/clientes", json=body, headers=headers)
    assert again.content == responses[0].content
    other = await gw.post("/api/sales/clientes", json={**body, "nombre": "x"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert other.json()["code"] == "idempotency-key-reused"
    # the key is scoped per client: another sub with the same key creates its own
    mine = await gw.post(
        "/api/sales/clientes",
        json={**body, "nombre": name + " b"},
        headers={**bearer([VENDEDOR], sub="pos-2"), "Idempotency-Key": key},
    )
    assert mine.status_code == 201
    assert mine.json()["id_cliente"] != responses[0].json()["id_cliente"]


async def test_body_limit_is_413_problem(gw: httpx.AsyncClient) -> None:
    big = {"nombre": "x" * (70 * 1024)}
    r = await gw.post("/api/sales/clientes", json=big, headers=bearer([VENDEDOR]))
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["max_bytes"] == 64 * 1024

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(70):
            yield b"x" * 1024

    r = await gw.post("/api/sales/clientes", content=chunks(), headers=bearer([VENDEDOR]))
    assert r.status_code == 413


async def test_request_id_and_traceparent_flow_through(gw: httpx.AsyncClient) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = await gw.get(
        "/api/sales/clientes",
        headers={**bearer([VENDEDOR]), "X-Request-ID": "edge-42", "traceparent": trace},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "edge-42"
    assert r.headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_cors_preflight(gw: httpx.AsyncClient) -> None:
    r = await gw.options(
        "/api/sales/clientes",
        headers={
            "Origin": "http://dashboard.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://dashboard.example"
    r = await gw.options(
        "/api/sales/clientes",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------- the layers on a tiny app


class Tiny:
    """A POST endpoint with a visible effect counter (slow, so retries overlap)."""

    def __init__(self) -> None:
        self.effects = 0
        self.fail_next = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await asyncio.sleep(0.1)  # simulated work, so the retries overlap with it
        if self.fail_next:
            self.fail_next = False
            status, payload = 500, {"error": "boom"}
        else:
            self.effects += 1
            status, payload = 201, {"effect": self.effects, "echo": json.loads(body or b"{}")}
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


def tiny_gate(tiny: Tiny, **settings: Any) -> ServiceGate:
    s = GatewaySettings(env="test", **settings)
    return ServiceGate(
        "tiny",
        tiny,
        s,
        ServicePolicy("tiny", None),
        RateLimiter(s.rate_limit_per_second, s.rate_limit_burst),
        MemoryIdempotencyStore(ttl=60),
    )


async def test_idempotency_layer_concurrent_and_failure_release() -> None:
    tiny = Tiny()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=tiny_gate(tiny)), base_url="http://t"
    ) as client:
        h = {**bearer(["x"]), "Idempotency-Key": "k1"}
        rs = await asyncio.gather(*(client.post("/do", json={"a": 1}, headers=h) for _ in range(5)))
        assert tiny.effects == 1
        assert {r.status_code for r in rs} == {201}
        assert len({r.content for r in rs}) == 1
        # a 5xx is not stored: the retry runs again
        tiny.fail_next = True
        h2 = {**bearer(["x"]), "Idempotency-Key": "k2"}
        first = await client.post("/do", json={"b": 1}, headers=h2)
        assert first.status_code == 500
        second = await client.post("/do", json={"b": 1}, headers=h2)
        assert second.status_code == 201
        assert tiny.effects == 2
        # different path, same key: separate scope
        other = await client.post("/other", json={"a": 1}, headers=h)
        assert other.status_code == 201
        assert tiny.effects == 3


async def test_rate_limit_429_with_retry_after() -> None:
    tiny = Tiny()
    gate = tiny_gate(tiny, rate_limit_per_second=0.5, rate_limit_burst=2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://t"
    ) as client:
        statuses = [
            (await client.get("/x", headers=bearer(["x"], sub="busy"))).status_code
            for _ in range(2)
        ]
        assert statuses == [201, 201]
        r = await client.get("/x", headers=bearer(["x"], sub="busy"))
        assert r.status_code == 429
        assert r.headers["content-type"] == PROBLEM
        assert int(r.headers["retry-after"]) >= 1
        # another client has its own bucket
        assert (await client.get("/x", headers=bearer(["x"], sub="calm"))).status_code == 201


def test_token_bucket_refills() -> None:
    limiter = RateLimiter(rate=2, burst=1)
    assert limiter.take("a", now=0.0) == 0.0
    assert limiter.take("a", now=0.1) == pytest.approx(0.4)
    assert limiter.take("a", now=0.6) == 0.0
    assert RateLimiter(rate=0, burst=1).take("a") == 0.0
