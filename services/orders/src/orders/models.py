"""Tables of the orders service (DOMAIN Part B), SQLAlchemy 2.0 typed ORM.

Rules enforced at the database level:

* `lote_ubicaciones`: ``0 ≤ cantidad_reservada ≤ cantidad`` (reservations never exceed stock;
  the counter is only changed by conditional atomic updates in the same transaction as the
  line that holds the reservation, §B.4.1 f), ``cantidad ≥ 0`` (HO-D30);
* `solicitud_items`: ``cantidad_solicitada ≥ 1`` and ``0 ≤ cantidad_aprobada ≤ solicitada``
  (HO-D13, HO-D25), UNIQUE (solicitud, producto);
* `solicitudes`: UNIQUE folio; partial UNIQUE on the normalised external folio among
  non-cancelled requests unless a privileged duplicate was authorised (HO-D23);
* `propuestas`: at most one active (non-archived) proposal per request [DECIDE-B4];
* `lotes_asignados`: UNIQUE (item, lote_ubicacion), ``cantidad_asignada ≥ 1``;
* `movimientos_inventario`: append-only kardex, FKs RESTRICT, one SALIDA per
  (proposal, lote_ubicacion) — a retried dispatch can never move stock twice (HO-D29);
* `historial_estados`: append-only audit without FKs, never cascade-deleted (HO-D15).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nexo_messaging.tables import inbox_table, outbox_table
from orders.domain.vocab import (
    EstadoItemPropuesta,
    EstadoLinea,
    EstadoLote,
    EstadoPropuesta,
    EstadoSolicitud,
    EstadoUbicacion,
    TipoMovimiento,
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _in(column: str, allowed: Any) -> str:
    """``column IN ('a', 'b')``, or ``column IN (1, 4)`` for integer codes."""
    return f"{column} IN ({', '.join(str(v) if isinstance(v, int) else repr(v) for v in allowed)})"


# CHECK vocabularies: derived from the domain's enums, the one definition (`test_orders_vocab`)
ESTADOS_SOLICITUD = values(EstadoSolicitud)
ESTADOS_PROPUESTA = values(EstadoPropuesta)
ESTADOS_ITEM_PROPUESTA = values(EstadoItemPropuesta)
ESTADOS_LINEA = values(EstadoLinea)
ESTADOS_UBICACION = values(EstadoUbicacion)
ESTADOS_LOTE = values(EstadoLote)
TIPOS_MOVIMIENTO = values(TipoMovimiento)

TS = DateTime(timezone=True)


# ------------------------------------------------------------------------------ reference data


class Institucion(Base):
    __tablename__ = "instituciones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clue: Mapped[str] = mapped_column(String(20), unique=True)
    denominacion: Mapped[str] = mapped_column(String(200))
    activo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    creado_en: Mapped[datetime] = mapped_column(TS, server_default=func.now())


class Almacen(Base):
    __tablename__ = "almacenes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institucion_id: Mapped[int] = mapped_column(
        ForeignKey("instituciones.id", ondelete="RESTRICT"), index=True
    )
    nombre: Mapped[str] = mapped_column(String(150))
    codigo: Mapped[str] = mapped_column(String(50), unique=True)
    es_central: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    activo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Ubicacion(Base):
    __tablename__ = "ubicaciones"
    __table_args__ = (
        UniqueConstraint("almacen_id", "codigo", name="uq_ubicaciones_almacen_codigo"),
        CheckConstraint(_in("estado", ESTADOS_UBICACION), name="estado"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    almacen_id: Mapped[int] = mapped_column(ForeignKey("almacenes.id", ondelete="RESTRICT"))
    codigo: Mapped[str] = mapped_column(String(50))
    descripcion: Mapped[str | None] = mapped_column(String(200))
    estado: Mapped[str] = mapped_column(
        String(20), default="disponible", server_default="disponible"
    )
    activo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Producto(Base):
    __tablename__ = "productos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clave_cnis: Mapped[str] = mapped_column(String(150), unique=True)
    descripcion: Mapped[str] = mapped_column(Text, default="")
    unidad_medida: Mapped[str] = mapped_column(String(120), default="PIEZA")
    activo: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Lote(Base):
    """A lot. Stock and reservations live per location (`LoteUbicacion`); lot totals are derived
    as Σ locations (HO-D21, §B.4.1 e), never stored."""

    __tablename__ = "lotes"
    __table_args__ = (
        UniqueConstraint(
            "numero_lote", "producto_id", "institucion_id", name="uq_lotes_numero_producto_inst"
        ),
        CheckConstraint(_in("estado", ESTADOS_LOTE), name="estado"),
        CheckConstraint("cantidad_inicial >= 0", name="cantidad_inicial"),
        CheckConstraint(
            "precio_unitario IS NULL OR precio_unitario >= 0.01", name="precio_unitario"
        ),
        Index("ix_lotes_producto_caducidad", "producto_id", "fecha_caducidad"),
        Index("ix_lotes_fecha_caducidad", "fecha_caducidad"),
        # FEFO candidates (migration 0002): a product's DISPONIBLE lots in caducidad order, with
        # the tie-break and the id in the index, so the proposal read and the scope total scan
        # only the index (lot rows are rarely updated, so their pages stay all-visible)
        Index(
            "ix_lotes_fefo",
            "producto_id",
            "fecha_caducidad",
            postgresql_include=["numero_lote", "id"],
            postgresql_where=text("estado = 1"),
            sqlite_where=text("estado = 1"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    numero_lote: Mapped[str] = mapped_column(String(50))
    producto_id: Mapped[int] = mapped_column(ForeignKey("productos.id", ondelete="RESTRICT"))
    institucion_id: Mapped[int] = mapped_column(ForeignKey("instituciones.id", ondelete="RESTRICT"))
    almacen_id: Mapped[int | None] = mapped_column(ForeignKey("almacenes.id", ondelete="SET NULL"))
    cantidad_inicial: Mapped[int] = mapped_column(Integer, default=0)
    precio_unitario: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    fecha_fabricacion: Mapped[date | None] = mapped_column(Date)
    fecha_caducidad: Mapped[date | None] = mapped_column(Date)
    fecha_recepcion: Mapped[date] = mapped_column(Date)
    estado: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    motivo_cambio_estado: Mapped[str | None] = mapped_column(Text)
    fecha_cambio_estado: Mapped[datetime | None] = mapped_column(TS)
    usuario_cambio_estado: Mapped[str | None] = mapped_column(String(150))


class LoteUbicacion(Base):
    """Stock of a lot at a location: the physical source of truth, and its active reservations.

    `cantidad_reservada` = Σ active (RESERVADA/RECOGIDA) `lotes_asignados` on this row, kept in
    sync by conditional atomic updates only; the CHECK makes over-reservation impossible.
    """

    __tablename__ = "lote_ubicaciones"
    __table_args__ = (
        UniqueConstraint("lote_id", "ubicacion_id", name="uq_lote_ubicaciones_lote_ubicacion"),
        CheckConstraint("cantidad >= 0", name="cantidad"),
        CheckConstraint(
            "cantidad_reservada >= 0 AND cantidad_reservada <= cantidad", name="reservada"
        ),
        Index("ix_lote_ubicaciones_ubicacion", "ubicacion_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lote_id: Mapped[int] = mapped_column(ForeignKey("lotes.id", ondelete="RESTRICT"))
    ubicacion_id: Mapped[int] = mapped_column(ForeignKey("ubicaciones.id", ondelete="RESTRICT"))
    cantidad: Mapped[int] = mapped_column(Integer, default=0)
    cantidad_reservada: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    fecha_actualizacion: Mapped[datetime | None] = mapped_column(TS)


# ------------------------------------------------------------------------------ requests


class Solicitud(Base):
    __tablename__ = "solicitudes"
    __table_args__ = (
        CheckConstraint(_in("estado", ESTADOS_SOLICITUD), name="estado"),
        Index(
            "uq_solicitudes_folio_pedido_activo",
            "folio_pedido_clave",
            unique=True,
            postgresql_where=text(
                "folio_pedido_clave IS NOT NULL AND estado <> 'CANCELADA' "
                "AND NOT duplicado_autorizado"
            ),
            sqlite_where=text(
                "folio_pedido_clave IS NOT NULL AND estado <> 'CANCELADA' "
                "AND NOT duplicado_autorizado"
            ),
        ),
        Index("ix_solicitudes_estado_fecha", "estado", "fecha_solicitud"),
        Index("ix_solicitudes_folio_pedido_clave", "folio_pedido_clave"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    folio: Mapped[str] = mapped_column(String(50), unique=True)
    folio_pedido: Mapped[str | None] = mapped_column(String(100))
    folio_pedido_clave: Mapped[str | None] = mapped_column(String(100))
    duplicado_autorizado: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    institucion_id: Mapped[int] = mapped_column(
        ForeignKey("instituciones.id", ondelete="RESTRICT"), index=True
    )
    almacen_destino_id: Mapped[int] = mapped_column(
        ForeignKey("almacenes.id", ondelete="RESTRICT"), index=True
    )
    usuario_solicitante: Mapped[str] = mapped_column(String(150))
    usuario_validacion: Mapped[str | None] = mapped_column(String(150))
    fecha_solicitud: Mapped[datetime] = mapped_column(TS)
    fecha_validacion: Mapped[datetime | None] = mapped_column(TS)
    fecha_entrega_programada: Mapped[date] = mapped_column(Date)
    estado: Mapped[str] = mapped_column(String(20), default="PENDIENTE")
    observaciones: Mapped[str] = mapped_column(Text, default="")
    observaciones_validacion: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class SolicitudItem(Base):
    __tablename__ = "solicitud_items"
    __table_args__ = (
        UniqueConstraint("solicitud_id", "producto_id", name="uq_solicitud_items_producto"),
        CheckConstraint("cantidad_solicitada >= 1", name="solicitada"),
        CheckConstraint(
            "cantidad_aprobada IS NULL OR "
            "(cantidad_aprobada >= 0 AND cantidad_aprobada <= cantidad_solicitada)",
            name="aprobada",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    solicitud_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("solicitudes.id", ondelete="CASCADE")
    )
    producto_id: Mapped[int] = mapped_column(
        ForeignKey("productos.id", ondelete="RESTRICT"), index=True
    )
    cantidad_solicitada: Mapped[int] = mapped_column(Integer)
    cantidad_aprobada: Mapped[int | None] = mapped_column(Integer)
    justificacion_codigo: Mapped[str | None] = mapped_column(String(40))
    justificacion: Mapped[str | None] = mapped_column(String(255))


# ------------------------------------------------------------------------------ proposals


class Propuesta(Base):
    __tablename__ = "propuestas"
    __table_args__ = (
        CheckConstraint(_in("estado", ESTADOS_PROPUESTA), name="estado"),
        CheckConstraint(
            "total_solicitado >= 0 AND total_disponible >= 0 AND total_propuesto >= 0",
            name="totales",
        ),
        Index(
            "uq_propuestas_activa_por_solicitud",
            "solicitud_id",
            unique=True,
            postgresql_where=text("estado <> 'CANCELADA'"),
            sqlite_where=text("estado <> 'CANCELADA'"),
        ),
        Index("ix_propuestas_estado", "estado"),
        Index("ix_propuestas_solicitud", "solicitud_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    solicitud_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("solicitudes.id", ondelete="RESTRICT")
    )
    estado: Mapped[str] = mapped_column(String(20), default="GENERADA")
    fecha_generacion: Mapped[datetime] = mapped_column(TS)
    usuario_generacion: Mapped[str] = mapped_column(String(150))
    evento_origen: Mapped[str | None] = mapped_column(String(64))
    fecha_revision: Mapped[datetime | None] = mapped_column(TS)
    usuario_revision: Mapped[str | None] = mapped_column(String(150))
    observaciones_revision: Mapped[str] = mapped_column(Text, default="")
    fecha_surtimiento: Mapped[datetime | None] = mapped_column(TS)
    usuario_surtimiento: Mapped[str | None] = mapped_column(String(150))
    fecha_cancelacion: Mapped[datetime | None] = mapped_column(TS)
    motivo_cancelacion: Mapped[str | None] = mapped_column(Text)
    requiere_replanificacion: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    total_solicitado: Mapped[int] = mapped_column(Integer, default=0)
    total_disponible: Mapped[int] = mapped_column(Integer, default=0)
    total_propuesto: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class PropuestaItem(Base):
    __tablename__ = "propuesta_items"
    __table_args__ = (
        UniqueConstraint("propuesta_id", "solicitud_item_id", name="uq_propuesta_items_item"),
        CheckConstraint(_in("estado", ESTADOS_ITEM_PROPUESTA), name="estado"),
        CheckConstraint(
            "cantidad_aprobada >= 0 AND cantidad_disponible >= 0 AND cantidad_propuesta >= 0 "
            "AND cantidad_surtida >= 0 AND cantidad_pendiente >= 0 "
            "AND cantidad_propuesta <= cantidad_aprobada",
            name="cantidades",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    propuesta_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("propuestas.id", ondelete="RESTRICT")
    )
    solicitud_item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("solicitud_items.id", ondelete="RESTRICT")
    )
    producto_id: Mapped[int] = mapped_column(ForeignKey("productos.id", ondelete="RESTRICT"))
    cantidad_aprobada: Mapped[int] = mapped_column(Integer)
    cantidad_disponible: Mapped[int] = mapped_column(Integer, default=0)
    cantidad_propuesta: Mapped[int] = mapped_column(Integer, default=0)
    cantidad_surtida: Mapped[int] = mapped_column(Integer, default=0)
    cantidad_pendiente: Mapped[int] = mapped_column(Integer, default=0)
    estado: Mapped[str] = mapped_column(String(20), default="NO_DISPONIBLE")
    observaciones: Mapped[str] = mapped_column(Text, default="")


class LoteAsignado(Base):
    """A reservation and pick line at (lot, location) granularity (§B.2.6)."""

    __tablename__ = "lotes_asignados"
    __table_args__ = (
        UniqueConstraint(
            "propuesta_item_id", "lote_ubicacion_id", name="uq_lotes_asignados_item_lu"
        ),
        CheckConstraint("cantidad_asignada >= 1", name="cantidad"),
        CheckConstraint(_in("estado_linea", ESTADOS_LINEA), name="estado_linea"),
        CheckConstraint(
            "NOT override_caducidad OR motivo_override IS NOT NULL", name="override_motivo"
        ),
        Index("ix_lotes_asignados_lu_estado", "lote_ubicacion_id", "estado_linea"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    propuesta_item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("propuesta_items.id", ondelete="RESTRICT")
    )
    lote_ubicacion_id: Mapped[int] = mapped_column(
        ForeignKey("lote_ubicaciones.id", ondelete="RESTRICT")
    )
    cantidad_asignada: Mapped[int] = mapped_column(Integer)
    estado_linea: Mapped[str] = mapped_column(String(12), default="RESERVADA")
    override_caducidad: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    motivo_override: Mapped[str | None] = mapped_column(Text)
    usuario_override: Mapped[str | None] = mapped_column(String(150))
    no_elegible_desde: Mapped[datetime | None] = mapped_column(TS)
    fecha_asignacion: Mapped[datetime] = mapped_column(TS)
    fecha_recogida: Mapped[datetime | None] = mapped_column(TS)
    usuario_recogida: Mapped[str | None] = mapped_column(String(150))
    fecha_surtimiento: Mapped[datetime | None] = mapped_column(TS)


# ------------------------------------------------------------------------------ kardex, audit


class MovimientoInventario(Base):
    """Kardex: append-only; no code path updates or deletes a row (§B.2.1)."""

    __tablename__ = "movimientos_inventario"
    __table_args__ = (
        CheckConstraint(_in("tipo_movimiento", TIPOS_MOVIMIENTO), name="tipo"),
        CheckConstraint(
            "cantidad >= 0 AND cantidad_anterior >= 0 AND cantidad_nueva >= 0", name="cantidades"
        ),
        Index(
            "uq_movimientos_salida_propuesta_lu",
            "propuesta_id",
            "lote_ubicacion_id",
            unique=True,
            postgresql_where=text("tipo_movimiento = 'SALIDA' AND propuesta_id IS NOT NULL"),
            sqlite_where=text("tipo_movimiento = 'SALIDA' AND propuesta_id IS NOT NULL"),
        ),
        Index("ix_movimientos_lote_fecha", "lote_id", "fecha_movimiento"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    lote_id: Mapped[int] = mapped_column(ForeignKey("lotes.id", ondelete="RESTRICT"))
    lote_ubicacion_id: Mapped[int | None] = mapped_column(
        ForeignKey("lote_ubicaciones.id", ondelete="RESTRICT")
    )
    propuesta_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("propuestas.id", ondelete="RESTRICT")
    )
    tipo_movimiento: Mapped[str] = mapped_column(String(30))
    cantidad: Mapped[int] = mapped_column(Integer)
    cantidad_anterior: Mapped[int] = mapped_column(Integer)
    cantidad_nueva: Mapped[int] = mapped_column(Integer)
    motivo: Mapped[str] = mapped_column(Text, default="")
    documento_referencia: Mapped[str | None] = mapped_column(String(100))
    pedido: Mapped[str | None] = mapped_column(String(255))
    folio: Mapped[str | None] = mapped_column(String(255))
    institucion_destino_id: Mapped[int | None] = mapped_column(
        ForeignKey("instituciones.id", ondelete="RESTRICT")
    )
    usuario: Mapped[str] = mapped_column(String(150))
    fecha_movimiento: Mapped[datetime] = mapped_column(TS)


class HistorialEstado(Base):
    """Append-only audit of every state transition and reservation change (§0.3-8, HO-D14/15).

    No foreign keys: audit rows outlive whatever they describe and are never cascade-deleted.
    """

    __tablename__ = "historial_estados"
    __table_args__ = (Index("ix_historial_entidad", "entidad", "entidad_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    entidad: Mapped[str] = mapped_column(String(30))
    entidad_id: Mapped[str] = mapped_column(String(64))
    accion: Mapped[str] = mapped_column(String(40))
    estado_anterior: Mapped[str | None] = mapped_column(String(20))
    estado_nuevo: Mapped[str | None] = mapped_column(String(20))
    usuario: Mapped[str] = mapped_column(String(150))
    motivo: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fecha: Mapped[datetime] = mapped_column(TS)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)
