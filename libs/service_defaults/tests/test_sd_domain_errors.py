"""One DomainError base and one mapping to problem+json (`service_defaults.errors`), the route
class every service uses (`service_defaults.routing.DomainRoute`) and `hot_route`."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError

from service_defaults.auth import CurrentUser, require_roles
from service_defaults.errors import DomainError, domain_problem, install_error_handlers
from service_defaults.routing import DomainRoute, hot_route, hot_signature, write_lock


class Rejected(DomainError):
    status = 409
    code = "RECHAZADO"
    title = "Rechazado"


def test_domain_problem_carries_code_status_title_detail_and_members() -> None:
    exc = DomainError("SIN_STOCK", "no hay", status=409, title="Sin stock", total=Decimal("1.50"))
    problem = domain_problem(exc)
    assert (problem.status, problem.code, problem.title, problem.detail) == (
        409,
        "SIN_STOCK",
        "Sin stock",
        "no hay",
    )
    assert problem.extensions == {"total": "1.50"}


def test_a_field_adds_the_member_and_errors_after_the_other_members() -> None:
    problem = domain_problem(DomainError("X", "malo", field="cantidad", id_ot=7))
    assert list(problem.extensions) == ["id_ot", "field", "errors"]
    assert problem.extensions["errors"] == [{"field": "cantidad", "reason": "malo"}]


def test_a_field_among_the_members_keeps_its_place_and_reason_falls_back_to_title() -> None:
    exc = Rejected()
    exc.extensions = {"field": "total", "total": "3"}
    problem = domain_problem(exc)
    assert list(problem.extensions) == ["field", "total", "errors"]
    assert problem.extensions["errors"] == [{"field": "total", "reason": "Rechazado"}]
    assert (problem.status, problem.code, problem.detail) == (409, "RECHAZADO", None)


def test_class_defaults_apply_when_the_constructor_leaves_them() -> None:
    exc = Rejected(detail="ya")
    assert (exc.status, exc.code, exc.title, exc.detail, exc.field) == (
        409,
        "RECHAZADO",
        "Rechazado",
        "ya",
        None,
    )
    assert str(exc) == "RECHAZADO: ya"


class Body(BaseModel):
    n: int


Vendedor = Annotated[CurrentUser, Depends(require_roles("sales.vendedor"))]


def _app(route_class: type[DomainRoute] = DomainRoute) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.post("/rule")
    async def rule() -> None:
        raise Rejected(detail="dos veces", field="n", intento=2)

    @router.post("/integrity")
    async def integrity() -> None:
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    @router.post("/locked")
    async def locked() -> None:
        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    @router.post("/lock")
    async def lock(request: Request) -> dict[str, bool]:
        held = request.app.state.write_lock
        return {"locked": held is not None and held.locked()}

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)

    @app.get("/outside")
    async def outside() -> None:  # a plain route: the app's handler maps it the same way
        raise Rejected(detail="fuera")

    return app


async def _call(app: FastAPI, path: str, method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


async def test_route_class_answers_a_domain_error_with_its_problem() -> None:
    r = await _call(_app(), "/rule")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://nexo.dev/problems/RECHAZADO",
        "title": "Rechazado",
        "status": 409,
        "detail": "dos veces",
        "instance": "/rule",
        "code": "RECHAZADO",
        "intento": 2,
        "field": "n",
        "errors": [{"field": "n", "reason": "dos veces"}],
    }


async def test_a_domain_error_outside_the_route_class_gets_the_same_body() -> None:
    r = await _call(_app(), "/outside", "GET")
    assert r.status_code == 409
    assert r.json()["code"] == "RECHAZADO"
    assert r.json()["detail"] == "fuera"


async def test_integrity_error_is_409_unless_the_service_opts_out() -> None:
    r = await _call(_app(), "/integrity")
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICTO_DE_INTEGRIDAD")

    class NoIntegrity(DomainRoute):
        integrity_conflict = False

    assert (await _call(_app(NoIntegrity), "/integrity")).status_code == 500


async def test_database_locked_is_503_only_where_the_service_asks_for_it() -> None:
    class Busy(DomainRoute):
        database_busy = True

    r = await _call(_app(Busy), "/locked")
    assert (r.status_code, r.json()["code"]) == (503, "BASE_DE_DATOS_OCUPADA")
    assert r.headers["retry-after"] == "1"
    assert (await _call(_app(), "/locked")).status_code != 409


async def test_writes_run_inside_the_app_write_lock() -> None:
    app = _app()
    app.state.write_lock = asyncio.Lock()
    r = await _call(app, "/lock")
    assert r.json() == {"locked": True}
    assert not app.state.write_lock.locked()


def test_write_lock_is_for_write_methods_only() -> None:
    app = FastAPI()
    app.state.write_lock = lock = asyncio.Lock()

    def request(method: str) -> Request:
        return Request({"type": "http", "method": method, "app": app, "headers": []})

    assert write_lock(request("POST")) is lock
    assert write_lock(request("GET")) is None


def test_hot_route_needs_a_body_the_request_and_a_role_checked_user() -> None:
    async def good(body: Body, request: Request, user: Vendedor) -> Response:
        raise NotImplementedError

    async def no_user(body: Body, request: Request) -> Response:
        raise NotImplementedError

    async def extra(body: Body, request: Request, user: Vendedor, other: int) -> Response:
        raise NotImplementedError

    assert hot_signature(good) == ("body", Body, "user", frozenset({"sales.vendedor"}), "request")
    assert hot_route(good) is good
    assert getattr(good, "__nexo_hot__", False)
    for endpoint in (no_user, extra):
        with pytest.raises(TypeError):
            hot_route(endpoint)


def test_problem_members_are_plain_json() -> None:
    problem = domain_problem(DomainError("X", "y", montos=[Decimal("2.5")], info={"a": Decimal(1)}))
    assert json.loads(json.dumps(problem.extensions)) == {"montos": ["2.5"], "info": {"a": "1"}}
