"""Stock snapshots read with the ORM (portable: SQLite and PostgreSQL): the one mapping from the
stock tables to `domain.LoteUbicacionSnap`, unlocked or locked (``FOR UPDATE``, ascending id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.eligibility import elegible_fefo_where
from orders.models import Almacen, Lote, LoteUbicacion, Ubicacion


def _snap_columns() -> tuple[Any, ...]:
    return (
        LoteUbicacion.id,
        Lote.id,
        Lote.numero_lote,
        Lote.producto_id,
        Ubicacion.almacen_id,
        Lote.fecha_caducidad,
        Lote.estado,
        Ubicacion.codigo,
        LoteUbicacion.cantidad,
        LoteUbicacion.cantidad_reservada,
        Ubicacion.estado,
        Ubicacion.activo,
        Almacen.activo,
    )


def snap_query() -> Any:
    return (
        select(*_snap_columns())
        .select_from(LoteUbicacion)
        .join(Lote, Lote.id == LoteUbicacion.lote_id)
        .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
        .join(Almacen, Almacen.id == Ubicacion.almacen_id)
    )


def to_snap(row: Sequence[Any]) -> d.LoteUbicacionSnap:
    return d.LoteUbicacionSnap(
        lote_ubicacion_id=row[0],
        lote_id=row[1],
        numero_lote=row[2],
        producto_id=row[3],
        almacen_id=row[4],
        fecha_caducidad=row[5],
        lote_estado=row[6],
        ubicacion_codigo=row[7],
        cantidad=row[8],
        reservado=row[9],
        ubicacion_estado=row[10],
        ubicacion_activa=bool(row[11]),
        almacen_activo=bool(row[12]),
    )


async def snapshots_locked(
    session: AsyncSession, lu_ids: Iterable[int]
) -> dict[int, d.LoteUbicacionSnap]:
    """Lock the given stock rows (ascending id) and return their snapshots."""
    ids = sorted(set(lu_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            snap_query()
            .where(LoteUbicacion.id.in_(ids))
            .order_by(LoteUbicacion.id)
            .with_for_update(of=LoteUbicacion)
        )
    ).all()
    return {r[0]: to_snap(r) for r in rows}


async def candidatos_todos(
    session: AsyncSession, productos: Sequence[int], almacen_id: int, umbral: date
) -> list[Any]:
    """Every eligible stock row of the products, locked in ascending id order."""
    if not productos:
        return []
    return list(
        (
            await session.execute(
                snap_query()
                .where(Lote.producto_id.in_(productos), *elegible_fefo_where(almacen_id, umbral))
                .order_by(LoteUbicacion.id)
                .with_for_update(of=LoteUbicacion)
            )
        ).all()
    )
