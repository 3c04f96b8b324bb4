"""HTTP routes of the evidence service (thin: validate input, call one use case, commit).

Domain errors (:class:`evidence.domain.DomainError`) become RFC 9457 problem+json through
:class:`DomainRoute`: ``type = https://nexo.dev/problems/<CODE>``, the offending field in
``field`` and ``errors: [{field, reason}]``. Volumes are decimal strings with 6 decimals,
money with 2. Optimistic concurrency on GPUs and productions: ``ETag: "<version>"`` on reads,
``If-Match`` (412 when stale) or a body ``version`` (409 ``VERSION_OBSOLETA`` when stale).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence import queries
from evidence.adapters import BulkWriter
from evidence.application import billing, common, daily, gpus, ots, production, reports
from evidence.domain import Actor, DomainError, GpuStatus
from evidence.models import (
    NO_SITE,
    EstimacionDetalle,
    EstimacionHeader,
    GpuConflicto,
    Produccion,
    RegistroGpuHistorial,
)
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.bounds import INT32_MAX, DomainDate, Id32, Int32, SafeText, json_body_guard
from service_defaults.deps import get_session
from service_defaults.errors import ProblemError

ROLE_RESIDENTE = d.ROLE_RESIDENTE
ROLE_REVISOR = d.ROLE_REVISOR
ROLE_SUPERVISOR = d.ROLE_SUPERVISOR
ROLE_FACTURACION = d.ROLE_FACTURACION
ROLES: tuple[str, ...] = d.ROLES
"""Roles defined by the evidence service (the gateway reuses them)."""

READERS = (*ROLES, "ops")
CAPTURE = (ROLE_RESIDENTE, ROLE_SUPERVISOR)
WORKFLOW = (ROLE_RESIDENTE, ROLE_REVISOR, ROLE_SUPERVISOR)

# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    TipoTiempoIn = str
    BulkReviewTarget = str
else:
    TipoTiempoIn = Literal[d.values(d.TipoTiempo)]
    BulkReviewTarget = Literal[d.values(d.BULK_REVIEW_TARGETS)]


def to_problem(exc: DomainError) -> ProblemError:
    ext: dict[str, Any] = {k: _jsonable(v) for k, v in exc.extensions.items()}
    if exc.field:
        ext["field"] = exc.field
        ext["errors"] = [{"field": exc.field, "reason": exc.detail}]
    return ProblemError(exc.status, exc.code, exc.title, exc.detail, **ext)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


SEED_EXITO_PATHS = ("guardar_estatus_gpu", "guardar_reportes_diarios_masiva")
"""Seed endpoints answering ``{exito, mensaje}``: their problems also carry both members."""


class DomainRoute(APIRoute):
    """Route class that turns a DomainError raised by a use case into a ProblemError."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = idempotency.idempotent(super().get_route_handler())

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                problem = to_problem(exc)
                if request.url.path.endswith(SEED_EXITO_PATHS):
                    problem.extensions |= {"exito": False, "mensaje": exc.detail}
                raise problem from None

        return json_body_guard(self, route)


router = APIRouter(route_class=DomainRoute, tags=["evidence"])

Session = Annotated[AsyncSession, Depends(get_session)]


def writer_of(request: Request) -> BulkWriter:
    """The database's bulk writer, chosen once in `evidence.main.create_app`."""
    writer: BulkWriter = request.app.state.evidence_writer
    return writer


Writer = Annotated[BulkWriter, Depends(writer_of)]


def actor_of(user: CurrentUser) -> Actor:
    return Actor(user.sub, frozenset(user.roles))


def config_of(request: Request) -> common.EvidenceConfig:
    return common.config_from_settings(request.app.state.settings)


async def commit(request: Request, session: AsyncSession) -> None:
    """Commit (deferred to the key row's transaction on a keyed request), then wake the relay."""
    runtime = getattr(request.app.state, "runtime", None)
    await idempotency.commit(session, *([runtime.wake_relay] if runtime is not None else []))


