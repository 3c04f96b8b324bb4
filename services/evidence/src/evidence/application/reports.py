"""Monthly reports and closed days (GP-D21, §C.2.5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import (
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import DIARIO_T, REPORTE_T, get_ot, utcnow
from evidence.domain import Actor, DomainError
from evidence.models import (
    CLOSED_DAILY_STATUS,
    DEFAULT_DAILY_STATUS,
    ReporteDiario,
    ReporteMensual,
)


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


async def guardar_archivo_mensual(
    session: AsyncSession,
    writer: BulkWriter,
    actor: Actor,
    *,
    id_ot: int,
    mes: int,
    anio: int,
    archivo: str | None,
    allowed_hosts: Iterable[str] = d.DEFAULT_ALLOWED_HOSTS,
) -> ReporteMensual:
    """Set, replace (``archivo``) or clear (None) the month's evidence link of an OT.

    The link follows the GPU link rule (§C.3.2 G2, DECIDE-C3: ``https://`` on an allowed host,
    ≤ 500 characters); setting it creates the month's report when missing, clearing needs one
    (404 REPORTE_NO_ENCONTRADO). A closed month keeps its link (409 MES_CERRADO). Who changed
    it and when are kept on the report (``usuario_archivo``, ``fecha_archivo``)."""
    d.validate_month(mes, anio)
    await get_ot(session, id_ot)
    if archivo is None:
        report = await find_report(session, id_ot, mes, anio)
        if report is None:
            raise DomainError(
                "REPORTE_NO_ENCONTRADO",
                f"la OT {id_ot} no tiene reporte de {anio:04d}-{mes:02d}",
                field="mes",
            )
        link = None
    else:
        link = d.validate_evidence_link(archivo, allowed_hosts)
        report = await get_or_create_report(session, writer, id_ot, mes, anio)
    if report.cerrado:
        raise DomainError("MES_CERRADO", field="archivo")
    now = utcnow()
    report.archivo = link
    report.usuario_archivo = actor.sub
    report.fecha_archivo = now
    report.fecha_actualizacion = now
    await session.flush()
    return report
