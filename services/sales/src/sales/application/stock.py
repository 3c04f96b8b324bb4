"""Stock movements (§A.4.4, DECIDE-A2): atomic updates, the ledger, StockLow / StockShortage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.sales import (
    StockLow,
    StockShortage,
)
from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.application.common import Actor, utcnow
from sales.application.pricing import require_material
from sales.domain import (
    Invalid,
    NotFound,
)
from sales.models import (
    Base,
    Material,
    MovimientoStock,
    outbox,
)

_MOVIMIENTOS = Base.metadata.tables["movimientos_stock"]


_INSERT_MOVIMIENTO = insert(_MOVIMIENTOS)


@dataclass(frozen=True)
class StockChange:
    id_material: int
    delta: int
    motivo: str
    id_venta: int | None = None
    event_id: str | None = None
    nota: str | None = None


async def apply_stock_changes(
    s: AsyncSession, changes: Iterable[StockChange], usuario: str
) -> list[d.StockEffect]:
    """Apply movements, each material once with the summed delta, in ascending id order.

    One atomic `UPDATE … SET stock_actual = stock_actual + :delta RETURNING` per material (the
    row lock it takes serialises concurrent consumers without lost updates); per change a
    ledger row with its own before/after, and StockLow / StockShortage per crossing.
    """
    by_material: dict[int, list[StockChange]] = defaultdict(list)
    for ch in changes:
        if ch.delta != 0:
            by_material[ch.id_material].append(ch)
    effects: list[d.StockEffect] = []
    ledger: list[dict[str, Any]] = []
    now = utcnow()
    for id_material in sorted(by_material):
        group = by_material[id_material]
        total = sum(ch.delta for ch in group)
        row = (
            await s.execute(
                update(Material)
                .where(Material.id_material == id_material)
                .values(stock_actual=Material.stock_actual + total)
                .returning(Material.stock_actual, Material.stock_minimo, Material.descripcion)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
        after_all, minimo, nombre = int(row[0]), int(row[1]), str(row[2])
        balance = after_all - total
        for ch in group:
            eff = d.stock_effect(balance, ch.delta, minimo)
            effects.append(eff)
            ledger.append(
                {
                    "id_material": id_material,
                    "cantidad": ch.delta,
                    "saldo_anterior": eff.before,
                    "saldo_resultante": eff.after,
                    "motivo": ch.motivo,
                    "id_venta": ch.id_venta,
                    "event_id": ch.event_id,
                    "nota": ch.nota,
                    "usuario": usuario,
                    "fecha": now,
                }
            )
            if eff.low:
                await enqueue(
                    s,
                    outbox,
                    StockLow(
                        id_material=id_material,
                        nombre=nombre,
                        actual=eff.after,
                        minimo=minimo,
                        anterior=eff.before,
                        id_venta=ch.id_venta,
                        source_event_id=ch.event_id,
                    ),
                )
            if eff.shortage and ch.id_venta is not None:
                await enqueue(
                    s,
                    outbox,
                    StockShortage(
                        id_material=id_material,
                        nombre=nombre,
                        stock_actual=eff.after,
                        faltante=-eff.after,
                        id_venta=ch.id_venta,
                        source_event_id=ch.event_id,
                    ),
                )
            balance = eff.after
    if ledger:  # the whole ledger of the batch in one multi-row INSERT
        await s.execute(_INSERT_MOVIMIENTO, ledger)
    return effects


async def already_applied(s: AsyncSession, event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    if not ids:
        return set()
    rows = await s.scalars(
        select(MovimientoStock.event_id).where(MovimientoStock.event_id.in_(ids)).distinct()
    )
    return {r for r in rows if r is not None}


async def restock(
    s: AsyncSession,
    id_material: int,
    cantidad: int,
    actor: Actor,
    *,
    motivo: str = d.MotivoMovimiento.REABASTO.value,
    nota: str | None = None,
) -> d.StockEffect:
    """Restock (+) or adjustment (±) through the API, with its ledger row."""
    if cantidad == 0:
        raise Invalid("cantidad no puede ser 0", field="cantidad")
    if motivo == d.MotivoMovimiento.REABASTO and cantidad < 0:
        raise Invalid("un reabasto debe ser positivo", field="cantidad")
    if motivo == d.MotivoMovimiento.AJUSTE and not (nota and nota.strip()):
        raise Invalid("un ajuste requiere una nota (motivo)", code="MOTIVO_REQUERIDO", field="nota")
    await require_material(s, id_material, "id_material")
    (eff,) = await apply_stock_changes(
        s, [StockChange(id_material, cantidad, motivo, nota=nota)], actor.sub
    )
    return eff


async def conteo(
    s: AsyncSession, id_material: int, contado: int, actor: Actor, nota: str | None = None
) -> d.StockEffect | None:
    """Physical count: records the difference as a `conteo` movement (locks the row first)."""
    m = await s.scalar(
        select(Material).where(Material.id_material == id_material).with_for_update()
    )
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
    delta = contado - m.stock_actual
    if delta == 0:
        return None
    (eff,) = await apply_stock_changes(
        s, [StockChange(id_material, delta, d.MotivoMovimiento.CONTEO.value, nota=nota)], actor.sub
    )
    return eff
