"""Use cases of the sales service. Each runs inside the caller's transaction (the API route or
the consumer runner commits): domain check + rows + `enqueue(...)` of its events, so either
everything is written or nothing is (§0.3-4, no dual writes).

Concurrency (§0.3-5): stock is changed only by unconditional atomic updates
(`stock_actual = stock_actual ± n ... RETURNING stock_actual`, per material in ascending id
order); payments by a conditional atomic update of `ventas.total_pagado` with the row count
checked; state transitions lock the sale row (`SELECT … FOR UPDATE`) and bump `version`.
"""

from __future__ import annotations

import csv
import io
import json
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from contracts.events.sales import (
    SaleCancelled,
    SaleCancelledLine,
    SaleConfirmed,
    SaleLine,
    StockLow,
    StockShortage,
)
from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.domain import (
    Conflict,
    DomainError,
    EstadoCotizacion,
    EstatusVenta,
    Invalid,
    MaterialStock,
    NotFound,
    PriceInput,
)
from sales.models import (
    Abono,
    Auditoria,
    Base,
    Cliente,
    ConfiguracionPrecios,
    Cotizacion,
    DetalleVenta,
    HistorialPrecio,
    Material,
    MovimientoStock,
    Producto,
    TabuladorCosto,
    Venta,
    outbox,
)
from service_defaults.bounds import LIKE_ESCAPE, like_contains

DEFAULT_TARIFA = Decimal("15.00")


@dataclass(frozen=True)
class Actor:
    sub: str
    is_admin: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return d.business_date(utcnow())


# --------------------------------------------------------------------------- helpers


async def _audit(
    s: AsyncSession,
    actor: Actor,
    entidad: str,
    entidad_id: int,
    accion: str,
    desde: str | None = None,
    hacia: str | None = None,
    motivo: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    s.add(
        Auditoria(
            entidad=entidad,
            entidad_id=entidad_id,
            accion=accion,
            desde=desde,
            hacia=hacia,
            motivo=motivo,
            usuario=actor.sub,
            fecha=utcnow(),
            payload=payload,
        )
    )


async def get_tarifa(s: AsyncSession | AsyncConnection) -> Decimal:
    tarifa = (
        await s.execute(
            select(ConfiguracionPrecios.tarifa_laser_minuto).where(ConfiguracionPrecios.id == 1)
        )
    ).scalar_one_or_none()
    return tarifa if tarifa is not None else DEFAULT_TARIFA


async def get_tabulador(s: AsyncSession | AsyncConnection) -> dict[int, Decimal]:
    rows = (await s.execute(select(TabuladorCosto.espesor_mm, TabuladorCosto.factor_costo))).all()
    return {int(e): Decimal(f) for e, f in rows}


async def _producto(s: AsyncSession, id_producto: int, field: str) -> Producto:
    p = await s.get(Producto, id_producto)
    if p is None:
        raise NotFound(f"Producto {id_producto} no existe", code="PRODUCTO_NO_EXISTE", field=field)
    if not p.activo:
        raise Invalid(f"Producto {id_producto} inactivo", code="PRODUCTO_INACTIVO", field=field)
    return p


async def _material(s: AsyncSession, id_material: int, field: str) -> Material:
    m = await s.get(Material, id_material)
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE", field=field)
    if not m.activo:
        raise Invalid(f"Material {id_material} inactivo", code="MATERIAL_INACTIVO", field=field)
    return m


def _material_stock(m: Material) -> MaterialStock:
    return MaterialStock(m.id_material, m.descripcion, m.stock_actual, m.stock_minimo)


# --------------------------------------------------------------------------- clients


@dataclass
class ClienteIn:
    nombre: str
    telefono: str | None = None
    email: str | None = None
    direccion: str | None = None
    es_eventual: bool = False


async def create_cliente(
    s: AsyncSession, data: ClienteIn, actor: Actor, field_prefix: str = ""
) -> Cliente:
    c = Cliente(
        nombre=d.normalize_nombre(data.nombre, f"{field_prefix}nombre"),
        telefono=d.normalize_phone(data.telefono, f"{field_prefix}telefono"),
        email=d.normalize_email(data.email, f"{field_prefix}email"),
        direccion=(data.direccion or "").strip() or None,
        es_eventual=data.es_eventual,
        creado_en=utcnow(),
    )
    s.add(c)
    await s.flush()
    await _audit(s, actor, "cliente", c.id_cliente, "alta")
    return c


async def list_clientes(
    s: AsyncSession, q: str | None = None, incluir_eventuales: bool = False
) -> Sequence[Cliente]:
    stmt = select(Cliente).order_by(Cliente.nombre, Cliente.id_cliente)
    if not incluir_eventuales:
        stmt = stmt.where(Cliente.es_eventual.is_(False))
    if q:
        like = like_contains(q)
        stmt = stmt.where(
            func.lower(Cliente.nombre).like(like, escape=LIKE_ESCAPE)
            | func.lower(func.coalesce(Cliente.telefono, "")).like(like, escape=LIKE_ESCAPE)
            | func.lower(func.coalesce(Cliente.email, "")).like(like, escape=LIKE_ESCAPE)
        )
    return (await s.scalars(stmt)).all()


async def get_cliente(s: AsyncSession, id_cliente: int) -> Cliente:
    c = await s.get(Cliente, id_cliente)
    if c is None:
        raise NotFound(
            f"Cliente {id_cliente} no existe", code="CLIENTE_NO_EXISTE", field="cliente_id"
        )
    return c


# --------------------------------------------------------------------------- catalog


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
    await _audit(s, actor, "producto", p.id_producto, "alta")
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
    if "porcentaje_utilidad" in changes and changes["porcentaje_utilidad"] != p.porcentaje_utilidad:
        s.add(
            HistorialPrecio(
                entidad="producto",
                clave=f"{id_producto}.porcentaje_utilidad",
                valor_anterior=str(p.porcentaje_utilidad),
                valor_nuevo=str(changes["porcentaje_utilidad"]),
                usuario=actor.sub,
                fecha=utcnow(),
            )
        )
    for key, value in changes.items():
        if key == "nombre":
            value = d.normalize_nombre(value)
        setattr(p, key, value)
    await _audit(s, actor, "producto", id_producto, "edicion", payload=_jsonable(changes))
    return p


async def delete_producto(s: AsyncSession, actor: Actor, id_producto: int) -> None:
    """Soft delete: history keeps referencing it (PROTECT, AC-D16)."""
    invalidate_pricing_cache()
    p = await s.get(Producto, id_producto)
    if p is None:
        raise NotFound(f"Producto {id_producto} no existe", code="PRODUCTO_NO_EXISTE")
    p.activo = False
    await _audit(s, actor, "producto", id_producto, "baja")


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
                motivo="alta",
                usuario=actor.sub,
                fecha=utcnow(),
            )
        )
    await _audit(s, actor, "material", m.id_material, "alta")
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
    for key, value in changes.items():
        if key == "descripcion":
            value = d.normalize_nombre(value, "descripcion")
        setattr(m, key, value)
    await _audit(s, actor, "material", id_material, "edicion", payload=_jsonable(changes))
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
    await _audit(s, actor, "material", id_material, "baja")


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


