"""The GPU review workflow: transitions one by one, in bulk and through the legacy status route
(§C.3.2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
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
    EvidenceConfig,
    bump_grid,
    enqueue_many,
    rowcount,
    utcnow,
)
from evidence.application.gpu_sync import gpu_event
from evidence.application.history import history_row
from evidence.domain import Actor, DomainError, GpuStatus
from evidence.models import (
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteMensual,
    outbox,
)
from nexo_messaging.outbox import enqueue


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


def gpu_ctx_query() -> Any:
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
    stmt = gpu_ctx_query().where(col.in_(sorted(set(ids)))).order_by(RegistroGpu.id)
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
    if rowcount(res) != 1:
        raise DomainError(
            "VERSION_OBSOLETA", "el GPU cambió mientras se procesaba", field="version"
        )
    for key, value in values.items():
        setattr(gpu, key, value)
    transition = (str(out.from_status), str(out.to_status))
    row = history_row(
        gpu.id, gpu.id_produccion, "TRANSICION", out.rule, transition, actor.sub, now,
        nota=out.nota, motivo=out.motivo, archivo=out.archivo, version=gpu.version,
    )  # fmt: skip
    session.add(RegistroGpuHistorial(**row))
    await bump_grid(session, writer, [ctx.id_reporte_mensual])
    return gpu_event(
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
