"""Consumers of the sales service: `sales.stock` applies SaleConfirmed / SaleCancelled to stock.

Applying a SaleConfirmed also releases what the sale holds in `materiales.comprometido`
(available-to-promise), in the same UPDATE as the decrement, so `stock_actual − comprometido`
does not move when a sale is applied. The release is claimed first by clearing the sale's
`compromete_stock` flag (``UPDATE ventas … WHERE compromete_stock RETURNING``): whoever clears
it releases — this consumer, or a cancellation that came first
(`sales.application.ventas.change_status`) — so the hold is released exactly once. A sale
confirmed before available-to-promise (flag false) holds nothing and releases nothing.

Idempotent under redelivery twice over: the runner's inbox row (same transaction) skips a
duplicate, and the handler itself skips an event whose movements already exist (UNIQUE
`(event_id, id_material)` on the stock ledger backs that at DB level).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.sales import SaleCancelled, SaleConfirmed
from nexo_messaging.consumer import EventMeta, Handler
from nexo_messaging.errors import PermanentError
from nexo_messaging.runtime import ConsumerSpec
from sales.application.stock import (
    StockChange,
    already_applied,
    apply_stock_changes,
    claim_holds,
)
from sales.domain import EstatusVenta, MotivoMovimiento, NotFound
from sales.models import Venta

GROUP_STOCK = "sales.stock"
CONSUMER_USER = "consumer:sales.stock"


def _changes(event: Any, meta: EventMeta, *, releases: bool) -> list[StockChange]:
    sign = -1 if isinstance(event, SaleConfirmed) else 1
    releases = releases and isinstance(event, SaleConfirmed)
    motivo = (
        MotivoMovimiento.VENTA if isinstance(event, SaleConfirmed) else MotivoMovimiento.CANCELACION
    ).value
    summed: dict[int, int] = {}
    for line in event.lineas:
        summed[line.id_material] = summed.get(line.id_material, 0) + line.cantidad
    return [
        StockChange(
            id_material=mid,
            delta=sign * qty,
            motivo=motivo,
            id_venta=event.id_venta,
            event_id=meta.event_id,
            libera=qty if releases else 0,
        )
        for mid, qty in sorted(summed.items())
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _check_origin(session: AsyncSession, items: list[tuple[Any, EventMeta]]) -> None:
    """A sale event must describe a sale of THIS database (same id and confirmation instant);
    a foreign event (another environment's topic data, a replay into a restored DB) would
    otherwise move the wrong stock, so it is dead-lettered instead."""
    ids = {event.id_venta for event, _ in items}
    rows = await session.execute(
        select(Venta.id_venta, Venta.creado_en, Venta.estatus).where(Venta.id_venta.in_(ids))
    )
    ventas = {vid: (creado, estatus) for vid, creado, estatus in rows.all()}
    for event, meta in items:
        found = ventas.get(event.id_venta)
        if found is None:
            raise PermanentError(f"venta {event.id_venta} no existe (evento {meta.event_id})")
        creado, estatus = found
        if isinstance(event, SaleConfirmed) and _aware(creado) != _aware(event.confirmed_at):
            raise PermanentError(
                f"evento {meta.event_id} no corresponde a la venta {event.id_venta}"
            )
        if isinstance(event, SaleCancelled) and estatus != EstatusVenta.CANCELADA.value:
            raise PermanentError(f"venta {event.id_venta} no está cancelada ({meta.event_id})")


async def _apply(session: AsyncSession, items: list[tuple[Any, EventMeta]]) -> None:
    await _check_origin(session, items)
    done = await already_applied(session, (m.event_id for _, m in items))
    todo: list[tuple[Any, EventMeta]] = []
    seen: set[str] = set()
    for event, meta in items:
        if meta.event_id in done or meta.event_id in seen:
            continue
        seen.add(meta.event_id)
        todo.append((event, meta))
    holding = await claim_holds(
        session, {e.id_venta for e, _ in todo if isinstance(e, SaleConfirmed)}
    )
    changes: list[StockChange] = []
    for event, meta in todo:
        changes.extend(_changes(event, meta, releases=event.id_venta in holding))
    try:
        await apply_stock_changes(session, changes, CONSUMER_USER)
    except NotFound as exc:  # a material that does not exist can never be applied
        raise PermanentError(str(exc)) from exc


async def handle_sale_confirmed(
    session: AsyncSession, event: SaleConfirmed, meta: EventMeta
) -> None:
    """Decrement stock (never clamped), ledger rows, StockLow / StockShortage (§A.4.4)."""
    await _apply(session, [(event, meta)])


async def handle_sale_cancelled(
    session: AsyncSession, event: SaleCancelled, meta: EventMeta
) -> None:
    """Return the stock of a cancelled sale (atomic increment, §A.3.2)."""
    await _apply(session, [(event, meta)])


async def handle_batch(session: AsyncSession, items: list[tuple[Any, EventMeta]]) -> None:
    """A fetched chunk in one transaction: one UPDATE per material for the whole chunk, while
    each event still gets its own ledger row and crossing check (in delivery order)."""
    await _apply(session, items)


HANDLERS: dict[type[DomainEvent], Handler] = {
    SaleConfirmed: handle_sale_confirmed,
    SaleCancelled: handle_sale_cancelled,
}

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(group_id=GROUP_STOCK, handlers=HANDLERS, batch_handler=handle_batch)
]
