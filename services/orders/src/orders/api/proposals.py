"""Routes of proposals (propuestas): detail, line edits and candidates, review, picking,
dispatch, release."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from orders import domain as d
from orders import queries
from orders.api.common import (
    EXPORTABLE,
    Almacen_,
    FiltroPedidos,
    Formato,
    Lector,
    Paginado,
    Picker,
    Session,
    Supervisor,
    actor,
    config,
    exportables,
    exportar,
    pagina_de_exportacion,
)
from orders.api.schemas import (
    CandidatosPublic,
    CantidadLineaIn,
    LimitesLineaPublic,
    LineasIn,
    MotivoOpcionalIn,
    MoverLineaIn,
    Pagina,
    PropuestaPublic,
    PropuestaResumen,
    RevisionIn,
)
from orders.application import common, dispatch, picking, proposals
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)


@router.get(
    "/propuestas",
    tags=["propuestas"],
    response_model=Pagina[PropuestaResumen],
    responses=EXPORTABLE,
)
async def listar_propuestas(
    session: Session,
    user: Lector,
    pagina: Paginado,
    filtro: FiltroPedidos,
    estado: Annotated[d.EstadoPropuesta | None, Query()] = None,
    formato: Formato = "json",
) -> Any:
    if formato == "json":
        return await queries.listar_propuestas(session, estado, filtro, pagina)
    todo = await queries.listar_propuestas(session, estado, filtro, pagina_de_exportacion())
    return exportar(exportables(todo["items"]), "propuestas", formato)


@router.get("/propuestas/{id_propuesta}", tags=["propuestas"], response_model=PropuestaPublic)
async def detalle_propuesta(
    id_propuesta: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    """A pure read (HO-D16): nothing is resynchronised on GET."""
    return await queries.propuesta_out(session, await common.get_propuesta(session, id_propuesta))


@router.put(
    "/propuestas/{id_propuesta}/items/{id_item}/lineas",
    tags=["propuestas"],
    response_model=PropuestaPublic,
)
async def editar_lineas(
    id_propuesta: uuid.UUID,
    id_item: uuid.UUID,
    body: LineasIn,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        prop = await proposals.editar_item_propuesta(
            session,
            id_propuesta,
            id_item,
            [proposals.LineaDeseada(ln.id_lote_ubicacion, ln.cantidad) for ln in body.lineas],
            actor(user),
            config(request),
            motivo_override=body.motivo_override,
            version=body.version,
        )
        out = await queries.propuesta_out(session, prop)
    return out


@router.get(
    "/propuestas/{id_propuesta}/items/{id_item}/candidatos",
    tags=["propuestas"],
    response_model=CandidatosPublic,
)
async def candidatos(
    id_propuesta: uuid.UUID,
    id_item: uuid.UUID,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    """Stock rows a line of this item may use (destination warehouse, same product, lot
    DISPONIBLE, not expired, eligible location), FEFO-ordered, with the free quantity and
    whether a Supervisor override is needed (caducidad ≤ today + min shelf life)."""
    return await queries.candidatos(session, id_propuesta, id_item, config(request))


@router.post(
    "/propuestas/{id_propuesta}/revisar", tags=["propuestas"], response_model=PropuestaPublic
)
async def revisar_propuesta(
    id_propuesta: uuid.UUID,
    request: Request,
    session: Session,
    user: Almacen_,
    body: RevisionIn | None = None,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        prop = await proposals.revisar_propuesta(
            session, id_propuesta, actor(user), body.observaciones if body else ""
        )
        out = await queries.propuesta_out(session, prop)
    return out


@router.post(
    "/propuestas/{id_propuesta}/lineas/{id_linea}/recoger",
    tags=["propuestas"],
    response_model=PropuestaPublic,
)
async def recoger_linea(
    id_propuesta: uuid.UUID,
    id_linea: uuid.UUID,
    request: Request,
    session: Session,
    user: Picker,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await proposals.recoger_linea(session, id_propuesta, id_linea, actor(user))
        out = await queries.propuesta_out(
            session, await common.get_propuesta(session, id_propuesta)
        )
    return out


@router.get(
    "/propuestas/{id_propuesta}/lineas/{id_linea}/limites",
    tags=["propuestas"],
    response_model=LimitesLineaPublic,
)
async def limites_linea(
    id_propuesta: uuid.UUID, id_linea: uuid.UUID, session: Session, user: Almacen_
) -> dict[str, Any]:
    """The bounds of a picking quantity correction (0 ≤ cantidad ≤ libre + actual, within the
    approved quantity)."""
    return await picking.limites_linea(session, id_propuesta, id_linea)


@router.put(
    "/propuestas/{id_propuesta}/lineas/{id_linea}/cantidad",
    tags=["propuestas"],
    response_model=PropuestaPublic,
)
async def corregir_cantidad(
    id_propuesta: uuid.UUID,
    id_linea: uuid.UUID,
    body: CantidadLineaIn,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    """Picking correction (§B.4.7): 0 ≤ cantidad ≤ libre + actual; 0 releases the line."""
    async with unit_of_work_for(request, session):
        prop = await picking.cambiar_cantidad(
            session, id_propuesta, id_linea, body.cantidad, actor(user), config(request)
        )
        out = await queries.propuesta_out(session, prop)
    return out


@router.post(
    "/propuestas/{id_propuesta}/lineas/{id_linea}/mover",
    tags=["propuestas"],
    response_model=PropuestaPublic,
)
async def mover_linea(
    id_propuesta: uuid.UUID,
    id_linea: uuid.UUID,
    body: MoverLineaIn,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    """Picking correction of the lot/location (HO-D32): the line moves to another stock row of
    the same product, eligible and with the free stock."""
    async with unit_of_work_for(request, session):
        prop = await picking.mover_linea(
            session,
            id_propuesta,
            id_linea,
            body.id_lote_ubicacion,
            body.cantidad,
            actor(user),
            config(request),
            motivo_override=body.motivo_override,
        )
        out = await queries.propuesta_out(session, prop)
    return out


@router.post(
    "/propuestas/{id_propuesta}/lineas/{id_linea}/deshacer-recogida",
    tags=["propuestas"],
    response_model=PropuestaPublic,
)
async def deshacer_recogida(
    id_propuesta: uuid.UUID,
    id_linea: uuid.UUID,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    """Undo a pick: the line is RESERVADA again (it never stopped reserving)."""
    async with unit_of_work_for(request, session):
        prop = await picking.deshacer_recogida(session, id_propuesta, id_linea, actor(user))
        out = await queries.propuesta_out(session, prop)
    return out


@router.post(
    "/propuestas/{id_propuesta}/surtir", tags=["propuestas"], response_model=PropuestaPublic
)
async def surtir_propuesta(
    id_propuesta: uuid.UUID, request: Request, session: Session, user: Almacen_
) -> dict[str, Any]:
    """Dispatch. A repeated call answers 409 YA_SURTIDA and moves nothing (HO-L03)."""
    async with unit_of_work_for(request, session):
        res = await dispatch.surtir_propuesta(session, id_propuesta, actor(user), config(request))
        if res.rechazo is not None:
            # the proposal went back to GENERADA: commit that now (not deferred to a keyed request's
            # key row: an error answer records no key), then answer the rejection
            await session.commit()
            raise res.rechazo
        out = await queries.propuesta_out(session, res.propuesta)
    return out


@router.post(
    "/propuestas/{id_propuesta}/liberar", tags=["propuestas"], response_model=PropuestaPublic
)
async def liberar_propuesta(
    id_propuesta: uuid.UUID,
    request: Request,
    session: Session,
    user: Supervisor,
    body: MotivoOpcionalIn | None = None,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        prop = await proposals.liberar_propuesta(
            session, id_propuesta, actor(user), body.motivo if body else None
        )
        out = await queries.propuesta_out(session, prop)
    return out
