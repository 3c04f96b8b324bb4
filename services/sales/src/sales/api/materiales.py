"""Material routes: catalogue, stock movements (restock, adjustment, count) and the ledger."""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
)

from fastapi import APIRouter, Query, Request

from sales import domain as d
from sales import queries
from sales.api.catalog import add_row_routes
from sales.api.deps import Admin, Operador, Session, actor, transaction
from sales.api.render import iso, material_out, movement_out
from sales.api.routing import DomainRoute
from sales.api.schemas import (
    ConteoBody,
    MaterialCreate,
    MaterialesPublic,
    MaterialPublic,
    MaterialUpdate,
    MovimientoBody,
    MovimientoPublic,
    MovimientoResultado,
)
from sales.application import catalogue, stock
from service_defaults.bounds import (
    Id32,
    Int32,
    SafeText,
)

router = APIRouter(route_class=DomainRoute, tags=["materiales"])


@router.get("/materiales", response_model=MaterialesPublic)
async def list_materials(
    session: Session, user: Operador, q: SafeText | None = None, incluir_inactivos: bool = False
) -> dict[str, Any]:
    items = [material_out(m) for m in await queries.list_materiales(session, q, incluir_inactivos)]
    return {"items": items, "materiales_bajos": sum(1 for m in items if m["bajo_stock"])}


@router.post("/materiales", status_code=201, response_model=MaterialPublic)
async def create_material(
    body: MaterialCreate, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    async with transaction(request, session, catalog=True):
        m = await catalogue.create_material(session, actor(user), **body.model_dump())
    return material_out(m)


@router.get("/materiales/{id_material}", response_model=MaterialPublic)
async def get_material(id_material: Id32, session: Session, user: Operador) -> dict[str, Any]:
    return material_out(await queries.get_material(session, id_material))


add_row_routes(
    router,
    "/materiales/{id_material}",
    key="id_material",
    names=("update_material", "delete_material"),
    body=MaterialUpdate,
    public=MaterialPublic,
    render=material_out,
    update=catalogue.update_material,
    delete=catalogue.delete_material,
    delete_doc="Refused with 409 MATERIAL_REFERENCIADO while quotes or sales reference it.",
)


@router.post("/materiales/{id_material}/reabasto", response_model=MovimientoResultado)
async def restock_material(
    id_material: Id32, body: MovimientoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Restock (+cantidad): atomic increment and a `reabasto` ledger row."""
    async with transaction(request, session):
        eff = await stock.restock(session, id_material, body.cantidad, actor(user), nota=body.nota)
    return movement_out(eff, id_material)


@router.post("/materiales/{id_material}/ajuste", response_model=MovimientoResultado)
async def adjust_material(
    id_material: Id32, body: MovimientoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Adjustment (±cantidad, `nota` required): atomic update, ledger row, StockLow on crossing,
    StockShortage.v2 (origen ajuste) when it leaves the balance below zero."""
    async with transaction(request, session):
        eff = await stock.restock(
            session,
            id_material,
            body.cantidad,
            actor(user),
            motivo=d.MotivoMovimiento.AJUSTE.value,
            nota=body.nota,
        )
    return movement_out(eff, id_material)


@router.post("/materiales/{id_material}/conteo", response_model=MovimientoResultado)
async def count_material(
    id_material: Id32, body: ConteoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Physical count: the difference is recorded as a `conteo` movement (StockShortage.v2,
    origen conteo, when it lowers the balance below zero)."""
    async with transaction(request, session):
        eff = await stock.conteo(session, id_material, body.contado, actor(user), body.nota)
    return movement_out(eff, id_material)


@router.get(
    "/materiales/{id_material}/movimientos",
    response_model=list[MovimientoPublic],
)
async def material_ledger(
    id_material: Id32,
    session: Session,
    user: Operador,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "cantidad": m.cantidad,
            "saldo_anterior": m.saldo_anterior,
            "saldo_resultante": m.saldo_resultante,
            "motivo": m.motivo,
            "id_venta": m.id_venta,
            "event_id": m.event_id,
            "nota": m.nota,
            "usuario": m.usuario,
            "fecha": iso(m.fecha),
        }
        for m in await queries.list_movimientos(session, id_material, limit)
    ]