# --------------------------------------------------------------------------- pricing


@dataclass
class LineaIn:
    producto_id: int
    material_id: int
    largo: Decimal
    ancho: Decimal
    espesor_mm: int
    minutos_laser: int = 0
    cantidad: int = 1
    porcentaje_utilidad: int | None = None
    subtotal: Decimal | None = None


@dataclass
class PricedLine:
    linea: LineaIn
    producto: Producto
    material: Material
    price: d.PriceBreakdown


async def price_line(
    s: AsyncSession,
    linea: LineaIn,
    *,
    prefix: str = "",
    tabulador: dict[int, Decimal] | None = None,
    tarifa: Decimal | None = None,
    check_material: bool = True,
) -> PricedLine:
    producto = await _producto(s, linea.producto_id, f"{prefix}producto_id")
    material = (
        await _material(s, linea.material_id, f"{prefix}material_id") if check_material else None
    )
    utilidad = d.resolve_utilidad(linea.porcentaje_utilidad, producto.porcentaje_utilidad)
    price = d.compute_price(
        PriceInput(
            largo=linea.largo,
            ancho=linea.ancho,
            espesor_mm=linea.espesor_mm,
            porcentaje_utilidad=utilidad,
            minutos_laser=linea.minutos_laser,
            cantidad=linea.cantidad,
            precio_fijo=producto.precio_fijo,
        ),
        tabulador if tabulador is not None else await get_tabulador(s),
        tarifa if tarifa is not None else await get_tarifa(s),
        field_prefix=prefix,
    )
    return PricedLine(linea, producto, material, price)  # type: ignore[arg-type]


PRICING_CACHE_TTL_S = 1.0


