"""Routes of the reports (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orders import domain as d
from orders import queries
from orders.api.common import (
    Formato,
    Lector,
    Session,
    csv_response,
)
from orders.api.schemas import FillRatePublic, Lista, LotePorCaducar, PendientePublic
from service_defaults.bounds import DomainDate, Int32
from service_defaults.routing import DomainRoute

router = APIRouter(route_class=DomainRoute)

CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}
}
"""A report answers JSON (the response model) or, with ``formato=csv``, a CSV attachment."""


@router.get(
    "/reportes/pendientes", tags=["reportes"], response_model=Lista[PendientePublic], responses=CSV
)
async def reporte_pendientes(session: Session, user: Lector, formato: Formato = "json") -> Any:
    rows = await queries.reporte_pendientes(session)
    return csv_response(rows, "pendientes") if formato == "csv" else {"items": rows}


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
    return csv_response(data["productos"], "fill-rate") if formato == "csv" else data


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
    return csv_response(rows, "lotes-por-caducar") if formato == "csv" else {"items": rows}
