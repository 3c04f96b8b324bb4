"""Read side of the searches (split from :mod:`evidence.queries`, which keeps the grids): the
cross-OT GPU search (the legacy global search's GPU rows, ``fn_api_busqueda_global``) and the
OT list.

Both are one page query plus one count, over indexed predicates: production date
(``ix_produccion_fecha``), GPU status (``ix_gpu_estatus``), the OT's client (``ix_ot_id_cliente``)
and the OT by id; the page is bounded by the route (``limit`` ≤ :data:`MAX_PAGE`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from evidence import domain as d
from evidence.domain import GpuStatus
from evidence.domain import ots as rules
from evidence.models import (
    Ot,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    ReporteMensual,
)
from service_defaults.text_search import any_contains_ci

MAX_PAGE = 200
DEFAULT_PAGE = 50


def site_condition(id_sitio: int) -> Any:
    """The OT is at site ``id_sitio``: the site column its frente selects holds it (§C.2.2,
    the full frente map, GP-D20)."""
    by_column: dict[str, list[int]] = {}
    for frente, column in d.SITE_COLUMN_BY_FRENTE.items():
        by_column.setdefault(column, []).append(frente)
    return or_(
        *(
            and_(Ot.id_frente.in_(sorted(frentes)), getattr(Ot, column) == id_sitio)
            for column, frentes in sorted(by_column.items())
        )
    )


SITE_COLUMNS = ("id_embarcacion", "id_plataforma", "id_intercom", "id_patio")


def ot_site(id_frente: int | None, sites: dict[str, int | None]) -> int | None:
    """The OT's site: the site column its frente selects (None without a frente)."""
    column = d.SITE_COLUMN_BY_FRENTE.get(id_frente or 0)
    return sites.get(column) if column else None


@dataclass(frozen=True)
class GpuSearch:
    entregado: bool | None = None
    id_frente: int | None = None
    id_sitio: int | None = None
    id_cliente: int | None = None
    id_ot: int | None = None
    desde: dt.date | None = None
    hasta: dt.date | None = None
    estatus: GpuStatus | None = None


def _gpu_where(f: GpuSearch) -> list[Any]:
    where: list[Any] = []
    if f.entregado is not None:
        loaded = rules.evidence_loaded_sql(RegistroGpu.archivo)
        where.append(loaded if f.entregado else ~loaded)
    if f.id_frente is not None:
        where.append(Ot.id_frente == f.id_frente)
    if f.id_sitio is not None:
        where.append(site_condition(f.id_sitio))
    if f.id_cliente is not None:
        where.append(Ot.id_cliente == f.id_cliente)
    if f.id_ot is not None:
        where.append(Ot.id == f.id_ot)
    if f.desde is not None:
        where.append(Produccion.fecha_produccion >= f.desde)
    if f.hasta is not None:
        where.append(Produccion.fecha_produccion <= f.hasta)
    if f.estatus is not None:
        where.append(RegistroGpu.estatus == str(f.estatus))
    return where


def _gpu_from(stmt: Any) -> Any:
    return (
        stmt.select_from(RegistroGpu)
        .join(Produccion, Produccion.id == RegistroGpu.id_produccion)
        .join(ReporteMensual, ReporteMensual.id == Produccion.id_reporte_mensual)
        .join(Ot, Ot.id == ReporteMensual.id_ot)
        .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
    )


