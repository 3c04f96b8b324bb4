"""The portable `StockStore` (SQLite, and any database without a dedicated adapter): ORM and
Core statements only."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.eligibility import elegible_fefo_where, fefo_order_by
from orders.adapters.snapshots import snap_query, to_snap
from orders.models import Almacen, Lote, LoteAsignado, LoteUbicacion, PropuestaItem, Ubicacion


async def _candidatos_fefo(
    session: AsyncSession, requeridos: Mapping[int, int], almacen_id: int, umbral: date
) -> tuple[list[Any], dict[int, int]]:
    """The FEFO prefix of eligible stock rows that can cover each product's requirement, and
    each product's total eligible net stock, in one windowed query; then the prefix rows are
    locked (``FOR UPDATE``, ascending id) and re-read so allocation uses locked values.

    Ordering is byte-wise: SQLite compares text as BINARY [DECIDE-B7].
    """
    if not requeridos:
        return [], {}
    neto = LoteUbicacion.cantidad - LoteUbicacion.cantidad_reservada
    orden = fefo_order_by()
    inner = (
        select(
            LoteUbicacion.id.label("lu_id"),
            Lote.producto_id.label("producto_id"),
            neto.label("neto"),
            func.sum(neto)
            .over(partition_by=Lote.producto_id, order_by=orden, rows=(None, 0))
            .label("acumulado"),
            func.sum(neto).over(partition_by=Lote.producto_id).label("total"),
        )
        .select_from(LoteUbicacion)
        .join(Lote, Lote.id == LoteUbicacion.lote_id)
        .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
        .join(Almacen, Almacen.id == Ubicacion.almacen_id)
        .where(Lote.producto_id.in_(sorted(requeridos)), *elegible_fefo_where(almacen_id, umbral))
        .subquery()
    )
    requerido = case(dict(requeridos), value=inner.c.producto_id, else_=0)
    rows: list[Any] = []
    totales: dict[int, int] = {}
    for _attempt in range(5):
        prefix = (
            await session.execute(
                select(inner.c.lu_id, inner.c.producto_id, inner.c.total, inner.c.neto).where(
                    inner.c.acumulado - inner.c.neto < requerido
                )
            )
        ).all()
        totales = {int(r[1]): int(r[2]) for r in prefix}
        leido = {int(r[0]): int(r[3]) for r in prefix}
        ids = sorted(leido)
        rows = []
        for chunk in range(0, len(ids), 1000):
            rows.extend(
                (
                    await session.execute(
                        snap_query()
                        .where(LoteUbicacion.id.in_(ids[chunk : chunk + 1000]))
                        .order_by(LoteUbicacion.id)
                        .with_for_update(of=LoteUbicacion)
                    )
                ).all()
            )
        # a concurrent reservation committed between the read and the lock: read again
        # (rows already locked stay locked and stable)
        if all(leido[r[0]] == r[8] - r[9] for r in rows) and len(rows) == len(ids):
            break
    return rows, totales


@dataclass
class LecturaPortable:
    """The FEFO prefix and the scope totals, both read at once by the windowed query."""

    snaps: list[d.LoteUbicacionSnap]
    _totales: dict[int, int]

    async def totales(self) -> dict[int, int]:
        return self._totales

    async def cancelar(self) -> None:
        return None


class PortableStockStore:
    """`StockStore` with ORM/Core statements: one windowed read of the FEFO prefix and the
    scope totals, conditional UPDATEs in chunks, Core bulk inserts."""

    async def leer_fefo(
        self,
        session: AsyncSession,
        requeridos: Mapping[int, int],
        almacen_id: int,
        umbral: date,
    ) -> LecturaPortable:
        rows, totales = await _candidatos_fefo(session, requeridos, almacen_id, umbral)
        return LecturaPortable([to_snap(r) for r in rows], totales)

    async def reservar_varios(
        self, session: AsyncSession, deltas: Sequence[tuple[int, int]]
    ) -> None:
        """Add many reservations with one conditional UPDATE per chunk (ascending id); the row
        count proves every row still had enough free stock, else 409 (the transaction rolls
        back)."""
        merged: dict[int, int] = defaultdict(int)
        for lu_id, n in deltas:
            merged[lu_id] += n
        ids = sorted(merged)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            delta = case({i: merged[i] for i in chunk}, value=LoteUbicacion.id, else_=0)
            res = await session.execute(
                update(LoteUbicacion)
                .where(
                    LoteUbicacion.id.in_(chunk),
                    LoteUbicacion.cantidad - LoteUbicacion.cantidad_reservada >= delta,
                )
                .values(cantidad_reservada=LoteUbicacion.cantidad_reservada + delta)
                .execution_options(synchronize_session=False)
            )
            if getattr(res, "rowcount", 0) != len(chunk):
                raise d.Conflict(
                    "STOCK_INSUFICIENTE",
                    "La existencia cambió durante la reserva; se reintentará.",
                )

    async def insertar_propuesta(
        self,
        session: AsyncSession,
        filas_items: list[dict[str, Any]],
        lineas: list[tuple[uuid.UUID, uuid.UUID, int, int]],
        at: datetime,
    ) -> None:
        """Proposal items, then their lines (id, item, lote_ubicacion, cantidad) as RESERVADA:
        Core bulk inserts."""
        if filas_items:
            await session.execute(insert(PropuestaItem), filas_items)
        if lineas:
            await session.execute(
                insert(LoteAsignado),
                [
                    {
                        "id": linea_id,
                        "propuesta_item_id": ip_id,
                        "lote_ubicacion_id": lu_id,
                        "cantidad_asignada": cantidad,
                        "estado_linea": "RESERVADA",
                        "override_caducidad": False,
                        "fecha_asignacion": at,
                    }
                    for linea_id, ip_id, lu_id, cantidad in lineas
                ],
            )
