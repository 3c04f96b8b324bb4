"""The POS confirmation (§A.4.6): cart checks shared by every write path (pure), the
SaleConfirmed builder and the session path (`confirm_sale`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

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
from sales.domain import (
    DomainError,
    EstatusVenta,
    Invalid,
    MaterialStock,
    NotFound,
)
from sales.models import (
    Base,
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


_VENTAS = Base.metadata.tables["ventas"]


_DETALLES = Base.metadata.tables["detalle_venta"]


_ABONOS = Base.metadata.tables["abonos"]


_AUDITORIA = Base.metadata.tables["auditoria"]


# Statement objects built once: parameters are passed at execution, so the compiled form is
# reused from SQLAlchemy's cache (inline `.values(...)` would compile on every call).
_INSERT_VENTA = insert(_VENTAS).returning(_VENTAS.c.id_venta)


_INSERT_DETALLE = insert(_DETALLES).returning(_DETALLES.c.id_detalle)


_INSERT_ABONO = insert(_ABONOS)


_INSERT_AUDITORIA = insert(_AUDITORIA)


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
