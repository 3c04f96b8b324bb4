"""Routes of stock: lot detail and state, kardex movements, the expiry job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from orders import domain as d
from orders import queries
from orders.api.common import (
    DomainRoute,
    Lector,
    Operaciones,
    Session,
    Supervisor,
    actor,
    commit,
)
from orders.api.schemas import (
    EstadoLoteIn,
)
from orders.application import catalogue, expiry
from orders.models import (
    Lote,
    MovimientoInventario,
)
from service_defaults.bounds import Id32, Int32, SafeText

router = APIRouter(route_class=DomainRoute)


@router.get("/lotes/{id_lote}", tags=["inventario"])
async def detalle_lote(id_lote: Id32, session: Session, user: Lector) -> dict[str, Any]:
    lote = await session.get(Lote, id_lote)
    if lote is None:
        raise d.NotFound("LOTE_NO_ENCONTRADO", f"No existe el lote {id_lote}.")
    return await queries.lote_out(session, lote)


@router.post("/lotes/{id_lote}/estado", tags=["inventario"])
async def estado_lote(
    id_lote: Id32, body: EstadoLoteIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    lote = await catalogue.cambiar_estado_lote(
        session, id_lote, body.estado, actor(user), body.motivo
    )
    out = await queries.lote_out(session, lote)
    await commit(request, session)
    return out


@router.get("/movimientos", tags=["inventario"])
async def movimientos(
    session: Session,
    user: Lector,
    id_lote: Annotated[Int32 | None, Query(gt=0)] = None,
    tipo: Annotated[SafeText | None, Query(max_length=30)] = None,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    q = select(MovimientoInventario, Lote.numero_lote).join(
        Lote, Lote.id == MovimientoInventario.lote_id
    )
    if id_lote is not None:
        q = q.where(MovimientoInventario.lote_id == id_lote)
    if tipo is not None:
        q = q.where(MovimientoInventario.tipo_movimiento == tipo)
    rows = (await session.execute(q.order_by(MovimientoInventario.id).limit(limit))).all()
    return {
        "items": [
            {
                "id": m.id,
                "id_lote": m.lote_id,
                "numero_lote": numero,
                "id_lote_ubicacion": m.lote_ubicacion_id,
                "tipo_movimiento": m.tipo_movimiento,
                "cantidad": m.cantidad,
                "cantidad_anterior": m.cantidad_anterior,
                "cantidad_nueva": m.cantidad_nueva,
                "motivo": m.motivo,
                "documento_referencia": m.documento_referencia,
                "pedido": m.pedido,
                "folio": m.folio,
                "id_institucion_destino": m.institucion_destino_id,
                "usuario": m.usuario,
                "fecha_movimiento": queries.iso(m.fecha_movimiento),
            }
            for m, numero in rows
        ]
    }


@router.post("/jobs/caducidad", tags=["inventario"])
async def job_caducidad(request: Request, session: Session, user: Operaciones) -> dict[str, Any]:
    res = await expiry.job_caducidad(session, actor(user))
    await commit(request, session)
    return {
        "lotes_caducados": res.lotes_caducados,
        "lineas_marcadas": res.lineas_marcadas,
        "propuestas_replanificar": res.propuestas_replanificar,
    }
