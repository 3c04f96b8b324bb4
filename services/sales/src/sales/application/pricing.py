"""Pricing inputs (tabulador, tarifa, product attributes) and the catalogue cache the POS
reads on every request; one line priced (§A.4.1) and the price preview.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Set
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from sales import domain as d
from sales.domain import (
    Invalid,
    MaterialStock,
    NotFound,
    PriceInput,
)
from sales.models import (
    ConfiguracionPrecios,
    Material,
    Producto,
    TabuladorCosto,
)

DEFAULT_TARIFA = Decimal("15.00")


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


async def require_producto(s: AsyncSession, id_producto: int, field: str) -> Producto:
    p = await s.get(Producto, id_producto)
    if p is None:
        raise NotFound(f"Producto {id_producto} no existe", code="PRODUCTO_NO_EXISTE", field=field)
    if not p.activo:
        raise Invalid(f"Producto {id_producto} inactivo", code="PRODUCTO_INACTIVO", field=field)
    return p


async def require_material(s: AsyncSession, id_material: int, field: str) -> Material:
    m = await s.get(Material, id_material)
    if m is None:
        raise NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE", field=field)
    if not m.activo:
        raise Invalid(f"Material {id_material} inactivo", code="MATERIAL_INACTIVO", field=field)
    return m


def material_stock(m: Material) -> MaterialStock:
    return MaterialStock(
        m.id_material, m.descripcion, m.stock_actual, m.stock_minimo, m.comprometido
    )


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
    producto = await require_producto(s, linea.producto_id, f"{prefix}producto_id")
    material = (
        await require_material(s, linea.material_id, f"{prefix}material_id")
        if check_material
        else None
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


@dataclass(frozen=True)
class ProductoInfo:
    id_producto: int
    activo: bool
    precio_fijo: Decimal | None
    porcentaje_utilidad: int


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
    price = price_cached(linea, producto, view.tabulador, view.tarifa, "")
    d.check_client_subtotal(linea.subtotal, price, "subtotal")
    return price


def price_cached(
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