@dataclass
class _Catalog:
    """What the POS reads on every request and admins change rarely, per engine: pricing
    parameters, product pricing attributes and material activity (``id → activo``)."""

    expires: float
    pricing: tuple[dict[int, Decimal], Decimal] | None = None
    productos: dict[int, ProductoInfo] = field(default_factory=dict)
    materiales: dict[int, bool] = field(default_factory=dict)


_catalogs: weakref.WeakKeyDictionary[AsyncEngine, _Catalog] = weakref.WeakKeyDictionary()


def invalidate_pricing_cache() -> None:
    """Drop every cached catalogue entry (called by this process's catalogue and configuration
    writes, before they write and again after their commit)."""
    _catalogs.clear()


def _catalog(engine: AsyncEngine) -> _Catalog:
    """The live cache generation of `engine` (a new, empty one every PRICING_CACHE_TTL_S).

    Semantics: this process's own catalogue writes are seen by its next request (the cache
    is dropped after their commit); another process's (replica, uvicorn worker) within
    PRICING_CACHE_TTL_S. A load that overlaps an invalidation fills the dropped generation
    only, so it never resurrects old values. Stock is never cached."""
    now = time.monotonic()
    cat = _catalogs.get(engine)
    if cat is None or cat.expires <= now:
        cat = _Catalog(now + PRICING_CACHE_TTL_S)
        _catalogs[engine] = cat
    return cat


def _engine_of(db: AsyncSession | AsyncConnection) -> AsyncEngine:
    if isinstance(db, AsyncConnection):
        return db.engine
    bind = db.bind
    assert isinstance(bind, AsyncEngine), "sessions of the sales service are bound to an engine"
    return bind


async def _load_pricing(db: AsyncSession | AsyncConnection) -> tuple[dict[int, Decimal], Decimal]:
    return await get_tabulador(db), await get_tarifa(db)


async def _load_productos(db: AsyncSession | AsyncConnection, cat: _Catalog, ids: set[int]) -> None:
    rows = await db.execute(
        select(
            Producto.id_producto,
            Producto.activo,
            Producto.precio_fijo,
            Producto.porcentaje_utilidad,
        ).where(Producto.id_producto.in_(ids))
    )
    for pid, activo, precio_fijo, utilidad in rows:
        cat.productos[pid] = ProductoInfo(pid, bool(activo), precio_fijo, utilidad)


async def _load_materiales(
    db: AsyncSession | AsyncConnection, cat: _Catalog, ids: set[int]
) -> None:
    rows = await db.execute(
        select(Material.id_material, Material.activo).where(Material.id_material.in_(ids))
    )
    for mid, activo in rows:
        cat.materiales[mid] = bool(activo)


async def pricing_parameters(
    s: AsyncSession | AsyncConnection,
) -> tuple[dict[int, Decimal], Decimal]:
    """(tabulador, tarifa) from the catalogue cache (see :func:`_catalog`)."""
    cat = _catalog(_engine_of(s))
    if cat.pricing is None:
        cat.pricing = await _load_pricing(s)
    return cat.pricing


async def productos_info(
    s: AsyncSession | AsyncConnection, ids: set[int]
) -> dict[int, ProductoInfo]:
    """Pricing attributes of products from the catalogue cache (missing ids read once)."""
    cat = _catalog(_engine_of(s))
    missing = ids.difference(cat.productos)
    if missing:
        await _load_productos(s, cat, missing)
    return {i: cat.productos[i] for i in ids if i in cat.productos}


@dataclass(frozen=True)
class CatalogView:
    tabulador: dict[int, Decimal]
    tarifa: Decimal
    productos: dict[int, ProductoInfo]
    materiales: dict[int, bool]


async def catalog_view(
    engine: AsyncEngine, producto_ids: set[int], material_ids: Set[int] = frozenset()
) -> CatalogView:
    """The cached catalogue entries a request needs; a connection is taken from the pool only
    when something is missing (about once per PRICING_CACHE_TTL_S)."""
    cat = _catalog(engine)
    missing_p = producto_ids.difference(cat.productos)
    missing_m = {i for i in material_ids if i not in cat.materiales}
    if cat.pricing is None or missing_p or missing_m:
        async with engine.connect() as conn:
            if cat.pricing is None:
                cat.pricing = await _load_pricing(conn)
            if missing_p:
                await _load_productos(conn, cat, missing_p)
            if missing_m:
                await _load_materiales(conn, cat, missing_m)
    assert cat.pricing is not None
    return CatalogView(
        cat.pricing[0],
        cat.pricing[1],
        {i: cat.productos[i] for i in producto_ids if i in cat.productos},
        {i: cat.materiales[i] for i in material_ids if i in cat.materiales},
    )


