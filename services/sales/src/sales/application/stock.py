"""Stock movements (§A.4.4, DECIDE-A2): atomic updates, the ledger, StockLow / StockShortage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.sales import (
    OrigenFaltante,
    StockLow,
    StockShortageV2,
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
    Venta,
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
    libera: int = 0
    """Quantity released from `comprometido` with this change (a SaleConfirmed applied)."""


async def apply_stock_changes(
    s: AsyncSession, changes: Iterable[StockChange], usuario: str
) -> list[d.StockEffect]:
    """Apply movements, each material once with the summed delta, in ascending id order.

    One atomic `UPDATE … SET stock_actual = stock_actual + :delta, comprometido = comprometido
    - :libera RETURNING` per material (the row lock it takes serialises concurrent consumers
    without lost updates); per change a ledger row with its own before/after, and StockLow /
    StockShortage.v2 per crossing. A shortage names its origen (venta / ajuste / conteo) and its
    ledger row, so when the batch has one the ledger INSERT returns the row ids (the common batch
    without one does not).
    """
    by_material: dict[int, list[StockChange]] = defaultdict(list)
    for ch in changes:
        if ch.delta != 0 or ch.libera != 0:
            by_material[ch.id_material].append(ch)
    effects: list[d.StockEffect] = []
    ledger: list[dict[str, Any]] = []
    alerts: list[tuple[int, DomainEvent]] = []  # (ledger row index, event), in emission order
    now = utcnow()
    for id_material in sorted(by_material):
        group = by_material[id_material]
        total = sum(ch.delta for ch in group)
        libera = sum(ch.libera for ch in group)
        values: dict[str, Any] = {"stock_actual": Material.stock_actual + total}
        if libera:
            values["comprometido"] = Material.comprometido - libera
        row = (
            await s.execute(
                update(Material)
                .where(Material.id_material == id_material)
                .values(**values)
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
                alerts.append(
                    (
                        len(ledger) - 1,
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
                )
            if eff.shortage:
                alerts.append(
                    (
                        len(ledger) - 1,
                        StockShortageV2(
                            id_material=id_material,
                            nombre=nombre,
                            stock_actual=eff.after,
                            faltante=-eff.after,
                            origen=cast("OrigenFaltante | None", d.shortage_origin(ch.motivo)),
                            id_venta=ch.id_venta,
                            source_event_id=ch.event_id,
                        ),
                    )
                )
            balance = eff.after
    row_ids = await _insert_ledger(
        s, ledger, with_ids=any(isinstance(e, StockShortageV2) for _, e in alerts)
    )
    for index, event in alerts:
        if isinstance(event, StockShortageV2) and row_ids:
            event = event.model_copy(update={"id_movimiento": row_ids[index]})
        await enqueue(s, outbox, event)
    return effects


async def _insert_ledger(
    s: AsyncSession, ledger: list[dict[str, Any]], *, with_ids: bool
) -> list[int]:
    """The whole ledger of a batch in one multi-row INSERT; its row ids (in ``ledger`` order)
    only when asked."""
    if not ledger:
        return []
    if not with_ids:
        await s.execute(_INSERT_MOVIMIENTO, ledger)
        return []
    result = await s.execute(
        _INSERT_MOVIMIENTO.returning(_MOVIMIENTOS.c.id, sort_by_parameter_order=True), ledger
    )
    return [int(i) for i in result.scalars()]


async def commit_stock(
    s: AsyncSession, requested: Mapping[int, int], *, permitir_backorder: bool
) -> None:
    """Admit a sale's quantities (available-to-promise) in the caller's transaction: per
    material in ascending id order, ONE atomic conditional ``UPDATE … SET comprometido =
    comprometido + :q WHERE id AND (backorder OR :q <= stock_actual - comprometido)``. The row
    lock it takes and PostgreSQL's re-check of the condition on the latest row make concurrent
    sales admit exactly what is free; no row updated → 409 STOCK_INSUFICIENTE with the figures
    read then (the caller's transaction rolls back what was already held)."""
    for id_material, qty in sorted(requested.items()):
        condition = [Material.id_material == id_material]
        if not permitir_backorder:
            condition.append(d.COVERED(qty, Material.stock_actual - Material.comprometido))
        res = await s.execute(
            update(Material)
            .where(*condition)
            .values(comprometido=Material.comprometido + qty)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            continue
        m = await s.get(Material, id_material, populate_existing=True)
        if m is None:
            raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
        stock = d.MaterialStock(
            id_material, m.descripcion, m.stock_actual, m.stock_minimo, m.comprometido
        )
        raise d.stock_conflict(
            d.shortfalls({id_material: stock}, {id_material: qty})
            or [d.StockShortfall(id_material, m.descripcion, stock.disponible, qty)]
        )


async def claim_holds(s: AsyncSession, ids: Iterable[int]) -> set[int]:
    """The sales among `ids` whose hold in `comprometido` the caller's transaction releases:
    their `compromete_stock` flag is cleared here in ONE atomic conditional UPDATE, so of the
    SaleConfirmed consumer and a cancellation only the first releases (exactly once)."""
    wanted = set(ids)
    if not wanted:
        return set()
    rows = await s.execute(
        update(Venta)
        .where(Venta.id_venta.in_(wanted), Venta.compromete_stock.is_(True))
        .values(compromete_stock=False)
        .returning(Venta.id_venta)
        .execution_options(synchronize_session=False)
    )
    return set(rows.scalars())


async def release_holds(s: AsyncSession, held: Mapping[int, int]) -> None:
    """Give back what a sale holds in `comprometido` (a sale cancelled before its SaleConfirmed
    was applied, once :func:`claim_holds` gave it to the caller)."""
    for id_material, qty in sorted(held.items()):
        await s.execute(
            update(Material)
            .where(Material.id_material == id_material)
            .values(comprometido=Material.comprometido - qty)
            .execution_options(synchronize_session=False)
        )


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