def vol(value: Decimal | None) -> str | None:
    return None if value is None else d.format_volume(Decimal(value))


def money(value: Decimal) -> str:
    return str(d.money(Decimal(value)))


def iso(value: dt.datetime | None) -> str | None:
    v = common.aware(value)
    return v.isoformat() if v else None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ============================================================================================
# OTs and annex imports
# ============================================================================================


class OtIn(_In):
    orden_trabajo: SafeText = Field(min_length=1, max_length=100, examples=["OTE-2025-001"])
    descripcion_trabajo: SafeText = ""
    ot_principal: Int32 | None = Field(default=None, description="Principal OT (reprogramación)")
    fecha_inicio_programado: DomainDate | None = None
    fecha_termino_programado: DomainDate | None = None
    fecha_inicio_real: DomainDate | None = None
    fecha_termino_real: DomainDate | None = None
    id_frente: Id32 | None = Field(default=None, gt=0, description="Selects the site column")
    id_embarcacion: Id32 | None = Field(default=None, gt=0)
    id_plataforma: Id32 | None = Field(default=None, gt=0)
    id_intercom: Id32 | None = Field(default=None, gt=0)
    id_patio: Id32 | None = Field(default=None, gt=0)


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
    }


@router.post("/ots", status_code=201, summary="Create a work order (OT)")
async def crear_ot(
    body: OtIn,
    request: Request,
    session: Session,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    ot = await ots.crear_ot(session, **body.model_dump())
    await commit(request, session)
    return ot_out(ot)


@router.get("/ots/{id_ot}", summary="Get a work order")
async def get_ot(
    id_ot: Id32, session: Session, user: CurrentUser = Depends(require_roles(*READERS))
) -> dict[str, Any]:
    return ot_out(await common.get_ot(session, id_ot))


class PartidaIn(_In):
    id_partida: SafeText = Field(min_length=1, max_length=20, examples=["C-2.1.1"])
    descripcion: SafeText = ""
    anexo: SafeText | None = Field(default=None, max_length=10, examples=["C-2"])
    unidad: SafeText = Field(default="", max_length=20, examples=["JOR"])
    volumen_proyectado: Decimal = Field(ge=0, max_digits=18, decimal_places=6)
    precio_unitario_mn: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)
    precio_unitario_usd: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)


class ImportacionIn(_In):
    es_activo: bool = True
    archivo: SafeText | None = Field(default=None, max_length=500)
    partidas: list[PartidaIn] = Field(min_length=1, max_length=5000)


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


@router.post("/ots/{id_ot}/importaciones", status_code=201, summary="Import an annex (partidas)")
async def importar_anexo(
    id_ot: Id32,
    body: ImportacionIn,
    request: Request,
    session: Session,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    imp, rows = await ots.importar_anexo(
        session,
        actor_of(user),
        id_ot=id_ot,
        es_activo=body.es_activo,
        archivo=body.archivo,
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
            for p in body.partidas
        ],
    )
    await commit(request, session)
    return {
        "id": imp.id,
        "id_ot": imp.id_ot,
        "es_activo": imp.es_activo,
        "partidas": [partida_out(p) for p in rows],
    }


class ImportacionPatch(_In):
    es_activo: bool


