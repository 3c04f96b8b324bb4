"""Request and response models of the sales API. Vocabulary literals are generated from
`sales.domain.vocab` (one definition).
"""

from __future__ import annotations

from decimal import Decimal
from typing import (
    TYPE_CHECKING,
    Annotated,
    Literal,
)

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

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


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LineaBody(BaseModel):
    """A cart line. Legacy display-only keys (`producto_nombre`, `material_nombre`) are ignored."""

    model_config = ConfigDict(extra="ignore")

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


class ClienteBody(StrictBody):
    nombre: SafeText = Field(max_length=100)
    telefono: SafeText | None = Field(default=None, max_length=40)
    email: SafeText | None = Field(default=None, max_length=100)
    direccion: SafeText | None = Field(default=None, max_length=1000)
    es_eventual: bool = False

    def to_service(self) -> clients.ClienteIn:
        return clients.ClienteIn(**self.model_dump())


# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    MetodoPago = str
    EstadoCotizacionPedido = str
else:
    MetodoPago = Literal[d.values(d.MetodoPago)]
    EstadoCotizacionPedido = Literal[tuple(e.value for e in d.REQUESTABLE_QUOTE_STATES)]


class VentaBody(StrictBody):
    cliente_id: Int32 | None = Field(default=None, gt=0)
    cliente_nuevo: ClienteBody | None = None
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


class AbonoBody(StrictBody):
    monto: Money = Field(gt=0)
    metodo: MetodoPago = "efectivo"
    referencia: SafeText | None = Field(default=None, max_length=100)


class ProductoBody(StrictBody):
    nombre: SafeText = Field(min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad = 40
    foto: SafeText | None = Field(default=None, max_length=255)


class ProductoPatch(StrictBody):
    nombre: SafeText | None = Field(default=None, min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad | None = None
    foto: SafeText | None = Field(default=None, max_length=255)


class MaterialBody(StrictBody):
    descripcion: SafeText = Field(min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)
    stock_actual: int = Field(default=0, ge=0, le=10_000_000)
    stock_minimo: int = Field(default=0, ge=0, le=10_000_000)


class MaterialPatch(StrictBody):
    descripcion: SafeText | None = Field(default=None, min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)
    stock_minimo: Int32 | None = Field(default=None, ge=0, le=10_000_000)


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


class CotizacionBody(StrictBody):
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


class PriceOut(BaseModel):
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


class AlertaStock(BaseModel):
    nombre: str
    actual: int
    minimo: int


class VentaCreada(BaseModel):
    ok: bool = True
    venta_id: int
    folio: str
    total: str
    saldo_restante: str
    estado_pago: str
    alertas_stock: list[AlertaStock]
