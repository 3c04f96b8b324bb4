"""Shared pieces of the evidence routes: roles, the route class mapping DomainError to
problem+json, dependencies (session, writer, actor, configuration), commit and value formatting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application import common
from evidence.domain import Actor, DomainError
from service_defaults import idempotency
from service_defaults.auth import CurrentUser
from service_defaults.bounds import json_body_guard
from service_defaults.deps import get_session
from service_defaults.errors import ProblemError

ROLE_RESIDENTE = d.ROLE_RESIDENTE


ROLE_REVISOR = d.ROLE_REVISOR


ROLE_SUPERVISOR = d.ROLE_SUPERVISOR


ROLE_FACTURACION = d.ROLE_FACTURACION


ROLES: tuple[str, ...] = d.ROLES
"""Roles defined by the evidence service (the gateway reuses them)."""


READERS = (*ROLES, "ops")


CAPTURE = (ROLE_RESIDENTE, ROLE_SUPERVISOR)


WORKFLOW = (ROLE_RESIDENTE, ROLE_REVISOR, ROLE_SUPERVISOR)


def to_problem(exc: DomainError) -> ProblemError:
    ext: dict[str, Any] = {k: jsonable(v) for k, v in exc.extensions.items()}
    if exc.field:
        ext["field"] = exc.field
        ext["errors"] = [{"field": exc.field, "reason": exc.detail}]
    return ProblemError(exc.status, exc.code, exc.title, exc.detail, **ext)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


SEED_EXITO_PATHS = ("guardar_estatus_gpu", "guardar_reportes_diarios_masiva")
"""Seed endpoints answering ``{exito, mensaje}``: their problems also carry both members."""


class DomainRoute(APIRoute):
    """Route class that turns a DomainError raised by a use case into a ProblemError."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = idempotency.idempotent(super().get_route_handler())

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                problem = to_problem(exc)
                if request.url.path.endswith(SEED_EXITO_PATHS):
                    problem.extensions |= {"exito": False, "mensaje": exc.detail}
                raise problem from None

        return json_body_guard(self, route)


Session = Annotated[AsyncSession, Depends(get_session)]


def writer_of(request: Request) -> BulkWriter:
    """The database's bulk writer, chosen once in `evidence.main.create_app`."""
    writer: BulkWriter = request.app.state.evidence_writer
    return writer


Writer = Annotated[BulkWriter, Depends(writer_of)]


def actor_of(user: CurrentUser) -> Actor:
    return Actor(user.sub, frozenset(user.roles))


def config_of(request: Request) -> common.EvidenceConfig:
    return common.config_from_settings(request.app.state.settings)


async def commit(request: Request, session: AsyncSession) -> None:
    """Commit (deferred to the key row's transaction on a keyed request), then wake the relay."""
    runtime = getattr(request.app.state, "runtime", None)
    await idempotency.commit(session, *([runtime.wake_relay] if runtime is not None else []))


def vol(value: Decimal | None) -> str | None:
    return None if value is None else d.format_volume(Decimal(value))


def money(value: Decimal) -> str:
    return str(d.money(Decimal(value)))


def iso(value: dt.datetime | None) -> str | None:
    v = common.aware(value)
    return v.isoformat() if v else None
