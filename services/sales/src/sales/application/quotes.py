"""Quotes (DECIDE-A7): create at a frozen price, transitions, conversion into a sale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.sales import (
    SaleConfirmed,
    SaleLine,
)
from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.application.clients import get_cliente
from sales.application.common import Actor, audit, today, utcnow
from sales.application.pos import VentaResult
from sales.application.pricing import LineaIn, material_stock, price_line, require_material
from sales.domain import (
    Conflict,
    EstadoCotizacion,
    EstatusVenta,
    Invalid,
    NotFound,
)
from sales.models import (
    Abono,
    Cotizacion,
    DetalleVenta,
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
    hoy = today()
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
    hoy = today()
    current = d.effective_quote_state(EstadoCotizacion(c.estado), c.vigencia_hasta, hoy)
    d.check_quote_transition(EstadoCotizacion(c.estado), target, c.vigencia_hasta, hoy)
    c.estado = target.value
    c.version += 1
    await audit(s, actor, "cotizacion", id_cotizacion, "estado", current.value, target.value)
    return c


async def convert_cotizacion(
    s: AsyncSession,
    id_cotizacion: int,
    actor: Actor,
    *,
    permitir_backorder: bool = False,
    monto_abonado: Decimal = Decimal("0"),
    metodo_pago: str = "efectivo",
    fecha_entrega: date | None = None,
) -> VentaResult:
    """Accepted quote → sale at the FROZEN price (AC-D15), same stock rule as POS (AC-D26)."""
    c = await s.scalar(
        select(Cotizacion).where(Cotizacion.id_cotizacion == id_cotizacion).with_for_update()
    )
    if c is None:
        raise NotFound(f"Cotización {id_cotizacion} no existe", code="COTIZACION_NO_EXISTE")
    converted = await s.scalar(select(Venta.id_venta).where(Venta.id_cotizacion == id_cotizacion))
    d.check_quote_convertible(
        EstadoCotizacion(c.estado), c.vigencia_hasta, today(), converted is not None
    )
    material = await require_material(s, c.id_material, "id_material")
    requested = {material.id_material: c.cantidad}
    materials = {material.id_material: material_stock(material)}
    d.check_stock(materials, requested, permitir_backorder=permitir_backorder)
    if monto_abonado > 0:
        d.check_abono(c.monto_total, Decimal(0), monto_abonado, "monto_abonado")
    now = utcnow()
    hoy = d.business_date(now)
    venta = Venta(
        id_cotizacion=id_cotizacion,
        id_cliente=c.id_cliente,
        estatus=EstatusVenta.PENDIENTE.value,
        total=c.monto_total,
        total_pagado=monto_abonado,
        permitir_backorder=permitir_backorder,
        fecha_venta=hoy,
        fecha_entrega=fecha_entrega,
        creado_por=actor.sub,
        creado_en=now,
        version=1,
    )
    s.add(venta)
    try:
        await s.flush()
    except IntegrityError:  # concurrent conversion lost the UNIQUE(id_cotizacion) race
        raise Conflict(
            "La cotización ya fue convertida en venta", code="COTIZACION_YA_CONVERTIDA"
        ) from None
    det = DetalleVenta(
        id_venta=venta.id_venta,
        id_producto=c.id_producto,
        id_material=c.id_material,
        cantidad=c.cantidad,
        largo_pza=c.largo_pza,
        ancho_pza=c.ancho_pza,
        espesor_mm=c.espesor_mm,
        porcentaje_utilidad=c.porcentaje_utilidad,
        minutos_laser=c.minutos_laser,
        precio_unitario=c.precio_unitario,
        subtotal=c.monto_total,
        parametros_precio=c.parametros_precio,
    )
    s.add(det)
    if monto_abonado > 0:
        s.add(
            Abono(
                id_venta=venta.id_venta,
                monto=monto_abonado,
                metodo=metodo_pago,
                estado="aplicado",
                fecha=now,
                fecha_negocio=hoy,
                usuario=actor.sub,
            )
        )
    await s.flush()
    folio = d.folio_venta(venta.id_venta)
    await audit(
        s,
        actor,
        "venta",
        venta.id_venta,
        "confirmar",
        None,
        venta.estatus,
        payload={"id_cotizacion": id_cotizacion},
    )
    event_id = await enqueue(
        s,
        outbox,
        SaleConfirmed(
            id_venta=venta.id_venta,
            folio=folio,
            id_cliente=venta.id_cliente,
            lineas=[
                SaleLine(
                    id_detalle=det.id_detalle,
                    id_material=det.id_material,
                    cantidad=det.cantidad,
                    id_producto=det.id_producto,
                    espesor_mm=det.espesor_mm,
                    ancho=det.ancho_pza,
                    alto=det.largo_pza,
                    precio_unitario=det.precio_unitario,
                    subtotal=det.subtotal,
                )
            ],
            total=venta.total,
            permitir_backorder=permitir_backorder,
            confirmed_at=now,
            confirmed_by=actor.sub,
        ),
    )
    return VentaResult(
        venta=venta,
        folio=folio,
        total=venta.total,
        saldo_restante=d.saldo_restante(venta.total, venta.total_pagado),
        alertas_stock=d.projected_alerts(materials, requested),
        event_id=event_id,
    )
