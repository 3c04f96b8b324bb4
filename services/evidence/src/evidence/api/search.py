"""Routes: the cross-OT GPU search (the legacy global search's GPU rows: delivered or not, by
frente, site, client, OT, production date range and status) and the OT list/search.

Both are paginated (``limit`` ≤ :data:`evidence.queries_search.MAX_PAGE`, ``offset``) and
answer ``total``, the number of rows every page of the filter holds. ``desde`` after ``hasta``
is 422 ``PERIODO_INVALIDO`` on ``desde``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query

from evidence import queries_search as qs
from evidence.api.access import ReaderUser
from evidence.api.common import DomainRoute, Session
from evidence.api.ots import ot_out
from evidence.api.schemas_search import GpuBusquedaList, OtList
from evidence.domain import DomainError, GpuStatus
from service_defaults.bounds import INT32_MAX, DomainDate, Id32, Int32, SafeText

router = APIRouter(route_class=DomainRoute, tags=["evidence"])

Limit = Query(default=qs.DEFAULT_PAGE, ge=1, le=qs.MAX_PAGE)
Offset = Query(default=0, ge=0, le=INT32_MAX)


def check_range(desde: dt.date | None, hasta: dt.date | None) -> None:
    if desde is not None and hasta is not None and desde > hasta:
        raise DomainError("PERIODO_INVALIDO", "desde es posterior a hasta", field="desde")


@router.get(
    "/gpus/busqueda",
    summary="Search GPUs across OTs (delivered / not delivered, frente, site, client, dates)",
    description=(
        "`entregado=true` lists the GPUs whose evidence link is loaded (the legacy global "
        "search's rule: a link whose trimmed length is over 5), `false` the others; `id_sitio` "
        "is the OT's site, the site column its frente selects; `desde`/`hasta` bound the "
        "production date (inclusive). Newest production first."
    ),
    response_model=GpuBusquedaList,
)
async def buscar_gpus(
    session: Session,
    user: ReaderUser,
    entregado: bool | None = None,
    id_frente: Id32 | None = None,
    id_sitio: Id32 | None = None,
    id_cliente: Id32 | None = None,
    id_ot: Id32 | None = None,
    desde: DomainDate | None = None,
    hasta: DomainDate | None = None,
    estatus: SafeText | None = Query(default=None, max_length=20),
    limit: Int32 = Limit,
    offset: Int32 = Offset,
) -> dict[str, Any]:
    check_range(desde, hasta)
    search = qs.GpuSearch(
        entregado=entregado,
        id_frente=id_frente,
        id_sitio=id_sitio,
        id_cliente=id_cliente,
        id_ot=id_ot,
        desde=desde,
        hasta=hasta,
        estatus=GpuStatus.parse(estatus, field="estatus") if estatus else None,
    )
    total, data = await qs.buscar_gpus(session, search, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "data": data}


@router.get(
    "/ots",
    summary="List and search work orders (OTs)",
    description=(
        "`q` matches the folio or the description (case-insensitive, literally); `activo` the "
        "OT's active flag; `desde`/`hasta` keep the OTs whose period (real dates over programmed "
        "ones, the end extended by active reprogramaciones) overlaps the range. By folio."
    ),
    response_model=OtList,
)
async def listar_ots(
    session: Session,
    user: ReaderUser,
    q: SafeText | None = Query(default=None, max_length=100),
    id_cliente: Id32 | None = None,
    activo: bool | None = None,
    desde: DomainDate | None = None,
    hasta: DomainDate | None = None,
    limit: Int32 = Limit,
    offset: Int32 = Offset,
) -> dict[str, Any]:
    check_range(desde, hasta)
    search = qs.OtSearch(q=q, id_cliente=id_cliente, activo=activo, desde=desde, hasta=hasta)
    total, rows = await qs.listar_ots(session, search, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "data": [ot_out(o) for o in rows]}