async def preview(engine: AsyncEngine, linea: LineaIn) -> d.PriceBreakdown:
    """POST price preview: the canonical breakdown, without writing anything. Served from the
    catalogue cache (no database round trip while it is warm): the material, if given, must
    exist and be active as of the cache (see :func:`_catalog` for how fresh that is); the sale
    itself re-reads its materials."""
    view = await catalog_view(
        engine, {linea.producto_id}, {linea.material_id} if linea.material_id else set()
    )
    if linea.material_id:
        activo = view.materiales.get(linea.material_id)
        if activo is None:
            raise NotFound(
                f"Material {linea.material_id} no existe",
                code="MATERIAL_NO_EXISTE",
                field="material_id",
            )
        if not activo:
            raise Invalid(
                f"Material {linea.material_id} inactivo",
                code="MATERIAL_INACTIVO",
                field="material_id",
            )
    producto = view.productos.get(linea.producto_id)
    price = _price_cached(linea, producto, view.tabulador, view.tarifa, "")
    d.check_client_subtotal(linea.subtotal, price, "subtotal")
    return price


def _price_cached(
    linea: LineaIn,
    producto: ProductoInfo | None,
    tabulador: dict[int, Decimal],
    tarifa: Decimal,
    prefix: str,
) -> d.PriceBreakdown:
    """§A.4.1 for one line with a cached product (PROTECT / inactive checks first)."""
    if producto is None:
        raise NotFound(
            f"Producto {linea.producto_id} no existe",
            code="PRODUCTO_NO_EXISTE",
            field=f"{prefix}producto_id",
        )
    if not producto.activo:
        raise Invalid(
            f"Producto {linea.producto_id} inactivo",
            code="PRODUCTO_INACTIVO",
            field=f"{prefix}producto_id",
        )
    return d.compute_price(
        PriceInput(
            largo=linea.largo,
            ancho=linea.ancho,
            espesor_mm=linea.espesor_mm,
            porcentaje_utilidad=d.resolve_utilidad(
                linea.porcentaje_utilidad, producto.porcentaje_utilidad
            ),
            minutos_laser=linea.minutos_laser,
            cantidad=linea.cantidad,
            precio_fijo=producto.precio_fijo,
        ),
        tabulador,
        tarifa,
        field_prefix=prefix,
    )


# --------------------------------------------------------------------------- POS sale


@dataclass
class VentaIn:
    carrito: list[LineaIn]
    cliente_id: int | None = None
    cliente_nuevo: ClienteIn | None = None
    monto_abonado: Decimal = Decimal("0")
    metodo_pago: str = "efectivo"
    referencia_pago: str | None = None
    fecha_entrega: date | None = None
    permitir_backorder: bool = False
    total: Decimal | None = None


@dataclass
class VentaResult:
    venta: Venta | VentaRef
    folio: str
    total: Decimal
    saldo_restante: Decimal
    alertas_stock: list[dict[str, Any]]
    event_id: str


@dataclass(frozen=True)
class VentaRef:
    """The created sale's key (the confirmation path writes with Core, no ORM object)."""

    id_venta: int


@dataclass(frozen=True)
class ProductoInfo:
    id_producto: int
    activo: bool
    precio_fijo: Decimal | None
    porcentaje_utilidad: int


_VENTAS = Base.metadata.tables["ventas"]
_DETALLES = Base.metadata.tables["detalle_venta"]
_ABONOS = Base.metadata.tables["abonos"]
_AUDITORIA = Base.metadata.tables["auditoria"]
_MOVIMIENTOS = Base.metadata.tables["movimientos_stock"]
# Statement objects built once: parameters are passed at execution, so the compiled form is
# reused from SQLAlchemy's cache (inline `.values(...)` would compile on every call).
_INSERT_VENTA = insert(_VENTAS).returning(_VENTAS.c.id_venta)
_INSERT_DETALLE = insert(_DETALLES).returning(_DETALLES.c.id_detalle)
_INSERT_ABONO = insert(_ABONOS)
_INSERT_AUDITORIA = insert(_AUDITORIA)
_INSERT_MOVIMIENTO = insert(_MOVIMIENTOS)


