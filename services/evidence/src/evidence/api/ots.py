"""Routes: work orders (OTs) and annex imports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest
from starlette.types import Message

from evidence import domain as d
from evidence.api.access import ReaderUser, SupervisorUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, iso, vol
from evidence.api.schemas import (
    ImportacionConPartidas,
    ImportacionCreate,
    ImportacionPublic,
    ImportacionUpdate,
    OtCreate,
    OtPublic,
    PartidaCreate,
)
from evidence.api.schemas_search import OtHistorialList, OtUpdate
from evidence.application import common, ots, workbook
from evidence.domain import DomainError
from evidence.domain import annex_excel as xl
from evidence.domain.errors import file_type_unsupported
from evidence.domain.ots import OT_ACTIVA, OT_INACTIVA
from evidence.models import OtHistorial
from service_defaults.auth import CurrentUser
from service_defaults.bounds import Id32
from service_defaults.openapi import problem_responses
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


def ot_out(ot: Any) -> dict[str, Any]:
    return {
        "id": ot.id,
        "orden_trabajo": ot.orden_trabajo,
        "descripcion_trabajo": ot.descripcion_trabajo,
        "ot_principal": ot.ot_principal,
        "id_tipo": ot.id_tipo,
        "fecha_inicio_programado": ot.fecha_inicio_programado,
        "fecha_termino_programado": ot.fecha_termino_programado,
        "fecha_inicio_real": ot.fecha_inicio_real,
        "fecha_termino_real": ot.fecha_termino_real,
        "id_frente": ot.id_frente,
        "id_embarcacion": ot.id_embarcacion,
        "id_plataforma": ot.id_plataforma,
        "id_intercom": ot.id_intercom,
        "id_patio": ot.id_patio,
        "id_cliente": ot.id_cliente,
        "num_reprogramacion": ot.num_reprogramacion,
        "activo": ot.estatus == OT_ACTIVA,
    }


@router.post("/ots", status_code=201, summary="Create a work order (OT)", response_model=OtPublic)
async def crear_ot(
    body: OtCreate,
    request: Request,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        ot = await ots.crear_ot(session, **body.model_dump())
    return ot_out(ot)


@router.get("/ots/{id_ot}", summary="Get a work order", response_model=OtPublic)
async def get_ot(id_ot: Id32, session: Session, user: ReaderUser) -> dict[str, Any]:
    return ot_out(await common.get_ot(session, id_ot))


def partida_out(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "id_importacion_anexo": p.id_importacion_anexo,
        "codigo": p.id_partida,
        "descripcion": p.descripcion_concepto,
        "anexo": p.anexo,
        "unidad": p.unidad,
        "volumen_proyectado": vol(p.volumen_proyectado),
        "precio_unitario_mn": str(Decimal(p.precio_unitario_mn).quantize(Decimal("0.0001"))),
        "precio_unitario_usd": str(Decimal(p.precio_unitario_usd).quantize(Decimal("0.0001"))),
        "orden_fila": p.orden_fila,
        "requiere_gpu": d.annex_requires_gpu(p.anexo),
    }


@router.post(
    "/ots/{id_ot}/importaciones",
    status_code=201,
    summary="Import an annex (partidas)",
    response_model=ImportacionConPartidas,
)
async def importar_anexo(
    id_ot: Id32,
    body: ImportacionCreate,
    request: Request,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    return await _importar(
        request, session, user, id_ot, body.es_activo, body.archivo, body.partidas
    )


async def _importar(
    request: Request,
    session: AsyncSession,
    user: CurrentUser,
    id_ot: int,
    es_activo: bool,
    archivo: str | None,
    partidas: list[PartidaCreate],
) -> dict[str, Any]:
    """The one import use case behind the JSON and the Excel routes."""
    async with unit_of_work_for(request, session):
        imp, rows = await ots.importar_anexo(
            session,
            actor_of(user),
            id_ot=id_ot,
            es_activo=es_activo,
            archivo=archivo,
            partidas=[
                ots.PartidaInput(
                    p.id_partida,
                    p.descripcion,
                    p.anexo,
                    p.unidad,
                    p.volumen_proyectado,
                    p.precio_unitario_mn,
                    p.precio_unitario_usd,
                )
                for p in partidas
            ],
        )
    return {
        "id": imp.id,
        "id_ot": imp.id_ot,
        "es_activo": imp.es_activo,
        "partidas": [partida_out(p) for p in rows],
    }


MAX_ROW_ERRORS = 100
"""Row errors listed in one 422 answer (the count of all of them is ``total_errores``)."""
MULTIPART_SLACK = 64 * 1024
"""Bytes of multipart framing and form fields allowed over the file's own bound."""
XLSX_LIMITS = workbook.WorkbookLimits(
    max_bytes=xl.MAX_BYTES,
    max_unzipped=xl.MAX_UNZIPPED,
    max_rows=xl.MAX_SCANNED_ROWS,
    max_columns=xl.MAX_COLUMNS,
)
ACCEPTED_MEDIA_TYPES = (workbook.XLSX_MEDIA_TYPE, workbook.BINARY_MEDIA_TYPE)

