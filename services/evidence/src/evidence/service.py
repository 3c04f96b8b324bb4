"""Use cases of the evidence service.

Each use case runs inside the caller's transaction on ``session`` (the route or the consumer
runner commits once): domain checks + rows + outbox rows of its events, all or nothing
(DOMAIN §0.3.4). Concurrency (§0.3.5): the monthly report row is locked (``FOR UPDATE``) by
every production save of that month; GPU rows are locked in ascending id order and written
with conditional updates (``WHERE version = :v`` / ``WHERE estatus IN (...)``) whose
row count is checked. ``FOR UPDATE`` is a no-op on SQLite, where writes are serialised anyway.

Rule violations raise :class:`evidence.domain.DomainError` (mapped to problem+json by the API).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.evidence import (
    MAX_PRODUCTIONS_PER_EVENT,
    GpuStatusChanged,
    ProductionSavedV2,
    SavedProduction,
)
from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.domain import Actor, DomainError, GpuStatus
from evidence.models import (
    CLOSED_DAILY_STATUS,
    DEFAULT_DAILY_STATUS,
    NO_SITE,
    EstimacionDetalle,
    EstimacionHeader,
    GpuConflicto,
    GridVersion,
    ImportacionAnexo,
    Ot,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteDiario,
    ReporteMensual,
    outbox,
)
from nexo_messaging.outbox import enqueue
from nexo_messaging.outbox import enqueue_many as _enqueue_many

PRODUCCION_T = cast(Table, Produccion.__table__)
GPU_T = cast(Table, RegistroGpu.__table__)
HISTORIAL_T = cast(Table, RegistroGpuHistorial.__table__)
REPORTE_T = cast(Table, ReporteMensual.__table__)
DIARIO_T = cast(Table, ReporteDiario.__table__)

SYSTEM = Actor(d.SYSTEM_USER, frozenset({d.ROLE_ADMIN}))


@dataclass(frozen=True)
class EvidenceConfig:
    gpu_annexes: frozenset[str] = d.DEFAULT_GPU_ANNEXES
    allowed_hosts: frozenset[str] = d.DEFAULT_ALLOWED_HOSTS


DEFAULT_CONFIG = EvidenceConfig()


def config_from_settings(settings: Any) -> EvidenceConfig:
    return EvidenceConfig(
        gpu_annexes=frozenset(
            d.normalize_annex(a) for a in getattr(settings, "gpu_annexes", d.DEFAULT_GPU_ANNEXES)
        ),
        allowed_hosts=frozenset(
            h.strip().lower()
            for h in getattr(settings, "evidence_allowed_hosts", d.DEFAULT_ALLOWED_HOSTS)
        ),
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def eligible_where(cfg: EvidenceConfig) -> Any:
    """§C.4.1 as a where-clause over the production/line/import joins of a read (the SQL form
    of :func:`evidence.domain.is_gpu_eligible`, rendered from the same constants)."""
    return d.gpu_eligible_sql(
        anexo=PartidaAnexo.anexo,
        volumen=Produccion.volumen_produccion,
        importacion_activa=ImportacionAnexo.es_activo,
        annexes=cfg.gpu_annexes,
    )


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Outbox helpers
# --------------------------------------------------------------------------------------------


async def enqueue_many(session: AsyncSession, events: Sequence[DomainEvent]) -> int:
    """Outbox rows for many events in one statement (``nexo_messaging.outbox.enqueue_many``)."""
    if not events:
        return 0
    await _enqueue_many(session, outbox, list(events))
    return len(events)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", -1))


async def bump_grid(session: AsyncSession, writer: BulkWriter, report_ids: Iterable[int]) -> None:
    """Increment the grid version of these monthly reports (same transaction as the write)."""
    ids = sorted(set(report_ids))
    if ids:
        await writer.bump_grid(session, ids)


# --------------------------------------------------------------------------------------------
# OTs and annexes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartidaInput:
    id_partida: str
    descripcion: str
    anexo: str | None
    unidad: str
    volumen_proyectado: Decimal
    precio_unitario_mn: Decimal = Decimal(0)
    precio_unitario_usd: Decimal = Decimal(0)


async def get_ot(session: AsyncSession, id_ot: int, *, field: str = "id_ot") -> Ot:
    ot = await session.get(Ot, id_ot)
    if ot is None:
        raise DomainError("OT_NO_ENCONTRADA", f"OT {id_ot} no existe", field=field, id_ot=id_ot)
    return ot


async def crear_ot(
    session: AsyncSession,
    *,
    orden_trabajo: str,
    descripcion_trabajo: str = "",
    ot_principal: int | None = None,
    fecha_inicio_programado: dt.date | None = None,
    fecha_termino_programado: dt.date | None = None,
    **extra: Any,
) -> Ot:
    """``extra``: the optional OT columns (real dates, frente and site ids)."""
    folio = orden_trabajo.strip()
    exists = await session.scalar(select(Ot.id).where(Ot.orden_trabajo == folio))
    if exists is not None:
        raise DomainError("OT_DUPLICADA", f"la OT {folio} ya existe", field="orden_trabajo")
    principal_id: int | None = None
    if ot_principal is not None:
        principal = await session.get(Ot, ot_principal)
        if principal is None:
            raise DomainError("OT_PRINCIPAL_INVALIDA", field="ot_principal")
        principal_id = principal.ot_principal or principal.id
    ot = Ot(
        orden_trabajo=folio,
        descripcion_trabajo=descripcion_trabajo,
        id_tipo=5 if principal_id else 4,
        ot_principal=principal_id,
        fecha_inicio_programado=fecha_inicio_programado,
        fecha_termino_programado=fecha_termino_programado,
        fecha_creacion=utcnow(),
        **extra,
    )
    session.add(ot)
    await session.flush()
    return ot


async def family_ids(session: AsyncSession, ot: Ot) -> list[int]:
    """The OT family: principal plus every OT whose ``ot_principal`` is the principal."""
    principal = ot.ot_principal or ot.id
    rows = await session.scalars(
        select(Ot.id).where(or_(Ot.id == principal, Ot.ot_principal == principal))
    )
    return sorted(rows)


async def importar_anexo(
    session: AsyncSession,
    actor: Actor,
    *,
    id_ot: int,
    partidas: Sequence[PartidaInput],
    es_activo: bool = True,
    archivo: str | None = None,
) -> tuple[ImportacionAnexo, list[PartidaAnexo]]:
    ot = await get_ot(session, id_ot)
    imp = ImportacionAnexo(
        id_ot=ot.id,
        archivo=archivo,
        es_activo=es_activo,
        total_registros=len(partidas),
        usuario_carga=actor.sub,
        fecha_carga=utcnow(),
    )
    session.add(imp)
    await session.flush()
    rows = [
        PartidaAnexo(
            id_importacion_anexo=imp.id,
            id_partida=p.id_partida.strip(),
            descripcion_concepto=p.descripcion,
            anexo=p.anexo,
            unidad=p.unidad,
            volumen_proyectado=p.volumen_proyectado,
            precio_unitario_mn=p.precio_unitario_mn,
            precio_unitario_usd=p.precio_unitario_usd,
            orden_fila=i,
        )
        for i, p in enumerate(partidas, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    await recompute_excedentes(session, await family_ids(session, ot), actor)
    return imp, rows


async def cambiar_importacion_activa(
    session: AsyncSession, writer: BulkWriter, actor: Actor, id_importacion: int, es_activo: bool
) -> ImportacionAnexo:
    """Activating/deactivating an import changes GPU eligibility (§C.4.2 a_retirar): every
    production of its lines is re-announced so the GPU sync converges."""
    imp = await session.get(ImportacionAnexo, id_importacion, with_for_update=True)
    if imp is None:
        raise DomainError("PARTIDA_NO_ENCONTRADA", "importación no encontrada", field="id")
    if imp.es_activo == es_activo:
        return imp
    imp.es_activo = es_activo
    await session.flush()
    ot = await get_ot(session, imp.id_ot)
    changed = await recompute_excedentes(session, await family_ids(session, ot), actor)
    prods = (
        await session.scalars(
            select(Produccion.id)
            .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
            .where(PartidaAnexo.id_importacion_anexo == imp.id)
        )
    ).all()
    ids = sorted(set(prods) | set(changed))
    family = await family_ids(session, ot)
    reports = (
        await session.scalars(select(ReporteMensual.id).where(ReporteMensual.id_ot.in_(family)))
    ).all()
    await bump_grid(session, writer, reports)
    await _announce(session, writer, ids, actor, change="updated", before={})
    return imp


# --------------------------------------------------------------------------------------------
# Monthly reports and days
# --------------------------------------------------------------------------------------------


async def get_or_create_report(
    session: AsyncSession, writer: BulkWriter, id_ot: int, mes: int, anio: int, *, lock: bool = True
) -> ReporteMensual:
    now = utcnow()
    await writer.insert_ignore(
        session,
        REPORTE_T,
        [
            {
                "id_ot": id_ot,
                "mes": mes,
                "anio": anio,
                "cerrado": False,
                "fecha_creacion": now,
                "fecha_actualizacion": now,
            }
        ],
    )
    stmt = select(ReporteMensual).where(
        ReporteMensual.id_ot == id_ot, ReporteMensual.mes == mes, ReporteMensual.anio == anio
    )
    if lock:
        stmt = stmt.with_for_update()
    report = (await session.scalars(stmt)).one()
    return report


async def find_report(
    session: AsyncSession, id_ot: int, mes: int, anio: int
) -> ReporteMensual | None:
    return await session.scalar(
        select(ReporteMensual).where(
            ReporteMensual.id_ot == id_ot,
            ReporteMensual.mes == mes,
            ReporteMensual.anio == anio,
        )
    )


async def cerrar_mes(
    session: AsyncSession, writer: BulkWriter, *, id_ot: int, mes: int, anio: int, cerrado: bool
) -> ReporteMensual:
    d.validate_month(mes, anio)
    await get_ot(session, id_ot)
    report = await get_or_create_report(session, writer, id_ot, mes, anio)
    report.cerrado = cerrado
    report.fecha_actualizacion = utcnow()
    await session.flush()
    return report


async def cerrar_dia(
    session: AsyncSession,
    writer: BulkWriter,
    *,
    id_ot: int,
    fecha: dt.date,
    cerrado: bool,
    comentario: str = "",
) -> ReporteDiario:
    await get_ot(session, id_ot)
    report = await get_or_create_report(session, writer, id_ot, fecha.month, fecha.year)
    await writer.insert_ignore(
        session,
        DIARIO_T,
        [{"id_reporte_mensual": report.id, "fecha": fecha, "cerrado": False, "comentario": ""}],
    )
    day = (
        await session.scalars(
            select(ReporteDiario).where(
                ReporteDiario.id_reporte_mensual == report.id, ReporteDiario.fecha == fecha
            )
        )
    ).one()
    day.cerrado = cerrado
    # The status mirrors the flag: closing sets the closed-day status; reopening a closed day
    # returns it to the default (another operational status is kept as it is).
    if cerrado:
        day.estatus = CLOSED_DAILY_STATUS
    elif day.estatus == CLOSED_DAILY_STATUS:
        day.estatus = DEFAULT_DAILY_STATUS
    day.comentario = comentario
    await session.flush()
    return day


# --------------------------------------------------------------------------------------------
# Production save (bulk grid + single row)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartidaValores:
    id_partida_imp: int
    valores: Sequence[Decimal | None]


@dataclass
class SaveResult:
    id_reporte_mensual: int
    creadas: int = 0
    actualizadas: int = 0
    sin_cambio: int = 0
    eventos: int = 0
    """Changed productions announced (rows of this save plus over-volume flag changes)."""
    mensajes: int = 0
    """ProductionSaved.v2 events written to the outbox for them."""
    producciones: list[int] = field(default_factory=list)


async def _partidas_of_family(
    session: AsyncSession, writer: BulkWriter, family: Sequence[int], ids: Iterable[int]
) -> set[int]:
    """Which of these budget lines belong to an import of the OT family (Core read)."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    conn = await session.connection()
    rows = await conn.execute(
        select(PartidaAnexo.id)
        .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
        .where(writer.id_match(PartidaAnexo.id, wanted), ImportacionAnexo.id_ot.in_(family))
    )
    return {int(r[0]) for r in rows}


