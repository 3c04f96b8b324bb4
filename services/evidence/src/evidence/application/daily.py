"""Mass save of daily operational statuses (DOMAIN §C.5 ``guardar_reportes_diarios_masiva``,
GP-D14).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import utcnow
from evidence.domain import Actor, DomainError
from evidence.models import (
    EstatusDiario,
    Ot,
    ReporteDiario,
    ReporteMensual,
)


@dataclass(frozen=True)
class ReporteDiasInput:
    id_ot: int
    valores: Sequence[str | None]


@dataclass
class DailySaveResult:
    guardados: int = 0
    eliminados: int = 0
    sin_cambio: int = 0


async def _catalogue(session: AsyncSession) -> dict[str, d.DailyStatus]:
    rows = (await session.execute(select(EstatusDiario))).scalars()
    return {r.codigo: d.DailyStatus(r.codigo, r.descripcion, r.cierra_dia) for r in rows}


async def guardar_reportes_diarios(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    mes: int,
    anio: int,
    reportes: Sequence[ReporteDiasInput],
) -> DailySaveResult:
    """Mass save of daily operational statuses: ``valores[i]`` is day ``i+1`` (a description of
    the daily catalogue; empty/null clears the day and deletes its row, GP-D14). Days past the
    list are left as they are. A closed month rejects any change (409 ``MES_CERRADO``)."""
    first, last = d.month_bounds(mes, anio)
    days = last.day
    catalogue = await _catalogue(session)
    statuses = list(catalogue.values())
    requested: dict[int, dict[dt.date, d.DailyStatus | None]] = {}
    position: dict[int, int] = {}
    for i, rep in enumerate(reportes):
        if rep.id_ot in position:
            raise DomainError(
                "REPORTE_DUPLICADO", f"OT {rep.id_ot} repetida", field=f"reportes[{i}].id_ot"
            )
        position[rep.id_ot] = i
        if len(rep.valores) > days:
            raise DomainError(
                "DIA_INVALIDO",
                f"{len(rep.valores)} valores para un mes de {days} días",
                field=f"reportes[{i}].valores",
            )
        requested[rep.id_ot] = {
            dt.date(anio, mes, j + 1): d.resolve_daily_status(
                v, statuses, field=f"reportes[{i}].valores[{j}]"
            )
            for j, v in enumerate(rep.valores)
        }
    result = DailySaveResult()
    if not requested:
        return result

    ids = sorted(requested)
    found = set((await session.scalars(select(Ot.id).where(Ot.id.in_(ids)))).all())
    for oid in ids:
        if oid not in found:
            raise DomainError(
                "OT_NO_ENCONTRADA",
                f"OT {oid} no existe",
                field=f"reportes[{position[oid]}].id_ot",
                id_ot=oid,
            )

    needs_report = [oid for oid in ids if any(s is not None for s in requested[oid].values())]
    if needs_report:
        now = utcnow()
        await writer.insert_ignore(
            session,
            cast(Table, ReporteMensual.__table__),
            [
                {
                    "id_ot": oid,
                    "mes": mes,
                    "anio": anio,
                    "cerrado": False,
                    "fecha_creacion": now,
                    "fecha_actualizacion": now,
                }
                for oid in needs_report
            ],
        )
    reports = {
        r.id_ot: r
        for r in (
            await session.scalars(
                select(ReporteMensual)
                .where(
                    ReporteMensual.id_ot.in_(ids),
                    ReporteMensual.mes == mes,
                    ReporteMensual.anio == anio,
                )
                .order_by(ReporteMensual.id)
                .with_for_update()
            )
        ).all()
    }
    existing_rows: dict[int, dict[dt.date, ReporteDiario]] = {}
    if reports:
        by_report = {r.id: r.id_ot for r in reports.values()}
        for day in (
            await session.scalars(
                select(ReporteDiario).where(
                    ReporteDiario.id_reporte_mensual.in_(list(by_report)),
                    ReporteDiario.fecha.between(first, last),
                )
            )
        ).all():
            existing_rows.setdefault(by_report[day.id_reporte_mensual], {})[day.fecha] = day

    may_close = d.has_any_role(actor.roles, (d.ROLE_SUPERVISOR,))
    to_delete: list[int] = []
    to_insert: list[dict[str, Any]] = []
    for oid in ids:
        i = position[oid]
        current = existing_rows.get(oid, {})
        changes = d.plan_daily_statuses(
            {f: row.estatus for f, row in current.items()},
            requested[oid],
            catalogue,
            may_close=may_close,
            field=f"reportes[{i}].valores",
        )
        result.sin_cambio += len(requested[oid]) - len(changes)
        if not changes:
            continue
        report = reports[oid]
        if report.cerrado:
            raise DomainError(
                "MES_CERRADO",
                f"el reporte {mes}/{anio} de la OT {oid} está cerrado",
                field=f"reportes[{i}]",
            )
        for change in changes:
            row = current.get(change.fecha)
            if change.estatus is None:
                if row is not None:
                    to_delete.append(row.id)
                    result.eliminados += 1
                continue
            result.guardados += 1
            if row is None:
                to_insert.append(
                    {
                        "id_reporte_mensual": report.id,
                        "fecha": change.fecha,
                        "estatus": change.estatus.codigo,
                        "cerrado": change.estatus.cierra_dia,
                        "comentario": "",
                    }
                )
            else:
                row.estatus = change.estatus.codigo
                row.cerrado = change.estatus.cierra_dia
    if to_delete:
        await session.execute(delete(ReporteDiario).where(ReporteDiario.id.in_(to_delete)))
    if to_insert:
        await session.execute(insert(ReporteDiario), to_insert)
    await session.flush()
    return result
