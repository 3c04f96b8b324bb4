"""Request and response models of the sales API, SQLModel (non-table) families as in the
FastAPI template: `<Thing>Base` (the fields a client writes, bounded as on input) /
`<Thing>Create` / `<Thing>Update` (every field optional) / `<Thing>Public` (the answer, exactly
as `sales.api.render` writes it: money and dates as strings). Vocabulary literals are generated
from `sales.domain.vocab` (one definition).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, Field
from sqlmodel import SQLModel
from sqlmodel.main import SQLModelConfig

from sales import domain as d
from sales.application import clients, pricing
from sales.domain import EstatusVenta
from service_defaults.bounds import (
    INT32_MAX,
    DomainDate,
    Id32,
    Int32,
    SafeText,
)

Dim = Annotated[Decimal, Field(ge=0, le=d.MAX_DIMENSION_CM, max_digits=12, decimal_places=2)]


Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


Utilidad = Annotated[int, Field(ge=0, le=d.MAX_UTILIDAD)]


class StrictBody(SQLModel):
    model_config = SQLModelConfig(extra="forbid", str_strip_whitespace=True)


class LineaBody(SQLModel):
    """A cart line. Legacy display-only keys (`producto_nombre`, `material_nombre`) are ignored."""

    model_config = SQLModelConfig(extra="ignore")

    producto_id: Id32 = Field(gt=0)
    material_id: Id32 = Field(gt=0)
    largo: Dim
    ancho: Dim
    espesor_mm: Int32 = Field(gt=0, validation_alias=AliasChoices("espesor_mm", "espesor"))
    minutos_laser: int = Field(
        default=0,
        ge=0,
        le=d.MAX_MINUTOS_LASER,
        validation_alias=AliasChoices("minutos_laser", "minutos_lazer"),
    )
    cantidad: int = Field(default=1, ge=1, le=d.MAX_CANTIDAD)
    porcentaje_utilidad: Utilidad | None = None
    subtotal: Money | None = Field(
        default=None, description="The client's figure; must equal the server's exactly."
    )

    def to_service(self) -> pricing.LineaIn:
        return pricing.LineaIn(
            producto_id=self.producto_id,
            material_id=self.material_id,
            largo=self.largo,
            ancho=self.ancho,
            espesor_mm=self.espesor_mm,
            minutos_laser=self.minutos_laser,
            cantidad=self.cantidad,
            porcentaje_utilidad=self.porcentaje_utilidad,
            subtotal=self.subtotal,
        )


class PreviewBody(LineaBody):
    material_id: int = Field(default=0, ge=0, le=INT32_MAX)  # optional for a preview


class ClienteBase(StrictBody):
    nombre: SafeText = Field(max_length=100)
    telefono: SafeText | None = Field(default=None, max_length=40)
    email: SafeText | None = Field(default=None, max_length=100)
    direccion: SafeText | None = Field(default=None, max_length=1000)
    es_eventual: bool = False

    def to_service(self) -> clients.ClienteIn:
        return clients.ClienteIn(**self.model_dump())


class ClienteCreate(ClienteBase):
    """A new client (also inline in a POS cart as `cliente_nuevo`)."""


class ClienteUpdate(StrictBody):
    """The fields to change; a contact field set to null is cleared."""

    nombre: SafeText | None = Field(default=None, max_length=100)
    telefono: SafeText | None = Field(default=None, max_length=40)
    email: SafeText | None = Field(default=None, max_length=100)
    direccion: SafeText | None = Field(default=None, max_length=1000)
    es_eventual: bool | None = None


class FusionBody(StrictBody):
    id_duplicado: Id32 = Field(
        description="The duplicate client merged into this one (its quotes and sales move here)."
    )


# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    MetodoPago = str
    EstadoCotizacionPedido = str
else:
    MetodoPago = Literal[d.values(d.MetodoPago)]
    EstadoCotizacionPedido = Literal[tuple(e.value for e in d.REQUESTABLE_QUOTE_STATES)]


class VentaBody(StrictBody):
    cliente_id: Int32 | None = Field(default=None, gt=0)
    cliente_nuevo: ClienteCreate | None = None
    carrito: list[LineaBody] = Field(min_length=1, max_length=200)
    monto_abonado: Money = Field(default=Decimal("0"), ge=0)
    metodo_pago: MetodoPago = "efectivo"
    referencia_pago: SafeText | None = Field(default=None, max_length=100)
    fecha_entrega: DomainDate | None = None
    permitir_backorder: bool = False
    total: Money | None = None


class EstatusBody(StrictBody):
    estatus: EstatusVenta
    motivo: SafeText | None = Field(default=None, max_length=2000)
    fecha_entrega: DomainDate | None = None
    version: Int32 | None = Field(default=None, ge=1, description="Optimistic concurrency check.")


class CancelarBody(StrictBody):
    motivo: SafeText = Field(min_length=1, max_length=2000)
    version: Int32 | None = Field(default=None, ge=1)


class ReprogramarBody(StrictBody):
    fecha_entrega: DomainDate
    motivo: SafeText | None = Field(default=None, max_length=2000)


class ReembolsoBody(StrictBody):
    referencia: SafeText | None = Field(
        default=None, max_length=100, description="How the money went back (transfer id, …)."
    )


class AbonoBody(StrictBody):
    monto: Money = Field(gt=0)
    metodo: MetodoPago = "efectivo"
    referencia: SafeText | None = Field(default=None, max_length=100)


class ProductoBase(StrictBody):
    nombre: SafeText = Field(min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad = 40
    foto: SafeText | None = Field(default=None, max_length=255)


class ProductoCreate(ProductoBase):
    pass


class ProductoUpdate(StrictBody):
    nombre: SafeText | None = Field(default=None, min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad | None = None
    foto: SafeText | None = Field(default=None, max_length=255)
    activo: bool | None = Field(
        default=None,
        description="`false` retires the product (hidden from the POS catalogue, refused in new "
        "carts and quotes; sale history kept); `true` re-activates it.",
    )


class MaterialBase(StrictBody):
    descripcion: SafeText = Field(min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)


class MaterialCreate(MaterialBase):
    stock_actual: int = Field(default=0, ge=0, le=10_000_000)
    stock_minimo: int = Field(default=0, ge=0, le=10_000_000)


class MaterialUpdate(StrictBody):
    descripcion: SafeText | None = Field(default=None, min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)
    stock_minimo: Int32 | None = Field(default=None, ge=0, le=10_000_000)
    activo: bool | None = Field(
        default=None,
        description="`false` retires the material (hidden from the POS catalogue, refused in new "
        "carts and quotes; sales and quotes that used it kept); `true` re-activates it.",
    )


class MovimientoBody(StrictBody):
    cantidad: int = Field(ge=-10_000_000, le=10_000_000)
    nota: SafeText | None = Field(default=None, max_length=2000)


class ConteoBody(StrictBody):
    contado: int = Field(ge=-10_000_000, le=10_000_000)
    nota: SafeText | None = Field(default=None, max_length=2000)


class TarifaBody(StrictBody):
    tarifa_laser_minuto: Annotated[Decimal, Field(ge=0, max_digits=8, decimal_places=2)]
    version: Int32 | None = Field(default=None, ge=1)


class FactorBody(StrictBody):
    factor_costo: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=4)]


class CotizacionCreate(StrictBody):
    cliente_id: Int32 | None = Field(default=None, gt=0)
    linea: LineaBody
    vigencia_hasta: DomainDate | None = None


class CotizacionEstadoBody(StrictBody):
    estado: EstadoCotizacionPedido


class ConvertirBody(StrictBody):
    permitir_backorder: bool = False
    monto_abonado: Money = Field(default=Decimal("0"), ge=0)
    metodo_pago: MetodoPago = "efectivo"
    fecha_entrega: DomainDate | None = None


class PriceOut(SQLModel):
    precio_fijo: str | None
    area_cm2: str
    area_m2: str
    factor_costo: str | None
    costo_material: str
    utilidad: str
    costo_laser: str
    porcentaje_utilidad: int
    tarifa_laser_minuto: str
    precio_unitario: str
    cantidad: int
    subtotal: str


class AlertaStock(SQLModel):
    nombre: str
    actual: int
    minimo: int


class VentaCreada(SQLModel):
    ok: bool = True
    venta_id: int
    folio: str
    total: str
    saldo_restante: str
    estado_pago: str
    alertas_stock: list[AlertaStock]


# --- answers (`<Thing>Public`): field order is the order `sales.api.render` writes ---


class ClientePublic(SQLModel):
    id_cliente: int
    nombre: str
    telefono: str | None
    email: str | None
    direccion: str | None
    es_eventual: bool
    whatsapp: str | None


class Ok(SQLModel):
    ok: bool = True


class ClienteCreado(ClientePublic, Ok):
    """`ok` first, then the client (pydantic orders inherited fields from the last base)."""


class ClienteFusionado(SQLModel):
    cliente: ClientePublic
    cotizaciones_movidas: int
    ventas_movidas: int


class ProductoPublic(SQLModel):
    id_producto: int
    nombre: str
    detalle: str | None
    precio_fijo: str | None
    porcentaje_utilidad: int
    foto: str | None
    activo: bool


class MaterialPublic(SQLModel):
    id_material: int
    descripcion: str
    largo: str | None
    ancho: str | None
    stock_actual: int
    stock_minimo: int
    comprometido: int = Field(
        description="Held by confirmed sales the stock consumer has not applied yet"
    )
    disponible: int = Field(
        description="stock_actual - comprometido: what a sale without backorder may still take"
    )
    bajo_stock: bool
    activo: bool


class MaterialesPublic(SQLModel):
    items: list[MaterialPublic]
    materiales_bajos: int


class MovimientoAplicado(SQLModel):
    """A stock movement's effect."""

    id_material: int
    saldo_anterior: int
    stock_actual: int
    cruce_minimo: bool


