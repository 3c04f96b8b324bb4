"""Closing G10 conflicts: a supervisor keeps or annuls the GPU (with a justification, in the
GPU history, published as ``GpuStatusChanged``); the GPU sync closes the open conflicts of a
production that no longer conflicts (``gpu_sync.close_settled_conflicts``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import bump_grid, enqueue_many, rowcount, utcnow
from evidence.application.gpu_sync import close_conflicts, gpu_event
from evidence.application.gpus import GpuContext, _load_gpus
from evidence.application.history import history_row
from evidence.domain import Actor, ConflictDecision, DomainError
from evidence.models import GpuConflicto, RegistroGpu, RegistroGpuHistorial


async def resolver_conflicto(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    id_conflicto: int,
    decision: ConflictDecision,
    justificacion: str | None,
) -> GpuConflicto:
    """CONSERVAR: the GPU stays, this conflict is closed. ANULAR: the GPU is deleted (history
    kept, as G9) and every open conflict of it is closed. Both write a G10 history row."""
    conflict = await session.get(GpuConflicto, id_conflicto, with_for_update=True)
    if conflict is None:
        raise DomainError(
            "CONFLICTO_NO_ENCONTRADO", f"conflicto {id_conflicto} no existe", field="id"
        )
    found = await _load_gpus(session, [conflict.id_gpu], lock=True)
    ctx: GpuContext | None = found.get(conflict.id_gpu)
    gpu = ctx.gpu if ctx is not None else None
    text = d.decide_conflict_resolution(
        d.ConflictState(
            resuelto=conflict.resuelto,
            gpu_exists=gpu is not None,
            facturado=gpu is not None and gpu.id_estimacion_detalle is not None,
            mes_cerrado=ctx is not None and ctx.mes_cerrado,
        ),
        decision,
        justificacion,
    )
    assert ctx is not None
    assert gpu is not None
    now = utcnow()
    status = gpu.estatus
    if decision is ConflictDecision.ANULAR:
        res = await session.execute(
            delete(RegistroGpu)
            .where(
                RegistroGpu.id == gpu.id,
                RegistroGpu.version == gpu.version,
                RegistroGpu.id_estimacion_detalle.is_(None),
            )
            .execution_options(synchronize_session=False)
        )
        if rowcount(res) != 1:
            raise DomainError("VERSION_OBSOLETA", "el GPU cambió mientras se procesaba", field="id")
        session.expunge(gpu)
        closed = await close_conflicts(session, [gpu.id], decision, text, actor.sub, now)
        row = history_row(
            gpu.id, gpu.id_produccion, "ELIMINADO", "G10", (status, None), actor.sub, now,
            nota=text, motivo="CONFLICTO_ANULADO", archivo=gpu.archivo, version=gpu.version,
        )  # fmt: skip
        event = gpu_event(
            gpu, None, change="deleted", frm=status, to=None, actor=actor, now=now,
            reason_code="CONFLICTO_ANULADO", reason_text=text, id_ot=ctx.id_ot,
            anexo=ctx.anexo, fecha=ctx.fecha, id_reporte_mensual=ctx.id_reporte_mensual,
        )  # fmt: skip
        await bump_grid(session, writer, [ctx.id_reporte_mensual])
    else:
        _mark(conflict, decision, text, actor.sub, now)
        closed = [conflict.id]
        row = history_row(
            gpu.id, gpu.id_produccion, "CONFLICTO_RESUELTO", "G10", (status, status),
            actor.sub, now, nota=text, motivo=str(decision), archivo=gpu.archivo,
            version=gpu.version,
        )  # fmt: skip
        event = gpu_event(
            gpu, None, change="conflict", frm=status, to=status, actor=actor, now=now,
            reason_code="CONFLICTO_CONSERVADO", reason_text=text,
            conflict=f"Conflicto {conflict.id} ({conflict.motivo}) resuelto: se conserva el GPU",
            id_ot=ctx.id_ot, anexo=ctx.anexo, fecha=ctx.fecha,
            id_reporte_mensual=ctx.id_reporte_mensual,
        )  # fmt: skip
    assert conflict.id in closed
    session.add(RegistroGpuHistorial(**row))
    await session.flush()
    await enqueue_many(session, [event])
    await session.refresh(conflict)
    return conflict


def _mark(
    conflict: GpuConflicto, decision: ConflictDecision, text: str, user: str, now: dt.datetime
) -> None:
    conflict.resuelto = True
    conflict.resolucion = str(decision)
    conflict.justificacion = text
    conflict.resuelto_por = user
    conflict.fecha_resolucion = now
