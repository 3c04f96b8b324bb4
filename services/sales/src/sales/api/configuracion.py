"""Price configuration routes: laser rate and the thickness tabulador (history recorded)."""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
)

from fastapi import APIRouter, Path, Query, Request, Response

from sales import domain as d
from sales import queries
from sales.api.deps import Admin, Session, actor, transaction
from sales.api.render import iso
from sales.api.routing import DomainRoute
from sales.api.schemas import (
    ConfiguracionPublic,
    FactorBody,
    HistorialPrecioPublic,
    TabuladorPublic,
    TarifaBody,
    TarifaPublic,
)
from sales.application import catalogue, pricing
from service_defaults.bounds import (
    Int32,
    SafeText,
)

router = APIRouter(route_class=DomainRoute)


@router.get("/configuracion", response_model=ConfiguracionPublic, tags=["configuracion"])
async def get_configuration(session: Session, user: Admin) -> dict[str, Any]:
    cfg = await catalogue.get_config(session)
    tab = await pricing.get_tabulador(session)
    await session.commit()
    return {
        "tarifa_laser_minuto": d.format_money(cfg.tarifa_laser_minuto),
        "version": cfg.version,
        "actualizado": iso(cfg.actualizado),
        "tabulador": [
            {"espesor_mm": e, "factor_costo": d.format_plain(f)} for e, f in sorted(tab.items())
        ],
    }


@router.put("/configuracion/tarifa", response_model=TarifaPublic, tags=["configuracion"])
async def set_laser_rate(
    body: TarifaBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Change the laser rate (history recorded; `version` enables optimistic concurrency)."""
    async with transaction(request, session, catalog=True):
        cfg = await catalogue.set_tarifa(
            session, actor(user), body.tarifa_laser_minuto, body.version
        )
        out = {
            "tarifa_laser_minuto": d.format_money(cfg.tarifa_laser_minuto),
            "version": cfg.version,
        }
    return out


@router.put(
    "/configuracion/tabulador/{espesor_mm}", response_model=TabuladorPublic, tags=["configuracion"]
)
async def set_cost_factor(
    espesor_mm: Annotated[Int32, Path(gt=0)],
    body: FactorBody,
    request: Request,
    session: Session,
    user: Admin,
) -> dict[str, Any]:
    """Create or update the factor of one thickness (UNIQUE per thickness, AC-D14)."""
    async with transaction(request, session, catalog=True):
        row = await catalogue.set_tabulador(session, actor(user), espesor_mm, body.factor_costo)
        out = {"espesor_mm": row.espesor_mm, "factor_costo": d.format_plain(row.factor_costo)}
    return out


@router.delete("/configuracion/tabulador/{espesor_mm}", status_code=204, tags=["configuracion"])
async def delete_cost_factor(
    espesor_mm: Int32, request: Request, session: Session, user: Admin
) -> Response:
    async with transaction(request, session, catalog=True):
        await catalogue.delete_tabulador(session, actor(user), espesor_mm)
    return Response(status_code=204)


@router.get(
    "/configuracion/historial",
    response_model=list[HistorialPrecioPublic],
    tags=["configuracion"],
)
async def price_history(
    session: Session,
    user: Admin,
    entidad: Annotated[SafeText | None, Query(max_length=40)] = None,
    clave: Annotated[SafeText | None, Query(max_length=40)] = None,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The price and cost-table history, newest first: every change of the laser rate, of a
    tabulador factor (set or removed) and of a product's utility or fixed price, with who and
    when; `entidad`/`clave` filter it."""
    rows = await queries.list_historial_precios(
        session, entidad=entidad, clave=clave, limit=limit, offset=offset
    )
    return [
        {
            "id": h.id,
            "entidad": h.entidad,
            "clave": h.clave,
            "valor_anterior": h.valor_anterior,
            "valor_nuevo": h.valor_nuevo,
            "usuario": h.usuario,
            "fecha": iso(h.fecha),
        }
        for h in rows
    ]
