"""Routes of stock: lot detail and state, kardex movements, the expiry job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from orders import domain as d
from orders import queries
from orders.api.common import (
    Lector,
    Operaciones,
    Session,
    Supervisor,
    actor,
)
from orders.api.schemas import (
    EstadoLoteUpdate,
    JobCaducidadPublic,
    Lista,
    LotePublic,
    MovimientoPublic,
)
from orders.application import catalogue, expiry
from orders.models import (
    Lote,
)
from service_defaults.bounds import Id32, Int32, SafeText
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)


@router.get("/lotes/{id_lote}", tags=["inventario"], response_model=LotePublic)
async def detalle_lote(id_lote: Id32, session: Session, user: Lector) -> dict[str, Any]:
    lote = await session.get(Lote, id_lote)
    if lote is None:
        raise d.NotFound("LOTE_NO_ENCONTRADO", f"No existe el lote {id_lote}.")
    return await queries.lote_out(session, lote)


@router.post("/lotes/{id_lote}/estado", tags=["inventario"], response_model=LotePublic)
async def estado_lote(
    id_lote: Id32, body: EstadoLoteUpdate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        lote = await catalogue.cambiar_estado_lote(
            session, id_lote, body.estado, actor(user), body.motivo
        )
        out = await queries.lote_out(session, lote)
    return out


@router.get("/movimientos", tags=["inventario"], response_model=Lista[MovimientoPublic])
async def movimientos(
    session: Session,
    user: Lector,
    id_lote: Annotated[Int32 | None, Query(gt=0)] = None,
    tipo: Annotated[SafeText | None, Query(max_length=30)] = None,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    return await queries.movimientos(session, id_lote, tipo, limit)


@router.post("/jobs/caducidad", tags=["inventario"], response_model=JobCaducidadPublic)
async def job_caducidad(request: Request, session: Session, user: Operaciones) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        res = await expiry.job_caducidad(session, actor(user))
    return {
        "lotes_caducados": res.lotes_caducados,
        "lineas_marcadas": res.lineas_marcadas,
        "propuestas_replanificar": res.propuestas_replanificar,
    }
