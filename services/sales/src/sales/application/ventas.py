"""Use cases on a confirmed sale: fulfilment transitions and cancellation (§A.3.2),
abonos (DECIDE-A1).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.sales import (
    SaleCancelled,
    SaleCancelledLine,
)
from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.application.common import Actor, audit, utcnow
from sales.application.stock import claim_holds, release_holds
from sales.domain import (
    Conflict,
    EstatusVenta,
    Invalid,
    NotFound,
)
from sales.models import (
    Abono,
    DetalleVenta,
    Venta,
    outbox,
)


async def _lock_venta(s: AsyncSession, id_venta: int) -> Venta:
    v = await s.scalar(select(Venta).where(Venta.id_venta == id_venta).with_for_update())
    if v is None:
        raise NotFound(f"Venta {id_venta} no existe", code="VENTA_NO_EXISTE")
    return v


async def change_status(
    s: AsyncSession,
    id_venta: int,
    target: EstatusVenta,
    actor: Actor,
    *,
    motivo: str | None = None,
    fecha_entrega: date | None = None,
    expected_version: int | None = None,
) -> Venta:
    v = await _lock_venta(s, id_venta)
    if expected_version is not None and v.version != expected_version:
        raise Conflict(
            f"La venta cambió (versión {v.version}, esperada {expected_version})",
            code="VERSION_CONFLICTO",
            field="version",
            version_actual=v.version,
        )
    current = EstatusVenta(v.estatus)
    saldo = d.saldo_restante(v.total, v.total_pagado)
    d.check_sale_transition(current, target, saldo=saldo, is_admin=actor.is_admin, motivo=motivo)
    v.estatus = target.value
    v.version += 1
    if fecha_entrega is not None:
        v.fecha_entrega = fecha_entrega
    payload: dict[str, Any] = {"saldo_restante": str(saldo)}
    if target is EstatusVenta.CANCELADA:
        v.motivo_cancelacion = motivo
        await s.execute(
            update(Abono)
            .where(Abono.id_venta == id_venta, Abono.estado == d.EstadoAbono.APLICADO.value)
            .values(estado=d.EstadoAbono.POR_REEMBOLSAR.value)
            .execution_options(synchronize_session=False)
        )
        lineas = (
            await s.execute(
                select(DetalleVenta.id_material, func.sum(DetalleVenta.cantidad))
                .where(DetalleVenta.id_venta == id_venta)
                .group_by(DetalleVenta.id_material)
                .order_by(DetalleVenta.id_material)
            )
        ).all()
        if await claim_holds(s, [id_venta]):  # not applied yet: release its hold now
            await release_holds(s, {int(m): int(c) for m, c in lineas})
        await enqueue(
            s,
            outbox,
            SaleCancelled(
                id_venta=id_venta,
                folio=d.folio_venta(id_venta),
                lineas=[SaleCancelledLine(id_material=m, cantidad=int(c)) for m, c in lineas],
                reason=(motivo or "").strip(),
                cancelled_at=utcnow(),
                cancelled_by=actor.sub,
            ),
        )
    elif target is EstatusVenta.ENTREGADA and saldo != 0:
        payload["override_admin"] = True
    await audit(
        s, actor, "venta", id_venta, "estatus", current.value, target.value, motivo, payload
    )
    await s.flush()
    return v


async def add_abono(
    s: AsyncSession,
    id_venta: int,
    monto: Decimal,
    actor: Actor,
    *,
    metodo: str = "efectivo",
    referencia: str | None = None,
) -> Abono:
    if metodo not in d.METODOS_PAGO:
        raise Invalid(f"metodo debe ser uno de {', '.join(d.METODOS_PAGO)}", field="metodo")
    v = await s.get(Venta, id_venta)
    if v is None:
        raise NotFound(f"Venta {id_venta} no existe", code="VENTA_NO_EXISTE")
    if v.estatus == EstatusVenta.CANCELADA.value:
        raise Conflict("La venta está cancelada", code="VENTA_CANCELADA")
    d.check_abono(v.total, v.total_pagado, monto)
    # Conditional atomic update: concurrent abonos can never exceed the total.
    res = await s.execute(
        update(Venta)
        .where(
            Venta.id_venta == id_venta,
            Venta.estatus != EstatusVenta.CANCELADA.value,
            func.round(Venta.total_pagado + monto, 2) <= Venta.total,
        )
        .values(total_pagado=func.round(Venta.total_pagado + monto, 2), version=Venta.version + 1)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        await s.refresh(v)
        d.check_abono(v.total, v.total_pagado, monto)
        raise Conflict("La venta cambió; reintenta", code="VERSION_CONFLICTO")
    now = utcnow()
    ab = Abono(
        id_venta=id_venta,
        monto=monto,
        metodo=metodo,
        referencia=referencia,
        estado=d.EstadoAbono.APLICADO.value,
        fecha=now,
        fecha_negocio=d.business_date(now),
        usuario=actor.sub,
    )
    s.add(ab)
    await s.flush()
    await audit(
        s, actor, "venta", id_venta, "abono", payload={"monto": str(monto), "metodo": metodo}
    )
    await s.refresh(v)
    return ab


async def reschedule(
    s: AsyncSession,
    id_venta: int,
    fecha_entrega: date,
    actor: Actor,
    *,
    motivo: str | None = None,
) -> Venta:
    """Move an open sale's promised delivery date (audited with the old and new dates)."""
    v = await _lock_venta(s, id_venta)
    d.check_reschedule(EstatusVenta(v.estatus), v.fecha_venta, fecha_entrega)
    anterior = v.fecha_entrega
    if anterior == fecha_entrega:
        return v
    v.fecha_entrega = fecha_entrega
    v.version += 1
    await audit(
        s,
        actor,
        "venta",
        id_venta,
        "reprogramacion",
        None if anterior is None else anterior.isoformat(),
        fecha_entrega.isoformat(),
        motivo,
    )
    await s.flush()
    return v


async def refund_abono(
    s: AsyncSession,
    id_venta: int,
    id_abono: int,
    actor: Actor,
    *,
    referencia: str | None = None,
) -> Abono:
    """Record that a cancelled sale's abono was paid back (`por_reembolsar → reembolsado`);
    the abono row stays in the ledger, audited with its amount."""
    await _lock_venta(s, id_venta)
    ab = await s.scalar(select(Abono).where(Abono.id_abono == id_abono, Abono.id_venta == id_venta))
    if ab is None:
        raise NotFound(f"Abono {id_abono} no existe en la venta {id_venta}", code="ABONO_NO_EXISTE")
    d.check_refund(d.EstadoAbono(ab.estado))
    ab.estado = d.EstadoAbono.REEMBOLSADO.value
    await audit(
        s,
        actor,
        "venta",
        id_venta,
        "reembolso",
        d.EstadoAbono.POR_REEMBOLSAR.value,
        d.EstadoAbono.REEMBOLSADO.value,
        payload={"id_abono": id_abono, "monto": str(ab.monto), "referencia": referencia},
    )
    await s.flush()
    return ab