# PostgreSQL: sale, lines, abono and audit row in ONE statement (data-modifying CTEs; the FK
# checks run at the end of the statement). Lines come in as arrays, inserted in ordinality
# order so that sorted ids match the cart order.
_PG_INSERT_SALE = text(
    """
WITH v AS (
  INSERT INTO ventas (id_cotizacion, id_cliente, estatus, total, total_pagado,
                      permitir_backorder, fecha_venta, fecha_entrega, creado_por, creado_en,
                      version)
  VALUES (CAST(:id_cotizacion AS integer), CAST(:id_cliente AS integer), 'pendiente',
          CAST(:total AS numeric), CAST(:total_pagado AS numeric), CAST(:backorder AS boolean),
          CAST(:hoy AS date), CAST(:fecha_entrega AS date), CAST(:usuario AS varchar),
          CAST(:now AS timestamptz), 1)
  RETURNING id_venta
), d AS (
  INSERT INTO detalle_venta (id_venta, id_producto, id_material, cantidad, largo_pza, ancho_pza,
                             espesor_mm, porcentaje_utilidad, minutos_laser, precio_unitario,
                             subtotal, parametros_precio)
  SELECT v.id_venta, x.pr, x.ma, x.ca, x.la, x.an, x.es, x.ut, x.mi, x.pu, x.st, x.pp::json
  FROM v, unnest(CAST(:l_producto AS integer[]), CAST(:l_material AS integer[]),
                 CAST(:l_cantidad AS integer[]), CAST(:l_largo AS numeric[]),
                 CAST(:l_ancho AS numeric[]), CAST(:l_espesor AS integer[]),
                 CAST(:l_utilidad AS integer[]), CAST(:l_minutos AS integer[]),
                 CAST(:l_precio AS numeric[]), CAST(:l_subtotal AS numeric[]),
                 CAST(:l_params AS text[]))
       WITH ORDINALITY AS x(pr, ma, ca, la, an, es, ut, mi, pu, st, pp, ord)
  ORDER BY x.ord
  RETURNING id_detalle
), ab AS (
  INSERT INTO abonos (id_venta, monto, metodo, referencia, estado, fecha, fecha_negocio, usuario)
  SELECT v.id_venta, CAST(:monto AS numeric), CAST(:metodo AS varchar),
         CAST(:referencia AS varchar), 'aplicado', CAST(:now AS timestamptz),
         CAST(:hoy AS date), CAST(:usuario AS varchar)
  FROM v WHERE CAST(:monto AS numeric) > 0
), au AS (
  INSERT INTO auditoria (entidad, entidad_id, accion, desde, hacia, motivo, usuario, fecha,
                         payload)
  SELECT 'venta', v.id_venta, 'confirmar', NULL, 'pendiente', NULL, CAST(:usuario AS varchar),
         CAST(:now AS timestamptz), CAST(:audit AS json)
  FROM v
)
SELECT v.id_venta, ARRAY(SELECT id_detalle FROM d ORDER BY id_detalle) AS ids FROM v
"""
)


def check_cart_shape(data: VentaIn) -> None:
    if not data.carrito:
        raise Invalid("El carrito está vacío", field="carrito")
    if data.cliente_id is not None and data.cliente_nuevo is not None:
        raise Invalid("Envía cliente_id o cliente_nuevo, no ambos", field="cliente_nuevo")


@dataclass(frozen=True)
class PricedLineResult:
    """One cart line priced without its material: the product's error (checked before the
    material), else the price or the pricing error (checked after the material)."""

    producto_error: DomainError | None = None
    price: d.PriceBreakdown | None = None
    price_error: DomainError | None = None


def price_lines(
    data: VentaIn,
    productos: dict[int, ProductoInfo],
    tabulador: dict[int, Decimal],
    tarifa: Decimal,
) -> list[PricedLineResult]:
    """§A.4.6 steps 4-5 for every line, errors kept (not raised) so that they can be raised
    in the canonical order once the materials are known (:func:`check_cart`)."""
    out: list[PricedLineResult] = []
    for i, linea in enumerate(data.carrito):
        prefix = f"carrito[{i}]."
        producto = productos.get(linea.producto_id)
        try:
            price = _price_cached(linea, producto, tabulador, tarifa, prefix)
        except DomainError as exc:
            if producto is None or not producto.activo:
                out.append(PricedLineResult(producto_error=exc))
            else:
                out.append(PricedLineResult(price_error=exc))
            continue
        try:
            d.require_positive_price(price, prefix)
            d.check_client_subtotal(linea.subtotal, price, f"{prefix}subtotal")
        except DomainError as exc:
            out.append(PricedLineResult(price_error=exc))
            continue
        out.append(PricedLineResult(price=price))
    return out