_XLSX_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "`archivo`: the annex workbook (.xlsx; its first sheet: a header row naming "
            "ID_PARTIDA and VOLUMEN_PROYECTADO, optionally DESCRIPCION_CONCEPTO, ANEXO, "
            "UNIDAD_MEDIDA, PRECIO_UNITARIO_MN, PRECIO_UNITARIO_USD; one partida a row). "
            "`es_activo`: true (default) or false."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["archivo"],
                    "properties": {
                        "archivo": {"type": "string", "format": "binary"},
                        "es_activo": {"type": "boolean", "default": True},
                    },
                }
            }
        },
    }
}


async def _bounded_form(request: Request) -> Any:
    """The multipart form, the body read up to the file bound (413 beyond it) before parsing."""
    ctype = workbook.media_type(request.headers.get("content-type"))
    if ctype != "multipart/form-data":
        raise file_type_unsupported(
            f"se espera multipart/form-data con el archivo, no {ctype or 'nada'}",
            ["multipart/form-data"],
        )
    limit = xl.MAX_BYTES + MULTIPART_SLACK
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise workbook.too_large(XLSX_LIMITS)
    data = bytes(body)

    async def replay() -> Message:
        return {"type": "http.request", "body": data, "more_body": False}

    return await StarletteRequest(request.scope, replay).form(max_files=1, max_fields=4)


def _partidas(sheet: xl.AnnexSheet) -> list[PartidaCreate]:
    """Each row through the JSON import's request model; every failure named by row and
    column (422 ``EXCEL_FILAS_INVALIDAS`` with ``errors: [{field, fila, columna, reason}]``)."""
    out: list[PartidaCreate] = []
    errors: list[dict[str, Any]] = []
    for row in sheet.rows:
        values = {k: v for k, v in row.values.items() if v is not None}
        try:
            out.append(PartidaCreate.model_validate(values))
        except ValidationError as exc:
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "id_partida"
                canonical = xl.COLUMNS.get(name, (name,))[0]
                header, letter = sheet.headers.get(name, (canonical, ""))
                errors.append(
                    {
                        "field": f"archivo[{row.fila}].{canonical}",
                        "fila": row.fila,
                        "columna": header,
                        "celda": f"{letter}{row.fila}" if letter else None,
                        "reason": err["msg"],
                    }
                )
    if errors:
        raise DomainError(
            "EXCEL_FILAS_INVALIDAS",
            f"{len(errors)} valores inválidos; la primera en la fila {errors[0]['fila']}, "
            f"columna {errors[0]['columna']}",
            field="archivo",
            errors=errors[:MAX_ROW_ERRORS],
            total_errores=len(errors),
        )
    return out


