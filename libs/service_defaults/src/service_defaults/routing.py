"""The route class every service's routers use (:class:`DomainRoute`): domain errors →
problem+json, idempotency keys, the app's write lock, integrity conflicts → 409, and the
hot-route fast path (:func:`hot_route`)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

from fastapi import Request, Response, params
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError

from service_defaults import idempotency
from service_defaults.auth import CurrentUser, bearer_user
from service_defaults.bounds import json_body_guard
from service_defaults.errors import DomainError, ProblemError, domain_problem

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def write_lock(request: Request) -> asyncio.Lock | None:
    """The lock API write transactions take turns on (``app.state.write_lock``: set in
    `create_app` when the database needs it — SQLite — else None), for a write method."""
    if request.method not in WRITE_METHODS:
        return None
    lock: asyncio.Lock | None = getattr(request.app.state, "write_lock", None)
    return lock


def integrity_conflict() -> ProblemError:
    return ProblemError(
        409,
        "CONFLICTO_DE_INTEGRIDAD",
        "Conflicto con datos existentes",
        "La operación viola una regla de integridad (duplicado o referencia).",
    )


def database_busy() -> ProblemError:
    problem = ProblemError(
        503,
        "BASE_DE_DATOS_OCUPADA",
        "Base de datos ocupada",
        "La base de datos está ocupada; reintenta en un momento.",
    )
    problem.headers = {"Retry-After": "1"}
    return problem


def hot_route(endpoint: Endpoint) -> Endpoint:
    """Marks a high-traffic endpoint whose parameters are exactly a pydantic body, the
    `Request` and a role-checked user (``Annotated[CurrentUser, Depends(require_roles(...))]``)
    and which returns a `Response`. :class:`DomainRoute` then serves its common case — a valid
    bearer token with the role, a JSON body that validates — by calling it directly, without
    FastAPI's dependency resolution; every other request takes the regular FastAPI path, so
    401/403/422 answers are exactly the usual ones."""
    hot_signature(endpoint)  # fail at import time on an unsupported signature
    endpoint.__nexo_hot__ = True  # type: ignore[attr-defined]
    return endpoint


def hot_signature(
    endpoint: Callable[..., Any],
) -> tuple[str, type[BaseModel], str, frozenset[str], str]:
    """(body parameter, body model, user parameter, roles, request parameter) of a hot route."""
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


def hot_handler(endpoint: Callable[..., Awaitable[Response]], regular: Handler) -> Handler:
    """`regular` with the direct call of a :func:`hot_route` endpoint in front."""
    body_name, model, user_name, roles, request_name = hot_signature(endpoint)

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
    """Route class of the services' routers: a :class:`DomainError` raised by a route answers
    problem+json (:meth:`problem`); idempotency keys; API writes take turns on the app's
    :func:`write_lock`; :func:`hot_route` endpoints get the fast path.

    `integrity_conflict`: a database IntegrityError answers 409 CONFLICTO_DE_INTEGRIDAD.
    `database_busy`: SQLite's "database is locked" answers 503 BASE_DE_DATOS_OCUPADA.
    """

    integrity_conflict: ClassVar[bool] = True
    database_busy: ClassVar[bool] = False

    def problem(self, request: Request, exc: DomainError) -> ProblemError:
        """The answer to `exc` (services override it to add members)."""
        return domain_problem(exc)

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()
        if getattr(self.endpoint, "__nexo_hot__", False):
            original = hot_handler(self.endpoint, original)
        # inside the write lock
        lookup_in_route = getattr(self.endpoint, "__nexo_key_lookup__", False)
        original = idempotency.idempotent(original, lookup_in_route=lookup_in_route)
        integrity = self.integrity_conflict
        busy = self.database_busy

        async def handler(request: Request) -> Response:
            try:
                lock = write_lock(request)
                if lock is None:
                    return await original(request)
                async with lock:
                    return await original(request)
            except DomainError as exc:
                raise self.problem(request, exc) from exc
            except OperationalError as exc:
                if not busy or "locked" not in str(exc.orig).lower():
                    raise
                raise database_busy() from exc
            except IntegrityError as exc:
                if not integrity:
                    raise
                raise integrity_conflict() from exc

        return json_body_guard(self, handler)
