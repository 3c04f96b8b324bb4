"""What every router of the orders API shares: roles, the role dependencies, the actor and
config helpers (the route class and the unit of work are `service_defaults.routing` / `.uow`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders import queries
from orders.application import common
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.bounds import DomainDate, Int32, SafeText
from service_defaults.deps import get_session

SOLICITANTE = d.ROLE_SOLICITANTE


VALIDADOR = d.ROLE_VALIDADOR


ALMACENISTA = d.ROLE_ALMACENISTA


SUPERVISOR = d.ROLE_SUPERVISOR


ADMINISTRADOR_LOCAL = d.ADMINISTRADOR_LOCAL


ROLES = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, ADMINISTRADOR_LOCAL)


"""Roles defined by the orders service."""


LECTURA = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, "ops")


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


def paginado(
    limit: Annotated[Int32, Query(ge=1, le=500)] = 50,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> queries.Paginado:
    return queries.Paginado(limit, offset)


Paginado = Annotated[queries.Paginado, Depends(paginado)]
"""The `limit` / `offset` query parameters of every paged list (answered as `schemas.Pagina`)."""


def filtro_pedidos(
    desde: Annotated[DomainDate | None, Query()] = None,
    hasta: Annotated[DomainDate | None, Query()] = None,
    id_institucion: Annotated[Int32 | None, Query(gt=0)] = None,
    folio: Annotated[SafeText | None, Query(max_length=100)] = None,
) -> queries.FiltroPedidos:
    if desde and hasta and desde > hasta:
        raise d.DomainError("RANGO_INVALIDO", "desde debe ser ≤ hasta.", field="desde")
    return queries.FiltroPedidos(desde, hasta, id_institucion, folio)


FiltroPedidos = Annotated[queries.FiltroPedidos, Depends(filtro_pedidos)]
"""The request / proposal list filters: `desde` / `hasta` (business date of the request),
`id_institucion`, `folio` (internal or external)."""