@router.patch("/importaciones/{id_importacion}", summary="Activate / deactivate an import")
async def patch_importacion(
    id_importacion: Id32,
    body: ImportacionPatch,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    imp = await ots.cambiar_importacion_activa(
        session, writer, actor_of(user), id_importacion, body.es_activo
    )
    await commit(request, session)
    return {"id": imp.id, "id_ot": imp.id_ot, "es_activo": imp.es_activo}


# ============================================================================================
# Production
# ============================================================================================


class PartidaValoresIn(_In):
    id_partida_imp: Id32 = Field(gt=0)
    valores: list[Decimal | None] = Field(
        max_length=31,
        description="Volume of day 1..N (decimal string or number); null = leave unchanged",
    )


class ProduccionMasivaIn(_In):
    id_ot: Id32 = Field(gt=0)
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    tipo_tiempo: TipoTiempoIn = "TE"
    id_sitio: Id32 | None = Field(default=None, gt=0)
    partidas: list[PartidaValoresIn] = Field(max_length=5000)


@router.post(
    "/produccion/masiva",
    summary="Save a month's production grid (one time type) — guardar_produccion_masiva",
)
async def guardar_produccion_masiva(
    body: ProduccionMasivaIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*CAPTURE)),
) -> dict[str, Any]:
    res = await production.guardar_produccion_masiva(
        session,
        writer,
        actor_of(user),
        id_ot=body.id_ot,
        mes=body.mes,
        anio=body.anio,
        tipo_tiempo=body.tipo_tiempo,
        id_sitio=body.id_sitio,
        partidas=[production.PartidaValores(p.id_partida_imp, p.valores) for p in body.partidas],
    )
    await commit(request, session)
    return {
        "exito": True,
        "mensaje": "Producción guardada correctamente.",
        "id_reporte_mensual": res.id_reporte_mensual,
        "creadas": res.creadas,
        "actualizadas": res.actualizadas,
        "sin_cambio": res.sin_cambio,
        "eventos": res.eventos,  # changed productions announced
        "mensajes": res.mensajes,  # ProductionSaved.v2 events carrying them
    }


class ProduccionIn(_In):
    id_partida_anexo: Id32 = Field(gt=0)
    fecha: DomainDate
    tipo_tiempo: TipoTiempoIn
    volumen: Decimal
    id_sitio: Id32 | None = Field(default=None, gt=0)


class ProduccionPatch(_In):
    volumen: Decimal
    version: Int32 | None = Field(default=None, ge=1)


def produccion_out(p: Produccion) -> dict[str, Any]:
    return {
        "id": p.id,
        "id_partida_anexo": p.id_partida_anexo,
        "id_reporte_mensual": p.id_reporte_mensual,
        "fecha": p.fecha_produccion,
        "tipo_tiempo": p.tipo_tiempo,
        "id_sitio": None if p.id_sitio_produccion == NO_SITE else p.id_sitio_produccion,
        "volumen": vol(p.volumen_produccion),
        "es_excedente": p.es_excedente,
        "excedente_autorizado": p.excedente_autorizado_por is not None,
        "version": p.version,
    }


async def _produccion_response(
    session: AsyncSession, id_produccion: int, response: Response
) -> dict[str, Any]:
    session.expire_all()
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    response.headers["ETag"] = d.etag(prod.version)
    return produccion_out(prod)


@router.put("/producciones", summary="Create or update one production row")
async def put_produccion(
    body: ProduccionIn,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*CAPTURE)),
) -> dict[str, Any]:
    res = await production.guardar_produccion(
        session,
        writer,
        actor_of(user),
        id_partida_anexo=body.id_partida_anexo,
        fecha=body.fecha,
        tipo_tiempo=body.tipo_tiempo,
        volumen=body.volumen,
        id_sitio=body.id_sitio,
    )
    await commit(request, session)
    if not res.producciones:
        # unchanged, or a 0 on a new row (nothing created)
        found = await session.scalar(
            select(Produccion.id).where(
                Produccion.id_partida_anexo == body.id_partida_anexo,
                Produccion.fecha_produccion == body.fecha,
                Produccion.tipo_tiempo == body.tipo_tiempo,
                Produccion.id_sitio_produccion == (body.id_sitio or NO_SITE),
            )
        )
        if found is None:
            return {"id": None, "volumen": vol(Decimal(0)), "creada": False}
        return await _produccion_response(session, found, response)
    return await _produccion_response(session, res.producciones[0], response)


@router.get("/producciones/{id_produccion}", summary="Get one production row")
async def get_produccion(
    id_produccion: Id32,
    response: Response,
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
) -> dict[str, Any]:
    return await _produccion_response(session, id_produccion, response)


