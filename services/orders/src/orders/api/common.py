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
from orders.documents import excel
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


Reintentador = Annotated[CurrentUser, Depends(require_roles(VALIDADOR, SUPERVISOR))]


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


Formato = Annotated[Literal["json", "csv", "xlsx"], Query()]
"""`json` (the response model), or the rows as a `csv` or an Excel (`xlsx`) attachment."""

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

EXPORTABLE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
"""The OpenAPI answer of a list or report that `formato=csv|xlsx` exports."""

EXPORT_MAX = 10_000
"""The most rows a list export holds; a larger list must be narrowed by its filters."""


def exportar(rows: Sequence[dict[str, Any]], name: str, formato: str) -> Response:
    """The rows as a CSV or an Excel attachment named `name`."""
    if formato == "csv":
        return csv_response(rows, name)
    return Response(
        excel.render_tabla(name, rows),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def pagina_de_exportacion() -> queries.Paginado:
    """The one page an export reads: up to `EXPORT_MAX` rows plus one, to tell it is too long."""
    return queries.Paginado(EXPORT_MAX + 1, 0)


def exportables(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` read with `pagina_de_exportacion`, refused when there are more than
    `EXPORT_MAX`."""
    if len(rows) > EXPORT_MAX:
        raise d.DomainError(
            "EXPORTACION_EXCEDE_LIMITE",
            f"La exportación excede {EXPORT_MAX} filas; acote los filtros.",
            status=413,
            limite=EXPORT_MAX,
        )
    return rows


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
