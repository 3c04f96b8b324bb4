"""Read side of the sales service: lists, details and reports (no writes)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sales import domain as d
from sales.domain import (
    EstatusVenta,
    NotFound,
)
from sales.models import (
    Abono,
    Auditoria,
    Cliente,
    Cotizacion,
    DetalleVenta,
    HistorialPrecio,
    Material,
    MovimientoStock,
    Producto,
    Venta,
)
from service_defaults.text_search import any_contains_ci, contains_ci


async def list_clientes(
    s: AsyncSession, q: str | None = None, incluir_eventuales: bool = False
) -> Sequence[Cliente]:
    stmt = select(Cliente).order_by(Cliente.nombre, Cliente.id_cliente)
    if not incluir_eventuales:
        stmt = stmt.where(Cliente.es_eventual.is_(False))
    if q:
        stmt = stmt.where(any_contains_ci(q, Cliente.nombre, Cliente.telefono, Cliente.email))
    return (await s.scalars(stmt)).all()


@dataclass
class VentaDetalle:
    venta: Venta
    cliente: Cliente | None
    lineas: list[DetalleVenta]
    abonos: list[Abono]
    auditoria: list[Auditoria] = field(default_factory=list)


async def list_productos(
    s: AsyncSession, q: str | None = None, incluir_inactivos: bool = False
) -> Sequence[Producto]:
    stmt = select(Producto).order_by(Producto.nombre, Producto.id_producto)
    if not incluir_inactivos:
        stmt = stmt.where(Producto.activo.is_(True))
    if q:
        stmt = stmt.where(any_contains_ci(q, Producto.nombre, Producto.detalle))
    return (await s.scalars(stmt)).all()


async def list_materiales(
    s: AsyncSession, q: str | None = None, incluir_inactivos: bool = False
) -> Sequence[Material]:
    stmt = select(Material).order_by(Material.descripcion, Material.id_material)
    if not incluir_inactivos:
        stmt = stmt.where(Material.activo.is_(True))
    if q:
        stmt = stmt.where(contains_ci(Material.descripcion, q))
    return (await s.scalars(stmt)).all()


async def get_material(s: AsyncSession, id_material: int) -> Material:
    m = await s.get(Material, id_material)
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
    return m


async def list_cotizaciones(s: AsyncSession, limit: int = 100) -> Sequence[Cotizacion]:
    return (
        await s.scalars(select(Cotizacion).order_by(Cotizacion.id_cotizacion.desc()).limit(limit))
    ).all()


async def get_venta(s: AsyncSession, id_venta: int) -> VentaDetalle:
    v = await s.get(Venta, id_venta, populate_existing=True)
    if v is None:
        raise NotFound(f"Venta {id_venta} no existe", code="VENTA_NO_EXISTE")
    cliente = await s.get(Cliente, v.id_cliente) if v.id_cliente else None
    lineas = (
        await s.scalars(
            select(DetalleVenta)
            .where(DetalleVenta.id_venta == id_venta)
            .order_by(DetalleVenta.id_detalle)
        )
    ).all()
    abonos = (
        await s.scalars(select(Abono).where(Abono.id_venta == id_venta).order_by(Abono.id_abono))
    ).all()
    audit = (
        await s.scalars(
            select(Auditoria)
            .where(Auditoria.entidad == "venta", Auditoria.entidad_id == id_venta)
            .order_by(Auditoria.id)
        )
    ).all()
    return VentaDetalle(v, cliente, list(lineas), list(abonos), list(audit))


async def list_ventas(
    s: AsyncSession,
    *,
    estatus: str | None = None,
    desde: date | None = None,
    hasta: date | None = None,
    id_cliente: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Venta]:
    stmt = select(Venta).order_by(Venta.fecha_venta.desc(), Venta.id_venta.desc())
    stmt = stmt.where(*_ventas_filter(estatus, desde, hasta, id_cliente))
    return (await s.scalars(stmt.limit(limit).offset(offset))).all()


def _ventas_filter(
    estatus: str | None, desde: date | None, hasta: date | None, id_cliente: int | None
) -> list[Any]:
    """The sales list's filters, shared by the page and its totals."""
    conds: list[Any] = []
    if estatus:
        conds.append(Venta.estatus == estatus)
    if desde:
        conds.append(Venta.fecha_venta >= desde)
    if hasta:
        conds.append(Venta.fecha_venta <= hasta)
    if id_cliente:
        conds.append(Venta.id_cliente == id_cliente)
    return conds


