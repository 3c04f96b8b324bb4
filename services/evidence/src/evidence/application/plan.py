"""Daily plan use cases (``partida_proyectada``, §C.2.9): a day, a month's grid and a file.

Every entry names a budget line of an import of the OT's family; days of a closed month of the
OT are refused (409 MES_CERRADO), as production edits are. The plan is read live by the
production grid (``obtener_partidas_produccion``), which is not cached; the cached GPU grid does
not show the plan, so its version is not bumped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import family_ids, get_ot, utcnow
from evidence.domain import Actor, DomainError
from evidence.models import ImportacionAnexo, PartidaAnexo, PartidaProyectada, ReporteMensual

PLAN_T = cast(Table, PartidaProyectada.__table__)


@dataclass(frozen=True)
class PlanResult:
    guardados: int
    eliminados: int
    sin_cambio: int
    filas: int = 0


async def _family_lines(
    session: AsyncSession, writer: BulkWriter, family: Sequence[int], ids: Sequence[int]
) -> set[int]:
    """Which of these budget lines belong to an import of the OT family."""
    found: set[int] = set()
    for chunk in writer.id_chunks(sorted(set(ids))):
        rows = await session.execute(
            select(PartidaAnexo.id)
            .join(ImportacionAnexo, ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo)
            .where(writer.id_match(PartidaAnexo.id, chunk), ImportacionAnexo.id_ot.in_(family))
        )
        found |= {int(r[0]) for r in rows}
    return found


async def _closed_months(
    session: AsyncSession, id_ot: int, months: set[tuple[int, int]]
) -> list[str]:
    if not months:
        return []
    rows = await session.execute(
        select(ReporteMensual.anio, ReporteMensual.mes).where(
            ReporteMensual.id_ot == id_ot,
            ReporteMensual.cerrado.is_(True),
            or_(*(and_(ReporteMensual.anio == a, ReporteMensual.mes == m) for a, m in months)),
        )
    )
    return sorted(f"{a:04d}-{m:02d}" for a, m in rows.all())


async def guardar_plan(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_ot: int,
    entries: Mapping[d.PlanKey, Decimal],
    partida_field: str = "id_partida_anexo",
) -> PlanResult:
    """Write these days of the plan (volume 0 removes a day) in the caller's transaction."""
    ot = await get_ot(session, id_ot)
    family = await family_ids(session, ot)
    requested = {k: d.validate_volume(v) for k, v in entries.items()}
    wanted = sorted({pid for pid, _ in requested})
    unknown = sorted(set(wanted) - await _family_lines(session, writer, family, wanted))
    if unknown:
        raise DomainError(
            "PARTIDA_INVALIDA",
            f"partidas {unknown[:20]} no pertenecen a la OT {id_ot} ni a su familia",
            field=partida_field,
            partidas=unknown[:200],
        )
    closed = await _closed_months(session, ot.id, {(f.year, f.month) for _, f in requested})
    if closed:
        raise DomainError(
            "MES_CERRADO", f"meses cerrados: {', '.join(closed)}", field="fecha", meses=closed
        )
    if not requested:
        return PlanResult(0, 0, 0)
    existing: dict[d.PlanKey, tuple[int, Decimal]] = {}
    dates = [f for _, f in requested]
    for chunk in writer.id_chunks(wanted):
        rows = await session.execute(
            select(
                PartidaProyectada.id,
                PartidaProyectada.id_partida_anexo,
                PartidaProyectada.fecha,
                PartidaProyectada.volumen_programado,
            ).where(
                writer.id_match(PartidaProyectada.id_partida_anexo, chunk),
                PartidaProyectada.fecha.between(min(dates), max(dates)),
            )
        )
        for rid, pid, fecha, volumen in rows.all():
            existing[(int(pid), fecha)] = (int(rid), Decimal(volumen))
    diff = d.plan_diff(requested, existing)
    now = utcnow()
    await _apply(session, writer, diff, id_ot=ot.id, usuario=actor.sub, now=now)
    return PlanResult(len(diff.inserts) + len(diff.updates), len(diff.deletes), diff.unchanged)