async def guardar_produccion_masiva(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_ot: int,
    mes: int,
    anio: int,
    tipo_tiempo: str,
    partidas: Sequence[PartidaValores],
    id_sitio: int | None = None,
) -> SaveResult:
    """Save a month's grid of one time type: ``valores[i]`` is day ``i+1``; ``None`` leaves the
    day as it is, ``0`` sets an existing row to 0 (no row is created for 0)."""
    days = d.days_in_month(mes, anio)
    if tipo_tiempo not in d.values(d.TipoTiempo):
        raise DomainError("PARTIDA_INVALIDA", "tipo_tiempo debe ser TE o CMA", field="tipo_tiempo")
    requested: dict[d.ProdKey, Decimal] = {}
    for i, p in enumerate(partidas):
        if len(p.valores) > days:
            raise DomainError(
                "DIA_INVALIDO",
                f"{len(p.valores)} valores para un mes de {days} días",
                field=f"partidas[{i}].valores",
            )
        for j, raw in enumerate(p.valores):
            if raw is None:
                continue
            vol = d.validate_volume(raw, field=f"partidas[{i}].valores[{j}]")
            key = (p.id_partida_imp, dt.date(anio, mes, j + 1), tipo_tiempo, id_sitio or NO_SITE)
            requested[key] = vol
    return await _save(
        session,
        writer,
        actor,
        id_ot=id_ot,
        mes=mes,
        anio=anio,
        requested=requested,
        partida_field="partidas",
    )


async def guardar_produccion(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_partida_anexo: int,
    fecha: dt.date,
    tipo_tiempo: str,
    volumen: Decimal,
    id_sitio: int | None = None,
    id_ot: int | None = None,
) -> SaveResult:
    """Single-row upsert keyed by (partida, fecha, tipo_tiempo, sitio)."""
    vol = d.validate_volume(volumen)
    if id_ot is None:
        found = await session.scalar(
            select(ImportacionAnexo.id_ot)
            .join(PartidaAnexo, PartidaAnexo.id_importacion_anexo == ImportacionAnexo.id)
            .where(PartidaAnexo.id == id_partida_anexo)
        )
        if found is None:
            raise DomainError("PARTIDA_NO_ENCONTRADA", field="id_partida_anexo")
        id_ot = found
    key = (id_partida_anexo, fecha, tipo_tiempo, id_sitio or NO_SITE)
    return await _save(
        session,
        writer,
        actor,
        id_ot=id_ot,
        mes=fecha.month,
        anio=fecha.year,
        requested={key: vol},
        partida_field="id_partida_anexo",
    )


async def editar_produccion(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    id_produccion: int,
    volumen: Decimal,
    *,
    version: int | None = None,
) -> SaveResult:
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    d.check_version(prod.version, version)
    report = await session.get(ReporteMensual, prod.id_reporte_mensual)
    assert report is not None
    vol = d.validate_volume(volumen)
    key = (prod.id_partida_anexo, prod.fecha_produccion, prod.tipo_tiempo, prod.id_sitio_produccion)
    return await _save(
        session,
        writer,
        actor,
        id_ot=report.id_ot,
        mes=report.mes,
        anio=report.anio,
        requested={key: vol},
        partida_field="id_partida_anexo",
        expected_versions={id_produccion: version} if version is not None else None,
    )