def _check_abono(data: VentaIn, total: Decimal) -> None:
    if data.monto_abonado < 0:
        raise Invalid("monto_abonado debe ser >= 0", code="ABONO_INVALIDO", field="monto_abonado")
    if data.monto_abonado > 0:
        if data.metodo_pago not in d.METODOS_PAGO:
            raise Invalid("metodo_pago inválido", field="metodo_pago")
        d.check_abono(total, Decimal(0), data.monto_abonado, "monto_abonado")


def _check_total(data: VentaIn, total: Decimal) -> None:
    if data.total is not None and data.total != total:
        raise Invalid(
            f"El total enviado ({data.total}) no coincide con el del servidor ({total})",
            code="PRECIO_DESACTUALIZADO",
            field="total",
            total=str(total),
        )


def cart_prices_pass(data: VentaIn, lines: list[PricedLineResult]) -> bool:
    """True when nothing but the materials (existence, activity, stock) can still reject the
    cart: every line priced, the client's total right, the abono acceptable."""
    prices = [x.price for x in lines]
    if any(p is None for p in prices) or any(x.producto_error or x.price_error for x in lines):
        return False
    total = d.sale_total(p.subtotal for p in prices if p is not None)
    try:
        _check_total(data, total)
        _check_abono(data, total)
    except DomainError:
        return False
    return True


@dataclass(frozen=True)
class CheckedCart:
    prices: list[d.PriceBreakdown]
    total: Decimal
    requested: dict[int, int]
    alertas: list[dict[str, Any]]


def check_cart(
    data: VentaIn,
    lines: list[PricedLineResult],
    materials: dict[int, MaterialStock],
    inactive: set[int],
) -> CheckedCart:
    """§A.4.6 steps 4-6 in order (per line: product, material, price, subtotal; then the total,
    the stock and the abono); raises the first violation. Pure."""
    prices: list[d.PriceBreakdown] = []
    for i, (linea, line) in enumerate(zip(data.carrito, lines, strict=True)):
        prefix = f"carrito[{i}]."
        if line.producto_error is not None:
            raise line.producto_error
        if linea.material_id not in materials:
            raise NotFound(
                f"Material {linea.material_id} no existe",
                code="MATERIAL_NO_EXISTE",
                field=f"{prefix}material_id",
            )
        if linea.material_id in inactive:
            raise Invalid(
                f"Material {linea.material_id} inactivo",
                code="MATERIAL_INACTIVO",
                field=f"{prefix}material_id",
            )
        if line.price_error is not None:
            raise line.price_error
        assert line.price is not None
        prices.append(line.price)
    total = d.sale_total(p.subtotal for p in prices)
    _check_total(data, total)
    # 6. stock (plain read, no lock: the asynchronous decrement handles races)
    requested = d.requested_per_material((x.material_id, x.cantidad) for x in data.carrito)
    d.check_stock(materials, requested, permitir_backorder=data.permitir_backorder)
    alertas = d.projected_alerts(materials, requested)
    _check_abono(data, total)
    return CheckedCart(prices, total, requested, alertas)


async def _insert_sale_pg(
    s: AsyncSession,
    *,
    id_cotizacion: int | None,
    id_cliente: int | None,
    total: Decimal,
    total_pagado: Decimal,
    data: VentaIn,
    prices: list[d.PriceBreakdown],
    hoy: date,
    now: datetime,
    usuario: str,
    audit_payload: dict[str, Any],
) -> tuple[int, list[int]]:
    lines = data.carrito
    row = (
        await s.execute(
            _PG_INSERT_SALE,
            {
                "id_cotizacion": id_cotizacion,
                "id_cliente": id_cliente,
                "total": total,
                "total_pagado": total_pagado,
                "backorder": data.permitir_backorder,
                "hoy": hoy,
                "fecha_entrega": data.fecha_entrega,
                "usuario": usuario,
                "now": now,
                "l_producto": [x.producto_id for x in lines],
                "l_material": [x.material_id for x in lines],
                "l_cantidad": [x.cantidad for x in lines],
                "l_largo": [x.largo for x in lines],
                "l_ancho": [x.ancho for x in lines],
                "l_espesor": [x.espesor_mm for x in lines],
                "l_utilidad": [p.porcentaje_utilidad for p in prices],
                "l_minutos": [x.minutos_laser for x in lines],
                "l_precio": [p.precio_unitario for p in prices],
                "l_subtotal": [p.subtotal for p in prices],
                "l_params": [json.dumps(p.snapshot(), separators=(",", ":")) for p in prices],
                "monto": data.monto_abonado,
                "metodo": data.metodo_pago,
                "referencia": data.referencia_pago,
                "audit": json.dumps(audit_payload, separators=(",", ":")),
            },
        )
    ).one()
    return int(row[0]), sorted(int(i) for i in row[1])


