from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from service_defaults import context
from service_defaults.app import build_service_app
from service_defaults.auth import CurrentUser, bearer_user, issue_token, require_roles
from service_defaults.db import create_engine
from service_defaults.errors import ProblemError
from service_defaults.settings import ServiceSettings

PROBLEM = "application/problem+json"


class HttpSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SDTEST_", extra="ignore", frozen=True)
    service_name: str = "sdtest"


class Item(BaseModel):
    cantidad: int
    nombre: str


class Order(BaseModel):
    items: list[Item]


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/orders")
    async def create(order: Order) -> dict[str, int]:
        return {"n": len(order.items)}

    @router.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(409, "already-done", "Already done", "twice", thing_id="t-1")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @router.get("/ids")
    async def ids() -> dict[str, str | None]:
        return {
            "request_id": context.request_id.get(),
            "correlation_id": context.correlation_id.get(),
            "traceparent": context.traceparent.get(),
        }

    @router.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    @router.get("/secure")
    async def secure(
        user: CurrentUser = Depends(require_roles("sales.vendedor")),
    ) -> dict[str, str]:
        return {"sub": user.sub, "name": user.name}

    return router


def make_app(tmp_path: Path, **overrides: object) -> tuple[FastAPI, HttpSettings]:
    settings = HttpSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'sd.db'}", env="test", **overrides
    )
    return build_service_app(settings, title="sd test", routers=[_router()]), settings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = make_app(tmp_path)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app, raise_app_exceptions=False),
            base_url="http://test",
        ) as c,
    ):
        c.app = app  # type: ignore[attr-defined]
        yield c


async def test_validation_error_names_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/orders", json={"items": [{"cantidad": "x", "nombre": "a"}]})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "https://nexo.dev/problems/validation-error"
    assert body["code"] == "validation-error"
    assert body["status"] == 422
    assert body["instance"] == "/orders"
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(body)
    fields = [e["field"] for e in body["errors"]]
    assert "body.items.0.cantidad" in fields
    assert all(e["reason"] for e in body["errors"])


async def test_path_param_validation(client: httpx.AsyncClient) -> None:
    r = await client.get("/things/abc")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "path.thing_id"


