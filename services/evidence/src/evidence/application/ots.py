"""OTs and annex imports (§C.2.2, §C.4.2 a_retirar)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application.common import bump_grid, family_ids, get_ot, utcnow
from evidence.application.production import announce, recompute_excedentes
from evidence.domain import Actor, DomainError
from evidence.domain import ots as rules
from evidence.models import (
    ImportacionAnexo,
    Ot,
    OtHistorial,
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
    num_reprogramacion = 0
    if ot_principal is not None:
        principal = await session.get(Ot, ot_principal, with_for_update=True)
        if principal is None:
            raise DomainError("OT_PRINCIPAL_INVALIDA", field="ot_principal")
        principal_id = principal.ot_principal or principal.id
        previous = await session.scalar(
            select(func.max(Ot.num_reprogramacion)).where(Ot.ot_principal == principal_id)
        )
        num_reprogramacion = int(previous or 0) + 1
    rules.validate_ot_dates(
        {
            "fecha_inicio_programado": fecha_inicio_programado,
            "fecha_termino_programado": fecha_termino_programado,
            **extra,
        }
    )
    ot = Ot(
        orden_trabajo=folio,
        descripcion_trabajo=descripcion_trabajo,
        id_tipo=5 if principal_id else 4,
        ot_principal=principal_id,
        num_reprogramacion=num_reprogramacion,
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


DATE_FIELDS = tuple(name for pair in rules.DATE_PAIRS for name in pair)


def _dates(ot: Ot) -> dict[str, dt.date | None]:
    return {name: getattr(ot, name) for name in DATE_FIELDS}


def _periods(
    family: list[Ot], overrides: dict[int, dict[str, Any]]
) -> dict[int, tuple[dt.date | None, dt.date | None, tuple[str, str]]]:
    """(inicio, fin, the fields they come from) of every OT of the family, with ``overrides``
    (id → field values) applied: a principal's end is extended by its active reprogramaciones
    (§C.2.2 "OT validity")."""

    def value(ot: Ot, name: str) -> Any:
        return overrides.get(ot.id, {}).get(name, getattr(ot, name))

    out: dict[int, tuple[dt.date | None, dt.date | None, tuple[str, str]]] = {}
    for ot in family:
        reprogs = [
            (value(r, "fecha_termino_real"), value(r, "fecha_termino_programado"))
            for r in family
            if r.ot_principal == ot.id and value(r, "estatus") == rules.OT_ACTIVA
        ]
        inicio, fin = d.ot_period(
            value(ot, "fecha_inicio_real"),
            value(ot, "fecha_inicio_programado"),
            value(ot, "fecha_termino_real"),
            value(ot, "fecha_termino_programado"),
            reprogs,
        )
        fields = (
            "fecha_inicio_real" if value(ot, "fecha_inicio_real") else "fecha_inicio_programado",
            "fecha_termino_real" if value(ot, "fecha_termino_real") else "fecha_termino_programado",
        )
        out[ot.id] = (inicio, fin, fields)
    return out


async def _check_family_production(session: AsyncSession, ot: Ot, wanted: dict[str, Any]) -> None:
    """409 when an OT of the family whose period the edit changes has production (volume > 0)
    outside its new period."""
    ids = await family_ids(session, ot)
    family = list((await session.scalars(select(Ot).where(Ot.id.in_(ids)).order_by(Ot.id))).all())
    before = _periods(family, {})
    after = _periods(family, {ot.id: wanted})
    moved = [i for i in ids if before[i][:2] != after[i][:2]]
    if not moved:
        return
    spans = (
        await session.execute(
            select(
                ReporteMensual.id_ot,
                func.min(Produccion.fecha_produccion),
                func.max(Produccion.fecha_produccion),
            )
            .join(Produccion, Produccion.id_reporte_mensual == ReporteMensual.id)
            .where(ReporteMensual.id_ot.in_(moved), Produccion.volumen_produccion > 0)
            .group_by(ReporteMensual.id_ot)
        )
    ).all()
    folio = {o.id: o.orden_trabajo for o in family}
    for id_ot, first, last in sorted(spans):
        first = first if isinstance(first, dt.date) else dt.date.fromisoformat(str(first))
        last = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last))
        inicio, fin, fields = after[id_ot]
        rules.check_production_in_period(
            rules.ProductionSpan(id_ot, first, last),
            inicio,
            fin,
            orden_trabajo=folio[id_ot],
            fields=fields,
        )


async def editar_ot(
    session: AsyncSession,
    actor: Actor,
    id_ot: int,
    changes: dict[str, Any],
    motivo: str | None = None,
) -> Ot:
    """Edit an OT's description, dates (reprogramming), client or active flag: the dates stay
    ordered, no captured production of the family is left outside a changed period, and every
    effective change writes one ``ot_historial`` row (old and new values, who, why)."""
    ot = await session.get(Ot, id_ot, with_for_update=True)
    if ot is None:
        raise DomainError("OT_NO_ENCONTRADA", f"OT {id_ot} no existe", field="id_ot", id_ot=id_ot)
    wanted = {k: v for k, v in changes.items() if k in rules.EDITABLE_FIELDS}
    current = {name: getattr(ot, name) for name in rules.EDITABLE_FIELDS}
    rules.validate_ot_dates(_dates(ot) | {k: v for k, v in wanted.items() if k in DATE_FIELDS})
    cambios = rules.diff_changes(current, wanted)
    if not cambios:
        return ot
    if any(name in cambios for name in (*DATE_FIELDS, "estatus")):
        await _check_family_production(session, ot, wanted)
    for name in cambios:
        setattr(ot, name, wanted[name])
    session.add(
        OtHistorial(
            id_ot=ot.id,
            usuario=actor.sub,
            fecha=utcnow(),
            cambios=cambios,
            motivo=motivo.strip() if motivo and motivo.strip() else None,
        )
    )
    await session.flush()
    return ot