def sale_confirmed(
    id_venta: int,
    folio: str,
    id_cliente: int | None,
    line_ids: list[int],
    data: VentaIn,
    prices: list[d.PriceBreakdown],
    total: Decimal,
    now: datetime,
    actor: Actor,
) -> SaleConfirmed:
    """The SaleConfirmed of a sale just written (both write paths: session and `hotpath`)."""
    return SaleConfirmed(
        id_venta=id_venta,
        folio=folio,
        id_cliente=id_cliente,
        lineas=[
            SaleLine(
                id_detalle=id_detalle,
                id_material=linea.material_id,
                cantidad=linea.cantidad,
                id_producto=linea.producto_id,
                espesor_mm=linea.espesor_mm,
                ancho=linea.ancho,
                alto=linea.largo,
                precio_unitario=price.precio_unitario,
                subtotal=price.subtotal,
            )
            for id_detalle, linea, price in zip(line_ids, data.carrito, prices, strict=True)
        ],
        total=total,
        permitir_backorder=data.permitir_backorder,
        confirmed_at=now,
        confirmed_by=actor.sub,
    )


async def confirm_sale(
    s: AsyncSession, data: VentaIn, actor: Actor, *, id_cotizacion: int | None = None
) -> VentaResult:
    """§A.4.6: validate, recompute every line, check stock, then write sale + lines + abono +
    audit + SaleConfirmed in the caller's transaction. Stock is NOT touched here.

    Hot path: products from the 1 s catalogue cache, materials in one Core read, and Core
    inserts (sale RETURNING id, all lines in one multi-row INSERT RETURNING ids)."""
    check_cart_shape(data)
    # 3. client
    id_cliente: int | None = None
    if data.cliente_id is not None:
        id_cliente = (await get_cliente(s, data.cliente_id)).id_cliente
    # 4-6. lines, total, stock, abono
    tabulador, tarifa = await pricing_parameters(s)
    productos = await productos_info(s, {x.producto_id for x in data.carrito})
    lines = price_lines(data, productos, tabulador, tarifa)
    mat_rows = await s.execute(
        select(
            Material.id_material,
            Material.descripcion,
            Material.stock_actual,
            Material.stock_minimo,
            Material.activo,
        ).where(Material.id_material.in_({x.material_id for x in data.carrito}))
    )
    materials: dict[int, MaterialStock] = {}
    inactive: set[int] = set()
    for mid, nombre, actual, minimo, activo in mat_rows:
        materials[mid] = MaterialStock(mid, nombre, actual, minimo)
        if not activo:
            inactive.add(mid)
    cart = check_cart(data, lines, materials, inactive)
    prices, total, alertas = cart.prices, cart.total, cart.alertas
    # 7. one transaction
    if data.cliente_nuevo is not None:
        cliente = await create_cliente(s, data.cliente_nuevo, actor, "cliente_nuevo.")
        id_cliente = cliente.id_cliente
    now = utcnow()
    hoy = d.business_date(now)
    total_pagado = data.monto_abonado if data.monto_abonado > 0 else Decimal("0.00")
    audit_payload = {"total": str(total), "permitir_backorder": data.permitir_backorder}
    if (await s.connection()).dialect.name == "postgresql":
        id_venta, line_ids = await _insert_sale_pg(
            s,
            id_cotizacion=id_cotizacion,
            id_cliente=id_cliente,
            total=total,
            total_pagado=total_pagado,
            data=data,
            prices=prices,
            hoy=hoy,
            now=now,
            usuario=actor.sub,
            audit_payload=audit_payload,
        )
        folio = d.folio_venta(id_venta)
    else:
        venta_row = {
            "id_cotizacion": id_cotizacion,
            "id_cliente": id_cliente,
            "estatus": EstatusVenta.PENDIENTE.value,
            "total": total,
            "total_pagado": total_pagado,
            "permitir_backorder": data.permitir_backorder,
            "fecha_venta": hoy,
            "fecha_entrega": data.fecha_entrega,
            "creado_por": actor.sub,
            "creado_en": now,
            "version": 1,
        }
        id_venta = int((await s.execute(_INSERT_VENTA, venta_row)).scalar_one())
        # Executemany with RETURNING = one multi-row INSERT (insertmanyvalues) from a cached
        # compiled statement; ids are drawn in VALUES order, so sorted ids match the lines.
        line_ids = sorted(
            (
                await s.execute(
                    _INSERT_DETALLE,
                    [
                        {
                            "id_venta": id_venta,
                            "id_producto": linea.producto_id,
                            "id_material": linea.material_id,
                            "cantidad": linea.cantidad,
                            "largo_pza": linea.largo,
                            "ancho_pza": linea.ancho,
                            "espesor_mm": linea.espesor_mm,
                            "porcentaje_utilidad": price.porcentaje_utilidad,
                            "minutos_laser": linea.minutos_laser,
                            "precio_unitario": price.precio_unitario,
                            "subtotal": price.subtotal,
                            "parametros_precio": price.snapshot(),
                        }
                        for linea, price in zip(data.carrito, prices, strict=True)
                    ],
                )
            ).scalars()
        )
        if data.monto_abonado > 0:
            await s.execute(
                _INSERT_ABONO,
                {
                    "id_venta": id_venta,
                    "monto": data.monto_abonado,
                    "metodo": data.metodo_pago,
                    "referencia": data.referencia_pago,
                    "estado": "aplicado",
                    "fecha": now,
                    "fecha_negocio": hoy,
                    "usuario": actor.sub,
                },
            )
        folio = d.folio_venta(id_venta)
        await s.execute(
            _INSERT_AUDITORIA,
            {
                "entidad": "venta",
                "entidad_id": id_venta,
                "accion": "confirmar",
                "desde": None,
                "hacia": EstatusVenta.PENDIENTE.value,
                "motivo": None,
                "usuario": actor.sub,
                "fecha": now,
                "payload": audit_payload,
            },
        )
    event_id = await enqueue(
        s,
        outbox,
        sale_confirmed(id_venta, folio, id_cliente, line_ids, data, prices, total, now, actor),
    )
    return VentaResult(
        venta=VentaRef(id_venta),
        folio=folio,
        total=total,
        saldo_restante=d.saldo_restante(total, total_pagado),
        alertas_stock=alertas,
        event_id=event_id,
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
            .where(Abono.id_venta == id_venta, Abono.estado == "aplicado")
            .values(estado="por_reembolsar")
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
    await _audit(
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
        estado="aplicado",
        fecha=now,
        fecha_negocio=d.business_date(now),
        usuario=actor.sub,
    )
    s.add(ab)
    await s.flush()
    await _audit(
        s, actor, "venta", id_venta, "abono", payload={"monto": str(monto), "metodo": metodo}
    )
    await s.refresh(v)
    return ab


@dataclass
class VentaDetalle:
    venta: Venta
    cliente: Cliente | None
    lineas: list[DetalleVenta]
    abonos: list[Abono]
    auditoria: list[Auditoria] = field(default_factory=list)


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
    if estatus:
        stmt = stmt.where(Venta.estatus == estatus)
    if desde:
        stmt = stmt.where(Venta.fecha_venta >= desde)
    if hasta:
        stmt = stmt.where(Venta.fecha_venta <= hasta)
    if id_cliente:
        stmt = stmt.where(Venta.id_cliente == id_cliente)
    return (await s.scalars(stmt.limit(limit).offset(offset))).all()


# --------------------------------------------------------------------------- quotes


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
    await _audit(s, actor, "cotizacion", c.id_cotizacion, "alta", None, c.estado)
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
    await _audit(s, actor, "cotizacion", id_cotizacion, "estado", current.value, target.value)
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
    material = await _material(s, c.id_material, "id_material")
    requested = {material.id_material: c.cantidad}
    materials = {material.id_material: _material_stock(material)}
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
    await _audit(
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


# --------------------------------------------------------------------------- stock


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
    motivo: str = "reabasto",
    nota: str | None = None,
) -> d.StockEffect:
    """Restock (+) or adjustment (±) through the API, with its ledger row."""
    if cantidad == 0:
        raise Invalid("cantidad no puede ser 0", field="cantidad")
    if motivo == "reabasto" and cantidad < 0:
        raise Invalid("un reabasto debe ser positivo", field="cantidad")
    if motivo == "ajuste" and not (nota and nota.strip()):
        raise Invalid("un ajuste requiere una nota (motivo)", code="MOTIVO_REQUERIDO", field="nota")
    await _material(s, id_material, "id_material")
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
        s, [StockChange(id_material, delta, "conteo", nota=nota)], actor.sub
    )
    return eff


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


# --------------------------------------------------------------------------- reports


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


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in data.items()}