class SinCambios(SQLModel):
    """A movement that changed nothing (e.g. a count equal to the stock)."""

    id_material: int
    sin_cambios: Literal[True]


MovimientoResultado = MovimientoAplicado | SinCambios


class MovimientoPublic(SQLModel):
    id: int
    cantidad: int
    saldo_anterior: int
    saldo_resultante: int
    motivo: str
    id_venta: int | None
    event_id: str | None
    nota: str | None
    usuario: str
    fecha: str | None


class TabuladorPublic(SQLModel):
    espesor_mm: int
    factor_costo: str


class TarifaPublic(SQLModel):
    tarifa_laser_minuto: str
    version: int


class ConfiguracionPublic(TarifaPublic):
    actualizado: str | None
    tabulador: list[TabuladorPublic]


class CotizacionPublic(SQLModel):
    id_cotizacion: int
    folio: str
    cliente_id: int | None
    producto_id: int
    material_id: int
    largo: str
    ancho: str
    espesor_mm: int
    porcentaje_utilidad: int
    minutos_laser: int
    cantidad: int
    precio_unitario: str
    monto_total: str
    parametros_precio: dict[str, Any]
    estado: str
    fecha: str
    vigencia_hasta: str


class VentaPublic(SQLModel):
    id_venta: int
    folio: str
    id_cliente: int | None
    id_cotizacion: int | None
    estatus: str
    estado_pago: str
    estatus_legacy: str
    total: str
    total_pagado: str
    saldo_restante: str
    fecha_venta: str
    fecha_entrega: str | None
    permitir_backorder: bool
    version: int


