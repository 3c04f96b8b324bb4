"""Tables of the sales service (DOMAIN Part A): SQLModel table models on the service's own
registry and MetaData (`Table`; `Base` is the same class, for importers of `Base.metadata`).

Rules enforced at DB level: unique thickness in the tabulador (AC-D14), singleton price
configuration, PROTECT (RESTRICT) from sale lines / quotes to catalog rows (AC-D16), one sale
per quote (AC-D26), positive quantities and prices, Σ abonos ≤ total (denormalised
`ventas.total_pagado` guarded by a CHECK), state values, one stock movement per
(source event, material) so a redelivered event cannot apply twice.
`materiales.stock_actual` deliberately has NO CHECK ≥ 0 (DECIDE-A2);
`materiales.comprometido` (held by confirmed sales not yet applied) is never negative.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from nexo_messaging.tables import inbox_table, outbox_table
from sales.domain.vocab import (
    EstadoAbono,
    EstadoCotizacion,
    EstatusVenta,
    MetodoPago,
    MotivoMovimiento,
    values,
)
from service_defaults.idempotency import idempotency_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Mapped as Col
else:

    class Col:
        """`Col[T]` is `T` at run time (the pydantic field type); a type checker reads
        `sqlalchemy.orm.Mapped[T]`, which is what the class attribute is (a column expression
        for `select(...)`/`where(...)`) while an instance's attribute is a `T`."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = Numeric(12, 2)
DIM = Numeric(10, 2)


class Table(SQLModel, registry=registry(metadata=MetaData(naming_convention=NAMING))):
    """Base of the sales table models: its own registry and MetaData (several services load in
    one process in the embedded mode, each with tables named outbox/inbox/idempotency_keys)."""


Base = Table
"""`Base.metadata` is the service's MetaData (alembic env, tests, bench)."""


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)

# CHECK value lists: derived from the domain's vocabularies (`sales.domain.vocab`), never spelled
# out here; `test_sales_vocab.py` checks the migrated constraints against the enums.
ESTATUS_VENTA = values(EstatusVenta)
ESTADOS_COTIZACION = values(EstadoCotizacion)
METODOS_PAGO = values(MetodoPago)
ESTADOS_ABONO = values(EstadoAbono)
MOTIVOS_MOVIMIENTO = values(MotivoMovimiento)


def _in(column: str, allowed: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in allowed)})"


def _now() -> Any:
    return func.now()


def column(type_: Any, *args: Any, nullable: bool = False, **kwargs: Any) -> Any:
    """A field stored in exactly this column (NOT NULL unless said). No pydantic default: a
    field left out of the constructor is not set, so the column's default or server default
    applies on INSERT, as with a plain mapped column."""
    return Field(sa_column=Column(type_, *args, nullable=nullable, **kwargs))


class Cliente(Table, table=True):
    __tablename__ = "clientes"
    __table_args__ = (CheckConstraint("length(trim(nombre)) > 0", name="nombre_no_vacio"),)

    id_cliente: Col[int] = column(Integer, primary_key=True)
    nombre: Col[str] = column(String(100), index=True)
    telefono: Col[str | None] = column(String(20), nullable=True)
    email: Col[str | None] = column(String(100), nullable=True)
    direccion: Col[str | None] = column(Text, nullable=True)
    es_eventual: Col[bool] = column(Boolean, server_default=false(), default=False)
    creado_en: Col[datetime] = column(DateTime(timezone=True), server_default=_now())


class Producto(Table, table=True):
    __tablename__ = "productos"
    __table_args__ = (
        CheckConstraint("precio_fijo IS NULL OR precio_fijo > 0", name="precio_fijo_positivo"),
        CheckConstraint(
            "porcentaje_utilidad >= 0 AND porcentaje_utilidad <= 1000", name="utilidad_rango"
        ),
    )

    id_producto: Col[int] = column(Integer, primary_key=True)
    nombre: Col[str] = column(String(100))
    detalle: Col[str | None] = column(String(100), nullable=True)
    precio_fijo: Col[Decimal | None] = column(Numeric(10, 2), nullable=True)
    porcentaje_utilidad: Col[int] = column(Integer, server_default=text("40"), default=40)
    foto: Col[str | None] = column(String(255), nullable=True)
    activo: Col[bool] = column(Boolean, server_default=true(), default=True)


