"""Routes: the GPU grid (seed shape, cached by grid version), the GPU resource, its transitions,
history and the legacy status save.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence import queries
from evidence.api.access import ReaderUser, RevisorUser, SupervisorUser, WorkflowUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, config_of, iso, vol
from evidence.api.schemas import (
    Exito,
    GpuConflictoList,
    GpuConflictoPublic,
    GpuConflictoResolucionCreate,
    GpuEstatusLegacy,
    GpuHistorialList,
    GpuList,
    GpuPublic,
    GpuTransicionCreate,
    GpuTransicionMasivaCreate,
    GridPublic,
)
from evidence.application import conflicts, gpus
from evidence.domain import DomainError, GpuStatus
from evidence.models import (
    GpuConflicto,
    RegistroGpuHistorial,
)
from service_defaults.bounds import INT32_MAX, Id32, Int32, SafeText
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


GRID_CACHE_SIZE = 64


def _grid_cache(request: Request) -> OrderedDict[tuple[Any, ...], bytes]:
    cache: OrderedDict[tuple[Any, ...], bytes] | None = getattr(
        request.app.state, "evidence_grid_cache", None
    )
    if cache is None:
        cache = OrderedDict()
        request.app.state.evidence_grid_cache = cache
    return cache


def encode_grid(data: list[dict[str, Any]]) -> bytes:
    """The grid's JSON body, rendered once per grid version (schema: :class:`GridPublic`)."""
    return json.dumps({"data": data}, ensure_ascii=False, separators=(",", ":")).encode()


async def _grid(
    request: Request,
    session: AsyncSession,
    id_ot: int | None,
    mes: int | None,
    anio: int | None,
    if_none_match: str | None,
) -> Response:
    """Read model: the month's grid version (1 query) keys an in-process cache of the encoded
    body; on a miss the grid is built in one more query. ETag = report + version."""
    if id_ot is None or mes is None or anio is None:
        return JSONResponse({"data": []})
    version = await queries.grid_version(session, id_ot=id_ot, mes=mes, anio=anio)
    if version is None:
        return JSONResponse({"data": []})
    cfg = config_of(request)
    tag = f'"g{version[0]}-{version[1]}"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if if_none_match is not None and tag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    cache = _grid_cache(request)
    key = (id_ot, mes, anio, *version, tuple(sorted(cfg.gpu_annexes)))
    body = cache.get(key)
    if body is None:
        data = await queries.grid(session, id_ot=id_ot, mes=mes, anio=anio, cfg=cfg)
        body = encode_grid(data)
        cache[key] = body
        while len(cache) > GRID_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return Response(body, media_type="application/json", headers=headers)


GRID_DOC = (
    "Seed `obtener_grid_gpus` shape. `dia_N` is null or a list of cells sorted by "
    "(tipo_tiempo TE first, site); `volumen` is a decimal string with 6 decimals; "
    "`estatus_id` is the workflow id 19-23. Missing parameter or no monthly report → "
    '`{"data": []}`; mes outside 1..12 → 400 MES_INVALIDO.'
)
GRID_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": GridPublic, "description": "The grid (pre-rendered JSON, cached)"},
    304: {"description": "Not modified (`If-None-Match` holds the current ETag)"},
}


@router.get(
    "/gpus/grid",
    summary="GPU grid of an OT and month",
    description=GRID_DOC,
    response_model=None,
    responses=GRID_RESPONSES,
)
@router.get(
    "/obtener_grid_gpus",
    summary="GPU grid (seed-compatible path)",
    description=GRID_DOC,
    response_model=None,
    responses=GRID_RESPONSES,
    operation_id="obtener_grid_gpus",
)
async def grid(
    request: Request,
    session: Session,
    user: ReaderUser,
    id_ot: Id32 | None = None,
    mes: Int32 | None = None,
    anio: Int32 | None = None,
    if_none_match: SafeText | None = Header(default=None),
) -> Response:
    return await _grid(request, session, id_ot, mes, anio, if_none_match)


