"""Routes of the reports (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orders import domain as d
from orders import queries
from orders.api.common import (
    EXPORTABLE,
    FiltroPedidos,
    Formato,
    Lector,
    Session,
    exportar,
)
from orders.api.schemas import (
    FaltantePublic,
    FillRatePublic,
    Lista,
    LotePorCaducar,
    PendientePublic,
)
from service_defaults.bounds import DomainDate, Int32
from service_defaults.routing import DomainRoute

router = APIRouter(route_class=DomainRoute)

CSV = EXPORTABLE
"""A report answers JSON (the response model) or, with ``formato=csv|xlsx``, an attachment."""


@router.get(
    "/reportes/pendientes", tags=["reportes"], response_model=Lista[PendientePublic], responses=CSV
)
async def reporte_pendientes(session: Session, user: Lector, formato: Formato = "json") -> Any:
    rows = await queries.reporte_pendientes(session)
    return exportar(rows, "pendientes", formato) if formato != "json" else {"items": rows}


@router.get("/reportes/fill-rate", tags=["reportes"], response_model=FillRatePublic, responses=CSV)
async def reporte_fill_rate(
    session: Session,
    user: Lector,
    desde: Annotated[DomainDate | None, Query()] = None,
    hasta: Annotated[DomainDate | None, Query()] = None,
    formato: Formato = "json",
) -> Any:
    if desde and hasta and desde > hasta:
        raise d.DomainError("RANGO_INVALIDO", "desde debe ser ≤ hasta.", field="desde")
    data = await queries.reporte_fill_rate(session, desde, hasta)
    return exportar(data["productos"], "fill-rate", formato) if formato != "json" else data


@router.get(
    "/reportes/lotes-por-caducar",
    tags=["reportes"],
    response_model=Lista[LotePorCaducar],
    responses=CSV,
)
async def reporte_lotes_por_caducar(
    session: Session,
    user: Lector,
    dias: Annotated[Int32, Query(ge=0, le=3650)] = 90,
    formato: Formato = "json",
) -> Any:
    rows = await queries.reporte_lotes_por_caducar(session, dias)
    return exportar(rows, "lotes-por-caducar", formato) if formato != "json" else {"items": rows}


@router.get(
    "/reportes/faltantes", tags=["reportes"], response_model=Lista[FaltantePublic], responses=CSV
)
async def reporte_faltantes(
    session: Session,
    user: Lector,
    filtro: FiltroPedidos,
    id_producto: Annotated[Int32 | None, Query(gt=0)] = None,
    formato: Formato = "json",
) -> Any:
    rows = await queries.reporte_faltantes(session, filtro, id_producto)
    return exportar(rows, "faltantes", formato) if formato != "json" else {"items": rows}
