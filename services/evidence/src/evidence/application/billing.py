"""Estimates: header, lines and totals (§C.4.6, DECIDE-C4, DECIDE-C8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import (
    DEFAULT_CONFIG,
    EvidenceConfig,
    enqueue_many,
    family_ids,
    get_ot,
    rowcount,
    utcnow,
)
from evidence.application.gpu_sync import existing_gpu, gpu_event, lock_gpus_by_production
from evidence.application.history import history_row
from evidence.domain import Actor, DomainError, GpuStatus
from evidence.models import (
    EstimacionDetalle,
    EstimacionHeader,
    ImportacionAnexo,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteMensual,
)


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
    gpus = await lock_gpus_by_production(session, writer, ids)
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
        gpu=existing_gpu(gpu),
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
    d.check_estimate_editable(header.estatus_cobro)
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
            if rowcount(res) != 1:
                raise DomainError("GPU_NO_VALIDADO", field=f"{prefix}id_produccion")
            gpu.id_estimacion_detalle = line.id
            gpu.version += 1
            row = history_row(
                gpu.id, prod.id, "FACTURADO", "G8", (gpu.estatus, gpu.estatus), actor.sub, now,
                nota=f"Estimación {header.id}, detalle {line.id}", archivo=gpu.archivo,
                version=gpu.version,
            )  # fmt: skip
            session.add(RegistroGpuHistorial(**row))
            events.append(
                gpu_event(
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


async def _lock_header(session: AsyncSession, id_estimacion: int) -> EstimacionHeader:
    header = await session.get(EstimacionHeader, id_estimacion, with_for_update=True)
    if header is None:
        raise DomainError("ESTIMACION_NO_ENCONTRADA", field="id_estimacion")
    return header


async def _unlock_gpus(
    session: AsyncSession,
    actor: Actor,
    header: EstimacionHeader,
    lines: Sequence[EstimacionDetalle],
    reason: str,
    now: dt.datetime,
) -> None:
    """Undo G8 for these lines: the GPU stays VALIDADO, unbilled (its transitions open again),
    with a ``DESFACTURADO`` G8 history row and a ``GpuStatusChanged``."""
    by_line = {x.id: x for x in lines}
    if not by_line:
        return
    gpus = (
        await session.scalars(
            select(RegistroGpu)
            .where(RegistroGpu.id_estimacion_detalle.in_(sorted(by_line)))
            .order_by(RegistroGpu.id)
            .with_for_update()
        )
    ).all()
    events: list[DomainEvent] = []
    for gpu in gpus:
        line_id = gpu.id_estimacion_detalle
        gpu.id_estimacion_detalle = None
        gpu.version += 1
        gpu.fecha_actualizacion = now
        note = f"Estimación {header.id}, detalle {line_id}: {reason}"
        row = history_row(
            gpu.id, gpu.id_produccion, "DESFACTURADO", "G8", (gpu.estatus, gpu.estatus),
            actor.sub, now, nota=note, motivo=reason, archivo=gpu.archivo, version=gpu.version,
        )  # fmt: skip
        session.add(RegistroGpuHistorial(**row))
        ctx = (
            await session.execute(
                select(Produccion, PartidaAnexo.anexo)
                .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
                .where(Produccion.id == gpu.id_produccion)
            )
        ).one()
        prod, anexo = ctx
        events.append(
            gpu_event(
                gpu,
                None,
                change="transition",
                frm=gpu.estatus,
                to=gpu.estatus,
                actor=actor,
                now=now,
                reason_code=reason,
                reason_text=note,
                id_ot=header.id_ot,
                anexo=d.normalize_annex(anexo),
                fecha=prod.fecha_produccion,
                id_reporte_mensual=prod.id_reporte_mensual,
            )
        )
    await session.flush()
    await enqueue_many(session, events)


async def quitar_detalle(
    session: AsyncSession, actor: Actor, id_estimacion: int, id_detalle: int
) -> None:
    """Remove a line of a BORRADOR estimate: its GPU is unlocked, the totals recomputed."""
    header = await _lock_header(session, id_estimacion)
    d.check_estimate_editable(header.estatus_cobro)
    line = await session.get(EstimacionDetalle, id_detalle)
    if line is None or line.id_estimacion_header != header.id:
        raise DomainError("DETALLE_NO_ENCONTRADO", field="id_detalle")
    await _unlock_gpus(session, actor, header, [line], "LINEA_QUITADA", utcnow())
    await session.delete(line)
    await session.flush()
    await _refresh_totals(session, header)


async def cambiar_estatus_cobro(
    session: AsyncSession, actor: Actor, id_estimacion: int, action: str, motivo: str | None = None
) -> EstimacionHeader:
    """Submit (BORRADOR → ENVIADA), approve (ENVIADA → APROBADA) or cancel (→ CANCELADA: every
    GPU of its lines unlocked and the lines removed, so their productions are billable again;
    the header keeps its totals and the reason, each GPU's history the estimate and line)."""
    header = await _lock_header(session, id_estimacion)
    lines = (
        await session.scalars(
            select(EstimacionDetalle).where(EstimacionDetalle.id_estimacion_header == header.id)
        )
    ).all()
    target = d.decide_estimate_transition(
        header.estatus_cobro, action, lines=len(lines), motivo=motivo
    )
    if target is d.EstatusCobro.CANCELADA:
        reason = (motivo or "").strip()
        await _unlock_gpus(session, actor, header, lines, "ESTIMACION_CANCELADA", utcnow())
        for line in lines:  # a production is in one estimate line at most (unique)
            await session.delete(line)
        header.comentario = (header.comentario + "\n" if header.comentario else "") + (
            f"Cancelada por {actor.sub}: {reason}"
        )
    header.estatus_cobro = target.value
    await session.flush()
    return header