class Material(Table, table=True):
    __tablename__ = "materiales"
    __table_args__ = (
        CheckConstraint("stock_minimo >= 0", name="stock_minimo_no_negativo"),
        CheckConstraint("largo IS NULL OR largo > 0", name="largo_positivo"),
        CheckConstraint("ancho IS NULL OR ancho > 0", name="ancho_positivo"),
        CheckConstraint("comprometido >= 0", name="comprometido_no_negativo"),
    )

    id_material: Col[int] = column(Integer, primary_key=True)
    descripcion: Col[str] = column(String(100))
    largo: Col[Decimal | None] = column(DIM, nullable=True)
    ancho: Col[Decimal | None] = column(DIM, nullable=True)
    stock_actual: Col[int] = column(Integer)  # may be negative (DECIDE-A2)
    stock_minimo: Col[int] = column(Integer)
    activo: Col[bool] = column(Boolean, server_default=true(), default=True)
    # Σ cantidad of the confirmed sales whose SaleConfirmed the stock consumer has not applied
    # yet (available-to-promise: a sale is admitted against stock_actual - comprometido)
    comprometido: Col[int] = column(Integer, server_default=text("0"), default=0)


# Partial-ish read path of the low-stock report.
Index("ix_materiales_bajo_stock", Material.stock_actual, Material.stock_minimo)


class TabuladorCosto(Table, table=True):
    __tablename__ = "tabulador_costos"
    __table_args__ = (
        UniqueConstraint("espesor_mm"),
        CheckConstraint("espesor_mm > 0", name="espesor_positivo"),
        CheckConstraint("factor_costo >= 0", name="factor_no_negativo"),
    )

    id_tabulador: Col[int] = column(Integer, primary_key=True)
    espesor_mm: Col[int] = column(Integer)
    factor_costo: Col[Decimal] = column(Numeric(10, 4))


class ConfiguracionPrecios(Table, table=True):
    __tablename__ = "configuracion_precios"
    __table_args__ = (
        CheckConstraint("id = 1", name="singleton"),
        CheckConstraint("tarifa_laser_minuto >= 0", name="tarifa_no_negativa"),
    )

    id: Col[int] = column(Integer, primary_key=True, autoincrement=False)
    tarifa_laser_minuto: Col[Decimal] = column(Numeric(8, 2), server_default=text("15.00"))
    actualizado: Col[datetime] = column(DateTime(timezone=True), server_default=_now())
    version: Col[int] = column(Integer, server_default=text("1"), default=1)


class HistorialPrecio(Table, table=True):
    """Append-only history of price configuration changes (tarifa, factors, utilities)."""

    __tablename__ = "historial_precios"

    id: Col[int] = column(Integer, primary_key=True)
    entidad: Col[str] = column(String(40))
    clave: Col[str] = column(String(40))
    valor_anterior: Col[str | None] = column(String(40), nullable=True)
    valor_nuevo: Col[str | None] = column(String(40), nullable=True)
    usuario: Col[str] = column(String(100))
    fecha: Col[datetime] = column(DateTime(timezone=True), server_default=_now())


class PricedLine(SQLModel):
    """The columns a priced line freezes, written once for a quote and a sale line: sizes,
    thickness, utility, laser minutes, unit price and the pricing parameters. Plain fields (not
    `sa_column`): each table gets its own columns, NOT NULL, typed from the annotation
    (`Decimal` with digits → NUMERIC(p, s)). Plain annotations: a mixin is not mapped, so
    `Mapped[...]` would read as a column expression on instances; no query filters on these."""

    largo_pza: Decimal = Field(max_digits=10, decimal_places=2, nullable=False)
    ancho_pza: Decimal = Field(max_digits=10, decimal_places=2, nullable=False)
    espesor_mm: int = Field(nullable=False)
    porcentaje_utilidad: int = Field(nullable=False)
    minutos_laser: int = Field(nullable=False)
    precio_unitario: Decimal = Field(max_digits=12, decimal_places=2, nullable=False)
    parametros_precio: dict[str, Any] = Field(sa_type=JSON, nullable=False)