async def _save(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_ot: int,
    mes: int,
    anio: int,
    requested: dict[d.ProdKey, Decimal],
    partida_field: str,
    expected_versions: Mapping[int, int | None] | None = None,
) -> SaveResult:
    d.validate_month(mes, anio)
    ot = await get_ot(session, id_ot)
    family = await family_ids(session, ot)
    partidas = await _partidas_of_family(session, writer, family, (k[0] for k in requested))
    unknown = sorted({k[0] for k in requested} - set(partidas))
    if unknown:
        raise DomainError(
            "PARTIDA_INVALIDA",
            f"partidas {unknown} no pertenecen a la OT {id_ot} ni a su familia",
            field=partida_field,
            partidas=unknown,
        )
    for key in requested:
        if key[1].month != mes or key[1].year != anio:
            raise DomainError("DIA_INVALIDO", "fecha fuera del mes", field="fecha")

    # Serialise every save of this month: lock the report row.
    report = await get_or_create_report(session, writer, id_ot, mes, anio)
    result = SaveResult(id_reporte_mensual=report.id)
    if not requested:
        return result

    conn = await session.connection()  # Core on the hot path: flat rows, no ORM objects
    existing_rows = (
        await conn.execute(
            select(
                PRODUCCION_T.c.id,
                PRODUCCION_T.c.id_partida_anexo,
                PRODUCCION_T.c.fecha_produccion,
                PRODUCCION_T.c.tipo_tiempo,
                PRODUCCION_T.c.id_sitio_produccion,
                PRODUCCION_T.c.volumen_produccion,
                PRODUCCION_T.c.version,
            ).where(
                PRODUCCION_T.c.id_reporte_mensual == report.id,
                writer.id_match(PRODUCCION_T.c.id_partida_anexo, sorted({k[0] for k in requested})),
            )
        )
    ).all()
    by_key: dict[d.ProdKey, Any] = {(r[1], r[2], r[3], r[4]): r for r in existing_rows}
    relevant = sorted(r.id for k, r in by_key.items() if k in requested)
    gpus = await _lock_gpu_rows(session, writer, relevant)
    existing = {
        k: d.ExistingProduction(
            r.id,
            Decimal(r.volumen_produccion),
            _existing_gpu(gpus.get(r.id)),
        )
        for k, r in by_key.items()
        if k in requested
    }
    closed_days = (
        await conn.execute(
            select(ReporteDiario.fecha).where(
                ReporteDiario.id_reporte_mensual == report.id, ReporteDiario.cerrado.is_(True)
            )
        )
    ).scalars()
    plan = d.plan_production_save(
        requested, existing, mes_cerrado=report.cerrado, dias_cerrados=closed_days
    )
    result.sin_cambio = plan.unchanged
    if expected_versions:
        for change in plan.changes:
            if change.id is not None and change.id in expected_versions:
                d.check_version(by_key[change.key].version, expected_versions[change.id])

    now = utcnow()
    before: dict[int, Decimal | None] = {}
    created_ids = await _insert_productions(
        session, writer, report.id, [c for c in plan.changes if c.id is None], actor, now
    )
    for pid in created_ids:
        before[pid] = None
    updates = [(c, by_key[c.key].version) for c in plan.changes if c.id is not None]
    await _update_productions(session, writer, updates, actor, now)
    for c, _version in updates:
        assert c.id is not None
        before[c.id] = c.volumen_anterior
    result.creadas = len(created_ids)
    result.actualizadas = len(updates)

    flag_changes = await recompute_excedentes(session, family, actor)
    changed_ids = sorted(set(before) | set(flag_changes))
    result.producciones = sorted(before)
    result.mensajes = await _announce(
        session, writer, changed_ids, actor, change=None, before=before, created=set(created_ids)
    )
    result.eventos = len(changed_ids)
    if plan.changes:
        await bump_grid(session, writer, [report.id])
    return result


async def _insert_productions(
    session: AsyncSession,
    writer: BulkWriter,
    id_reporte: int,
    changes: Sequence[d.PlannedChange],
    actor: Actor,
    now: dt.datetime,
) -> list[int]:
    """Insert the new production rows of a save; return their ids."""
    if not changes:
        return []
    return await writer.insert_productions(session, id_reporte, changes, actor.sub, now)


