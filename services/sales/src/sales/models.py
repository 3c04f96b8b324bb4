"""Tables of the sales service (DOMAIN Part A), SQLAlchemy 2.0 typed ORM on the service's Base.

Rules enforced at DB level: unique thickness in the tabulador (AC-D14), singleton price
configuration, PROTECT (RESTRICT) from sale lines / quotes to catalog rows (AC-D16), one sale
per quote (AC-D26), positive quantities and prices, Σ abonos ≤ total (denormalised
`ventas.total_pagado` guarded by a CHECK), state values, one stock movement per
(source event, material) so a redelivered event cannot apply twice.
`materiales.stock_actual` deliberately has NO CHECK ≥ 0 (DECIDE-A2).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = Numeric(12, 2)
DIM = Numeric(10, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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


class Cliente(Base):
    __tablename__ = "clientes"
    __table_args__ = (CheckConstraint("length(trim(nombre)) > 0", name="nombre_no_vacio"),)

    id_cliente: Mapped[int] = mapped_column(Integer, primary_key=True)
    nombre: Mapped[str] = mapped_column(String(100), index=True)
    telefono: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(100))
    direccion: Mapped[str | None] = mapped_column(Text)
    es_eventual: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    creado_en: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Producto(Base):
    __tablename__ = "productos"
    __table_args__ = (
        CheckConstraint("precio_fijo IS NULL OR precio_fijo > 0", name="precio_fijo_positivo"),
        CheckConstraint(
            "porcentaje_utilidad >= 0 AND porcentaje_utilidad <= 1000", name="utilidad_rango"
        ),
    )

    id_producto: Mapped[int] = mapped_column(Integer, primary_key=True)
    nombre: Mapped[str] = mapped_column(String(100))
    detalle: Mapped[str | None] = mapped_column(String(100))
    precio_fijo: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    porcentaje_utilidad: Mapped[int] = mapped_column(Integer, server_default=text("40"), default=40)
    foto: Mapped[str | None] = mapped_column(String(255))
    activo: Mapped[bool] = mapped_column(Boolean, server_default=true(), default=True)


class Material(Base):
    __tablename__ = "materiales"
    __table_args__ = (
        CheckConstraint("stock_minimo >= 0", name="stock_minimo_no_negativo"),
        CheckConstraint("largo IS NULL OR largo > 0", name="largo_positivo"),
        CheckConstraint("ancho IS NULL OR ancho > 0", name="ancho_positivo"),
    )

    id_material: Mapped[int] = mapped_column(Integer, primary_key=True)
    descripcion: Mapped[str] = mapped_column(String(100))
    largo: Mapped[Decimal | None] = mapped_column(DIM)
    ancho: Mapped[Decimal | None] = mapped_column(DIM)
    stock_actual: Mapped[int] = mapped_column(Integer)  # may be negative (DECIDE-A2)
    stock_minimo: Mapped[int] = mapped_column(Integer)
    activo: Mapped[bool] = mapped_column(Boolean, server_default=true(), default=True)


# Partial-ish read path of the low-stock report.
Index("ix_materiales_bajo_stock", Material.stock_actual, Material.stock_minimo)


class TabuladorCosto(Base):
    __tablename__ = "tabulador_costos"
    __table_args__ = (
        UniqueConstraint("espesor_mm"),
        CheckConstraint("espesor_mm > 0", name="espesor_positivo"),
        CheckConstraint("factor_costo >= 0", name="factor_no_negativo"),
    )

    id_tabulador: Mapped[int] = mapped_column(Integer, primary_key=True)
    espesor_mm: Mapped[int] = mapped_column(Integer)
    factor_costo: Mapped[Decimal] = mapped_column(Numeric(10, 4))


class ConfiguracionPrecios(Base):
    __tablename__ = "configuracion_precios"
    __table_args__ = (
        CheckConstraint("id = 1", name="singleton"),
        CheckConstraint("tarifa_laser_minuto >= 0", name="tarifa_no_negativa"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tarifa_laser_minuto: Mapped[Decimal] = mapped_column(
        Numeric(8, 2), server_default=text("15.00")
    )
    actualizado: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)


class HistorialPrecio(Base):
    """Append-only history of price configuration changes (tarifa, factors, utilities)."""

    __tablename__ = "historial_precios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entidad: Mapped[str] = mapped_column(String(40))
    clave: Mapped[str] = mapped_column(String(40))
    valor_anterior: Mapped[str | None] = mapped_column(String(40))
    valor_nuevo: Mapped[str | None] = mapped_column(String(40))
    usuario: Mapped[str] = mapped_column(String(100))
    fecha: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Cotizacion(Base):
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

    id_cotizacion: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_cliente: Mapped[int | None] = mapped_column(
        ForeignKey("clientes.id_cliente", ondelete="RESTRICT"), index=True
    )
    id_producto: Mapped[int] = mapped_column(
        ForeignKey("productos.id_producto", ondelete="RESTRICT")
    )
    id_material: Mapped[int] = mapped_column(
        ForeignKey("materiales.id_material", ondelete="RESTRICT"), index=True
    )
    largo_pza: Mapped[Decimal] = mapped_column(DIM)
    ancho_pza: Mapped[Decimal] = mapped_column(DIM)
    espesor_mm: Mapped[int] = mapped_column(Integer)
    porcentaje_utilidad: Mapped[int] = mapped_column(Integer)
    minutos_laser: Mapped[int] = mapped_column(Integer)
    cantidad: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)
    precio_unitario: Mapped[Decimal] = mapped_column(MONEY)
    monto_total: Mapped[Decimal] = mapped_column(MONEY)
    parametros_precio: Mapped[dict[str, Any]] = mapped_column(JSON)
    estado: Mapped[str] = mapped_column(
        String(20),
        server_default=EstadoCotizacion.BORRADOR.value,
        default=EstadoCotizacion.BORRADOR.value,
    )
    fecha: Mapped[date] = mapped_column(Date)
    vigencia_hasta: Mapped[date] = mapped_column(Date)
    creado_por: Mapped[str] = mapped_column(String(100))
    creado_en: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)


class Venta(Base):
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

    id_venta: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_cotizacion: Mapped[int | None] = mapped_column(
        ForeignKey("cotizaciones.id_cotizacion", ondelete="RESTRICT")
    )
    id_cliente: Mapped[int | None] = mapped_column(
        ForeignKey("clientes.id_cliente", ondelete="RESTRICT"), index=True
    )
    estatus: Mapped[str] = mapped_column(
        String(20),
        server_default=EstatusVenta.PENDIENTE.value,
        default=EstatusVenta.PENDIENTE.value,
        index=True,
    )
    total: Mapped[Decimal] = mapped_column(MONEY)
    total_pagado: Mapped[Decimal] = mapped_column(
        MONEY, server_default=text("0"), default=Decimal("0.00")
    )
    permitir_backorder: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    fecha_venta: Mapped[date] = mapped_column(Date)
    fecha_entrega: Mapped[date | None] = mapped_column(Date)
    creado_por: Mapped[str] = mapped_column(String(100))
    creado_en: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    motivo_cancelacion: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)

    lineas: Mapped[list[DetalleVenta]] = relationship(
        back_populates="venta", order_by="DetalleVenta.id_detalle", lazy="raise"
    )


class DetalleVenta(Base):
    __tablename__ = "detalle_venta"
    __table_args__ = (
        CheckConstraint("cantidad >= 1", name="cantidad_positiva"),
        CheckConstraint("largo_pza >= 0 AND ancho_pza >= 0", name="medidas_no_negativas"),
        CheckConstraint("minutos_laser >= 0", name="minutos_no_negativos"),
        CheckConstraint("precio_unitario > 0", name="precio_positivo"),
    )

    id_detalle: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_venta: Mapped[int] = mapped_column(
        ForeignKey("ventas.id_venta", ondelete="CASCADE"), index=True
    )
    id_producto: Mapped[int] = mapped_column(
        ForeignKey("productos.id_producto", ondelete="RESTRICT"), index=True
    )
    id_material: Mapped[int] = mapped_column(
        ForeignKey("materiales.id_material", ondelete="RESTRICT"), index=True
    )
    cantidad: Mapped[int] = mapped_column(Integer)
    largo_pza: Mapped[Decimal] = mapped_column(DIM)
    ancho_pza: Mapped[Decimal] = mapped_column(DIM)
    espesor_mm: Mapped[int] = mapped_column(Integer)
    porcentaje_utilidad: Mapped[int] = mapped_column(Integer)
    minutos_laser: Mapped[int] = mapped_column(Integer)
    precio_unitario: Mapped[Decimal] = mapped_column(MONEY)
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    parametros_precio: Mapped[dict[str, Any]] = mapped_column(JSON)

    venta: Mapped[Venta] = relationship(back_populates="lineas", lazy="raise")


class Abono(Base):
    """Payment ledger (DECIDE-A1): one row per abono, never overwritten."""

    __tablename__ = "abonos"
    __table_args__ = (
        CheckConstraint("monto > 0", name="monto_positivo"),
        CheckConstraint(_in("metodo", METODOS_PAGO), name="metodo_valido"),
        CheckConstraint(_in("estado", ESTADOS_ABONO), name="estado_valido"),
        Index("ix_abonos_fecha", "fecha_negocio"),
    )

    id_abono: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_venta: Mapped[int] = mapped_column(
        ForeignKey("ventas.id_venta", ondelete="RESTRICT"), index=True
    )
    monto: Mapped[Decimal] = mapped_column(MONEY)
    metodo: Mapped[str] = mapped_column(String(20))
    referencia: Mapped[str | None] = mapped_column(String(100))
    estado: Mapped[str] = mapped_column(
        String(20), server_default=EstadoAbono.APLICADO.value, default=EstadoAbono.APLICADO.value
    )
    fecha: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fecha_negocio: Mapped[date] = mapped_column(Date)
    usuario: Mapped[str] = mapped_column(String(100))


class MovimientoStock(Base):
    """Stock ledger (kardex): every change of `stock_actual`, with reason and source event."""

    __tablename__ = "movimientos_stock"
    __table_args__ = (
        CheckConstraint("cantidad <> 0", name="cantidad_no_cero"),
        CheckConstraint(_in("motivo", MOTIVOS_MOVIMIENTO), name="motivo_valido"),
        UniqueConstraint("event_id", "id_material", name="uq_movimientos_evento_material"),
        Index("ix_movimientos_material", "id_material", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_material: Mapped[int] = mapped_column(
        ForeignKey("materiales.id_material", ondelete="RESTRICT")
    )
    cantidad: Mapped[int] = mapped_column(Integer)  # signed delta
    saldo_anterior: Mapped[int] = mapped_column(Integer)
    saldo_resultante: Mapped[int] = mapped_column(Integer)
    motivo: Mapped[str] = mapped_column(String(20))
    id_venta: Mapped[int | None] = mapped_column(
        ForeignKey("ventas.id_venta", ondelete="RESTRICT"), index=True
    )
    event_id: Mapped[str | None] = mapped_column(String(64))
    nota: Mapped[str | None] = mapped_column(Text)
    usuario: Mapped[str] = mapped_column(String(100))
    fecha: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Auditoria(Base):
    """Append-only audit of state transitions (§0.3-8). Never cascade-deleted (no FK)."""

    __tablename__ = "auditoria"
    __table_args__ = (Index("ix_auditoria_entidad", "entidad", "entidad_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entidad: Mapped[str] = mapped_column(String(40))
    entidad_id: Mapped[int] = mapped_column(Integer)
    accion: Mapped[str] = mapped_column(String(40))
    desde: Mapped[str | None] = mapped_column(String(40))
    hacia: Mapped[str | None] = mapped_column(String(40))
    motivo: Mapped[str | None] = mapped_column(Text)
    usuario: Mapped[str] = mapped_column(String(100))
    fecha: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