@router.patch("/producciones/{id_produccion}", summary="Edit one production volume")
async def patch_produccion(
    id_produccion: Id32,
    body: ProduccionPatch,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*CAPTURE)),
    if_match: SafeText | None = Header(default=None),
) -> dict[str, Any]:
    await _check_if_match_production(session, id_produccion, if_match)
    await production.editar_produccion(
        session, writer, actor_of(user), id_produccion, body.volumen, version=body.version
    )
    await commit(request, session)
    return await _produccion_response(session, id_produccion, response)


async def _check_if_match_production(
    session: AsyncSession, id_produccion: int, if_match: str | None
) -> None:
    if if_match is None:
        return
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    expected = d.parse_etag(if_match)
    if expected is not None and expected != prod.version:
        raise DomainError("PRECONDICION_FALLIDA", version_actual=prod.version)


@router.post(
    "/producciones/{id_produccion}/autorizacion-excedente",
    summary="Authorise billing an excedente production (DECIDE-C4)",
)
async def autorizar_excedente(
    id_produccion: Id32,
    request: Request,
    response: Response,
    session: Session,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    await production.autorizar_excedente(session, actor_of(user), id_produccion)
    await commit(request, session)
    return await _produccion_response(session, id_produccion, response)


class CierreMesIn(_In):
    id_ot: Id32 = Field(gt=0)
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    cerrado: bool = True


@router.post("/reportes-mensuales/cierre", summary="Close / reopen a monthly report")
async def cerrar_mes(
    body: CierreMesIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    rep = await reports.cerrar_mes(
        session, writer, id_ot=body.id_ot, mes=body.mes, anio=body.anio, cerrado=body.cerrado
    )
    await commit(request, session)
    return {
        "id": rep.id,
        "id_ot": rep.id_ot,
        "mes": rep.mes,
        "anio": rep.anio,
        "cerrado": rep.cerrado,
    }


class CierreDiaIn(_In):
    id_ot: Id32 = Field(gt=0)
    fecha: DomainDate
    cerrado: bool = True
    comentario: SafeText = Field(default="", max_length=255)


@router.post("/reportes-diarios/cierre", summary="Close / reopen a day of a monthly report")
async def cerrar_dia(
    body: CierreDiaIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_SUPERVISOR)),
) -> dict[str, Any]:
    day = await reports.cerrar_dia(
        session,
        writer,
        id_ot=body.id_ot,
        fecha=body.fecha,
        cerrado=body.cerrado,
        comentario=body.comentario,
    )
    await commit(request, session)
    return {"id": day.id, "fecha": day.fecha, "cerrado": day.cerrado}


# ============================================================================================
# GPU grid (seed shape) and GPU resource
# ============================================================================================


GRID_CACHE_SIZE = 64


def _grid_cache(request: Request) -> OrderedDict[tuple[Any, ...], bytes]:
    cache: OrderedDict[tuple[Any, ...], bytes] | None = getattr(
        request.app.state, "evidence_grid_cache", None
    )
    if cache is None:
        cache = OrderedDict()
        request.app.state.evidence_grid_cache = cache
    return cache


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
        body = json.dumps({"data": data}, ensure_ascii=False, separators=(",", ":")).encode()
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


