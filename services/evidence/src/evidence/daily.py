"""Use cases of the seed's related production endpoints (DOMAIN §C.5): the production grid
(``obtener_partidas_produccion``), the site's daily-status grid (``ots_por_sitio_grid``) and its
mass save (``guardar_reportes_diarios_masiva``).

Reads run a fixed number of queries whatever the number of lines, OTs or days (the production
grid 4, the site grid 2); the rules live in :mod:`evidence.domain`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.domain import Actor, DomainError
from evidence.models import (
    EstatusDiario,
    ImportacionAnexo,
    Ot,
    PartidaAnexo,
    PartidaProyectada,
    Produccion,
    ReporteDiario,
    ReporteMensual,
)
from evidence.service import get_ot, utcnow

OT_ACTIVA = 1


def _family_ids(principal: int) -> Any:
    """Subquery: the OT family of a principal (itself plus its reprogramaciones)."""
    return select(Ot.id).where(or_(Ot.id == principal, Ot.ot_principal == principal))


def _month_bounds(mes: int, anio: int) -> tuple[dt.date, dt.date]:
    return dt.date(anio, mes, 1), dt.date(anio, mes, d.days_in_month(mes, anio))


# --------------------------------------------------------------------------------------------
# obtener_partidas_produccion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartidasProduccion:
    partidas: list[dict[str, Any]]
    dias_bloqueados: list[int]


async def partidas_produccion(
    session: AsyncSession, *, id_ot: int, mes: int, anio: int, tipo_tiempo: str
) -> PartidasProduccion:
    first, last = _month_bounds(mes, anio)
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


# --------------------------------------------------------------------------------------------
# ots_por_sitio_grid
# --------------------------------------------------------------------------------------------


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
    first, last = _month_bounds(mes, anio)
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


# --------------------------------------------------------------------------------------------
# guardar_reportes_diarios_masiva
# --------------------------------------------------------------------------------------------


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
    first, last = _month_bounds(mes, anio)
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
