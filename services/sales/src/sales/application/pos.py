"""The POS confirmation (§A.4.6): cart checks shared by every write path (pure), the
SaleConfirmed builder and the session path (`confirm_sale`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.events.sales import (
    SaleConfirmed,
    SaleLine,
)
from nexo_messaging.outbox import enqueue
from sales import domain as d
from sales.application.clients import ClienteIn, create_cliente, get_cliente
from sales.application.common import Actor, utcnow
from sales.application.pricing import (
    LineaIn,
    ProductoInfo,
    price_cached,
    pricing_parameters,
    productos_info,
)
from sales.application.stock import commit_stock
from sales.domain import (
    DomainError,
    Invalid,
    MaterialStock,
    NotFound,
)
from sales.models import (
    Material,
    Venta,
    outbox,
)


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


class LinePrice(Protocol):
    """What a written sale line needs of its price: a POS line's `PriceBreakdown`, or the price
    a quote froze (`sales.application.quotes.FrozenPrice`)."""

    @property
    def precio_unitario(self) -> Decimal: ...

    @property
    def subtotal(self) -> Decimal: ...

    @property
    def porcentaje_utilidad(self) -> int: ...

    def snapshot(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ConfirmedSaleRows:
    """Everything a confirmed sale's rows hold (sale, lines in cart order, abono, audit row):
    built once by the use case (POS confirmation or quote conversion), written by the app's
    `SaleRowWriter`."""

    id_cotizacion: int | None
    id_cliente: int | None
    total: Decimal
    data: VentaIn
    prices: Sequence[LinePrice]
    now: datetime
    usuario: str
    audit_payload: dict[str, Any]

    @property
    def total_pagado(self) -> Decimal:
        """The opening abono (0.00 when none)."""
        return self.data.monto_abonado if self.data.monto_abonado > 0 else Decimal("0.00")

    @property
    def hoy(self) -> date:
        """The sale's business date."""
        return d.business_date(self.now)


class SaleRowWriter(Protocol):
    """Writes a confirmed sale's rows — sale, lines (in cart order), abono when > 0, audit row —
    in the caller's session, and returns the sale id and the line ids in cart order. The
    implementations (`sales.adapters`) are chosen once per app from the database."""

    async def insert_sale(
        self, s: AsyncSession, rows: ConfirmedSaleRows
    ) -> tuple[int, list[int]]: ...


Render = Callable[["VentaResult"], Any]
"""Renders the HTTP answer of a sale (stored with an idempotency key by the direct paths)."""


class SaleWriter(SaleRowWriter, Protocol):
    """The app's sale writer: the session-level row writer above, plus the whole POS
    confirmation on its own connection where the database allows it (the hot path)."""

    write_lock: asyncio.Lock | None
    """Embedded mode (SQLite, one process): the API's write transactions take turns on this
    lock in FIFO order instead of racing for SQLite's single writer lock (which starves under
    load and ends in "database is locked"). None where the database needs no such lock."""

    async def confirm_direct(
        self,
        engine: AsyncEngine,
        data: VentaIn,
        actor: Actor,
        render: Render | None,
        wake: Callable[[], None] | None,
    ) -> VentaResult | None:
        """The confirmed sale, or None when this cart needs the session path (a new client,
        an in-memory database); `wake` wakes the outbox relay after the commit."""
        ...


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
            price = price_cached(linea, producto, tabulador, tarifa, prefix)
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
    # 6. stock on the materials read (no lock): a pre-check; each writer then admits the sale
    # atomically against what is free (`comprometido`, available-to-promise)
    requested = d.requested_per_material((x.material_id, x.cantidad) for x in data.carrito)
    d.check_stock(materials, requested, permitir_backorder=data.permitir_backorder)
    alertas = d.projected_alerts(materials, requested)
    _check_abono(data, total)
    return CheckedCart(prices, total, requested, alertas)


def sale_confirmed(
    id_venta: int,
    folio: str,
    id_cliente: int | None,
    line_ids: list[int],
    data: VentaIn,
    prices: Sequence[LinePrice],
    total: Decimal,
    now: datetime,
    actor: Actor,
) -> SaleConfirmed:
    """The SaleConfirmed of a sale just written (every write path: session, PostgreSQL,
    portable)."""
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
    s: AsyncSession, data: VentaIn, actor: Actor, *, writer: SaleRowWriter
) -> VentaResult:
    """§A.4.6: validate, recompute every line, check stock, then hold the quantities in
    `comprometido` (:func:`~sales.application.stock.commit_stock`) and write sale + lines +
    abono + audit + SaleConfirmed in the caller's transaction. `stock_actual` is NOT touched
    here (the SaleConfirmed consumer decrements it and releases the hold).

    Products from the 1 s catalogue cache, materials in one Core read; the rows are written by
    the app's `writer` (one statement on PostgreSQL, cached Core inserts elsewhere)."""
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
            Material.comprometido,
        ).where(Material.id_material.in_({x.material_id for x in data.carrito}))
    )
    materials: dict[int, MaterialStock] = {}
    inactive: set[int] = set()
    for mid, nombre, actual, minimo, activo, comprometido in mat_rows:
        materials[mid] = MaterialStock(mid, nombre, actual, minimo, comprometido)
        if not activo:
            inactive.add(mid)
    cart = check_cart(data, lines, materials, inactive)
    prices, total, alertas = cart.prices, cart.total, cart.alertas
    # 7. one transaction: the quantities held first (the exact, atomic admission)
    await commit_stock(s, cart.requested, permitir_backorder=data.permitir_backorder)
    if data.cliente_nuevo is not None:
        cliente = await create_cliente(s, data.cliente_nuevo, actor, "cliente_nuevo.")
        id_cliente = cliente.id_cliente
    now = utcnow()
    rows = ConfirmedSaleRows(
        id_cotizacion=None,
        id_cliente=id_cliente,
        total=total,
        data=data,
        prices=prices,
        now=now,
        usuario=actor.sub,
        audit_payload={"total": str(total), "permitir_backorder": data.permitir_backorder},
    )
    id_venta, line_ids = await writer.insert_sale(s, rows)
    folio = d.folio_venta(id_venta)
    event_id = await enqueue(
        s,
        outbox,
        sale_confirmed(id_venta, folio, id_cliente, line_ids, data, prices, total, now, actor),
    )
    return VentaResult(
        venta=VentaRef(id_venta),
        folio=folio,
        total=total,
        saldo_restante=d.saldo_restante(total, rows.total_pagado),
        alertas_stock=alertas,
        event_id=event_id,
    )