@router.get(
    "/gpus/grid",
    summary="GPU grid of an OT and month",
    description=GRID_DOC,
    response_model=None,
)
@router.get(
    "/obtener_grid_gpus",
    summary="GPU grid (seed-compatible path)",
    description=GRID_DOC,
    response_model=None,
    operation_id="obtener_grid_gpus",
)
async def grid(
    request: Request,
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
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


@router.get("/gpus", summary="List GPUs of an OT (optionally month / status)")
async def listar_gpus(
    session: Session,
    id_ot: Id32,
    user: CurrentUser = Depends(require_roles(*READERS)),
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


@router.get("/gpus/conflictos", summary="Production changes that could not retire a GPU (G10)")
async def listar_conflictos(
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
    id_ot: Id32 | None = None,
) -> dict[str, Any]:
    rows: list[GpuConflicto] = await queries.conflictos(session, id_ot=id_ot)
    return {
        "data": [
            {
                "id": c.id,
                "id_gpu": c.id_gpu,
                "id_produccion": c.id_produccion,
                "estatus_gpu": c.estatus_gpu,
                "facturado": c.facturado,
                "motivo": c.motivo,
                "detalle": c.detalle,
                "resuelto": c.resuelto,
                "fecha": iso(c.fecha),
            }
            for c in rows
        ]
    }


@router.get("/gpus/{id_gpu}", summary="Get a GPU (ETag = version)")
async def get_gpu(
    id_gpu: Id32,
    response: Response,
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
) -> dict[str, Any]:
    ctx = await gpus.get_gpu(session, id_gpu)
    response.headers["ETag"] = d.etag(ctx.gpu.version)
    return gpu_out(ctx)


class TransicionIn(_In):
    a: SafeText = Field(description="Target status code (PENDIENTE, CARGADO, EN_REVISION, ...)")
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = Field(default=None, description="Rejection reason code")
    checklist: dict[str, bool] | None = None
    version: Int32 | None = Field(default=None, ge=1)


@router.post("/gpus/{id_gpu}/transiciones", summary="Apply a GPU status transition")
async def transicionar(
    id_gpu: Id32,
    body: TransicionIn,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*WORKFLOW)),
    if_match: SafeText | None = Header(default=None),
) -> dict[str, Any]:
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
    await commit(request, session)
    response.headers["ETag"] = d.etag(ctx.gpu.version)
    return gpu_out(ctx)


class BulkGpuIn(_In):
    id_gpu: Id32 = Field(gt=0)
    version: Int32 | None = Field(default=None, ge=1)


class TransicionMasivaIn(_In):
    a: BulkReviewTarget
    gpus: list[BulkGpuIn] = Field(min_length=1, max_length=1000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = None


@router.post(
    "/gpus/transiciones-masivas",
    summary="Bulk take-for-review / validate / reject (all or nothing)",
)
async def transicionar_masivo(
    body: TransicionMasivaIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_REVISOR)),
) -> dict[str, Any]:
    rows = await gpus.transicionar_gpus(
        session,
        writer,
        actor_of(user),
        [gpus.BulkItem(g.id_gpu, g.version) for g in body.gpus],
        d.TransitionRequest(to=GpuStatus(body.a), nota=body.nota, motivo=body.motivo),
        cfg=config_of(request),
    )
    await commit(request, session)
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


@router.get("/gpus/{id_gpu}/historial", summary="Append-only history of a GPU")
async def historial(
    id_gpu: Id32, session: Session, user: CurrentUser = Depends(require_roles(*READERS))
) -> dict[str, Any]:
    return {"data": [historial_out(h) for h in await queries.historial(session, id_gpu)]}


class EstatusLegacyIn(BaseModel):
    id_produccion: Id32 | None = None
    estatus_id: Int32
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)


