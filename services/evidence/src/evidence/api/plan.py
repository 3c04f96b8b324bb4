"""Routes: the month's evidence link of an OT (``guardar_archivo_mensual``) and the daily plan
(``partida_proyectada``: a day, a month's grid, a CSV/xlsx file) that fills ``programado`` in the
production grid (``obtener_partidas_produccion``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from evidence import domain as d
from evidence.api.access import CaptureUser, ReaderUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, config_of, iso, vol
from evidence.api.plan_schemas import (
    ArchivoMensualLegacy,
    ArchivoMensualLegacyPublic,
    ArchivoMensualUpdate,
    PlanDiaPublic,
    PlanDiaUpdate,
    PlanGuardadoPublic,
    PlanImportadoPublic,
    PlanMasivoCreate,
    ReporteMensualArchivoPublic,
)
from evidence.application import plan, plan_files, reports
from evidence.domain import DomainError
from evidence.models import ReporteMensual
from service_defaults.bounds import INT32_MAX, Id32, Int32
from service_defaults.openapi import problem_responses
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


def reporte_archivo_out(rep: ReporteMensual) -> dict[str, Any]:
    return {
        "id": rep.id,
        "id_ot": rep.id_ot,
        "mes": rep.mes,
        "anio": rep.anio,
        "cerrado": rep.cerrado,
        "archivo": rep.archivo,
        "usuario_archivo": rep.usuario_archivo,
        "fecha_archivo": iso(rep.fecha_archivo),
    }


@router.get(
    "/reportes-mensuales",
    summary="The monthly report of an OT (closed flag and evidence link)",
    description="404 REPORTE_NO_ENCONTRADO while the month has no report. Readers: every "
    "evidence role and ops.",
    response_model=ReporteMensualArchivoPublic,
)
async def get_reporte_mensual(
    session: Session,
    user: ReaderUser,
    id_ot: Id32 = Query(gt=0, le=INT32_MAX),
    mes: Int32 = Query(ge=1, le=12),
    anio: Int32 = Query(ge=2000, le=2100),
) -> dict[str, Any]:
    rep = await reports.find_report(session, id_ot, mes, anio)
    if rep is None:
        raise DomainError("REPORTE_NO_ENCONTRADO", field="mes")
    return reporte_archivo_out(rep)


LINK_DOC = (
    "The month's evidence link (Drive folder) follows the GPU link rule: `https://` on an "
    "allowed host (DECIDE-C3), ≤ 500 characters (422 URL_INVALIDA / ARCHIVO_REQUERIDO). A closed "
    "month → 409 MES_CERRADO. Writers: residente and supervisor."
)


@router.put(
    "/reportes-mensuales/archivo",
    summary="Set or replace the month's evidence link of an OT",
    description=LINK_DOC + " Creates the month's report when missing.",
    response_model=ReporteMensualArchivoPublic,
)
async def put_archivo_mensual(
    body: ArchivoMensualUpdate,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        rep = await reports.guardar_archivo_mensual(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            mes=body.mes,
            anio=body.anio,
            archivo=body.archivo,
            allowed_hosts=config_of(request).allowed_hosts,
        )
        out = reporte_archivo_out(rep)
    return out


@router.delete(
    "/reportes-mensuales/archivo",
    summary="Clear the month's evidence link of an OT",
    description=LINK_DOC + " 404 REPORTE_NO_ENCONTRADO when the month has no report.",
    response_model=ReporteMensualArchivoPublic,
)
async def delete_archivo_mensual(
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
    id_ot: Id32 = Query(gt=0, le=INT32_MAX),
    mes: Int32 = Query(ge=1, le=12),
    anio: Int32 = Query(ge=2000, le=2100),
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        rep = await reports.guardar_archivo_mensual(
            session, writer, actor_of(user), id_ot=id_ot, mes=mes, anio=anio, archivo=None
        )
        out = reporte_archivo_out(rep)
    return out


@router.post(
    "/guardar_archivo_mensual",
    summary="Set the month's evidence link (seed-compatible path)",
    description=LINK_DOC + " An empty or missing `archivo` is 422 ARCHIVO_REQUERIDO (it never "
    "clears the stored link); problems also carry `exito: false` and `mensaje`.",
    operation_id="guardar_archivo_mensual",
    response_model=ArchivoMensualLegacyPublic,
)
async def guardar_archivo_mensual(
    body: ArchivoMensualLegacy,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        rep = await reports.guardar_archivo_mensual(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            mes=body.mes,
            anio=body.anio,
            archivo=body.archivo or "",
            allowed_hosts=config_of(request).allowed_hosts,
        )
        archivo = rep.archivo
    return {"exito": True, "mensaje": "Archivo mensual guardado correctamente.", "archivo": archivo}


PLAN_DOC = (
    "Programmed volume per budget line and day (≥ 0, 6 decimals; 0 clears the day). The line "
    "must belong to an import of the OT's family (422 PARTIDA_INVALIDA); a day of a closed month "
    "of the OT → 409 MES_CERRADO. Shown as `programado` by `obtener_partidas_produccion` on the "
    "next read. Writers: residente and supervisor."
)


@router.put(
    "/plan-diario",
    summary="Set one day of the daily plan of a budget line",
    description=PLAN_DOC,
    response_model=PlanDiaPublic,
)
async def put_plan_dia(
    body: PlanDiaUpdate,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await plan.guardar_plan(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            entries={(body.id_partida_anexo, body.fecha): body.volumen},
        )
    volumen = d.validate_volume(body.volumen)
    return {
        "id_ot": body.id_ot,
        "id_partida_anexo": body.id_partida_anexo,
        "fecha": body.fecha,
        "volumen_programado": vol(volumen) if volumen > 0 else None,
    }


@router.post(
    "/plan-diario/masivo",
    summary="Save a month's daily plan grid",
    description=PLAN_DOC + " `valores[i]` is day i+1; null leaves the day as it is.",
    response_model=PlanGuardadoPublic,
)
async def guardar_plan_masivo(
    body: PlanMasivoCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    entries = plan.month_entries(
        body.mes, body.anio, [(p.id_partida_imp, p.valores) for p in body.partidas]
    )
    async with unit_of_work_for(request, session):
        res = await plan.guardar_plan(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            entries=entries,
            partida_field="partidas",
        )
    return {
        "id_ot": body.id_ot,
        "guardados": res.guardados,
        "eliminados": res.eliminados,
        "sin_cambio": res.sin_cambio,
    }


_PLAN_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The plan file as it is: CSV (utf-8 with or without BOM, cp1252 or "
        "latin-1; `,` or `;`) or xlsx (first sheet). Header row with PARTIDA (line code), FECHA "
        "(YYYY-MM-DD or DD/MM/YYYY), VOLUMEN and optionally ANEXO; one row per line and day. "
        f"At most {d.MAX_PLAN_FILE_BYTES} bytes and {d.MAX_PLAN_ROWS} rows.",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in plan_files.MEDIA_TYPES
        },
    }
}


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise d.plan_too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise d.plan_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/plan-diario/importacion",
    summary="Import the daily plan of an OT from a CSV or xlsx file",
    description=PLAN_DOC + " The file is applied whole or not at all: faulty rows → 422 "
    "PLAN_INVALIDO with `filas: [{fila, campo, codigo, detalle}]` (row 1 is the header); a "
    "code naming no active line of the family → PARTIDA_NO_EXISTE, several → PARTIDA_AMBIGUA "
    "(add ANEXO); a line and day twice → FILA_DUPLICADA. Another media type → 415.",
    response_model=PlanImportadoPublic,
    responses=problem_responses(413, 415),
    openapi_extra=_PLAN_FILE_BODY,
)
async def importar_plan(
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
    id_ot: Id32 = Query(gt=0, le=INT32_MAX),
) -> dict[str, Any]:
    content_type = request.headers.get("content-type")
    plan_files.file_kind(content_type, b"")  # an unsupported type is refused before reading
    data = await read_bounded(request, d.MAX_PLAN_FILE_BYTES)
    kind = plan_files.file_kind(content_type, data)
    sheet = plan_files.read_plan_file(kind, data)
    async with unit_of_work_for(request, session):
        res = await plan.importar_plan(session, writer, actor_of(user), id_ot=id_ot, sheet=sheet)
    return {
        "id_ot": id_ot,
        "guardados": res.guardados,
        "eliminados": res.eliminados,
        "sin_cambio": res.sin_cambio,
        "formato": kind,
        "filas": res.filas,
    }