class Cotizacion(Table, PricedLine, table=True):
    __tablename__ = "cotizaciones"
    __table_args__ = (
        CheckConstraint(_in("estado", ESTADOS_COTIZACION), name="estado_valido"),
        CheckConstraint("cantidad >= 1", name="cantidad_positiva"),
        CheckConstraint("largo_pza >= 0 AND ancho_pza >= 0", name="medidas_no_negativas"),
        CheckConstraint("minutos_laser >= 0", name="minutos_no_negativos"),
        CheckConstraint("precio_unitario > 0", name="precio_positivo"),
        CheckConstraint("vigencia_hasta >= fecha", name="vigencia_posterior"),
        Index("ix_cotizaciones_estado_vigencia", "estado", "vigencia_hasta"),
    )

    id_cotizacion: Col[int] = column(Integer, primary_key=True)
    id_cliente: Col[int | None] = column(
        Integer, ForeignKey("clientes.id_cliente", ondelete="RESTRICT"), index=True, nullable=True
    )
    id_producto: Col[int] = column(
        Integer, ForeignKey("productos.id_producto", ondelete="RESTRICT")
    )
    id_material: Col[int] = column(
        Integer, ForeignKey("materiales.id_material", ondelete="RESTRICT"), index=True
    )
    cantidad: Col[int] = column(Integer, server_default=text("1"), default=1)
    monto_total: Col[Decimal] = column(MONEY)
    estado: Col[str] = column(
        String(20),
        server_default=EstadoCotizacion.BORRADOR.value,
        default=EstadoCotizacion.BORRADOR.value,
    )
    fecha: Col[date] = column(Date)
    vigencia_hasta: Col[date] = column(Date)
    creado_por: Col[str] = column(String(100))
    creado_en: Col[datetime] = column(DateTime(timezone=True), server_default=_now())
    version: Col[int] = column(Integer, server_default=text("1"), default=1)


class Venta(Table, table=True):
    __tablename__ = "ventas"
    __table_args__ = (
        CheckConstraint(_in("estatus", ESTATUS_VENTA), name="estatus_valido"),
        CheckConstraint("total >= 0", name="total_no_negativo"),
        CheckConstraint(
            "total_pagado >= 0 AND total_pagado <= total", name="pagado_dentro_del_total"
        ),
        UniqueConstraint("id_cotizacion"),
        Index("ix_ventas_fecha", "fecha_venta", "id_venta"),
    )

    id_venta: Col[int] = column(Integer, primary_key=True)
    id_cotizacion: Col[int | None] = column(
        Integer, ForeignKey("cotizaciones.id_cotizacion", ondelete="RESTRICT"), nullable=True
    )
    id_cliente: Col[int | None] = column(
        Integer, ForeignKey("clientes.id_cliente", ondelete="RESTRICT"), index=True, nullable=True
    )
    estatus: Col[str] = column(
        String(20),
        server_default=EstatusVenta.PENDIENTE.value,
        default=EstatusVenta.PENDIENTE.value,
        index=True,
    )
    total: Col[Decimal] = column(MONEY)
    total_pagado: Col[Decimal] = column(MONEY, server_default=text("0"), default=Decimal("0.00"))
    permitir_backorder: Col[bool] = column(Boolean, server_default=false(), default=False)
    fecha_venta: Col[date] = column(Date)
    fecha_entrega: Col[date | None] = column(Date, nullable=True)
    creado_por: Col[str] = column(String(100))
    creado_en: Col[datetime] = column(DateTime(timezone=True), server_default=_now())
    motivo_cancelacion: Col[str | None] = column(Text, nullable=True)
    version: Col[int] = column(Integer, server_default=text("1"), default=1)
    # its quantities were added to materiales.comprometido at confirmation: the SaleConfirmed
    # consumer releases them (false for the sales confirmed before available-to-promise)
    compromete_stock: Col[bool] = column(Boolean, server_default=false(), default=False)