def gpu_out(ctx: gpus.GpuContext) -> dict[str, Any]:
    g = ctx.gpu
    status = GpuStatus(g.estatus)
    return {
        "id": g.id,
        "id_produccion": g.id_produccion,
        "id_ot": ctx.id_ot,
        "id_reporte_mensual": ctx.id_reporte_mensual,
        "anexo": ctx.anexo,
        "fecha": ctx.fecha,
        "tipo_tiempo": ctx.tipo_tiempo,
        "volumen": vol(ctx.volumen),
        "estatus": str(status),
        "estatus_id": status.legacy_id,
        "estatus_texto": status.descripcion,
        "archivo": g.archivo,
        "nota_bloqueo": g.nota_bloqueo,
        "motivo_rechazo": g.motivo_rechazo,
        "checklist": g.checklist,
        "facturado": g.id_estimacion_detalle is not None,
        "id_estimacion_detalle": g.id_estimacion_detalle,
        "fecha_carga": iso(g.fecha_carga),
        "usuario_carga": g.usuario_carga,
        "fecha_revision": iso(g.fecha_revision),
        "usuario_revision": g.usuario_revision,
        "mes_cerrado": ctx.mes_cerrado,
        "version": g.version,
        "transiciones_permitidas": sorted(
            str(t) for (f, t) in d.TRANSITIONS if f == status and g.id_estimacion_detalle is None
        ),
    }


@router.get(
    "/gpus", summary="List GPUs of an OT (optionally month / status)", response_model=GpuList
)
async def listar_gpus(
    session: Session,
    id_ot: Id32,
    user: ReaderUser,
    mes: Int32 | None = Query(default=None, ge=1, le=12),
    anio: Int32 | None = Query(default=None, ge=2000, le=2100),
    estatus: SafeText | None = None,
    limit: Int32 = Query(default=500, ge=1, le=5000),
    offset: Int32 = Query(default=0, ge=0, le=INT32_MAX),
) -> dict[str, Any]:
    status = GpuStatus.parse(estatus, field="estatus") if estatus else None
    rows = await queries.listar_gpus(
        session, id_ot=id_ot, mes=mes, anio=anio, estatus=status, limit=limit, offset=offset
    )
    return {"data": [gpu_out(r) for r in rows]}


@router.get(
    "/gpus/conflictos",
    summary="Production changes that could not retire a GPU (G10)",
    response_model=GpuConflictoList,
)
async def listar_conflictos(
    session: Session,
    user: ReaderUser,
    id_ot: Id32 | None = None,
    resuelto: bool | None = Query(default=None, description="Only open (false) or closed"),
) -> dict[str, Any]:
    rows: list[GpuConflicto] = await queries.conflictos(session, id_ot=id_ot, resuelto=resuelto)
    return {"data": [conflicto_out(c) for c in rows]}


def conflicto_out(c: GpuConflicto) -> dict[str, Any]:
    return {
        "id": c.id,
        "id_gpu": c.id_gpu,
        "id_produccion": c.id_produccion,
        "estatus_gpu": c.estatus_gpu,
        "facturado": c.facturado,
        "motivo": c.motivo,
        "detalle": c.detalle,
        "resuelto": c.resuelto,
        "fecha": iso(c.fecha),
        "resolucion": c.resolucion,
        "justificacion": c.justificacion,
        "resuelto_por": c.resuelto_por,
        "fecha_resolucion": iso(c.fecha_resolucion),
    }


