"""Routes of requests (solicitudes)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from orders import domain as d
from orders import queries
from orders.api.common import (
    EXPORTABLE,
    Cancelador,
    FiltroPedidos,
    Formato,
    Lector,
    Paginado,
    Reintentador,
    Session,
    Solicitante,
    Validador,
    actor,
    config,
    exportables,
    exportar,
    pagina_de_exportacion,
)
from orders.api.schemas import (
    FolioVerificado,
    MotivoIn,
    MotivoOpcionalIn,
    Pagina,
    PropuestaPublic,
    SolicitudCapturada,
    SolicitudCreate,
    SolicitudPublic,
    SolicitudResumen,
    SolicitudUpdate,
    ValidacionIn,
)
from orders.application import common, requests
from service_defaults.bounds import SafeText
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)


@router.post(
    "/solicitudes", status_code=201, tags=["solicitudes"], response_model=SolicitudCapturada
)
async def crear_solicitud(
    body: SolicitudCreate, request: Request, session: Session, user: Solicitante
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        creada = await requests.crear_solicitud(
            session,
            requests.NuevaSolicitud(
                institucion_id=body.id_institucion,
                almacen_destino_id=body.id_almacen_destino,
                fecha_entrega_programada=body.fecha_entrega_programada,
                items=[d.ItemCaptura(i.id_producto, i.cantidad_solicitada) for i in body.items],
                folio_pedido=body.folio_pedido,
                observaciones=body.observaciones,
            ),
            actor(user),
            config(request),
        )
        out = await queries.solicitud_out(session, creada.solicitud)
    out["advertencias"] = creada.advertencias
    return out


@router.get(
    "/solicitudes",
    tags=["solicitudes"],
    response_model=Pagina[SolicitudResumen],
    responses=EXPORTABLE,
)
async def listar_solicitudes(
    session: Session,
    user: Lector,
    pagina: Paginado,
    filtro: FiltroPedidos,
    estado: Annotated[d.EstadoSolicitud | None, Query()] = None,
    formato: Formato = "json",
) -> Any:
    if formato == "json":
        return await queries.listar_solicitudes(session, estado, filtro, pagina)
    todo = await queries.listar_solicitudes(session, estado, filtro, pagina_de_exportacion())
    return exportar(exportables(todo["items"]), "solicitudes", formato)


@router.get("/solicitudes/verificar-folio", tags=["solicitudes"], response_model=FolioVerificado)
async def verificar_folio(
    session: Session,
    user: Lector,
    folio: Annotated[SafeText, Query(min_length=1, max_length=100)],
    id_solicitud: Annotated[uuid.UUID | None, Query()] = None,
) -> dict[str, bool]:
    """Whether an external order folio already exists (case-insensitive), active or cancelled."""
    return await queries.verificar_folio(session, folio, id_solicitud)


@router.get("/solicitudes/{id_solicitud}", tags=["solicitudes"], response_model=SolicitudPublic)
async def detalle_solicitud(
    id_solicitud: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    return await queries.solicitud_out(session, await common.get_solicitud(session, id_solicitud))


@router.put("/solicitudes/{id_solicitud}", tags=["solicitudes"], response_model=SolicitudCapturada)
async def editar_solicitud(
    id_solicitud: uuid.UUID,
    body: SolicitudUpdate,
    request: Request,
    session: Session,
    user: Solicitante,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        editada = await requests.editar_solicitud(
            session,
            id_solicitud,
            requests.NuevaSolicitud(
                institucion_id=body.id_institucion,
                almacen_destino_id=body.id_almacen_destino,
                fecha_entrega_programada=body.fecha_entrega_programada,
                items=[d.ItemCaptura(i.id_producto, i.cantidad_solicitada) for i in body.items],
                folio_pedido=body.folio_pedido,
                observaciones=body.observaciones,
            ),
            actor(user),
            config(request),
            version=body.version,
        )
        out = await queries.solicitud_out(session, editada.solicitud)
    out["advertencias"] = editada.advertencias
    return out


@router.post(
    "/solicitudes/{id_solicitud}/validar", tags=["solicitudes"], response_model=SolicitudPublic
)
async def validar_solicitud(
    id_solicitud: uuid.UUID,
    body: ValidacionIn,
    request: Request,
    session: Session,
    user: Validador,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        seen: set[uuid.UUID] = set()
        for idx, it in enumerate(body.items):
            if it.id_item in seen:
                raise d.DomainError(
                    "ITEM_DUPLICADO",
                    "Item repetido en la validación.",
                    field=f"items.{idx}.id_item",
                )
            seen.add(it.id_item)
        sol = await requests.validar_solicitud(
            session,
            id_solicitud,
            {
                it.id_item: d.Aprobacion(
                    it.cantidad_aprobada,
                    it.justificacion_codigo.value if it.justificacion_codigo else None,
                    it.justificacion,
                )
                for it in body.items
            },
            actor(user),
            observaciones=body.observaciones,
            version=body.version,
        )
        out = await queries.solicitud_out(session, sol)
    return out


@router.post(
    "/solicitudes/{id_solicitud}/rechazar", tags=["solicitudes"], response_model=SolicitudPublic
)
async def rechazar_solicitud(
    id_solicitud: uuid.UUID, body: MotivoIn, request: Request, session: Session, user: Validador
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        sol = await requests.rechazar_solicitud(session, id_solicitud, body.motivo, actor(user))
        out = await queries.solicitud_out(session, sol)
    return out


@router.post(
    "/solicitudes/{id_solicitud}/cancelar", tags=["solicitudes"], response_model=SolicitudPublic
)
async def cancelar_solicitud(
    id_solicitud: uuid.UUID,
    request: Request,
    session: Session,
    user: Cancelador,
    body: MotivoOpcionalIn | None = None,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        sol = await requests.cancelar_solicitud(
            session, id_solicitud, actor(user), body.motivo if body else None
        )
        out = await queries.solicitud_out(session, sol)
    return out


@router.get(
    "/solicitudes/{id_solicitud}/propuesta", tags=["propuestas"], response_model=PropuestaPublic
)
async def propuesta_de_solicitud(
    id_solicitud: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    sol = await common.get_solicitud(session, id_solicitud)
    prop = await common.propuesta_activa(session, id_solicitud)
    if prop is None and sol.estado == d.EstadoSolicitud.PROPUESTA_FALLIDA:
        raise d.Conflict(
            "PROPUESTA_FALLIDA",
            f"La propuesta no pudo generarse: {sol.fallo_propuesta}",
            motivo_codigo=sol.fallo_propuesta_codigo,
            motivo=sol.fallo_propuesta,
        )
    if prop is None:
        raise d.NotFound(
            "PROPUESTA_NO_ENCONTRADA",
            "La solicitud no tiene propuesta activa (aún no generada, o liberada).",
        )
    return await queries.propuesta_out(session, prop)


@router.post(
    "/solicitudes/{id_solicitud}/reintentar-propuesta",
    tags=["solicitudes"],
    response_model=SolicitudPublic,
)
async def reintentar_propuesta(
    id_solicitud: uuid.UUID, request: Request, session: Session, user: Reintentador
) -> dict[str, Any]:
    """A request in PROPUESTA_FALLIDA back to VALIDADA: its proposal is generated anew."""
    async with unit_of_work_for(request, session):
        sol = await requests.reintentar_propuesta(session, id_solicitud, actor(user))
        out = await queries.solicitud_out(session, sol)
    return out
