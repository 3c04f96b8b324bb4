"""The route class of the sales API: domain errors → problem+json, the SQLite write lock,
idempotency keys and the hot-route fast path (`hot_route`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import (
    Annotated,
    Any,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from fastapi import Request, Response, params
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError

from sales.domain import DomainError
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, bearer_user
from service_defaults.bounds import (
    json_body_guard,
)
from service_defaults.errors import ProblemError


def to_problem(exc: DomainError) -> ProblemError:
    ext = dict(exc.extensions)
    field = ext.get("field")
    if field and "errors" not in ext:
        ext["errors"] = [{"field": field, "reason": exc.detail or exc.title}]
    return ProblemError(exc.status, exc.code, exc.title, exc.detail, **ext)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _sqlite_write_lock(request: Request) -> asyncio.Lock | None:
    """The app's sale writer's lock for API write transactions (`SaleWriter.write_lock`: SQLite
    only, chosen with the writer in `create_app`), for a write method; else None."""
    if request.method not in WRITE_METHODS:
        return None
    writer = getattr(request.app.state, "sale_writer", None)
    return None if writer is None else writer.write_lock


Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def hot_route(endpoint: Endpoint) -> Endpoint:
    """Marks a high-traffic endpoint whose parameters are exactly a pydantic body, the
    `Request` and a role-checked user (``Annotated[CurrentUser, Depends(require_roles(...))]``)
    and which returns a `Response`. :class:`DomainRoute` then serves its common case — a valid
    bearer token with the role, a JSON body that validates — by calling it directly, without
    FastAPI's dependency resolution; every other request takes the regular FastAPI path, so
    401/403/422 answers are exactly the usual ones."""
    _hot_signature(endpoint)  # fail at import time on an unsupported signature
    endpoint.__nexo_hot__ = True  # type: ignore[attr-defined]
    return endpoint


def _hot_signature(
    endpoint: Callable[..., Any],
) -> tuple[str, type[BaseModel], str, frozenset[str], str]:
    hints = get_type_hints(endpoint, include_extras=True)
    body = user = req = None
    model: type[BaseModel] | None = None
    roles: frozenset[str] = frozenset()
    for name in inspect.signature(endpoint).parameters:
        hint = hints[name]
        if hint is Request:
            req = name
        elif get_origin(hint) is Annotated:
            base, *meta = get_args(hint)
            dep = next((m for m in meta if isinstance(m, params.Depends)), None)
            wanted = getattr(dep.dependency, "roles", None) if dep is not None else None
            if base is not CurrentUser or not isinstance(wanted, frozenset):
                raise TypeError(f"{endpoint.__name__}: unsupported parameter {name}")
            user, roles = name, wanted
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            body, model = name, hint
        else:
            raise TypeError(f"{endpoint.__name__}: unsupported parameter {name}")
    if body is None or model is None or user is None or req is None:
        raise TypeError(f"{endpoint.__name__}: needs a body, the request and a user")
    return body, model, user, roles, req


def _hot_handler(
    endpoint: Callable[..., Awaitable[Response]],
    regular: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    body_name, model, user_name, roles, request_name = _hot_signature(endpoint)

    async def handler(request: Request) -> Response:
        user = bearer_user(request, roles)
        if user is None:
            return await regular(request)
        ctype = request.headers.get("content-type")
        if ctype is None or not (
            ctype == "application/json" or ctype.startswith("application/json;")
        ):
            return await regular(request)
        raw = await request.body()  # cached on the request: the regular path reads it again
        try:
            body = model.model_validate(json.loads(raw), from_attributes=True)
        except (ValueError, RecursionError):  # the regular path answers 400 / 422
            return await regular(request)
        return await endpoint(**{body_name: body, user_name: user, request_name: request})

    return handler


class DomainRoute(APIRoute):
    """Maps domain exceptions raised by a route to problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        if getattr(self.endpoint, "__nexo_hot__", False):
            original = _hot_handler(self.endpoint, original)
        # inside the SQLite write lock
        lookup_in_route = getattr(self.endpoint, "__nexo_key_lookup__", False)
        original = idempotency.idempotent(original, lookup_in_route=lookup_in_route)

        async def handler(request: Request) -> Response:
            try:
                lock = _sqlite_write_lock(request)
                if lock is None:
                    return await original(request)
                async with lock:
                    return await original(request)
            except DomainError as exc:
                raise to_problem(exc) from exc
            except OperationalError as exc:
                if "locked" not in str(exc.orig).lower():
                    raise
                problem = ProblemError(
                    503,
                    "BASE_DE_DATOS_OCUPADA",
                    "Base de datos ocupada",
                    "La base de datos está ocupada; reintenta en un momento.",
                )
                problem.headers = {"Retry-After": "1"}
                raise problem from exc
            except IntegrityError as exc:
                raise ProblemError(
                    409,
                    "CONFLICTO_DE_INTEGRIDAD",
                    "Conflicto con datos existentes",
                    "La operación viola una regla de integridad (duplicado o referencia).",
                ) from exc

        return json_body_guard(self, handler)