async def _update_productions(
    session: AsyncSession,
    writer: BulkWriter,
    updates: Sequence[tuple[d.PlannedChange, int]],
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Set the new volumes of changed rows, each guarded by the version read for the plan
    (``autorizar_excedente`` bumps it without the report lock); all rows or VERSION_OBSOLETA."""
    if not updates:
        return
    if await writer.update_productions(session, updates, actor.sub, now) != len(updates):
        raise DomainError(
            "VERSION_OBSOLETA", "la producción cambió mientras se guardaba", field="version"
        )


def _existing_gpu(gpu: Any) -> d.ExistingGpu | None:
    """The domain view of a GPU (a ``RegistroGpu`` or a row of :func:`_lock_gpu_rows`)."""
    if gpu is None:
        return None
    return d.ExistingGpu(GpuStatus(gpu.estatus), gpu.id_estimacion_detalle is not None)


_GPU_LOCK_COLUMNS = (
    GPU_T.c.id,
    GPU_T.c.id_produccion,
    GPU_T.c.estatus,
    GPU_T.c.archivo,
    GPU_T.c.version,
    GPU_T.c.id_estimacion_detalle,
)


async def _lock_gpu_rows(
    session: AsyncSession, writer: BulkWriter, production_ids: Sequence[int]
) -> dict[int, Any]:
    """Like :func:`_lock_gpus_by_production` but plain rows (Core: no ORM objects to build for
    a month of GPUs) with the columns the save and the GPU sync read."""
    conn = await session.connection()
    out: dict[int, Any] = {}
    for chunk in writer.id_chunks(production_ids):
        rows = await conn.execute(
            select(*_GPU_LOCK_COLUMNS)
            .where(writer.id_match(GPU_T.c.id_produccion, chunk))
            .order_by(GPU_T.c.id)
            .with_for_update()
        )
        out.update({r.id_produccion: r for r in rows})
    return out


async def _lock_gpus_by_production(
    session: AsyncSession, writer: BulkWriter, production_ids: Sequence[int]
) -> dict[int, RegistroGpu]:
    """GPU rows of these productions, locked in ascending GPU id order."""
    out: dict[int, RegistroGpu] = {}
    for chunk in writer.id_chunks(production_ids):
        rows = (
            await session.scalars(
                select(RegistroGpu)
                .where(writer.id_match(RegistroGpu.id_produccion, chunk))
                .order_by(RegistroGpu.id)
                .with_for_update()
            )
        ).all()
        out.update({g.id_produccion: g for g in rows})
    return out


async def recompute_excedentes(
    session: AsyncSession, family: Sequence[int], actor: Actor
) -> dict[int, bool]:
    """§C.4.4 chronological rule over the whole family; returns the rows whose flag changed."""
    conn = await session.connection()  # Core path for flat column reads
    lines = (
        await conn.execute(
            select(PartidaAnexo.id_partida, PartidaAnexo.volumen_proyectado)
            .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
            .where(ImportacionAnexo.id_ot.in_(family), ImportacionAnexo.es_activo.is_(True))
        )
    ).all()
    autorizado = d.authorised_volumes((code, Decimal(vol)) for code, vol in lines)
    prods = (
        await conn.execute(
            select(
                Produccion.id,
                PartidaAnexo.id_partida,
                Produccion.fecha_produccion,
                Produccion.tipo_tiempo,
                Produccion.volumen_produccion,
                Produccion.es_excedente,
            )
            .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
            .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
            .where(ImportacionAnexo.id_ot.in_(family))
        )
    ).all()
    flags = d.compute_excedentes(
        (d.VolumeRow(r[0], r[1], r[2], r[3], Decimal(r[4])) for r in prods), autorizado
    )
    changed = {r[0]: flags[r[0]] for r in prods if bool(r[5]) != flags[r[0]]}
    for value in (True, False):
        ids = sorted(pid for pid, flag in changed.items() if flag is value)
        for start in range(0, len(ids), 1000):
            await session.execute(
                update(Produccion)
                .where(Produccion.id.in_(ids[start : start + 1000]))
                .values(es_excedente=value)
                .execution_options(synchronize_session=False)
            )
    return changed


async def _announce(
    session: AsyncSession,
    writer: BulkWriter,
    production_ids: Sequence[int],
    actor: Actor,
    *,
    change: str | None,
    before: Mapping[int, Decimal | None],
    created: set[int] | None = None,
) -> int:
    """Announce changed productions in the outbox (same transaction): ONE ``ProductionSaved.v2``
    per monthly report, split into parts of at most ``MAX_PRODUCTIONS_PER_EVENT`` rows, keyed by
    the report's OT. Returns the number of events written."""
    if not production_ids:
        return 0
    now = utcnow()
    conn = await session.connection()
    by_report: dict[int, tuple[tuple[int, int, int], list[SavedProduction]]] = {}
    for chunk in writer.id_chunks(sorted(set(production_ids))):
        rows = await conn.execute(
            select(
                Produccion.id,
                Produccion.fecha_produccion,
                Produccion.tipo_tiempo,
                Produccion.id_sitio_produccion,
                Produccion.volumen_produccion,
                Produccion.es_excedente,
                PartidaAnexo.id,
                PartidaAnexo.anexo,
                ImportacionAnexo.es_activo,
                ReporteMensual.id,
                ReporteMensual.id_ot,
                ReporteMensual.mes,
                ReporteMensual.anio,
            )
            .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
            .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
            .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
            .where(writer.id_match(Produccion.id, chunk))
            .order_by(Produccion.id)
        )
        annexes: dict[str | None, str] = {}
        for (
            pid,
            fecha,
            tipo,
            sitio,
            volumen,
            excedente,
            id_partida,
            anexo,
            activa,
            id_reporte,
            id_ot,
            mes,
            anio,
        ) in rows:
            kind = change or ("created" if created and pid in created else "updated")
            current = Decimal(volumen).quantize(d.Q6)
            if anexo not in annexes:
                annexes[anexo] = d.normalize_annex(anexo)
            entry = by_report.get(id_reporte)
            if entry is None:
                entry = by_report[id_reporte] = ((id_ot, mes, anio), [])
            entry[1].append(
                SavedProduction(
                    id_produccion=pid,
                    id_partida_anexo=id_partida,
                    anexo=annexes[anexo],
                    importacion_activa=bool(activa),
                    fecha=fecha,
                    tipo_tiempo=tipo,
                    id_sitio=None if sitio == NO_SITE else sitio,
                    volumen=current,
                    volumen_anterior=None if kind == "created" else before.get(pid, current),
                    es_excedente=bool(excedente),
                    change=kind,
                )
            )
    events: list[DomainEvent] = []
    for id_reporte in sorted(by_report):
        (id_ot, mes, anio), items = by_report[id_reporte]
        parts = [
            items[i : i + MAX_PRODUCTIONS_PER_EVENT]
            for i in range(0, len(items), MAX_PRODUCTIONS_PER_EVENT)
        ]
        events.extend(
            ProductionSavedV2(
                id_ot=id_ot,
                id_reporte_mensual=id_reporte,
                mes=mes,
                anio=anio,
                parte=n,
                partes=len(parts),
                producciones=part,
                saved_by=actor.sub,
                saved_at=now,
            )
            for n, part in enumerate(parts, start=1)
        )
    return await enqueue_many(session, events)


async def autorizar_excedente(
    session: AsyncSession, actor: Actor, id_produccion: int, *, autorizar: bool = True
) -> Produccion:
    """[DECIDE-C4]: a Supervisor explicitly authorises billing an excedente production."""
    prod = await session.get(Produccion, id_produccion, with_for_update=True)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    prod.excedente_autorizado_por = actor.sub if autorizar else None
    prod.excedente_autorizado_en = utcnow() if autorizar else None
    prod.version += 1
    await session.flush()
    return prod


# --------------------------------------------------------------------------------------------
# GPU sync (consumer of ProductionSaved)
# --------------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    creados: list[int] = field(default_factory=list)
    eliminados: list[int] = field(default_factory=list)
    conflictos: list[int] = field(default_factory=list)


async def sync_gpus(
    session: AsyncSession,
    writer: BulkWriter,
    production_ids: Iterable[int],
    *,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
    actor: Actor = SYSTEM,
) -> SyncResult:
    """Bring the GPUs of these productions in line with their CURRENT state (§C.4.2).

    A pure function of the database state (not of the event payload), so redelivery,
    reordering and a replay of the whole topic converge to the same result. Bulk: a few
    statements for any number of productions (creations and deletions each in one statement
    on PostgreSQL), so a batch of events costs one transaction.
    """
    ids = sorted(set(production_ids))
    result = SyncResult()
    if not ids:
        return result
    now = utcnow()
    conn = await session.connection()
    prod_rows: dict[int, Any] = {}
    for chunk in writer.id_chunks(ids):
        for prow in (
            await conn.execute(
                select(
                    Produccion.id,
                    Produccion.volumen_produccion,
                    Produccion.fecha_produccion,
                    Produccion.id_reporte_mensual,
                    PartidaAnexo.anexo,
                    ImportacionAnexo.es_activo,
                    ReporteMensual.id_ot,
                )
                .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
                .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
                .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
                .where(writer.id_match(Produccion.id, chunk))
            )
        ).all():
            prod_rows[prow.id] = prow
    gpus = await _lock_gpu_rows(session, writer, ids)
    events: list[DomainEvent] = []
    to_create: list[int] = []
    to_delete: list[tuple[Any, Any]] = []
    touched: set[int] = set()
    for pid in ids:
        row: Any = prod_rows.get(pid)
        gpu = gpus.get(pid)
        eligible = row is not None and d.is_gpu_eligible(
            row.anexo,
            Decimal(row.volumen_produccion),
            importacion_activa=bool(row.es_activo),
            annexes=cfg.gpu_annexes,
        )
        action = d.plan_gpu_sync(eligible, _existing_gpu(gpu))
        if action is d.SyncAction.CREATE:
            to_create.append(pid)
        elif action is d.SyncAction.DELETE and gpu is not None:
            to_delete.append((gpu, row))
        elif (
            action is d.SyncAction.CONFLICT
            and gpu is not None
            and await _record_conflict(session, gpu, row, cfg, now)
        ):
            facturado = gpu.id_estimacion_detalle is not None
            detail = (
                f"La producción {pid} ya no requiere GPU "
                f"({_retire_reason(row, cfg)}) pero su GPU está en {gpu.estatus}"
                f"{' y facturado' if facturado else ''}: se conserva"
            )
            events.append(
                _gpu_event(
                    gpu,
                    row,
                    change="conflict",
                    frm=gpu.estatus,
                    to=gpu.estatus,
                    actor=actor,
                    now=now,
                    reason_code="GPU_FACTURADO" if facturado else "GPU_EN_PROCESO",
                    conflict=detail,
                )
            )
            result.conflictos.append(gpu.id)
    history: list[dict[str, Any]] = []
    if to_delete:
        gids = sorted(g.id for g, _ in to_delete)
        deleted: set[int] = set()
        for chunk in writer.id_chunks(gids):
            res = await conn.execute(
                delete(GPU_T)
                .where(
                    writer.id_match(GPU_T.c.id, chunk),
                    GPU_T.c.estatus.in_([str(s) for s in d.DELETABLE_STATUSES]),
                    GPU_T.c.id_estimacion_detalle.is_(None),
                )
                .returning(GPU_T.c.id)
            )
            deleted.update(int(i) for i in res.scalars())
        if deleted != set(gids):  # pragma: no cover - rows are locked above
            raise RuntimeError(f"GPUs {sorted(set(gids) - deleted)} changed while being retired")
        for gpu, row in to_delete:
            reason = _retire_reason(row, cfg)
            history.append(
                {
                    "id_gpu": gpu.id,
                    "id_produccion": gpu.id_produccion,
                    "accion": "ELIMINADO",
                    "regla": "G9",
                    "de_estatus": gpu.estatus,
                    "a_estatus": None,
                    "usuario": actor.sub,
                    "fecha": now,
                    "nota": reason,
                    "motivo": reason,
                    "archivo": gpu.archivo,
                    "version": gpu.version,
                }
            )
            events.append(
                _gpu_event(
                    gpu,
                    row,
                    change="deleted",
                    frm=gpu.estatus,
                    to=None,
                    actor=actor,
                    now=now,
                    reason_code=reason,
                )
            )
            result.eliminados.append(gpu.id)
            if row is not None:
                touched.add(row.id_reporte_mensual)
    if to_create:
        created = await _insert_gpus(session, writer, to_create, now)
        for gid, pid in created:
            row = prod_rows[pid]
            history.append(
                {
                    "id_gpu": gid,
                    "id_produccion": pid,
                    "accion": "CREADO",
                    "regla": "G1",
                    "de_estatus": None,
                    "a_estatus": str(GpuStatus.PENDIENTE),
                    "usuario": actor.sub,
                    "fecha": now,
                    "nota": None,
                    "motivo": None,
                    "archivo": None,
                    "version": 1,
                }
            )
            events.append(
                GpuStatusChanged(
                    id_registro_gpu=gid,
                    id_produccion=pid,
                    id_ot=row.id_ot,
                    id_reporte_mensual=row.id_reporte_mensual,
                    anexo=d.normalize_annex(row.anexo),
                    fecha=row.fecha_produccion,
                    change="created",
                    to_status="PENDIENTE",
                    to_status_id=GpuStatus.PENDIENTE.legacy_id,
                    changed_by=actor.sub,
                    changed_at=now,
                    gpu_version=1,
                )
            )
            result.creados.append(gid)
            touched.add(row.id_reporte_mensual)
    await _insert_history(session, writer, history)
    await enqueue_many(session, events)
    await bump_grid(session, writer, touched)
    return result


async def _insert_gpus(
    session: AsyncSession, writer: BulkWriter, production_ids: Sequence[int], now: dt.datetime
) -> list[tuple[int, int]]:
    """New PENDIENTE GPUs (GP-D01: Pendiente is 19) for these productions; (id, id_produccion)."""
    return await writer.insert_gpus(session, production_ids, str(GpuStatus.PENDIENTE), now)


async def _insert_history(
    session: AsyncSession, writer: BulkWriter, rows: Sequence[dict[str, Any]]
) -> None:
    """Append GPU history rows (every key of ``adapters.HISTORY_COLUMNS`` in each row)."""
    if rows:
        await writer.insert_history(session, rows)


def _retire_reason(row: Any, cfg: EvidenceConfig) -> str:
    if row is None:
        return "PRODUCCION_ELIMINADA"
    if Decimal(row.volumen_produccion) <= 0:
        return "VOLUMEN_CERO"
    if not row.es_activo:
        return "IMPORTACION_INACTIVA"
    if not d.annex_requires_gpu(row.anexo, cfg.gpu_annexes):
        return "ANEXO_NO_ELEGIBLE"
    return "NO_ELEGIBLE"


async def _record_conflict(
    session: AsyncSession, gpu: Any, row: Any, cfg: EvidenceConfig, now: dt.datetime
) -> bool:
    """Record an open conflict once per GPU and reason (idempotent). True if new."""
    reason = _retire_reason(row, cfg)
    exists = await session.scalar(
        select(GpuConflicto.id).where(
            GpuConflicto.id_gpu == gpu.id,
            GpuConflicto.motivo == reason,
            GpuConflicto.resuelto.is_(False),
        )
    )
    if exists is not None:
        return False
    session.add(
        GpuConflicto(
            id_gpu=gpu.id,
            id_produccion=gpu.id_produccion,
            estatus_gpu=gpu.estatus,
            facturado=gpu.id_estimacion_detalle is not None,
            motivo=reason,
            detalle=f"GPU {gpu.estatus} conservado; producción {reason}",
            resuelto=False,
            fecha=now,
        )
    )
    session.add(
        RegistroGpuHistorial(
            id_gpu=gpu.id,
            id_produccion=gpu.id_produccion,
            accion="CONFLICTO",
            regla="G10",
            de_estatus=gpu.estatus,
            a_estatus=gpu.estatus,
            usuario=d.SYSTEM_USER,
            fecha=now,
            nota=f"No se elimina: {reason}",
            motivo=reason,
            archivo=gpu.archivo,
            version=gpu.version,
        )
    )
    await session.flush()
    return True


def _gpu_event(
    gpu: RegistroGpu,
    row: Any,
    *,
    change: str,
    frm: str | None,
    to: str | None,
    actor: Actor,
    now: dt.datetime,
    reason_code: str | None = None,
    reason_text: str | None = None,
    conflict: str | None = None,
    id_ot: int | None = None,
    anexo: str | None = None,
    fecha: dt.date | None = None,
    id_reporte_mensual: int | None = None,
) -> GpuStatusChanged:
    return GpuStatusChanged(
        id_registro_gpu=gpu.id,
        id_produccion=gpu.id_produccion,
        id_ot=id_ot if id_ot is not None else (row.id_ot if row is not None else 0),
        id_reporte_mensual=id_reporte_mensual
        if id_reporte_mensual is not None
        else (row.id_reporte_mensual if row is not None else None),
        anexo=anexo if anexo is not None else d.normalize_annex(row.anexo if row else ""),
        fecha=fecha if fecha is not None else (row.fecha_produccion if row else None),
        change=change,
        from_status=frm,
        to_status=to,
        from_status_id=GpuStatus(frm).legacy_id if frm else None,
        to_status_id=GpuStatus(to).legacy_id if to else None,
        archivo=gpu.archivo,
        facturado=gpu.id_estimacion_detalle is not None,
        reason_code=reason_code,
        reason_text=reason_text,
        conflict=conflict,
        changed_by=actor.sub,
        changed_at=now,
        gpu_version=gpu.version,
    )


# --------------------------------------------------------------------------------------------
# GPU workflow
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuContext:
    gpu: RegistroGpu
    id_ot: int
    id_reporte_mensual: int
    mes_cerrado: bool
    anexo: str
    fecha: dt.date
    volumen: Decimal
    tipo_tiempo: str


def _gpu_ctx_query() -> Any:
    return (
        select(
            RegistroGpu,
            ReporteMensual.id_ot,
            ReporteMensual.id,
            ReporteMensual.cerrado,
            PartidaAnexo.anexo,
            Produccion.fecha_produccion,
            Produccion.volumen_produccion,
            Produccion.tipo_tiempo,
        )
        .join(Produccion, Produccion.id == RegistroGpu.id_produccion)
        .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
        .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
    )


async def _load_gpus(
    session: AsyncSession, ids: Sequence[int], *, by_production: bool = False, lock: bool
) -> dict[int, GpuContext]:
    col = RegistroGpu.id_produccion if by_production else RegistroGpu.id
    stmt = _gpu_ctx_query().where(col.in_(sorted(set(ids)))).order_by(RegistroGpu.id)
    if lock:
        stmt = stmt.with_for_update(of=RegistroGpu)
    out: dict[int, GpuContext] = {}
    for gpu, id_ot, id_rep, cerrado, anexo, fecha, vol, tipo in (await session.execute(stmt)).all():
        key = gpu.id_produccion if by_production else gpu.id
        out[key] = GpuContext(
            gpu, id_ot, id_rep, bool(cerrado), d.normalize_annex(anexo), fecha, Decimal(vol), tipo
        )
    return out


async def get_gpu(session: AsyncSession, id_gpu: int, *, lock: bool = False) -> GpuContext:
    found = await _load_gpus(session, [id_gpu], lock=lock)
    if id_gpu not in found:
        raise DomainError("GPU_NO_ENCONTRADO", f"GPU {id_gpu} no existe", field="id_gpu")
    return found[id_gpu]


async def _apply_transition(
    session: AsyncSession,
    writer: BulkWriter,
    ctx: GpuContext,
    req: d.TransitionRequest,
    actor: Actor,
    cfg: EvidenceConfig,
    expected_version: int | None,
    now: dt.datetime,
) -> GpuStatusChanged:
    gpu = ctx.gpu
    d.check_version(gpu.version, expected_version)
    state = d.GpuState(
        status=GpuStatus(gpu.estatus),
        archivo=gpu.archivo,
        facturado=gpu.id_estimacion_detalle is not None,
        usuario_carga=gpu.usuario_carga,
        mes_cerrado=ctx.mes_cerrado,
        version=gpu.version,
        anexo=ctx.anexo,
    )
    out = d.decide_transition(state, req, actor, allowed_hosts=cfg.allowed_hosts)
    values: dict[str, Any] = {
        "estatus": str(out.to_status),
        "archivo": out.archivo,
        "nota_bloqueo": out.nota_bloqueo,
        "version": gpu.version + 1,
        "fecha_actualizacion": now,
    }
    if out.sets_carga:
        values |= {"fecha_carga": now, "usuario_carga": actor.sub}
    if out.sets_revision:
        values |= {"fecha_revision": now, "usuario_revision": actor.sub}
    if out.clears_revision:
        values |= {"fecha_revision": None, "usuario_revision": None}
    if out.action is d.Action.RECHAZAR:
        values["motivo_rechazo"] = out.motivo
    elif out.action is d.Action.CARGAR:
        values["motivo_rechazo"] = None
    if out.checklist is not None:
        values["checklist"] = out.checklist
    res = await session.execute(
        update(RegistroGpu)
        .where(
            RegistroGpu.id == gpu.id,
            RegistroGpu.version == gpu.version,
            RegistroGpu.estatus == str(out.from_status),
            RegistroGpu.id_estimacion_detalle.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(res) != 1:
        raise DomainError(
            "VERSION_OBSOLETA", "el GPU cambió mientras se procesaba", field="version"
        )
    for key, value in values.items():
        setattr(gpu, key, value)
    session.add(
        RegistroGpuHistorial(
            id_gpu=gpu.id,
            id_produccion=gpu.id_produccion,
            accion="TRANSICION",
            regla=out.rule,
            de_estatus=str(out.from_status),
            a_estatus=str(out.to_status),
            usuario=actor.sub,
            fecha=now,
            nota=out.nota,
            motivo=out.motivo,
            archivo=out.archivo,
            version=gpu.version,
        )
    )
    await bump_grid(session, writer, [ctx.id_reporte_mensual])
    return _gpu_event(
        gpu,
        None,
        change="transition",
        frm=str(out.from_status),
        to=str(out.to_status),
        actor=actor,
        now=now,
        reason_code=out.motivo or out.rule,
        reason_text=out.nota,
        id_ot=ctx.id_ot,
        anexo=ctx.anexo,
        fecha=ctx.fecha,
        id_reporte_mensual=ctx.id_reporte_mensual,
    )


async def transicionar_gpu(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    id_gpu: int,
    req: d.TransitionRequest,
    *,
    expected_version: int | None = None,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> GpuContext:
    ctx = await get_gpu(session, id_gpu, lock=True)
    event = await _apply_transition(
        session, writer, ctx, req, actor, cfg, expected_version, utcnow()
    )
    await session.flush()
    await enqueue(session, outbox, event)
    return ctx


@dataclass(frozen=True)
class BulkItem:
    id_gpu: int
    version: int | None = None


async def transicionar_gpus(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    items: Sequence[BulkItem],
    req: d.TransitionRequest,
    *,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> list[GpuContext]:
    """Bulk validate / reject: all or nothing; GPU rows locked in ascending id order."""
    ids = [i.id_gpu for i in items]
    if len(set(ids)) != len(ids):
        raise DomainError("TRANSICION_INVALIDA", "ids repetidos", field="gpus")
    found = await _load_gpus(session, ids, lock=True)
    missing = sorted(set(ids) - set(found))
    if missing:
        raise DomainError(
            "GPU_NO_ENCONTRADO", f"GPUs {missing} no existen", field="gpus", ids=missing
        )
    now = utcnow()
    errors: list[dict[str, Any]] = []
    events: list[DomainEvent] = []
    first: DomainError | None = None
    for item in sorted(items, key=lambda i: i.id_gpu):
        try:
            events.append(
                await _apply_transition(
                    session, writer, found[item.id_gpu], req, actor, cfg, item.version, now
                )
            )
        except DomainError as exc:
            first = first or exc
            errors.append({"id_gpu": item.id_gpu, "code": exc.code, "detail": exc.detail})
    if first is not None:
        raise DomainError(
            first.code,
            f"{len(errors)} de {len(items)} GPUs no admiten la transición; no se aplicó ninguna",
            field="gpus",
            errores=errors,
        )
    await session.flush()
    await enqueue_many(session, events)
    return [found[i.id_gpu] for i in items]


async def guardar_estatus_legacy(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_produccion: int,
    estatus_id: int,
    archivo: str | None,
    nota: str | None = None,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> GpuContext:
    """Seed-compatible ``guardar_estatus_gpu`` with real validation (GP-D03, GP-D04)."""
    target = GpuStatus.from_legacy_id(estatus_id)
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError(
            "PRODUCCION_NO_ENCONTRADA",
            f"producción {id_produccion} no existe",
            field="id_produccion",
        )
    found = await _load_gpus(session, [id_produccion], by_production=True, lock=True)
    if id_produccion not in found:
        raise DomainError(
            "PRODUCCION_NO_ELEGIBLE",
            f"la producción {id_produccion} no tiene GPU (no elegible o aún no creado)",
            field="id_produccion",
        )
    ctx = found[id_produccion]
    event = await _apply_transition(
        session,
        writer,
        ctx,
        d.TransitionRequest(to=target, archivo=archivo, nota=nota),
        actor,
        cfg,
        None,
        utcnow(),
    )
    await session.flush()
    await enqueue(session, outbox, event)
    return ctx


async def historial(session: AsyncSession, id_gpu: int) -> list[RegistroGpuHistorial]:
    rows = (
        await session.scalars(
            select(RegistroGpuHistorial)
            .where(RegistroGpuHistorial.id_gpu == id_gpu)
            .order_by(RegistroGpuHistorial.id)
        )
    ).all()
    if not rows:
        raise DomainError("GPU_NO_ENCONTRADO", f"GPU {id_gpu} sin historial", field="id_gpu")
    return list(rows)


async def listar_gpus(
    session: AsyncSession,
    *,
    id_ot: int,
    mes: int | None = None,
    anio: int | None = None,
    estatus: GpuStatus | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[GpuContext]:
    stmt = _gpu_ctx_query().where(ReporteMensual.id_ot == id_ot)
    if mes is not None:
        stmt = stmt.where(ReporteMensual.mes == mes)
    if anio is not None:
        stmt = stmt.where(ReporteMensual.anio == anio)
    if estatus is not None:
        stmt = stmt.where(RegistroGpu.estatus == str(estatus))
    stmt = stmt.order_by(RegistroGpu.id).limit(limit).offset(offset)
    return [
        GpuContext(gpu, a, b, bool(c), d.normalize_annex(an), f, Decimal(v), t)
        for gpu, a, b, c, an, f, v, t in (await session.execute(stmt)).all()
    ]


async def conflictos(session: AsyncSession, *, id_ot: int | None = None) -> list[GpuConflicto]:
    stmt = select(GpuConflicto).order_by(GpuConflicto.id)
    if id_ot is not None:
        stmt = (
            stmt.join(Produccion, Produccion.id == GpuConflicto.id_produccion)
            .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
            .where(ReporteMensual.id_ot == id_ot)
        )
    return list((await session.scalars(stmt)).all())


# --------------------------------------------------------------------------------------------
# Grid read model
# --------------------------------------------------------------------------------------------


async def grid_version(
    session: AsyncSession, *, id_ot: int, mes: int, anio: int
) -> tuple[int, int] | None:
    """(report id, grid version) of the month, or None when there is no monthly report."""
    d.validate_month(mes, anio)
    row = (
        await session.execute(
            select(ReporteMensual.id, GridVersion.version)
            .outerjoin(GridVersion, GridVersion.id_reporte_mensual == ReporteMensual.id)
            .where(
                ReporteMensual.id_ot == id_ot,
                ReporteMensual.mes == mes,
                ReporteMensual.anio == anio,
            )
        )
    ).first()
    if row is None:
        return None
    return int(row[0]), int(row[1] or 0)


async def grid(
    session: AsyncSession,
    *,
    id_ot: int | None,
    mes: int | None,
    anio: int | None,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> list[dict[str, Any]]:
    """§C.4.3 in one query (report + productions + lines + imports + GPUs), no N+1."""
    if id_ot is None or mes is None or anio is None:
        return []
    d.validate_month(mes, anio)
    stmt = (
        select(
            PartidaAnexo.id,
            PartidaAnexo.id_partida,
            PartidaAnexo.descripcion_concepto,
            PartidaAnexo.unidad,
            PartidaAnexo.anexo,
            PartidaAnexo.orden_fila,
            Produccion.id,
            Produccion.fecha_produccion,
            Produccion.tipo_tiempo,
            Produccion.id_sitio_produccion,
            Produccion.volumen_produccion,
            RegistroGpu.id,
            RegistroGpu.estatus,
            RegistroGpu.archivo,
        )
        .select_from(ReporteMensual)
        .join(Produccion, Produccion.id_reporte_mensual == ReporteMensual.id)
        .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
        .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
        .outerjoin(RegistroGpu, RegistroGpu.id_produccion == Produccion.id)
        .where(
            and_(
                ReporteMensual.id_ot == id_ot,
                ReporteMensual.mes == mes,
                ReporteMensual.anio == anio,
                eligible_where(cfg),
            )
        )
    )
    conn = await session.connection()  # Core path: no ORM row loading for a flat read
    rows = (await conn.execute(stmt)).all()
    return d.build_grid(map(d.GridRow._make, rows))


# --------------------------------------------------------------------------------------------
# Billing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetalleInput:
    id_produccion: int
    volumen_estimado: Decimal | None = None
    comentario_ajuste: str = ""


@dataclass
class EstimacionResult:
    header: EstimacionHeader
    detalles: list[EstimacionDetalle]
    omitidas: list[dict[str, Any]]


async def _billing_candidates(
    session: AsyncSession, writer: BulkWriter, production_ids: Sequence[int]
) -> dict[int, tuple[Produccion, PartidaAnexo, ImportacionAnexo, int, RegistroGpu | None, bool]]:
    ids = sorted(set(production_ids))
    out: dict[int, Any] = {}
    gpus = await _lock_gpus_by_production(session, writer, ids)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = (
            await session.execute(
                select(Produccion, PartidaAnexo, ImportacionAnexo, ReporteMensual.id_ot)
                .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
                .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
                .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
                .where(Produccion.id.in_(chunk))
            )
        ).all()
        billed = set(
            (
                await session.scalars(
                    select(EstimacionDetalle.id_produccion).where(
                        EstimacionDetalle.id_produccion.in_(chunk)
                    )
                )
            ).all()
        )
        for prod, partida, imp, id_ot in rows:
            out[prod.id] = (prod, partida, imp, id_ot, gpus.get(prod.id), prod.id in billed)
    return out


def _candidate(entry: Any) -> d.BillingCandidate:
    prod, partida, imp, _id_ot, gpu, billed = entry
    return d.BillingCandidate(
        id_produccion=prod.id,
        anexo=partida.anexo or "",
        importacion_activa=imp.es_activo,
        volumen=Decimal(prod.volumen_produccion),
        es_excedente=prod.es_excedente,
        excedente_autorizado=prod.excedente_autorizado_por is not None,
        gpu=_existing_gpu(gpu),
        ya_estimada=billed,
    )


async def crear_estimacion(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_ot: int,
    fecha_desde: dt.date,
    fecha_hasta: dt.date,
    fecha_estimacion: dt.date,
    detalles: Sequence[DetalleInput] | None = None,
    comentario: str = "",
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> EstimacionResult:
    """Build an estimate for an OT family and period.

    With ``detalles=None`` it is assembled automatically from every billable production of the
    period (Validado GPUs of GPU annexes + production of other annexes; excedente only when
    authorised); the rest is returned in ``omitidas`` with the reason. With explicit
    ``detalles`` every line must be billable or the whole request fails.
    """
    d.validate_period(fecha_desde, fecha_hasta)
    ot = await get_ot(session, id_ot)
    family = await family_ids(session, ot)
    header = EstimacionHeader(
        id_ot=ot.id,
        fecha_estimacion=fecha_estimacion,
        fecha_desde=fecha_desde,
        fecha_hasta=fecha_hasta,
        estatus_cobro=d.EstatusCobro.BORRADOR.value,
        comentario=comentario,
        creado_por=actor.sub,
        fecha_creacion=utcnow(),
    )
    session.add(header)
    await session.flush()
    omitidas: list[dict[str, Any]] = []
    if detalles is None:
        period_ids = (
            await session.scalars(
                select(Produccion.id)
                .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
                .where(
                    ReporteMensual.id_ot.in_(family),
                    Produccion.fecha_produccion.between(fecha_desde, fecha_hasta),
                    Produccion.volumen_produccion > 0,
                )
                .order_by(Produccion.id)
            )
        ).all()
        cands = await _billing_candidates(session, writer, period_ids)
        chosen: list[DetalleInput] = []
        for pid in period_ids:
            reason = d.billing_skip_reason(_candidate(cands[pid]), annexes=cfg.gpu_annexes)
            if reason is None:
                chosen.append(DetalleInput(pid))
            elif reason != "PRODUCCION_YA_ESTIMADA":
                omitidas.append({"id_produccion": pid, "motivo": reason})
        lines = await _add_lines(session, writer, actor, header, family, chosen, cands, cfg)
    else:
        lines = await _add_lines(session, writer, actor, header, family, detalles, None, cfg)
    await _refresh_totals(session, header)
    return EstimacionResult(header, lines, omitidas)


async def agregar_detalle(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    id_estimacion: int,
    detalle: DetalleInput,
    *,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> EstimacionResult:
    header = await session.get(EstimacionHeader, id_estimacion, with_for_update=True)
    if header is None:
        raise DomainError("ESTIMACION_NO_ENCONTRADA", field="id_estimacion")
    ot = await get_ot(session, header.id_ot)
    family = await family_ids(session, ot)
    lines = await _add_lines(session, writer, actor, header, family, [detalle], None, cfg, field="")
    await _refresh_totals(session, header)
    return EstimacionResult(header, lines, [])


async def _add_lines(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    header: EstimacionHeader,
    family: Sequence[int],
    detalles: Sequence[DetalleInput],
    cands: Mapping[int, Any] | None,
    cfg: EvidenceConfig,
    *,
    field: str = "detalles",
) -> list[EstimacionDetalle]:
    if not detalles:
        return []
    ids = [x.id_produccion for x in detalles]
    if len(set(ids)) != len(ids):
        raise DomainError("PRODUCCION_YA_ESTIMADA", "producción repetida", field=field)
    if cands is None:
        cands = await _billing_candidates(session, writer, ids)
    now = utcnow()
    out: list[EstimacionDetalle] = []
    events: list[DomainEvent] = []
    for i, det in enumerate(detalles):
        prefix = f"{field}[{i}]." if field else ""
        entry = cands.get(det.id_produccion)
        if entry is None:
            raise DomainError(
                "PRODUCCION_NO_ENCONTRADA",
                field=f"{prefix}id_produccion",
                id_produccion=det.id_produccion,
            )
        prod, partida, _imp, id_ot, gpu, _billed = entry
        if (
            id_ot not in family
            or not header.fecha_desde <= prod.fecha_produccion <= header.fecha_hasta
        ):
            raise DomainError(
                "PRODUCCION_FUERA_DE_PERIODO",
                f"producción {prod.id} ({prod.fecha_produccion}) fuera de la OT/periodo",
                field=f"{prefix}id_produccion",
            )
        try:
            d.check_billable(_candidate(entry), annexes=cfg.gpu_annexes)
        except DomainError as exc:
            exc.field = f"{prefix}id_produccion"
            raise
        actual = d.volumen_actual(Decimal(prod.volumen_produccion))
        try:
            estimado = d.validate_volumen_estimado(det.volumen_estimado, actual)
        except DomainError as exc:
            exc.field = f"{prefix}volumen_estimado"
            raise
        pu_mn = Decimal(partida.precio_unitario_mn)
        pu_usd = Decimal(partida.precio_unitario_usd)
        line = EstimacionDetalle(
            id_estimacion_header=header.id,
            id_produccion=prod.id,
            volumen_actual=actual,
            volumen_estimado=estimado,
            precio_unitario_mn=pu_mn,
            precio_unitario_usd=pu_usd,
            importe_mn=d.money(estimado * pu_mn),
            importe_usd=d.money(estimado * pu_usd),
            es_excedente=prod.es_excedente,
            comentario_ajuste=det.comentario_ajuste,
        )
        session.add(line)
        await session.flush()
        out.append(line)
        if gpu is not None:  # G8: link and lock
            res = await session.execute(
                update(RegistroGpu)
                .where(
                    RegistroGpu.id == gpu.id,
                    RegistroGpu.estatus == str(GpuStatus.VALIDADO),
                    RegistroGpu.id_estimacion_detalle.is_(None),
                )
                .values(
                    id_estimacion_detalle=line.id,
                    version=RegistroGpu.version + 1,
                    fecha_actualizacion=now,
                )
                .execution_options(synchronize_session=False)
            )
            if _rowcount(res) != 1:
                raise DomainError("GPU_NO_VALIDADO", field=f"{prefix}id_produccion")
            gpu.id_estimacion_detalle = line.id
            gpu.version += 1
            session.add(
                RegistroGpuHistorial(
                    id_gpu=gpu.id,
                    id_produccion=prod.id,
                    accion="FACTURADO",
                    regla="G8",
                    de_estatus=gpu.estatus,
                    a_estatus=gpu.estatus,
                    usuario=actor.sub,
                    fecha=now,
                    nota=f"Estimación {header.id}, detalle {line.id}",
                    archivo=gpu.archivo,
                    version=gpu.version,
                )
            )
            events.append(
                _gpu_event(
                    gpu,
                    None,
                    change="transition",
                    frm=gpu.estatus,
                    to=gpu.estatus,
                    actor=actor,
                    now=now,
                    reason_code="G8",
                    reason_text=f"estimacion {header.id}",
                    id_ot=id_ot,
                    anexo=d.normalize_annex(partida.anexo),
                    fecha=prod.fecha_produccion,
                    id_reporte_mensual=prod.id_reporte_mensual,
                )
            )
    await enqueue_many(session, events)
    return out


async def _refresh_totals(session: AsyncSession, header: EstimacionHeader) -> None:
    lines = (
        await session.scalars(
            select(EstimacionDetalle).where(EstimacionDetalle.id_estimacion_header == header.id)
        )
    ).all()
    totals = d.estimate_totals(
        d.EstimateLine(
            Decimal(x.volumen_actual),
            Decimal(x.volumen_estimado),
            Decimal(x.precio_unitario_mn),
            Decimal(x.precio_unitario_usd),
        )
        for x in lines
    )
    header.total_volumen_producido = totals.total_volumen_producido
    header.total_volumen_estimado = totals.total_volumen_estimado
    header.total_importe_mn = totals.total_importe_mn
    header.total_importe_usd = totals.total_importe_usd
    await session.flush()


async def get_estimacion(session: AsyncSession, id_estimacion: int) -> EstimacionResult:
    header = await session.get(EstimacionHeader, id_estimacion)
    if header is None:
        raise DomainError("ESTIMACION_NO_ENCONTRADA", field="id_estimacion")
    lines = (
        await session.scalars(
            select(EstimacionDetalle)
            .where(EstimacionDetalle.id_estimacion_header == header.id)
            .order_by(EstimacionDetalle.id)
        )
    ).all()
    return EstimacionResult(header, list(lines), [])


# --------------------------------------------------------------------------------------------
# Completeness report
# --------------------------------------------------------------------------------------------


async def completitud(
    session: AsyncSession,
    *,
    id_ot: int,
    mes: int,
    anio: int,
    anexo: str | None = None,
    cfg: EvidenceConfig = DEFAULT_CONFIG,
) -> dict[str, Any]:
    """% of GPUs per status by OT / month / annex, and the missing-evidence list (one query)."""
    d.validate_month(mes, anio)
    ot = await get_ot(session, id_ot)
    stmt = (
        select(
            Produccion.id,
            Produccion.fecha_produccion,
            Produccion.tipo_tiempo,
            Produccion.volumen_produccion,
            PartidaAnexo.id,
            PartidaAnexo.id_partida,
            PartidaAnexo.descripcion_concepto,
            PartidaAnexo.anexo,
            RegistroGpu.id,
            RegistroGpu.estatus,
            RegistroGpu.nota_bloqueo,
        )
        .select_from(ReporteMensual)
        .join(Produccion, Produccion.id_reporte_mensual == ReporteMensual.id)
        .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
        .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
        .outerjoin(RegistroGpu, RegistroGpu.id_produccion == Produccion.id)
        .where(
            ReporteMensual.id_ot == ot.id,
            ReporteMensual.mes == mes,
            ReporteMensual.anio == anio,
            eligible_where(cfg),
        )
        .order_by(Produccion.fecha_produccion, PartidaAnexo.orden_fila, Produccion.id)
    )
    conn = await session.connection()  # Core path: no ORM row loading for a flat read
    rows = (await conn.execute(stmt)).all()
    if anexo:
        rows = [r for r in rows if d.normalize_annex(r[7]) == d.normalize_annex(anexo)]
    items = [(d.normalize_annex(r[7]), GpuStatus(r[9]) if r[9] else None) for r in rows]
    report = d.completeness(items)
    faltantes = [
        {
            "id_produccion": r[0],
            "fecha": r[1].isoformat(),
            "tipo_tiempo": r[2],
            "volumen": d.format_volume(Decimal(r[3])),
            "id_partida_anexo": r[4],
            "codigo": r[5],
            "descripcion": r[6],
            "anexo": d.normalize_annex(r[7]),
            "id_gpu": r[8],
            "estatus": r[9] or str(GpuStatus.PENDIENTE),
            "nota_bloqueo": r[10],
        }
        for r in rows
        if r[9] is None or GpuStatus(r[9]) in d.MISSING_EVIDENCE_STATUSES
    ]
    return {
        "id_ot": ot.id,
        "orden_trabajo": ot.orden_trabajo,
        "mes": mes,
        "anio": anio,
        **report,
        "faltantes": faltantes,
    }


def group_by(items: Iterable[Any], key: Any) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out