@router.post(
    "/ots/{id_ot}/importaciones/excel",
    status_code=201,
    summary="Import an annex from an Excel workbook (.xlsx, multipart)",
    response_model=ImportacionConPartidas,
    openapi_extra=_XLSX_BODY,
    responses=problem_responses(413, 415),
)
async def importar_anexo_excel(
    id_ot: Id32, request: Request, session: Session, user: SupervisorUser
) -> dict[str, Any]:
    """Parse the workbook into the JSON import's partidas, then the same import use case."""
    await common.get_ot(session, id_ot)
    form = await _bounded_form(request)
    try:
        upload = form.get("archivo")
        if not isinstance(upload, UploadFile):
            raise DomainError("ARCHIVO_REQUERIDO", "falta el archivo del anexo", field="archivo")
        media = workbook.media_type(upload.content_type or workbook.BINARY_MEDIA_TYPE)
        if media not in ACCEPTED_MEDIA_TYPES:
            raise file_type_unsupported(
                f"el archivo debe ser .xlsx ({workbook.XLSX_MEDIA_TYPE}), no {media}",
                list(ACCEPTED_MEDIA_TYPES),
            )
        flag = str(form.get("es_activo") or "true").strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise DomainError(
                "PARTIDA_INVALIDA", "es_activo debe ser true o false", field="es_activo"
            )
        data = await upload.read()
        filename = upload.filename
    finally:
        await form.close()
    sheet = workbook.read_first_sheet(data, XLSX_LIMITS, xl.annex_sheet)
    partidas = _partidas(sheet)
    name = (filename or "anexo.xlsx").replace(" ", "_")[-200:]
    return await _importar(request, session, user, id_ot, flag in ("true", "1"), name, partidas)


@router.patch(
    "/importaciones/{id_importacion}",
    summary="Activate / deactivate an import",
    response_model=ImportacionPublic,
)
async def patch_importacion(
    id_importacion: Id32,
    body: ImportacionUpdate,
    request: Request,
    session: Session,
    writer: Writer,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        imp = await ots.cambiar_importacion_activa(
            session, writer, actor_of(user), id_importacion, body.es_activo
        )
    return {"id": imp.id, "id_ot": imp.id_ot, "es_activo": imp.es_activo}


@router.patch(
    "/ots/{id_ot}",
    summary="Edit a work order: dates (reprogramming), client, description, active flag",
    description=(
        "Members sent are changed, absent ones kept; each end date on or after its start (422 "
        "PERIODO_INVALIDO); a period change that would leave captured production of the OT "
        "family outside an OT's period is refused (409 OT_PRODUCCION_FUERA_DE_PERIODO, the "
        "production's first and last date); every effective change is audited "
        "(`GET /ots/{id}/historial`)."
    ),
    response_model=OtPublic,
)
async def editar_ot(
    id_ot: Id32,
    body: OtUpdate,
    request: Request,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"motivo"})
    if "activo" in changes:
        changes["estatus"] = OT_ACTIVA if changes.pop("activo") else OT_INACTIVA
    async with unit_of_work_for(request, session):
        ot = await ots.editar_ot(session, actor_of(user), id_ot, changes, body.motivo)
        out = ot_out(ot)
    return out


@router.get(
    "/ots/{id_ot}/historial",
    summary="Audit of a work order's edits (oldest first)",
    response_model=OtHistorialList,
)
async def historial_ot(id_ot: Id32, session: Session, user: ReaderUser) -> dict[str, Any]:
    await common.get_ot(session, id_ot)
    rows = await session.scalars(
        select(OtHistorial).where(OtHistorial.id_ot == id_ot).order_by(OtHistorial.id)
    )
    return {
        "data": [
            {
                "id": h.id,
                "id_ot": h.id_ot,
                "usuario": h.usuario,
                "fecha": iso(h.fecha),
                "cambios": h.cambios,
                "motivo": h.motivo,
            }
            for h in rows
        ]
    }