class HistorialPrecioPublic(SQLModel):
    """One change of the price configuration: `entidad` configuracion (clave
    tarifa_laser_minuto), tabulador (clave = espesor_mm) or producto (clave
    `<id>.porcentaje_utilidad` / `<id>.precio_fijo`); a null value is "none" (a thickness
    added or removed, no fixed price)."""

    id: int
    entidad: str
    clave: str
    valor_anterior: str | None
    valor_nuevo: str | None
    usuario: str
    fecha: str | None


class ResumenVentas(SQLModel):
    """Totals over every sale the list's filters match (not only the page)."""

    total_filas: int
    total_ventas: str
    total_cobrado: str
    pendientes: int
    en_produccion: int
    entregadas: int
    canceladas: int


class VentasPublic(SQLModel):
    items: list[VentaPublic]
    resumen: ResumenVentas


class LineaPublic(SQLModel):
    id_detalle: int
    producto_id: int
    material_id: int
    cantidad: int
    largo: str
    ancho: str
    espesor_mm: int
    porcentaje_utilidad: int
    minutos_laser: int
    precio_unitario: str
    subtotal: str
    parametros_precio: dict[str, Any]


class AbonoPublic(SQLModel):
    id_abono: int
    monto: str
    metodo: str
    referencia: str | None
    estado: str
    fecha: str | None
    fecha_negocio: str
    usuario: str


class AuditoriaPublic(SQLModel):
    accion: str
    desde: str | None
    hacia: str | None
    motivo: str | None
    usuario: str
    fecha: str | None


class VentaDetallePublic(VentaPublic):
    cliente: ClientePublic | None
    lineas: list[LineaPublic]
    abonos: list[AbonoPublic]
    auditoria: list[AuditoriaPublic]


class VentaConAbono(VentaPublic):
    abono: AbonoPublic


class ReporteVentasFila(SQLModel):
    periodo: str
    ventas: int
    total_vendido: str
    ingresos: str


class CuentaPorCobrar(SQLModel):
    id_cliente: int | None
    cliente: str
    ventas: int
    total: str
    pagado: str
    saldo: str


class BajoStockFila(SQLModel):
    id_material: int
    nombre: str
    actual: int
    minimo: int
    faltante: int


class Dashboard(SQLModel):
    fecha: str
    ventas_mes: int
    vendido_mes: str
    ingresos_mes: str
    por_cobrar: str
    materiales_bajos: int