async def _apply(
    session: AsyncSession,
    writer: BulkWriter,
    diff: d.PlanDiff,
    *,
    id_ot: int,
    usuario: str,
    now: dt.datetime,
) -> None:
    if diff.inserts:
        # A concurrent writer may have inserted the same day since the read: the later write
        # overwrites it (last writer wins), as an update would.
        await writer.upsert(
            session,
            PLAN_T,
            [
                {
                    "id_ot": id_ot,
                    "id_partida_anexo": pid,
                    "fecha": fecha,
                    "volumen_programado": volumen,
                    "usuario_actualizacion": usuario,
                    "fecha_actualizacion": now,
                }
                for (pid, fecha), volumen in diff.inserts
            ],
            keys=("id_partida_anexo", "fecha"),
        )
    if diff.updates:
        stmt: Any = (
            update(PLAN_T)
            .where(PLAN_T.c.id == bindparam("b_id"))
            .values(
                volumen_programado=bindparam("b_vol"),
                id_ot=id_ot,
                usuario_actualizacion=usuario,
                fecha_actualizacion=now,
            )
        )
        conn = await session.connection()
        await conn.execute(stmt, [{"b_id": rid, "b_vol": vol} for rid, vol in diff.updates])
    for chunk in writer.id_chunks(sorted(diff.deletes)):
        await session.execute(delete(PLAN_T).where(writer.id_match(PLAN_T.c.id, chunk)))


def month_entries(
    mes: int, anio: int, partidas: Sequence[tuple[int, Sequence[Decimal | None]]]
) -> dict[d.PlanKey, Decimal]:
    """A month's grid (``valores[i]`` = day i+1; null leaves the day as it is) as plan entries;
    a value past the month's last day → 422 DIA_INVALIDO, a faulty volume → 422
    VOLUMEN_INVALIDO, each naming ``partidas[i].valores[j]``."""
    days = d.days_in_month(mes, anio)
    entries: dict[d.PlanKey, Decimal] = {}
    for i, (pid, valores) in enumerate(partidas):
        for j, value in enumerate(valores):
            if value is None:
                continue
            where = f"partidas[{i}].valores[{j}]"
            if j >= days:
                raise DomainError("DIA_INVALIDO", f"el mes tiene {days} días", field=where)
            key = (pid, dt.date(anio, mes, j + 1))
            if key in entries:
                raise DomainError(
                    "PARTIDA_INVALIDA", f"partida {pid} repetida", field=f"partidas[{i}]"
                )
            entries[key] = d.validate_volume(value, field=where)
    return entries


async def active_lines(session: AsyncSession, ot_id: int) -> list[d.PlanLine]:
    """Budget lines of the OT family's active imports (the production grid's lines)."""
    ot = await get_ot(session, ot_id)
    family = await family_ids(session, ot)
    rows = await session.execute(
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
    return [
        d.PlanLine(int(r[0]), r[1], r[2], r[3] or "", r[4] or "", Decimal(r[5] or 0))
        for r in rows.all()
    ]


async def importar_plan(
    session: AsyncSession, writer: BulkWriter, actor: Actor, *, id_ot: int, sheet: d.PlanSheet
) -> PlanResult:
    """A plan file, whole or not at all: every faulty row → 422 PLAN_INVALIDO listing them."""
    rows, errors = d.parse_plan_rows(sheet)
    if not rows and not errors:
        raise DomainError("PLAN_SIN_FILAS", field="archivo")
    lines = await active_lines(session, id_ot)
    entries, unresolved = d.resolve_plan_rows(rows, lines)
    d.raise_plan_row_errors([*errors, *unresolved])
    res = await guardar_plan(session, writer, actor, id_ot=id_ot, entries=entries)
    return PlanResult(res.guardados, res.eliminados, res.sin_cambio, filas=len(rows))
