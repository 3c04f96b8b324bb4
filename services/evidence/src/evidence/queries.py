"""Read side of the evidence service: GPU lists and history, the GPU grid (§C.4.3), completeness,
the production grid (``obtener_partidas_produccion``) and the site's daily-status grid
(``ots_por_sitio_grid``).

Reads run a fixed number of queries whatever the number of lines, OTs or days; the rules live in
:mod:`evidence.domain` (GPU eligibility as :func:`eligible_where`, the SQL form of
:func:`evidence.domain.is_gpu_eligible`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    and_,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from evidence import domain as d
from evidence.application.common import DEFAULT_CONFIG, EvidenceConfig, get_ot
from evidence.application.gpus import GpuContext, gpu_ctx_query
from evidence.domain import DomainError, GpuStatus
from evidence.models import (
    EstatusDiario,
    EstimacionHeader,
    GpuConflicto,
    GridVersion,
    ImportacionAnexo,
    Ot,
    PartidaAnexo,
    PartidaProyectada,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteDiario,
    ReporteMensual,
)


def eligible_where(cfg: EvidenceConfig) -> Any:
    """§C.4.1 as a where-clause over the production/line/import joins of a read (the SQL form
    of :func:`evidence.domain.is_gpu_eligible`, rendered from the same constants)."""
    return d.gpu_eligible_sql(
        anexo=PartidaAnexo.anexo,
        volumen=Produccion.volumen_produccion,
        importacion_activa=ImportacionAnexo.es_activo,
        annexes=cfg.gpu_annexes,
    )


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
    stmt = gpu_ctx_query().where(ReporteMensual.id_ot == id_ot)
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


async def conflictos(
    session: AsyncSession, *, id_ot: int | None = None, resuelto: bool | None = None
) -> list[GpuConflicto]:
    stmt = select(GpuConflicto).order_by(GpuConflicto.id)
    if resuelto is not None:
        stmt = stmt.where(GpuConflicto.resuelto.is_(resuelto))
    if id_ot is not None:
        stmt = (
            stmt.join(Produccion, Produccion.id == GpuConflicto.id_produccion)
            .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
            .where(ReporteMensual.id_ot == id_ot)
        )
    return list((await session.scalars(stmt)).all())


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


OT_ACTIVA = 1


def _family_ids(principal: int) -> Any:
    """Subquery: the OT family of a principal (itself plus its reprogramaciones)."""
    return select(Ot.id).where(or_(Ot.id == principal, Ot.ot_principal == principal))


@dataclass(frozen=True)
class PartidasProduccion:
    partidas: list[dict[str, Any]]
    dias_bloqueados: list[int]


async def partidas_produccion(
    session: AsyncSession, *, id_ot: int, mes: int, anio: int, tipo_tiempo: str
) -> PartidasProduccion:
    first, last = d.month_bounds(mes, anio)
    ot = await get_ot(session, id_ot)
    family = _family_ids(ot.ot_principal or ot.id)

    lines_q = (
        select(
            PartidaAnexo.id,
            PartidaAnexo.anexo,
            PartidaAnexo.id_partida,
            PartidaAnexo.descripcion_concepto,
            PartidaAnexo.unidad,
            PartidaAnexo.volumen_proyectado,
        )
        .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
        .where(ImportacionAnexo.es_activo.is_(True), ImportacionAnexo.id_ot.in_(family))
    )
    lines = [
        d.PlanLine(int(r[0]), r[1], r[2], r[3] or "", r[4] or "", Decimal(r[5] or 0))
        for r in (await session.execute(lines_q)).all()
    ]

    # Production and plan of the month in one round trip (kind P / S).
    prod_q = (
        select(
            literal("P").label("kind"),
            Produccion.id_partida_anexo,
            Produccion.fecha_produccion,
            Produccion.tipo_tiempo,
            Produccion.volumen_produccion,
            Produccion.es_excedente,
        )
        .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
        .where(
            ReporteMensual.id_ot.in_(family),
            ReporteMensual.mes == mes,
            ReporteMensual.anio == anio,
        )
    )
    plan_q = select(
        literal("S").label("kind"),
        PartidaProyectada.id_partida_anexo,
        PartidaProyectada.fecha,
        null(),
        PartidaProyectada.volumen_programado,
        false(),
    ).where(
        PartidaProyectada.id_ot.in_(family),
        PartidaProyectada.fecha.between(first, last),
    )
    productions: list[tuple[int, dt.date, str, Decimal, bool]] = []
    plan: list[tuple[int, dt.date, Decimal]] = []
    row: Any
    for row in (await session.execute(union_all(prod_q, plan_q))).all():
        kind, pid, fecha, tipo, volume, excedente = row
        # A UNION loses the column types on SQLite: dates and numbers come back as text.
        fecha = fecha if isinstance(fecha, dt.date) else dt.date.fromisoformat(str(fecha))
        volume = Decimal(str(volume))
        if kind == "P":
            productions.append((int(pid), fecha, str(tipo), volume, bool(excedente)))
        else:
            plan.append((int(pid), fecha, volume))

    report_q = (
        select(ReporteMensual.archivo, ReporteDiario.fecha)
        .outerjoin(
            ReporteDiario,
            and_(
                ReporteDiario.id_reporte_mensual == ReporteMensual.id,
                ReporteDiario.cerrado.is_(True),
            ),
        )
        .where(
            ReporteMensual.id_ot == id_ot, ReporteMensual.mes == mes, ReporteMensual.anio == anio
        )
    )
    archivo: str | None = None
    closed: set[int] = set()
    for rep_archivo, fecha in (await session.execute(report_q)).all():
        archivo = rep_archivo
        if fecha is not None:
            closed.add(fecha.day)

    rows = d.production_grid(
        lines,
        productions,
        plan,
        mes=mes,
        anio=anio,
        tipo_tiempo=tipo_tiempo,
        archivo=archivo,
    )
    return PartidasProduccion(rows, sorted(closed))


def _site_condition(id_sitio: int) -> Any:
    by_column: dict[str, list[int]] = {}
    for frente, column in d.SITE_COLUMN_BY_FRENTE.items():
        by_column.setdefault(column, []).append(frente)
    return or_(
        *(
            and_(Ot.id_frente.in_(sorted(frentes)), getattr(Ot, column) == id_sitio)
            for column, frentes in sorted(by_column.items())
        )
    )


async def ots_por_sitio(
    session: AsyncSession, *, id_sitio: int, mes: int, anio: int
) -> list[dict[str, Any]]:
    """Principal OTs of a site valid in the month (§C.2.2 "OT validity"), each with its monthly
    evidence link and the description of every day's operational status (null: no status)."""
    first, last = d.month_bounds(mes, anio)
    reprog = aliased(Ot)
    reprog_end = (
        select(func.max(func.coalesce(reprog.fecha_termino_real, reprog.fecha_termino_programado)))
        .where(reprog.ot_principal == Ot.id, reprog.estatus == OT_ACTIVA)
        .scalar_subquery()
    )
    ots_q = (
        select(
            Ot.id,
            Ot.orden_trabajo,
            Ot.descripcion_trabajo,
            Ot.fecha_inicio_real,
            Ot.fecha_inicio_programado,
            Ot.fecha_termino_real,
            Ot.fecha_termino_programado,
            reprog_end,
        )
        .where(
            Ot.ot_principal.is_(None),
            Ot.estatus == OT_ACTIVA,
            _site_condition(id_sitio),
            func.coalesce(Ot.fecha_inicio_real, Ot.fecha_inicio_programado) <= last,
        )
        .order_by(Ot.orden_trabajo)
    )
    ots: list[dict[str, Any]] = []
    for oid, folio, desc, ini_r, ini_p, fin_r, fin_p, rep_end in (
        await session.execute(ots_q)
    ).all():
        if rep_end is not None and not isinstance(rep_end, dt.date):
            rep_end = dt.date.fromisoformat(str(rep_end))  # SQLite returns max() as text
        inicio, fin = d.ot_period(ini_r, ini_p, fin_r, fin_p, [(rep_end, None)])
        if not d.ot_valid_in_month(inicio, fin, mes, anio):
            continue
        row: dict[str, Any] = {
            "id_ot": oid,
            "ot": folio,
            "desc": desc,
            "inicio_v": inicio.isoformat() if inicio else None,
            "fin_v": fin.isoformat() if fin else None,
            "archivo": None,
        }
        row.update({f"dia{n}": None for n in range(1, 32)})
        ots.append(row)
    if not ots:
        return []
    by_id = {row["id_ot"]: row for row in ots}
    days_q = (
        select(
            ReporteMensual.id_ot,
            ReporteMensual.archivo,
            ReporteDiario.fecha,
            EstatusDiario.descripcion,
        )
        .outerjoin(
            ReporteDiario,
            and_(
                ReporteDiario.id_reporte_mensual == ReporteMensual.id,
                ReporteDiario.fecha.between(first, last),
            ),
        )
        .outerjoin(EstatusDiario, EstatusDiario.codigo == ReporteDiario.estatus)
        .where(
            ReporteMensual.id_ot.in_(list(by_id)),
            ReporteMensual.mes == mes,
            ReporteMensual.anio == anio,
        )
    )
    for oid, archivo, fecha, descripcion in (await session.execute(days_q)).all():
        row = by_id[oid]
        row["archivo"] = archivo
        if fecha is not None:
            row[f"dia{fecha.day}"] = descripcion
    return ots


async def estimaciones(
    session: AsyncSession,
    *,
    id_ot: int | None = None,
    estatus_cobro: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[EstimacionHeader]:
    """Estimate headers, newest first (filters: OT, billing status)."""
    stmt = select(EstimacionHeader).order_by(EstimacionHeader.id.desc())
    if id_ot is not None:
        stmt = stmt.where(EstimacionHeader.id_ot == id_ot)
    if estatus_cobro is not None:
        stmt = stmt.where(EstimacionHeader.estatus_cobro == estatus_cobro)
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())
