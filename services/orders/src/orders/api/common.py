"""What every router of the orders API shares: roles, the route class mapping domain errors to
problem+json, the role dependencies, the actor/config/commit helpers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.application import common
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.bounds import json_body_guard
from service_defaults.deps import get_runtime, get_session
from service_defaults.errors import ProblemError

SOLICITANTE = d.ROLE_SOLICITANTE


VALIDADOR = d.ROLE_VALIDADOR


ALMACENISTA = d.ROLE_ALMACENISTA


SUPERVISOR = d.ROLE_SUPERVISOR


ADMINISTRADOR_LOCAL = d.ADMINISTRADOR_LOCAL


ROLES = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, ADMINISTRADOR_LOCAL)


"""Roles defined by the orders service."""


LECTURA = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, "ops")


TITLES = {
    "FOLIO_DUPLICADO": "Folio de pedido duplicado",
    "YA_SURTIDA": "La propuesta ya fue surtida",
    "LOTE_NO_ELEGIBLE": "Lote no elegible",
    "CADUCIDAD_MINIMA": "Caducidad mínima no cumplida",
    "PRODUCTO_NO_COINCIDE": "El lote es de otro producto",
    "EXCEDE_APROBADO": "Excede la cantidad aprobada",
    "STOCK_INSUFICIENTE": "Existencia insuficiente",
    "APROBADA_EXCEDE_SOLICITADA": "Aprobada mayor que solicitada",
    "JUSTIFICACION_REQUERIDA": "Justificación requerida",
    "PROPUESTA_NO_REVISADA": "Propuesta no revisada",
}


def to_problem(exc: d.DomainError) -> ProblemError:
    ext = dict(exc.extensions)
    field = ext.get("field")
    if field and "errors" not in ext:
        ext["errors"] = [{"field": field, "reason": exc.detail}]
    title = TITLES.get(exc.code, exc.code.replace("_", " ").capitalize())
    return ProblemError(exc.status, exc.code, title, exc.detail, **ext)


class DomainRoute(APIRoute):
    """Maps domain exceptions raised by a route to problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = idempotency.idempotent(super().get_route_handler())

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except d.DomainError as exc:
                raise to_problem(exc) from exc
            except IntegrityError as exc:
                raise ProblemError(
                    409,
                    "CONFLICTO_DE_INTEGRIDAD",
                    "Conflicto con datos existentes",
                    "La operación viola una regla de integridad (duplicado o referencia).",
                ) from exc

        return json_body_guard(self, handler)


Session = Annotated[AsyncSession, Depends(get_session)]


Lector = Annotated[CurrentUser, Depends(require_roles(*LECTURA))]


Solicitante = Annotated[CurrentUser, Depends(require_roles(SOLICITANTE))]


Validador = Annotated[CurrentUser, Depends(require_roles(VALIDADOR))]


Almacen_ = Annotated[CurrentUser, Depends(require_roles(ALMACENISTA, SUPERVISOR))]


Picker = Annotated[CurrentUser, Depends(require_roles(ALMACENISTA))]


Supervisor = Annotated[CurrentUser, Depends(require_roles(SUPERVISOR))]


Cancelador = Annotated[CurrentUser, Depends(require_roles(SOLICITANTE, SUPERVISOR))]


Operaciones = Annotated[CurrentUser, Depends(require_roles(SUPERVISOR, "ops"))]


def actor(user: CurrentUser) -> common.Actor:
    return common.Actor(sub=user.sub, roles=frozenset(user.roles))


def config(request: Request) -> common.OrdersConfig:
    return common.config_from_settings(request.app.state.settings)


async def commit(request: Request, session: AsyncSession) -> None:
    """Commit (deferred to the key row's transaction on a keyed request), then wake the relay."""
    runtime = get_runtime(request)
    await idempotency.commit(session, *([runtime.wake_relay] if runtime is not None else []))


def csv_response(rows: Sequence[dict[str, Any]], name: str) -> Response:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


Formato = Annotated[Literal["json", "csv"], Query()]
