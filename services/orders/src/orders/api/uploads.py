"""Routes of the CSV upload of request items (§B.4.7); its product lookup (by clave and name)
is `GET /productos` of `orders.api.catalogue`.

Upload → preview → save: ``POST /cargas-csv`` takes the file as the request body (``text/csv``,
the legacy bytes as they are) and answers the first preview page; the upload is held for its
user (``GET /cargas-csv/{id}`` pages it, 25 lines a page) until ``POST
/cargas-csv/{id}/guardar`` creates the request with its items, or ``DELETE`` discards it. The
error lines are logged only on save and read with ``GET /solicitudes/{id}/errores-carga``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from orders import queries
from orders.api.common import Lector, Paginado, Session, Solicitante, actor, config
from orders.api.schemas import (
    CargaGuardada,
    CargaGuardarCreate,
    CargaPublic,
    ErroresCarga,
)
from orders.application import uploads
from orders.domain import csv_upload as csvu
from service_defaults.bounds import Int32
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)

_CSV_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "The CSV file as it is (utf-8 with or without BOM, latin-1 or cp1252): columns "
            "CLAVE, CANTIDAD SOLICITADA and optionally FOLIO."
        ),
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("text/csv", "application/octet-stream")
        },
    }
}

Vista = Annotated[Literal["items", "errores"], Query()]
Limit = Annotated[Int32, Query(ge=1, le=csvu.PAGE_SIZE)]
Offset = Annotated[Int32, Query(ge=0)]


@router.post(
    "/cargas-csv",
    status_code=201,
    tags=["solicitudes"],
    response_model=CargaPublic,
    openapi_extra=_CSV_BODY,
)
async def cargar_csv(request: Request, session: Session, user: Solicitante) -> dict[str, Any]:
    """Parse the file and hold it for the preview (nothing is logged until the save)."""
    data = await request.body()
    async with unit_of_work_for(request, session):
        carga = await uploads.cargar_csv(session, data, actor(user))
        out = uploads.vista_previa(carga, "items", csvu.PAGE_SIZE, 0)
    return out


@router.get("/cargas-csv/{id_carga}", tags=["solicitudes"], response_model=CargaPublic)
async def vista_previa_carga(
    id_carga: uuid.UUID,
    session: Session,
    user: Solicitante,
    vista: Vista = "items",
    limit: Limit = csvu.PAGE_SIZE,
    offset: Offset = 0,
) -> dict[str, Any]:
    carga = await uploads.obtener_carga(session, id_carga, actor(user))
    return uploads.vista_previa(carga, vista, limit, offset)


@router.post(
    "/cargas-csv/{id_carga}/guardar",
    status_code=201,
    tags=["solicitudes"],
    response_model=CargaGuardada,
)
async def guardar_carga(
    id_carga: uuid.UUID,
    body: CargaGuardarCreate,
    request: Request,
    session: Session,
    user: Solicitante,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        errores = len((await uploads.obtener_carga(session, id_carga, actor(user))).errores)
        creada = await uploads.guardar_carga(
            session,
            id_carga,
            institucion_id=body.id_institucion,
            almacen_destino_id=body.id_almacen_destino,
            fecha_entrega_programada=body.fecha_entrega_programada,
            folio_pedido=body.folio_pedido,
            observaciones=body.observaciones,
            actor=actor(user),
            config=config(request),
        )
        out = await queries.solicitud_out(session, creada.solicitud)
    out["advertencias"] = creada.advertencias
    out["errores_registrados"] = errores
    return out


@router.delete(
    "/cargas-csv/{id_carga}", status_code=204, tags=["solicitudes"], response_class=Response
)
async def descartar_carga(
    id_carga: uuid.UUID, request: Request, session: Session, user: Solicitante
) -> Response:
    async with unit_of_work_for(request, session):
        await uploads.descartar_carga(session, id_carga, actor(user))
    return Response(status_code=204)


@router.get(
    "/solicitudes/{id_solicitud}/errores-carga", tags=["solicitudes"], response_model=ErroresCarga
)
async def errores_carga(
    id_solicitud: uuid.UUID, session: Session, user: Lector, pagina: Paginado
) -> dict[str, Any]:
    """The request's CSV error log (one row per refused line), by line number."""
    return await uploads.errores_de_solicitud(session, id_solicitud, pagina.limit, pagina.offset)