@router.post(
    "/guardar_estatus_gpu",
    summary="Seed-compatible status save",
    description="Body `{id_produccion, estatus_id, archivo}`; response `{exito, mensaje}`. "
    "Each call is one transition of the state machine; errors are problem+json with the "
    "right status and also carry `exito: false` and `mensaje`.",
)
async def guardar_estatus_gpu(
    body: EstatusLegacyIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*WORKFLOW)),
) -> dict[str, Any]:
    if body.id_produccion is None:
        raise DomainError(
            "PRODUCCION_NO_ENCONTRADA", "ID de producción no proporcionado", field="id_produccion"
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
    await commit(request, session)
    return {"exito": True, "mensaje": "Registro GPU actualizado correctamente"}


# ============================================================================================
# Related production endpoints (seed shapes): production grid, site daily-status grid
# ============================================================================================


@router.get(
    "/obtener_partidas_produccion",
    summary="Production grid of an OT and month (seed-compatible path)",
    description="Lines of the OT family's active imports consolidated by (anexo, code, "
    "description); `dia1`…`dia31` null or `{valor, programado, es_excedente, te_dia, cma_dia}` "
    "(decimal strings, 6 decimals; `valor` is the requested `tipo_tiempo`); `estatus_gpu` (seed "
    "name) = `estatus_volumen`; `dias_bloqueados` = closed days of the OT's month. Readers: "
    "every evidence role and ops (as the GPU grid).",
    operation_id="obtener_partidas_produccion",
)
async def obtener_partidas_produccion(
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
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
)
async def ots_por_sitio_grid(
    session: Session,
    user: CurrentUser = Depends(require_roles(*READERS)),
    id_sitio: Id32 = Query(gt=0, le=INT32_MAX),
    mes: Int32 = Query(ge=1, le=12),
    anio: Int32 = Query(ge=2000, le=2100),
) -> dict[str, Any]:
    rows = await queries.ots_por_sitio(session, id_sitio=id_sitio, mes=mes, anio=anio)
    return {"reportes_diarios": rows}


class ReporteDiasIn(_In):
    id_ot: Id32 = Field(gt=0)
    valores: list[Annotated[SafeText, Field(max_length=40)] | None] = Field(max_length=31)


class ReportesDiariosIn(_In):
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    reportes: list[ReporteDiasIn] = Field(max_length=2000)


@router.post(
    "/guardar_reportes_diarios_masiva",
    summary="Mass save of daily operational statuses (seed-compatible path)",
    description="`valores[i]` is the status description of day i+1 from the daily catalogue "
    "(never a GPU status, GP-D02); empty or null clears the day and deletes its row (GP-D14). "
    "Writers: residente and supervisor (GP-D14: login required); setting or lifting a closed "
    "day needs supervisor, as `POST /reportes-diarios/cierre`. A closed month → 409.",
    operation_id="guardar_reportes_diarios_masiva",
)
async def guardar_reportes_diarios_masiva(
    body: ReportesDiariosIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(*CAPTURE)),
) -> dict[str, Any]:
    res = await daily.guardar_reportes_diarios(
        session,
        writer,
        actor_of(user),
        mes=body.mes,
        anio=body.anio,
        reportes=[daily.ReporteDiasInput(r.id_ot, r.valores) for r in body.reportes],
    )
    await commit(request, session)
    return {
        "exito": True,
        "mensaje": "Reportes diarios guardados correctamente.",
        "guardados": res.guardados,
        "eliminados": res.eliminados,
        "sin_cambio": res.sin_cambio,
    }


# ============================================================================================
# Billing
# ============================================================================================


class DetalleIn(_In):
    id_produccion: Id32 = Field(gt=0)
    volumen_estimado: Decimal | None = Field(default=None, ge=0, max_digits=15, decimal_places=2)
    comentario_ajuste: SafeText = ""


class EstimacionIn(_In):
    id_ot: Id32 = Field(gt=0)
    fecha_desde: DomainDate
    fecha_hasta: DomainDate
    fecha_estimacion: DomainDate | None = None
    comentario: SafeText = ""
    detalles: list[DetalleIn] | None = Field(
        default=None,
        description="Explicit lines; omitted → assembled from every billable production",
    )