async def buscar_gpus(
    session: AsyncSession, f: GpuSearch, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, the page): GPUs of every OT, newest production first."""
    where = _gpu_where(f)
    total = await session.scalar(_gpu_from(select(func.count())).where(*where))
    stmt = (
        _gpu_from(
            select(
                RegistroGpu.id,
                RegistroGpu.id_produccion,
                RegistroGpu.estatus,
                RegistroGpu.archivo,
                RegistroGpu.id_estimacion_detalle,
                rules.evidence_loaded_sql(RegistroGpu.archivo),
                Produccion.fecha_produccion,
                Produccion.tipo_tiempo,
                Produccion.volumen_produccion,
                PartidaAnexo.id_partida,
                PartidaAnexo.descripcion_concepto,
                PartidaAnexo.anexo,
                Ot.id,
                Ot.orden_trabajo,
                Ot.id_cliente,
                Ot.id_frente,
                Ot.id_embarcacion,
                Ot.id_plataforma,
                Ot.id_intercom,
                Ot.id_patio,
            )
        )
        .where(*where)
        .order_by(Produccion.fecha_produccion.desc(), RegistroGpu.id.desc())
        .limit(limit)
        .offset(offset)
    )
    conn = await session.connection()  # Core path: a flat read
    data = []
    for r in (await conn.execute(stmt)).all():
        (gid, pid, estatus, archivo, detalle, entregado, fecha, tipo, volumen) = r[:9]
        (codigo, descripcion, anexo, oid, folio, cliente, frente) = r[9:16]
        status = GpuStatus(estatus)
        data.append(
            {
                "id_gpu": gid,
                "id_produccion": pid,
                "id_ot": oid,
                "orden_trabajo": folio,
                "id_cliente": cliente,
                "id_frente": frente,
                "id_sitio": ot_site(frente, dict(zip(SITE_COLUMNS, r[16:], strict=True))),
                "fecha": fecha,
                "tipo_tiempo": tipo,
                "codigo": codigo,
                "descripcion": descripcion,
                "anexo": d.normalize_annex(anexo),
                "volumen": d.format_volume(Decimal(volumen)),
                "estatus": str(status),
                "estatus_id": d.LEGACY_IDS[status],
                "archivo": archivo,
                "entregado": bool(entregado),
                "facturado": detalle is not None,
            }
        )
    return int(total or 0), data


@dataclass(frozen=True)
class OtSearch:
    q: str | None = None
    id_cliente: int | None = None
    activo: bool | None = None
    desde: dt.date | None = None
    hasta: dt.date | None = None


def _ot_where(f: OtSearch) -> list[Any]:
    where: list[Any] = []
    if f.q and f.q.strip():
        where.append(any_contains_ci(f.q.strip(), Ot.orden_trabajo, Ot.descripcion_trabajo))
    if f.id_cliente is not None:
        where.append(Ot.id_cliente == f.id_cliente)
    if f.activo is not None:
        where.append(Ot.estatus == rules.OT_ACTIVA if f.activo else Ot.estatus != rules.OT_ACTIVA)
    if f.desde is not None or f.hasta is not None:
        # The OT's period (§C.2.2: real over programmed, the end extended by its active
        # reprogramaciones) overlaps [desde, hasta]; an OT without a start is not placed.
        inicio = func.coalesce(Ot.fecha_inicio_real, Ot.fecha_inicio_programado)
        where.append(inicio.is_not(None))
        if f.hasta is not None:
            where.append(inicio <= f.hasta)
        if f.desde is not None:
            reprog = aliased(Ot)
            reprog_end = (
                select(
                    func.max(
                        func.coalesce(reprog.fecha_termino_real, reprog.fecha_termino_programado)
                    )
                )
                .where(reprog.ot_principal == Ot.id, reprog.estatus == rules.OT_ACTIVA)
                .scalar_subquery()
            )
            own_end = func.coalesce(Ot.fecha_termino_real, Ot.fecha_termino_programado)
            where.append(
                or_(
                    and_(own_end.is_(None), reprog_end.is_(None)),
                    own_end >= f.desde,
                    reprog_end >= f.desde,
                )
            )
    return where


async def listar_ots(
    session: AsyncSession, f: OtSearch, *, limit: int, offset: int
) -> tuple[int, list[Ot]]:
    """(total matching, the page) of OTs by folio."""
    where = _ot_where(f)
    total = await session.scalar(select(func.count()).select_from(Ot).where(*where))
    rows = await session.scalars(
        select(Ot).where(*where).order_by(Ot.orden_trabajo, Ot.id).limit(limit).offset(offset)
    )
    return int(total or 0), list(rows.all())