async def test_not_found_and_method_not_allowed(client: httpx.AsyncClient) -> None:
    r = await client.get("/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "https://nexo.dev/problems/not-found"
    r = await client.delete("/orders")
    assert r.status_code == 405
    assert r.json()["code"] == "method-not-allowed"


async def test_problem_error_with_extensions(client: httpx.AsyncClient) -> None:
    r = await client.get("/conflict")
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "already-done"
    assert body["type"] == "https://nexo.dev/problems/already-done"
    assert body["detail"] == "twice"
    assert body["thing_id"] == "t-1"


async def test_500_without_stack_trace(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "internal-error"
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert r.headers["x-request-id"]


async def test_request_id_propagation(client: httpx.AsyncClient) -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = await client.get("/ids", headers={"X-Request-ID": "req-123", "traceparent": tp})
    body = r.json()
    assert r.headers["x-request-id"] == "req-123"
    assert body["request_id"] == "req-123"
    assert body["correlation_id"] == "req-123"  # defaults to the request id
    assert r.headers["x-correlation-id"] == "req-123"
    assert body["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    r = await client.get("/ids", headers={"X-Correlation-ID": "corr-9"})
    assert r.json()["correlation_id"] == "corr-9"
    generated = r.headers["x-request-id"]
    assert generated
    assert generated != "req-123"
    parts = r.headers["traceparent"].split("-")
    assert [len(p) for p in parts] == [2, 32, 16, 2]


async def test_metrics_endpoint(client: httpx.AsyncClient) -> None:
    await client.get("/things/7")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "nexo_http_requests_total" in r.text
    assert 'route="/things/{thing_id}"' in r.text
    assert "nexo_http_request_duration_seconds_bucket" in r.text


async def test_health_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    r = await client.get("/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_ready_503_when_database_down(client: httpx.AsyncClient) -> None:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    good = app.state.engine
    bad = create_engine("postgresql+asyncpg://u:p@127.0.0.1:1/db")
    app.state.engine = bad
    try:
        r = await client.get("/health/ready")
    finally:
        app.state.engine = good
        await bad.dispose()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "failing"
    assert body["checks"]["database"]["status"] == "failing"


async def test_ready_503_when_registered_check_fails(client: httpx.AsyncClient) -> None:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    app.state.ready_checks["messaging"] = lambda: {"ok": False, "lag": 3}
    try:
        r = await client.get("/health/ready")
    finally:
        del app.state.ready_checks["messaging"]
    assert r.status_code == 503
    assert r.json()["checks"]["messaging"]["lag"] == 3


async def test_openapi_declares_bearer(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/secure"]["get"]["security"] == [{"bearerAuth": []}]


# ------------------------------------------------------------------------------------ auth


async def test_auth_missing_token_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/secure")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "unauthorized"


async def test_auth_invalid_and_expired_401(client: httpx.AsyncClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    r = await client.get("/secure", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    expired = issue_token(settings, "u1", ["sales.vendedor"], ttl=timedelta(minutes=-5))
    r = await client.get("/secure", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert r.json()["detail"] == "token expired"
    forged = jwt.encode(
        {"sub": "x", "exp": 9999999999, "roles": ["admin"]},
        "another-secret-that-is-long-enough-0123456789",
    )
    r = await client.get("/secure", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_auth_roles(client: httpx.AsyncClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    other = issue_token(settings, "u2", ["orders.solicitante"])
    r = await client.get("/secure", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["required_roles"] == ["sales.vendedor"]
    ok = issue_token(settings, "u3", ["sales.vendedor"], name="Vendedora")
    r = await client.get("/secure", headers={"Authorization": f"Bearer {ok}"})
    assert r.status_code == 200
    assert r.json() == {"sub": "u3", "name": "Vendedora"}
    admin = issue_token(settings, "root", ["admin"])
    r = await client.get("/secure", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200


async def test_auth_rs256(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app, _ = make_app(
        tmp_path,
        jwt_algorithm="RS256",
        jwt_public_key=public_pem,
        jwt_issuer="https://idp.example",
        jwt_audience="nexo",
    )
    claims = {
        "sub": "rs",
        "roles": ["sales.vendedor"],
        "exp": 9999999999,
        "iss": "https://idp.example",
        "aud": "nexo",
    }
    token = jwt.encode(claims, key, algorithm="RS256")
    wrong_aud = jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256")
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as c,
    ):
        r = await c.get("/secure", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert r.json()["sub"] == "rs"
        r = await c.get("/secure", headers={"Authorization": f"Bearer {wrong_aud}"})
        assert r.status_code == 401


async def test_freeze_gc_freezes_start_up_objects_only_when_asked(tmp_path: Path) -> None:
    settings = HttpSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'sd.db'}", env="test")
    gc.unfreeze()
    try:
        plain = build_service_app(settings, title="sd test", routers=[_router()])
        async with LifespanManager(plain):
            assert gc.get_freeze_count() == 0
        frozen = build_service_app(settings, title="sd test", routers=[_router()], freeze_gc=True)
        async with LifespanManager(frozen):
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() == 0  # unfrozen at shutdown
    finally:
        gc.unfreeze()  # hand the objects back to the collector for the rest of the session


async def test_bearer_user_is_the_dependency_without_its_errors(tmp_path: Path) -> None:
    app, settings = make_app(tmp_path)
    seen: list[CurrentUser | None] = []

    @app.get("/who")
    async def who(request: Request) -> dict[str, bool]:
        seen.append(bearer_user(request, frozenset({"sales.vendedor"})))
        return {"ok": True}

    vend = issue_token(settings, "u1", ["sales.vendedor"])
    other = issue_token(settings, "u2", ["orders.solicitante"])
    admin = issue_token(settings, "u3", ["admin"])
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as c,
    ):
        for header in (
            f"Bearer {vend}",
            f"bearer {admin}",
            f"Bearer {other}",
            "Bearer not-a-token",
            f"Basic {vend}",
            None,
        ):
            headers = {"Authorization": header} if header else {}
            assert (await c.get("/who", headers=headers)).status_code == 200
    assert [u.sub if u else None for u in seen] == ["u1", "u3", None, None, None, None]