class DetalleVenta(Table, PricedLine, table=True):
    __tablename__ = "detalle_venta"
    __table_args__ = (
        CheckConstraint("cantidad >= 1", name="cantidad_positiva"),
        CheckConstraint("largo_pza >= 0 AND ancho_pza >= 0", name="medidas_no_negativas"),
        CheckConstraint("minutos_laser >= 0", name="minutos_no_negativos"),
        CheckConstraint("precio_unitario > 0", name="precio_positivo"),
    )

    id_detalle: Col[int] = column(Integer, primary_key=True)
    id_venta: Col[int] = column(
        Integer, ForeignKey("ventas.id_venta", ondelete="CASCADE"), index=True
    )
    id_producto: Col[int] = column(
        Integer, ForeignKey("productos.id_producto", ondelete="RESTRICT"), index=True
    )
    id_material: Col[int] = column(
        Integer, ForeignKey("materiales.id_material", ondelete="RESTRICT"), index=True
    )
    cantidad: Col[int] = column(Integer)
    subtotal: Col[Decimal] = column(MONEY)


class Abono(Table, table=True):
    """Payment ledger (DECIDE-A1): one row per abono, never overwritten."""

    __tablename__ = "abonos"
    __table_args__ = (
        CheckConstraint("monto > 0", name="monto_positivo"),
        CheckConstraint(_in("metodo", METODOS_PAGO), name="metodo_valido"),
        CheckConstraint(_in("estado", ESTADOS_ABONO), name="estado_valido"),
        Index("ix_abonos_fecha", "fecha_negocio"),
    )

    id_abono: Col[int] = column(Integer, primary_key=True)
    id_venta: Col[int] = column(
        Integer, ForeignKey("ventas.id_venta", ondelete="RESTRICT"), index=True
    )
    monto: Col[Decimal] = column(MONEY)
    metodo: Col[str] = column(String(20))
    referencia: Col[str | None] = column(String(100), nullable=True)
    estado: Col[str] = column(
        String(20), server_default=EstadoAbono.APLICADO.value, default=EstadoAbono.APLICADO.value
    )
    fecha: Col[datetime] = column(DateTime(timezone=True))
    fecha_negocio: Col[date] = column(Date)
    usuario: Col[str] = column(String(100))


class MovimientoStock(Table, table=True):
    """Stock ledger (kardex): every change of `stock_actual`, with reason and source event."""

    __tablename__ = "movimientos_stock"
    __table_args__ = (
        CheckConstraint("cantidad <> 0", name="cantidad_no_cero"),
        CheckConstraint(_in("motivo", MOTIVOS_MOVIMIENTO), name="motivo_valido"),
        UniqueConstraint("event_id", "id_material", name="uq_movimientos_evento_material"),
        Index("ix_movimientos_material", "id_material", "id"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_material: Col[int] = column(
        Integer, ForeignKey("materiales.id_material", ondelete="RESTRICT")
    )
    cantidad: Col[int] = column(Integer)  # signed delta
    saldo_anterior: Col[int] = column(Integer)
    saldo_resultante: Col[int] = column(Integer)
    motivo: Col[str] = column(String(20))
    id_venta: Col[int | None] = column(
        Integer, ForeignKey("ventas.id_venta", ondelete="RESTRICT"), index=True, nullable=True
    )
    event_id: Col[str | None] = column(String(64), nullable=True)
    nota: Col[str | None] = column(Text, nullable=True)
    usuario: Col[str] = column(String(100))
    fecha: Col[datetime] = column(DateTime(timezone=True), server_default=_now())


class Auditoria(Table, table=True):
    """Append-only audit of state transitions (§0.3-8). Never cascade-deleted (no FK)."""

    __tablename__ = "auditoria"
    __table_args__ = (Index("ix_auditoria_entidad", "entidad", "entidad_id", "id"),)

    id: Col[int] = column(Integer, primary_key=True)
    entidad: Col[str] = column(String(40))
    entidad_id: Col[int] = column(Integer)
    accion: Col[str] = column(String(40))
    desde: Col[str | None] = column(String(40), nullable=True)
    hacia: Col[str | None] = column(String(40), nullable=True)
    motivo: Col[str | None] = column(Text, nullable=True)
    usuario: Col[str] = column(String(100))
    fecha: Col[datetime] = column(DateTime(timezone=True), server_default=_now())
    payload: Col[dict[str, Any] | None] = column(JSON, nullable=True)
