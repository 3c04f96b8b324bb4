"""GPU synchronisation with production, the consumer side of ProductionSaved (§C.4.2, G1, G9,
G10).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.evidence import (
    GpuStatusChanged,
)
from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import (
    DEFAULT_CONFIG,
    GPU_T,
    SYSTEM,
    EvidenceConfig,
    bump_grid,
    enqueue_many,
    utcnow,
)
from evidence.application.history import history_row
from evidence.domain import Actor, ConflictDecision, GpuStatus
from evidence.models import (
    GpuConflicto,
    ImportacionAnexo,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteMensual,
)


def existing_gpu(gpu: Any) -> d.ExistingGpu | None:
    """The domain view of a GPU (a ``RegistroGpu`` or a row of :func:`lock_gpu_rows`)."""
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


async def lock_gpu_rows(
    session: AsyncSession, writer: BulkWriter, production_ids: Sequence[int]
) -> dict[int, Any]:
    """Like :func:`lock_gpus_by_production` but plain rows (Core: no ORM objects to build for
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


async def lock_gpus_by_production(
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
    gpus = await lock_gpu_rows(session, writer, ids)
    events: list[DomainEvent] = []
    to_create: list[int] = []
    to_delete: list[tuple[Any, Any]] = []
    touched: set[int] = set()
    settled: list[int] = []  # productions whose GPU no longer conflicts (kept or retired)
    for pid in ids:
        row: Any = prod_rows.get(pid)
        gpu = gpus.get(pid)
        eligible = row is not None and d.is_gpu_eligible(
            row.anexo,
            Decimal(row.volumen_produccion),
            importacion_activa=bool(row.es_activo),
            annexes=cfg.gpu_annexes,
        )
        action = d.plan_gpu_sync(eligible, existing_gpu(gpu))
        if gpu is not None and action is not d.SyncAction.CONFLICT:
            settled.append(pid)
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
                gpu_event(
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
    retiring = {g.id for g, _ in to_delete}
    events += await close_settled_conflicts(
        session, writer, settled, retiring, gpus, prod_rows, actor, now
    )
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
            retired = history_row(
                gpu.id, gpu.id_produccion, "ELIMINADO", "G9", (gpu.estatus, None), actor.sub, now,
                nota=reason, motivo=reason, archivo=gpu.archivo, version=gpu.version,
            )  # fmt: skip
            history.append(retired)
            events.append(
                gpu_event(
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
            created_row = (None, str(GpuStatus.PENDIENTE))
            history.append(
                history_row(gid, pid, "CREADO", "G1", created_row, actor.sub, now, version=1)
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
    row = history_row(
        gpu.id, gpu.id_produccion, "CONFLICTO", "G10", (gpu.estatus, gpu.estatus),
        d.SYSTEM_USER, now, nota=f"No se elimina: {reason}", motivo=reason,
        archivo=gpu.archivo, version=gpu.version,
    )  # fmt: skip
    session.add(RegistroGpuHistorial(**row))
    await session.flush()
    return True


AUTO_NOTE = "la producción ya no está en conflicto con su GPU"


async def close_conflicts(
    session: AsyncSession,
    gpu_ids: Sequence[int],
    decision: ConflictDecision,
    text: str,
    user: str,
    now: dt.datetime,
) -> list[int]:
    """Close every open conflict of these GPUs; the closed conflict ids."""
    if not gpu_ids:
        return []
    res = await session.execute(
        update(GpuConflicto)
        .where(GpuConflicto.id_gpu.in_(sorted(set(gpu_ids))), GpuConflicto.resuelto.is_(False))
        .values(
            resuelto=True,
            resolucion=str(decision),
            justificacion=text,
            resuelto_por=user,
            fecha_resolucion=now,
        )
        .returning(GpuConflicto.id)
        .execution_options(synchronize_session=False)
    )
    return [int(i) for i in res.scalars()]


async def close_settled_conflicts(
    session: AsyncSession,
    writer: BulkWriter,
    settled: Sequence[int],
    retired: set[int],
    gpus: dict[int, Any],
    prod_rows: dict[int, Any],
    actor: Actor,
    now: dt.datetime,
) -> list[DomainEvent]:
    """Open conflicts of productions that no longer conflict with their GPU (eligible again,
    or the GPU is retired by G9 in this sync) are closed AUTOMATICA; a GPU that stays gets a
    G10 history row and a ``conflict`` event with reason ``CONFLICTO_CERRADO``. One indexed
    select per chunk when nothing is open."""
    open_gpus: set[int] = set()
    for chunk in writer.id_chunks(settled):
        open_gpus.update(
            int(i)
            for i in await session.scalars(
                select(GpuConflicto.id_gpu).where(
                    writer.id_match(GpuConflicto.id_produccion, chunk),
                    GpuConflicto.resuelto.is_(False),
                )
            )
        )
    if not open_gpus:
        return []
    await close_conflicts(
        session, sorted(open_gpus), ConflictDecision.AUTOMATICA, AUTO_NOTE, actor.sub, now
    )
    events: list[DomainEvent] = []
    for pid in settled:
        gpu, row = gpus[pid], prod_rows.get(pid)
        if gpu.id not in open_gpus or gpu.id in retired or row is None:
            continue
        session.add(
            RegistroGpuHistorial(
                **history_row(
                    gpu.id,
                    gpu.id_produccion,
                    "CONFLICTO_RESUELTO",
                    "G10",
                    (gpu.estatus, gpu.estatus),
                    actor.sub,
                    now,
                    nota=AUTO_NOTE,
                    motivo=str(ConflictDecision.AUTOMATICA),
                    archivo=gpu.archivo,
                    version=gpu.version,
                )
            )
        )
        events.append(
            gpu_event(
                gpu,
                row,
                change="conflict",
                frm=gpu.estatus,
                to=gpu.estatus,
                actor=actor,
                now=now,
                reason_code="CONFLICTO_CERRADO",
                reason_text=AUTO_NOTE,
                conflict=f"GPU {gpu.id}: {AUTO_NOTE}; conflicto cerrado",
            )
        )
    return events


def gpu_event(
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
