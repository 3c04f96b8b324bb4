"""Catalogue and price configuration use cases: products, materials, tabulador, laser rate
(every change recorded in the price history or the audit trail).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sales import domain as d
from sales.application.common import Actor, audit, jsonable, utcnow
from sales.application.pricing import DEFAULT_TARIFA, invalidate_pricing_cache
from sales.domain import (
    Conflict,
    Invalid,
    NotFound,
)
from sales.models import (
    ConfiguracionPrecios,
    Cotizacion,
    DetalleVenta,
    HistorialPrecio,
    Material,
    MovimientoStock,
    Producto,
    TabuladorCosto,
)


async def create_producto(
    s: AsyncSession,
    actor: Actor,
    *,
    nombre: str,
    detalle: str | None,
    precio_fijo: Decimal | None,
    porcentaje_utilidad: int,
    foto: str | None = None,
) -> Producto:
    invalidate_pricing_cache()
    _check_producto(precio_fijo, porcentaje_utilidad)
    p = Producto(
        nombre=d.normalize_nombre(nombre),
        detalle=detalle,
        precio_fijo=precio_fijo,
        porcentaje_utilidad=porcentaje_utilidad,
        foto=foto,
        activo=True,
    )
    s.add(p)
    await s.flush()
    await audit(s, actor, "producto", p.id_producto, "alta")
    return p


def _check_producto(precio_fijo: Decimal | None, utilidad: int | None) -> None:
    if precio_fijo is not None and precio_fijo <= 0:
        raise Invalid(
            "precio_fijo debe ser > 0 (omitirlo significa sin precio fijo)",
            field="precio_fijo",
        )
    if utilidad is not None and not 0 <= utilidad <= d.MAX_UTILIDAD:
        raise Invalid(
            f"porcentaje_utilidad debe estar entre 0 y {d.MAX_UTILIDAD}",
            code="UTILIDAD_FUERA_DE_RANGO",
            field="porcentaje_utilidad",
        )


async def update_producto(
    s: AsyncSession, actor: Actor, id_producto: int, changes: dict[str, Any]
) -> Producto:
    invalidate_pricing_cache()
    p = await s.get(Producto, id_producto, with_for_update=True)
    if p is None:
        raise NotFound(f"Producto {id_producto} no existe", code="PRODUCTO_NO_EXISTE")
    _check_producto(changes.get("precio_fijo"), changes.get("porcentaje_utilidad"))
    for campo in ("porcentaje_utilidad", "precio_fijo"):
        if campo in changes and changes[campo] != getattr(p, campo):
            s.add(
                HistorialPrecio(
                    entidad="producto",
                    clave=f"{id_producto}.{campo}",
                    valor_anterior=_str_or_none(getattr(p, campo)),
                    valor_nuevo=_str_or_none(changes[campo]),
                    usuario=actor.sub,
                    fecha=utcnow(),
                )
            )
    if changes.get("activo") is None:
        changes.pop("activo", None)
    retiro = _retiro(p.activo, changes.pop("activo", p.activo))
    for key, value in changes.items():
        if key == "nombre":
            value = d.normalize_nombre(value)
        setattr(p, key, value)
    if changes:
        await audit(s, actor, "producto", id_producto, "edicion", payload=jsonable(changes))
    if retiro is not None:
        p.activo = retiro == "reactivacion"
        await audit(s, actor, "producto", id_producto, retiro)
    return p


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _retiro(activo: bool, nuevo: bool) -> str | None:
    """The audit action of an `activo` change (`baja` retires, `reactivacion` brings back),
    or None when the flag does not change."""
    if nuevo == activo:
        return None
    return "reactivacion" if nuevo else "baja"


async def delete_producto(s: AsyncSession, actor: Actor, id_producto: int) -> None:
    """Soft delete: history keeps referencing it (PROTECT, AC-D16)."""
    invalidate_pricing_cache()
    p = await s.get(Producto, id_producto)
    if p is None:
        raise NotFound(f"Producto {id_producto} no existe", code="PRODUCTO_NO_EXISTE")
    p.activo = False
    await audit(s, actor, "producto", id_producto, "baja")


async def create_material(
    s: AsyncSession,
    actor: Actor,
    *,
    descripcion: str,
    largo: Decimal | None,
    ancho: Decimal | None,
    stock_actual: int,
    stock_minimo: int,
) -> Material:
    invalidate_pricing_cache()
    if stock_minimo < 0:
        raise Invalid("stock_minimo debe ser >= 0", field="stock_minimo")
    if stock_actual < 0:
        raise Invalid("stock inicial debe ser >= 0", field="stock_actual")
    m = Material(
        descripcion=d.normalize_nombre(descripcion, "descripcion"),
        largo=largo,
        ancho=ancho,
        stock_actual=stock_actual,
        stock_minimo=stock_minimo,
        activo=True,
    )
    s.add(m)
    await s.flush()
    if stock_actual:
        s.add(
            MovimientoStock(
                id_material=m.id_material,
                cantidad=stock_actual,
                saldo_anterior=0,
                saldo_resultante=stock_actual,
                motivo=d.MotivoMovimiento.ALTA.value,
                usuario=actor.sub,
                fecha=utcnow(),
            )
        )
    await audit(s, actor, "material", m.id_material, "alta")
    return m


async def update_material(
    s: AsyncSession, actor: Actor, id_material: int, changes: dict[str, Any]
) -> Material:
    """Edits descriptive fields and the minimum; the balance changes only through movements."""
    invalidate_pricing_cache()
    m = await s.get(Material, id_material, with_for_update=True)
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
    if "stock_minimo" in changes and changes["stock_minimo"] < 0:
        raise Invalid("stock_minimo debe ser >= 0", field="stock_minimo")
    if changes.get("activo") is None:
        changes.pop("activo", None)
    retiro = _retiro(m.activo, changes.pop("activo", m.activo))
    for key, value in changes.items():
        if key == "descripcion":
            value = d.normalize_nombre(value, "descripcion")
        setattr(m, key, value)
    if changes:
        await audit(s, actor, "material", id_material, "edicion", payload=jsonable(changes))
    if retiro is not None:
        m.activo = retiro == "reactivacion"
        await audit(s, actor, "material", id_material, retiro)
    return m


async def delete_material(s: AsyncSession, actor: Actor, id_material: int) -> None:
    """Refused while referenced by quotes or sale lines (§A.2.3); otherwise soft delete."""
    invalidate_pricing_cache()
    m = await s.get(Material, id_material, with_for_update=True)
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
    n_cot = await s.scalar(
        select(func.count()).select_from(Cotizacion).where(Cotizacion.id_material == id_material)
    )
    n_ven = await s.scalar(
        select(func.count(func.distinct(DetalleVenta.id_venta))).where(
            DetalleVenta.id_material == id_material
        )
    )
    if n_cot or n_ven:
        raise Conflict(
            f'No se puede eliminar "{m.descripcion}": tiene {n_cot} cotización(es) y '
            f"{n_ven} venta(s) asociadas.",
            code="MATERIAL_REFERENCIADO",
            title="Material referenciado",
            cotizaciones=n_cot,
            ventas=n_ven,
        )
    m.activo = False
    await audit(s, actor, "material", id_material, "baja")


async def set_tabulador(
    s: AsyncSession, actor: Actor, espesor_mm: int, factor_costo: Decimal
) -> TabuladorCosto:
    invalidate_pricing_cache()
    if espesor_mm <= 0:
        raise Invalid("espesor_mm debe ser > 0", field="espesor_mm")
    if factor_costo < 0:
        raise Invalid("factor_costo debe ser >= 0", field="factor_costo")
    row = await s.scalar(
        select(TabuladorCosto).where(TabuladorCosto.espesor_mm == espesor_mm).with_for_update()
    )
    anterior = None if row is None else str(row.factor_costo)
    if row is None:
        row = TabuladorCosto(espesor_mm=espesor_mm, factor_costo=factor_costo)
        s.add(row)
    else:
        row.factor_costo = factor_costo
    s.add(
        HistorialPrecio(
            entidad="tabulador",
            clave=str(espesor_mm),
            valor_anterior=anterior,
            valor_nuevo=str(factor_costo),
            usuario=actor.sub,
            fecha=utcnow(),
        )
    )
    await s.flush()
    return row


async def delete_tabulador(s: AsyncSession, actor: Actor, espesor_mm: int) -> None:
    invalidate_pricing_cache()
    row = await s.scalar(select(TabuladorCosto).where(TabuladorCosto.espesor_mm == espesor_mm))
    if row is None:
        raise NotFound(f"Espesor {espesor_mm} no existe", code="ESPESOR_SIN_TABULADOR")
    s.add(
        HistorialPrecio(
            entidad="tabulador",
            clave=str(espesor_mm),
            valor_anterior=str(row.factor_costo),
            valor_nuevo=None,
            usuario=actor.sub,
            fecha=utcnow(),
        )
    )
    await s.delete(row)


async def get_config(s: AsyncSession) -> ConfiguracionPrecios:
    cfg = await s.get(ConfiguracionPrecios, 1)
    if cfg is None:
        cfg = ConfiguracionPrecios(
            id=1, tarifa_laser_minuto=DEFAULT_TARIFA, actualizado=utcnow(), version=1
        )
        s.add(cfg)
        await s.flush()
    return cfg


async def set_tarifa(
    s: AsyncSession, actor: Actor, tarifa: Decimal, expected_version: int | None = None
) -> ConfiguracionPrecios:
    invalidate_pricing_cache()
    if tarifa < 0:
        raise Invalid("tarifa_laser_minuto debe ser >= 0", field="tarifa_laser_minuto")
    cfg = await get_config(s)
    anterior = cfg.tarifa_laser_minuto
    stmt = (
        update(ConfiguracionPrecios)
        .where(ConfiguracionPrecios.id == 1)
        .values(
            tarifa_laser_minuto=tarifa,
            actualizado=utcnow(),
            version=ConfiguracionPrecios.version + 1,
        )
    )
    if expected_version is not None:
        stmt = stmt.where(ConfiguracionPrecios.version == expected_version)
    res = await s.execute(stmt.execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "La configuración cambió desde que se leyó",
            code="VERSION_CONFLICTO",
            field="version",
        )
    s.add(
        HistorialPrecio(
            entidad="configuracion",
            clave="tarifa_laser_minuto",
            valor_anterior=str(anterior),
            valor_nuevo=str(tarifa),
            usuario=actor.sub,
            fecha=utcnow(),
        )
    )
    await s.refresh(cfg)
    return cfg