@router.post(
    "/gpus/conflictos/{id_conflicto}/resolucion",
    summary="Resolve a G10 conflict: keep the GPU (justified) or annul it",
    response_model=GpuConflictoPublic,
)
async def resolver_conflicto(
    id_conflicto: Id32,
    body: GpuConflictoResolucionCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        conflict = await conflicts.resolver_conflicto(
            session,
            writer,
            actor_of(user),
            id_conflicto,
            d.ConflictDecision(body.decision),
            body.justificacion,
        )
        out = conflicto_out(conflict)
    return out


@router.get("/gpus/{id_gpu}", summary="Get a GPU (ETag = version)", response_model=GpuPublic)
async def get_gpu(
    id_gpu: Id32,
    response: Response,
    session: Session,
    user: ReaderUser,
) -> dict[str, Any]:
    ctx = await gpus.get_gpu(session, id_gpu)
    response.headers["ETag"] = d.etag(ctx.gpu.version)
    return gpu_out(ctx)


@router.post(
    "/gpus/{id_gpu}/transiciones",
    summary="Apply a GPU status transition",
    response_model=GpuPublic,
)
async def transicionar(
    id_gpu: Id32,
    body: GpuTransicionCreate,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: WorkflowUser,
    if_match: SafeText | None = Header(default=None),
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if if_match is not None:
            current = await gpus.get_gpu(session, id_gpu)
            expected = d.parse_etag(if_match)
            if expected is not None and expected != current.gpu.version:
                raise DomainError("PRECONDICION_FALLIDA", version_actual=current.gpu.version)
        ctx = await gpus.transicionar_gpu(
            session,
            writer,
            actor_of(user),
            id_gpu,
            d.TransitionRequest(
                to=GpuStatus.parse(body.a),
                archivo=body.archivo,
                nota=body.nota,
                motivo=body.motivo,
                checklist=body.checklist,
            ),
            expected_version=body.version,
            cfg=config_of(request),
        )
    response.headers["ETag"] = d.etag(ctx.gpu.version)
    return gpu_out(ctx)


@router.post(
    "/gpus/transiciones-masivas",
    summary="Bulk take-for-review / validate / reject (all or nothing)",
    response_model=GpuList,
)
async def transicionar_masivo(
    body: GpuTransicionMasivaCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: RevisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        rows = await gpus.transicionar_gpus(
            session,
            writer,
            actor_of(user),
            [gpus.BulkItem(g.id_gpu, g.version) for g in body.gpus],
            d.TransitionRequest(to=GpuStatus(body.a), nota=body.nota, motivo=body.motivo),
            cfg=config_of(request),
        )
    return {"data": [gpu_out(r) for r in rows]}


def historial_out(h: RegistroGpuHistorial) -> dict[str, Any]:
    return {
        "id": h.id,
        "id_gpu": h.id_gpu,
        "id_produccion": h.id_produccion,
        "accion": h.accion,
        "regla": h.regla,
        "de_estatus": h.de_estatus,
        "a_estatus": h.a_estatus,
        "usuario": h.usuario,
        "fecha": iso(h.fecha),
        "nota": h.nota,
        "motivo": h.motivo,
        "archivo": h.archivo,
        "version": h.version,
    }


@router.get(
    "/gpus/{id_gpu}/historial",
    summary="Append-only history of a GPU",
    response_model=GpuHistorialList,
)
async def historial(id_gpu: Id32, session: Session, user: ReaderUser) -> dict[str, Any]:
    return {"data": [historial_out(h) for h in await queries.historial(session, id_gpu)]}


@router.post(
    "/guardar_estatus_gpu",
    summary="Seed-compatible status save",
    description="Body `{id_produccion, estatus_id, archivo}`; response `{exito, mensaje}`. "
    "Each call is one transition of the state machine; errors are problem+json with the "
    "right status and also carry `exito: false` and `mensaje`.",
    response_model=Exito,
)
async def guardar_estatus_gpu(
    body: GpuEstatusLegacy,
    request: Request,
    session: Session,
    writer: Writer,
    user: WorkflowUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if body.id_produccion is None:
            raise DomainError(
                "PRODUCCION_NO_ENCONTRADA",
                "ID de producción no proporcionado",
                field="id_produccion",
            )
        await gpus.guardar_estatus_legacy(
            session,
            writer,
            actor_of(user),
            id_produccion=body.id_produccion,
            estatus_id=body.estatus_id,
            archivo=body.archivo,
            nota=body.nota,
            cfg=config_of(request),
        )
    return {"exito": True, "mensaje": "Registro GPU actualizado correctamente"}