async def resumen_ventas(
    s: AsyncSession,
    *,
    estatus: str | None = None,
    desde: date | None = None,
    hasta: date | None = None,
    id_cliente: int | None = None,
) -> dict[str, Any]:
    """The sales list's totals over every row the filters match, not only the page: sold
    (non-cancelled totals), collected (Σ total_pagado) and the count per fulfilment state.
    Decimal sums in Python over the two money columns (exact on SQLite too, AC-D17)."""
    rows = (
        await s.execute(
            select(Venta.estatus, Venta.total, Venta.total_pagado).where(
                *_ventas_filter(estatus, desde, hasta, id_cliente)
            )
        )
    ).all()
    por_estatus = dict.fromkeys(d.EstatusVenta, 0)
    vendido = cobrado = Decimal(0)
    for est, total, pagado in rows:
        por_estatus[d.EstatusVenta(est)] += 1
        if est != d.EstatusVenta.CANCELADA.value:
            vendido += Decimal(total)
        cobrado += Decimal(pagado)
    return {
        "total_filas": len(rows),
        "total_ventas": d.format_money(vendido),
        "total_cobrado": d.format_money(cobrado),
        "pendientes": por_estatus[d.EstatusVenta.PENDIENTE],
        "en_produccion": por_estatus[d.EstatusVenta.EN_PRODUCCION],
        "entregadas": por_estatus[d.EstatusVenta.ENTREGADA],
        "canceladas": por_estatus[d.EstatusVenta.CANCELADA],
    }


async def list_movimientos(
    s: AsyncSession, id_material: int, limit: int = 200
) -> Sequence[MovimientoStock]:
    return (
        await s.scalars(
            select(MovimientoStock)
            .where(MovimientoStock.id_material == id_material)
            .order_by(MovimientoStock.id.desc())
            .limit(limit)
        )
    ).all()


async def report_ventas(
    s: AsyncSession, desde: date, hasta: date, periodo: d.Periodo
) -> list[dict[str, Any]]:
    """Sales (accrual: non-cancelled sales by fecha_venta) and income (cash basis: Σ abonos
    received by business date) per period. Decimal sums only (AC-D17, AC-D20)."""
    buckets: dict[str, d.Bucket] = defaultdict(d.Bucket)
    ventas = (
        await s.execute(
            select(Venta.fecha_venta, Venta.total).where(
                Venta.fecha_venta >= desde,
                Venta.fecha_venta <= hasta,
                Venta.estatus != EstatusVenta.CANCELADA.value,
            )
        )
    ).all()
    for fecha, total in ventas:
        b = buckets[d.period_key(fecha, periodo)]
        b.ventas += 1
        b.total_vendido += Decimal(total)
    abonos = (
        await s.execute(
            select(Abono.fecha_negocio, Abono.monto).where(
                Abono.fecha_negocio >= desde, Abono.fecha_negocio <= hasta
            )
        )
    ).all()
    for fecha, monto in abonos:
        buckets[d.period_key(fecha, periodo)].ingresos += Decimal(monto)
    return [
        {
            "periodo": key,
            "ventas": b.ventas,
            "total_vendido": d.money(b.total_vendido),
            "ingresos": d.money(b.ingresos),
        }
        for key, b in sorted(buckets.items())
    ]


async def report_cuentas_por_cobrar(s: AsyncSession) -> list[dict[str, Any]]:
    rows = (
        await s.execute(
            select(
                Venta.id_cliente,
                Cliente.nombre,
                func.count(Venta.id_venta),
                func.sum(Venta.total),
                func.sum(Venta.total_pagado),
            )
            .outerjoin(Cliente, Cliente.id_cliente == Venta.id_cliente)
            .where(
                Venta.estatus != EstatusVenta.CANCELADA.value,
                Venta.total_pagado < Venta.total,
            )
            .group_by(Venta.id_cliente, Cliente.nombre)
        )
    ).all()
    out = []
    for id_cliente, nombre, n, total, pagado in rows:
        total_d, pagado_d = d.money(Decimal(total)), d.money(Decimal(pagado))
        out.append(
            {
                "id_cliente": id_cliente,
                "cliente": nombre or "(sin cliente)",
                "ventas": int(n),
                "total": total_d,
                "pagado": pagado_d,
                "saldo": d.money(total_d - pagado_d),
            }
        )
    out.sort(key=lambda r: (-Decimal(str(r["saldo"])), str(r["cliente"])))
    return out


async def report_bajo_stock(s: AsyncSession) -> list[dict[str, Any]]:
    rows = (
        await s.scalars(
            select(Material)
            .where(
                Material.activo.is_(True),
                d.LOW_STOCK(Material.stock_actual, Material.stock_minimo),
            )
            .order_by(Material.stock_actual - Material.stock_minimo, Material.id_material)
        )
    ).all()
    return [
        {
            "id_material": m.id_material,
            "nombre": m.descripcion,
            "actual": m.stock_actual,
            "minimo": m.stock_minimo,
            "faltante": max(0, m.stock_minimo - m.stock_actual),
        }
        for m in rows
    ]


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    cols = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else str(r.get(k))) for k in cols})
    return buf.getvalue()


async def list_historial_precios(
    s: AsyncSession,
    *,
    entidad: str | None = None,
    clave: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Sequence[HistorialPrecio]:
    """The price and cost-table history (tarifa, tabulador factors, product utilities and fixed
    prices), newest first."""
    stmt = select(HistorialPrecio).order_by(HistorialPrecio.id.desc())
    if entidad:
        stmt = stmt.where(HistorialPrecio.entidad == entidad)
    if clave:
        stmt = stmt.where(HistorialPrecio.clave == clave)
    return (await s.scalars(stmt.limit(limit).offset(offset))).all()
