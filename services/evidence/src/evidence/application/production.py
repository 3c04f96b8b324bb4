"""Production saves (bulk grid and single row), the over-volume flag and the ProductionSaved
announcements (§C.4.2, §C.4.4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.evidence import (
    MAX_PRODUCTIONS_PER_EVENT,
    ProductionSavedV2,
    SavedProduction,
)
from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import (
    PRODUCCION_T,
    bump_grid,
    enqueue_many,
    family_ids,
    get_ot,
    utcnow,
)
from evidence.application.gpu_sync import existing_gpu, lock_gpu_rows
from evidence.application.reports import get_or_create_report
from evidence.domain import Actor, DomainError
from evidence.models import (
    NO_SITE,
    ImportacionAnexo,
    PartidaAnexo,
    Produccion,
    ReporteDiario,
    ReporteMensual,
)


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
    gpus = await lock_gpu_rows(session, writer, relevant)
    existing = {
        k: d.ExistingProduction(
            r.id,
            Decimal(r.volumen_produccion),
            existing_gpu(gpus.get(r.id)),
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
    result.mensajes = await announce(
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


async def announce(
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
