"""Serialisers of the sales API: rows and results → JSON-ready dicts / response models."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import (
    Any,
)

from fastapi import Response

from sales import domain as d
from sales.api.schemas import PriceOut
from sales.application import common, pos
from sales.domain import EstadoCotizacion, EstatusVenta
from sales.models import Abono, Cliente, Cotizacion, DetalleVenta, Material, Producto, Venta


def dec(value: Decimal | None) -> str | None:
    return None if value is None else d.format_money(value)


def price_out(p: d.PriceBreakdown) -> PriceOut:
    return PriceOut(
        precio_fijo=dec(p.precio_fijo),
        area_cm2=d.format_plain(p.area_cm2),
        area_m2=d.format_plain(p.area_m2),
        factor_costo=None if p.factor_costo is None else d.format_plain(p.factor_costo),
        costo_material=d.format_money(p.costo_material_display),
        utilidad=d.format_money(p.utilidad_display),
        costo_laser=d.format_money(p.costo_laser_display),
        porcentaje_utilidad=p.porcentaje_utilidad,
        tarifa_laser_minuto=d.format_money(p.tarifa_laser_minuto),
        precio_unitario=d.format_money(p.precio_unitario),
        cantidad=p.cantidad,
        subtotal=d.format_money(p.subtotal),
    )


def cliente_out(c: Cliente) -> dict[str, Any]:
    return {
        "id_cliente": c.id_cliente,
        "nombre": c.nombre,
        "telefono": c.telefono,
        "email": c.email,
        "direccion": c.direccion,
        "es_eventual": c.es_eventual,
        "whatsapp": d.whatsapp_link(c.telefono) if c.telefono else None,
    }


def producto_out(p: Producto) -> dict[str, Any]:
    return {
        "id_producto": p.id_producto,
        "nombre": p.nombre,
        "detalle": p.detalle,
        "precio_fijo": dec(p.precio_fijo),
        "porcentaje_utilidad": p.porcentaje_utilidad,
        "foto": p.foto,
        "activo": p.activo,
    }


def material_out(m: Material) -> dict[str, Any]:
    return {
        "id_material": m.id_material,
        "descripcion": m.descripcion,
        "largo": dec(m.largo),
        "ancho": dec(m.ancho),
        "stock_actual": m.stock_actual,
        "stock_minimo": m.stock_minimo,
        "comprometido": m.comprometido,
        "disponible": d.available(m.stock_actual, m.comprometido),
        "bajo_stock": d.is_low_stock(m.stock_actual, m.stock_minimo),
        "activo": m.activo,
    }


def venta_summary(v: Venta) -> dict[str, Any]:
    pago = d.estado_pago(v.total, v.total_pagado)
    return {
        "id_venta": v.id_venta,
        "folio": d.folio_venta(v.id_venta),
        "id_cliente": v.id_cliente,
        "id_cotizacion": v.id_cotizacion,
        "estatus": v.estatus,
        "estado_pago": pago.value,
        "estatus_legacy": d.legacy_estatus(EstatusVenta(v.estatus), pago),
        "total": dec(v.total),
        "total_pagado": dec(v.total_pagado),
        "saldo_restante": dec(d.saldo_restante(v.total, v.total_pagado)),
        "fecha_venta": v.fecha_venta.isoformat(),
        "fecha_entrega": v.fecha_entrega.isoformat() if v.fecha_entrega else None,
        "permitir_backorder": v.permitir_backorder,
        "version": v.version,
    }


def linea_out(x: DetalleVenta) -> dict[str, Any]:
    return {
        "id_detalle": x.id_detalle,
        "producto_id": x.id_producto,
        "material_id": x.id_material,
        "cantidad": x.cantidad,
        "largo": dec(x.largo_pza),
        "ancho": dec(x.ancho_pza),
        "espesor_mm": x.espesor_mm,
        "porcentaje_utilidad": x.porcentaje_utilidad,
        "minutos_laser": x.minutos_laser,
        "precio_unitario": dec(x.precio_unitario),
        "subtotal": dec(x.subtotal),
        "parametros_precio": x.parametros_precio,
    }


def abono_out(a: Abono) -> dict[str, Any]:
    return {
        "id_abono": a.id_abono,
        "monto": dec(a.monto),
        "metodo": a.metodo,
        "referencia": a.referencia,
        "estado": a.estado,
        "fecha": iso(a.fecha),
        "fecha_negocio": a.fecha_negocio.isoformat(),
        "usuario": a.usuario,
    }


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def cotizacion_out(c: Cotizacion) -> dict[str, Any]:
    estado = d.effective_quote_state(
        EstadoCotizacion(c.estado), c.vigencia_hasta, d.business_date(common.utcnow())
    )
    return {
        "id_cotizacion": c.id_cotizacion,
        "folio": d.folio_cotizacion(c.id_cotizacion),
        "cliente_id": c.id_cliente,
        "producto_id": c.id_producto,
        "material_id": c.id_material,
        "largo": dec(c.largo_pza),
        "ancho": dec(c.ancho_pza),
        "espesor_mm": c.espesor_mm,
        "porcentaje_utilidad": c.porcentaje_utilidad,
        "minutos_laser": c.minutos_laser,
        "cantidad": c.cantidad,
        "precio_unitario": dec(c.precio_unitario),
        "monto_total": dec(c.monto_total),
        "parametros_precio": c.parametros_precio,
        "estado": estado.value,
        "fecha": c.fecha.isoformat(),
        "vigencia_hasta": c.vigencia_hasta.isoformat(),
    }


def venta_creada_dict(r: pos.VentaResult) -> dict[str, Any]:
    return {
        "ok": True,
        "venta_id": r.venta.id_venta,
        "folio": r.folio,
        "total": d.format_money(r.total),
        "saldo_restante": d.format_money(r.saldo_restante),
        "estado_pago": d.estado_pago(r.total, r.total - r.saldo_restante).value,
        "alertas_stock": [
            {"nombre": a["nombre"], "actual": a["actual"], "minimo": a["minimo"]}
            for a in r.alertas_stock
        ],
    }


def venta_creada_response(result: pos.VentaResult) -> Response:
    """Rendered directly (POS and quote conversion): the body of `VentaCreada`, without a
    response-model pass (`test_sales_writers` checks it against the model)."""
    return Response(
        json.dumps(venta_creada_dict(result), separators=(",", ":"), ensure_ascii=False),
        status_code=201,
        media_type="application/json",
    )


def movement_out(eff: d.StockEffect | None, id_material: int) -> dict[str, Any]:
    if eff is None:
        return {"id_material": id_material, "sin_cambios": True}
    return {
        "id_material": id_material,
        "saldo_anterior": eff.before,
        "stock_actual": eff.after,
        "cruce_minimo": eff.low,
    }
