"""Quotes (DECIDE-A7): create at a frozen price, transitions, conversion into a sale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.application.clients import get_cliente
from sales.application.common import Actor, audit, utcnow
from sales.application.pos import (
    ConfirmedSaleRows,
    SaleRowWriter,
    VentaIn,
    VentaRef,
    VentaResult,
    sale_confirmed,
)
from sales.application.pricing import LineaIn, material_stock, price_line, require_material
from sales.application.stock import commit_stock
from sales.domain import (
    Conflict,
    EstadoCotizacion,
    Invalid,
    NotFound,
)
from sales.models import (
    Cotizacion,
    Venta,
    outbox,
)


@dataclass
class CotizacionIn:
    linea: LineaIn
    cliente_id: int | None = None
    vigencia_hasta: date | None = None


async def create_cotizacion(s: AsyncSession, data: CotizacionIn, actor: Actor) -> Cotizacion:
    if data.cliente_id is not None:
        await get_cliente(s, data.cliente_id)
    priced = await price_line(s, data.linea)
    d.require_positive_price(priced.price)
    d.check_client_subtotal(data.linea.subtotal, priced.price)
    hoy = d.business_date(utcnow())
    vigencia = data.vigencia_hasta or hoy + timedelta(days=d.DEFAULT_VIGENCIA_DIAS)
    if vigencia < hoy:
        raise Invalid("vigencia_hasta no puede ser anterior a hoy", field="vigencia_hasta")
    c = Cotizacion(
        id_cliente=data.cliente_id,
        id_producto=priced.producto.id_producto,
        id_material=priced.material.id_material,
        largo_pza=data.linea.largo,
        ancho_pza=data.linea.ancho,
        espesor_mm=data.linea.espesor_mm,
        porcentaje_utilidad=priced.price.porcentaje_utilidad,
        minutos_laser=data.linea.minutos_laser,
        cantidad=data.linea.cantidad,
        precio_unitario=priced.price.precio_unitario,
        monto_total=priced.price.subtotal,
        parametros_precio=priced.price.snapshot(),
        estado=EstadoCotizacion.BORRADOR.value,
        fecha=hoy,
        vigencia_hasta=vigencia,
        creado_por=actor.sub,
        creado_en=utcnow(),
        version=1,
    )
    s.add(c)
    await s.flush()
    await audit(s, actor, "cotizacion", c.id_cotizacion, "alta", None, c.estado)
    return c


async def get_cotizacion(s: AsyncSession, id_cotizacion: int) -> Cotizacion:
    c = await s.get(Cotizacion, id_cotizacion)
    if c is None:
        raise NotFound(f"Cotización {id_cotizacion} no existe", code="COTIZACION_NO_EXISTE")
    return c


async def transition_cotizacion(
    s: AsyncSession, id_cotizacion: int, target: EstadoCotizacion, actor: Actor
) -> Cotizacion:
    c = await s.scalar(
        select(Cotizacion).where(Cotizacion.id_cotizacion == id_cotizacion).with_for_update()
    )
    if c is None:
        raise NotFound(f"Cotización {id_cotizacion} no existe", code="COTIZACION_NO_EXISTE")
    hoy = d.business_date(utcnow())
    current = d.effective_quote_state(EstadoCotizacion(c.estado), c.vigencia_hasta, hoy)
    d.check_quote_transition(EstadoCotizacion(c.estado), target, c.vigencia_hasta, hoy)
    c.estado = target.value
    c.version += 1
    await audit(s, actor, "cotizacion", id_cotizacion, "estado", current.value, target.value)
    return c


@dataclass(frozen=True)
class FrozenPrice:
    """The price a quote froze at creation (AC-D15), as a sale line's price
    (`sales.application.pos.LinePrice`)."""

    precio_unitario: Decimal
    subtotal: Decimal
    porcentaje_utilidad: int
    parametros_precio: dict[str, Any]

    def snapshot(self) -> dict[str, Any]:
        return self.parametros_precio


async def convert_cotizacion(
    s: AsyncSession,
    id_cotizacion: int,
    actor: Actor,
    *,
    writer: SaleRowWriter,
    permitir_backorder: bool = False,
    monto_abonado: Decimal = Decimal("0"),
    metodo_pago: str = "efectivo",
    fecha_entrega: date | None = None,
) -> VentaResult:
    """Accepted quote → sale at the FROZEN price (AC-D15), same stock rule as POS (AC-D26).
    The rows and the SaleConfirmed are those of a POS sale: same writer, same event builder."""
    c = await s.scalar(
        select(Cotizacion).where(Cotizacion.id_cotizacion == id_cotizacion).with_for_update()
    )
    if c is None:
        raise NotFound(f"Cotización {id_cotizacion} no existe", code="COTIZACION_NO_EXISTE")
    converted = await s.scalar(select(Venta.id_venta).where(Venta.id_cotizacion == id_cotizacion))
    d.check_quote_convertible(
        EstadoCotizacion(c.estado),
        c.vigencia_hasta,
        d.business_date(utcnow()),
        converted is not None,
    )
    material = await require_material(s, c.id_material, "id_material")
    requested = {material.id_material: c.cantidad}
    materials = {material.id_material: material_stock(material)}
    d.check_stock(materials, requested, permitir_backorder=permitir_backorder)
    if monto_abonado > 0:
        d.check_abono(c.monto_total, Decimal(0), monto_abonado, "monto_abonado")
    await commit_stock(s, requested, permitir_backorder=permitir_backorder)
    data = VentaIn(
        carrito=[
            LineaIn(
                producto_id=c.id_producto,
                material_id=c.id_material,
                largo=c.largo_pza,
                ancho=c.ancho_pza,
                espesor_mm=c.espesor_mm,
                minutos_laser=c.minutos_laser,
                cantidad=c.cantidad,
                porcentaje_utilidad=c.porcentaje_utilidad,
            )
        ],
        cliente_id=c.id_cliente,
        monto_abonado=monto_abonado,
        metodo_pago=metodo_pago,
        fecha_entrega=fecha_entrega,
        permitir_backorder=permitir_backorder,
    )
    prices = [
        FrozenPrice(c.precio_unitario, c.monto_total, c.porcentaje_utilidad, c.parametros_precio)
    ]
    total = c.monto_total
    now = utcnow()
    rows = ConfirmedSaleRows(
        id_cotizacion=id_cotizacion,
        id_cliente=c.id_cliente,
        total=total,
        data=data,
        prices=prices,
        now=now,
        usuario=actor.sub,
        audit_payload={"id_cotizacion": id_cotizacion},
    )
    try:
        id_venta, line_ids = await writer.insert_sale(s, rows)
    except IntegrityError:  # concurrent conversion lost the UNIQUE(id_cotizacion) race
        raise Conflict(
            "La cotización ya fue convertida en venta", code="COTIZACION_YA_CONVERTIDA"
        ) from None
    folio = d.folio_venta(id_venta)
    event_id = await enqueue(
        s,
        outbox,
        sale_confirmed(id_venta, folio, c.id_cliente, line_ids, data, prices, total, now, actor),
    )
    return VentaResult(
        venta=VentaRef(id_venta),
        folio=folio,
        total=total,
        saldo_restante=d.saldo_restante(total, rows.total_pagado),
        alertas_stock=d.projected_alerts(materials, requested),
        event_id=event_id,
    )