def estimacion_out(
    header: EstimacionHeader, lines: list[EstimacionDetalle], omitidas: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": header.id,
        "id_ot": header.id_ot,
        "fecha_estimacion": header.fecha_estimacion,
        "fecha_desde": header.fecha_desde,
        "fecha_hasta": header.fecha_hasta,
        "estatus_cobro": header.estatus_cobro,
        "total_volumen_producido": money(header.total_volumen_producido),
        "total_volumen_estimado": money(header.total_volumen_estimado),
        "total_importe_mn": money(header.total_importe_mn),
        "total_importe_usd": money(header.total_importe_usd),
        "detalles": [
            {
                "id": x.id,
                "id_produccion": x.id_produccion,
                "volumen_actual": money(x.volumen_actual),
                "volumen_estimado": money(x.volumen_estimado),
                "precio_unitario_mn": str(
                    Decimal(x.precio_unitario_mn).quantize(Decimal("0.0001"))
                ),
                "precio_unitario_usd": str(
                    Decimal(x.precio_unitario_usd).quantize(Decimal("0.0001"))
                ),
                "importe_mn": money(x.importe_mn),
                "importe_usd": money(x.importe_usd),
                "es_excedente": x.es_excedente,
            }
            for x in lines
        ],
        "omitidas": omitidas,
    }


@router.post("/estimaciones", status_code=201, summary="Build an estimate (billing link)")
async def crear_estimacion(
    body: EstimacionIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_FACTURACION)),
) -> dict[str, Any]:
    res = await billing.crear_estimacion(
        session,
        writer,
        actor_of(user),
        id_ot=body.id_ot,
        fecha_desde=body.fecha_desde,
        fecha_hasta=body.fecha_hasta,
        fecha_estimacion=body.fecha_estimacion or d.business_date(common.utcnow()),
        comentario=body.comentario,
        detalles=None
        if body.detalles is None
        else [
            billing.DetalleInput(x.id_produccion, x.volumen_estimado, x.comentario_ajuste)
            for x in body.detalles
        ],
        cfg=config_of(request),
    )
    await commit(request, session)
    return estimacion_out(res.header, res.detalles, res.omitidas)


@router.get("/estimaciones/{id_estimacion}", summary="Get an estimate")
async def get_estimacion(
    id_estimacion: Id32, session: Session, user: CurrentUser = Depends(require_roles(*READERS))
) -> dict[str, Any]:
    res = await billing.get_estimacion(session, id_estimacion)
    return estimacion_out(res.header, res.detalles, [])


@router.post(
    "/estimaciones/{id_estimacion}/detalles",
    status_code=201,
    summary="Add one production to an estimate (links and locks its GPU)",
)
async def agregar_detalle(
    id_estimacion: Id32,
    body: DetalleIn,
    request: Request,
    session: Session,
    writer: Writer,
    user: CurrentUser = Depends(require_roles(ROLE_FACTURACION)),
) -> dict[str, Any]:
    await billing.agregar_detalle(
        session,
        writer,
        actor_of(user),
        id_estimacion,
        billing.DetalleInput(body.id_produccion, body.volumen_estimado, body.comentario_ajuste),
        cfg=config_of(request),
    )
    await commit(request, session)
    res = await billing.get_estimacion(session, id_estimacion)
    return estimacion_out(res.header, res.detalles, [])


# ============================================================================================
# Completeness report
# ============================================================================================


@router.get(
    "/reportes/completitud",
    summary="% of GPUs per status by OT / month / annex + missing evidence (JSON or CSV)",
    response_model=None,
)
async def completitud(
    request: Request,
    session: Session,
    id_ot: Id32,
    mes: Int32,
    anio: Int32,
    user: CurrentUser = Depends(require_roles(*READERS)),
    anexo: SafeText | None = None,
    formato: Literal["json", "csv"] = "json",
) -> Response | dict[str, Any]:
    rep = await queries.completitud(
        session, id_ot=id_ot, mes=mes, anio=anio, anexo=anexo, cfg=config_of(request)
    )
    if formato == "csv":
        buf = io.StringIO()
        fields = [
            "id_produccion",
            "fecha",
            "tipo_tiempo",
            "volumen",
            "id_partida_anexo",
            "codigo",
            "descripcion",
            "anexo",
            "id_gpu",
            "estatus",
            "nota_bloqueo",
        ]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rep["faltantes"]:
            writer.writerow(row)
        name = f"faltantes_{rep['orden_trabajo']}_{anio}-{mes:02d}.csv"
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    out: dict[str, Any] = _jsonable(rep)
    return out
