"""Routes: related production endpoints in seed shapes (production grid, site daily-status grid and
its mass save).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from evidence import queries
from evidence.api.access import CaptureUser, ReaderUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of
from evidence.api.schemas import (
    OtsPorSitioPublic,
    PartidasProduccionPublic,
    ReportesDiariosCreate,
    ReportesDiariosPublic,
    TipoTiempoIn,
)
from evidence.application import daily
from service_defaults.bounds import INT32_MAX, Id32, Int32
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


@router.get(
    "/obtener_partidas_produccion",
    summary="Production grid of an OT and month (seed-compatible path)",
    description="Lines of the OT family's active imports consolidated by (anexo, code, "
    "description); `dia1`…`dia31` null or `{valor, programado, es_excedente, te_dia, cma_dia}` "
    "(decimal strings, 6 decimals; `valor` is the requested `tipo_tiempo`); `estatus_gpu` (seed "
    "name) = `estatus_volumen`; `dias_bloqueados` = closed days of the OT's month. Readers: "
    "every evidence role and ops (as the GPU grid).",
    operation_id="obtener_partidas_produccion",
    response_model=PartidasProduccionPublic,
)
async def obtener_partidas_produccion(
    session: Session,
    user: ReaderUser,
    id_ot: Id32 = Query(gt=0, le=INT32_MAX),  # a Query() default drops the type's bounds
    mes: Int32 = Query(ge=1, le=12),
    anio: Int32 = Query(ge=2000, le=2100),
    tipo_tiempo: TipoTiempoIn = "TE",
) -> dict[str, Any]:
    res = await queries.partidas_produccion(
        session, id_ot=id_ot, mes=mes, anio=anio, tipo_tiempo=tipo_tiempo
    )
    return {"partidas": res.partidas, "dias_bloqueados": res.dias_bloqueados}


@router.get(
    "/ots_por_sitio_grid",
    summary="Daily operational status of a site's OTs for a month (seed-compatible path)",
    description="Principal OTs of the site (by frente) valid in the month; `dia1`…`dia31` is the "
    "description of the day's operational status or null. Readers: every evidence role and ops.",
    operation_id="ots_por_sitio_grid",
    response_model=OtsPorSitioPublic,
)
async def ots_por_sitio_grid(
    session: Session,
    user: ReaderUser,
    id_sitio: Id32 = Query(gt=0, le=INT32_MAX),
    mes: Int32 = Query(ge=1, le=12),
    anio: Int32 = Query(ge=2000, le=2100),
) -> dict[str, Any]:
    rows = await queries.ots_por_sitio(session, id_sitio=id_sitio, mes=mes, anio=anio)
    return {"reportes_diarios": rows}


@router.post(
    "/guardar_reportes_diarios_masiva",
    summary="Mass save of daily operational statuses (seed-compatible path)",
    description="`valores[i]` is the status description of day i+1 from the daily catalogue "
    "(never a GPU status, GP-D02); empty or null clears the day and deletes its row (GP-D14). "
    "Writers: residente and supervisor (GP-D14: login required); setting or lifting a closed "
    "day needs supervisor, as `POST /reportes-diarios/cierre`. A closed month → 409.",
    operation_id="guardar_reportes_diarios_masiva",
    response_model=ReportesDiariosPublic,
)
async def guardar_reportes_diarios_masiva(
    body: ReportesDiariosCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        res = await daily.guardar_reportes_diarios(
            session,
            writer,
            actor_of(user),
            mes=body.mes,
            anio=body.anio,
            reportes=[daily.ReporteDiasInput(r.id_ot, r.valores) for r in body.reportes],
        )
    return {
        "exito": True,
        "mensaje": "Reportes diarios guardados correctamente.",
        "guardados": res.guardados,
        "eliminados": res.eliminados,
        "sin_cambio": res.sin_cambio,
    }
