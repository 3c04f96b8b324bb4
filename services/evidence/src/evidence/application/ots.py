"""OTs and annex imports (§C.2.2, §C.4.2 a_retirar)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from evidence.adapters import BulkWriter
from evidence.application.common import bump_grid, family_ids, get_ot, utcnow
from evidence.application.production import announce, recompute_excedentes
from evidence.domain import Actor, DomainError
from evidence.models import (
    ImportacionAnexo,
    Ot,
    PartidaAnexo,
    Produccion,
    ReporteMensual,
)


@dataclass(frozen=True)
class PartidaInput:
    id_partida: str
    descripcion: str
    anexo: str | None
    unidad: str
    volumen_proyectado: Decimal
    precio_unitario_mn: Decimal = Decimal(0)
    precio_unitario_usd: Decimal = Decimal(0)


async def crear_ot(
    session: AsyncSession,
    *,
    orden_trabajo: str,
    descripcion_trabajo: str = "",
    ot_principal: int | None = None,
    fecha_inicio_programado: dt.date | None = None,
    fecha_termino_programado: dt.date | None = None,
    **extra: Any,
) -> Ot:
    """``extra``: the optional OT columns (real dates, frente and site ids)."""
    folio = orden_trabajo.strip()
    exists = await session.scalar(select(Ot.id).where(Ot.orden_trabajo == folio))
    if exists is not None:
        raise DomainError("OT_DUPLICADA", f"la OT {folio} ya existe", field="orden_trabajo")
    principal_id: int | None = None
    if ot_principal is not None:
        principal = await session.get(Ot, ot_principal)
        if principal is None:
            raise DomainError("OT_PRINCIPAL_INVALIDA", field="ot_principal")
        principal_id = principal.ot_principal or principal.id
    ot = Ot(
        orden_trabajo=folio,
        descripcion_trabajo=descripcion_trabajo,
        id_tipo=5 if principal_id else 4,
        ot_principal=principal_id,
        fecha_inicio_programado=fecha_inicio_programado,
        fecha_termino_programado=fecha_termino_programado,
        fecha_creacion=utcnow(),
        **extra,
    )
    session.add(ot)
    await session.flush()
    return ot


async def importar_anexo(
    session: AsyncSession,
    actor: Actor,
    *,
    id_ot: int,
    partidas: Sequence[PartidaInput],
    es_activo: bool = True,
    archivo: str | None = None,
) -> tuple[ImportacionAnexo, list[PartidaAnexo]]:
    ot = await get_ot(session, id_ot)
    imp = ImportacionAnexo(
        id_ot=ot.id,
        archivo=archivo,
        es_activo=es_activo,
        total_registros=len(partidas),
        usuario_carga=actor.sub,
        fecha_carga=utcnow(),
    )
    session.add(imp)
    await session.flush()
    rows = [
        PartidaAnexo(
            id_importacion_anexo=imp.id,
            id_partida=p.id_partida.strip(),
            descripcion_concepto=p.descripcion,
            anexo=p.anexo,
            unidad=p.unidad,
            volumen_proyectado=p.volumen_proyectado,
            precio_unitario_mn=p.precio_unitario_mn,
            precio_unitario_usd=p.precio_unitario_usd,
            orden_fila=i,
        )
        for i, p in enumerate(partidas, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    await recompute_excedentes(session, await family_ids(session, ot), actor)
    return imp, rows


async def cambiar_importacion_activa(
    session: AsyncSession, writer: BulkWriter, actor: Actor, id_importacion: int, es_activo: bool
) -> ImportacionAnexo:
    """Activating/deactivating an import changes GPU eligibility (§C.4.2 a_retirar): every
    production of its lines is re-announced so the GPU sync converges."""
    imp = await session.get(ImportacionAnexo, id_importacion, with_for_update=True)
    if imp is None:
        raise DomainError("PARTIDA_NO_ENCONTRADA", "importación no encontrada", field="id")
    if imp.es_activo == es_activo:
        return imp
    imp.es_activo = es_activo
    await session.flush()
    ot = await get_ot(session, imp.id_ot)
    changed = await recompute_excedentes(session, await family_ids(session, ot), actor)
    prods = (
        await session.scalars(
            select(Produccion.id)
            .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
            .where(PartidaAnexo.id_importacion_anexo == imp.id)
        )
    ).all()
    ids = sorted(set(prods) | set(changed))
    family = await family_ids(session, ot)
    reports = (
        await session.scalars(select(ReporteMensual.id).where(ReporteMensual.id_ot.in_(family)))
    ).all()
    await bump_grid(session, writer, reports)
    await announce(session, writer, ids, actor, change="updated", before={})
    return imp
