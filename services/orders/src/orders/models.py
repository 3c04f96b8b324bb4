"""Tables of the orders service (DOMAIN Part B), SQLModel table models.

Every table model derives from `Table`, whose SQLAlchemy registry and MetaData belong to this
service alone (several services share one process in the embedded mode, and each has tables
named outbox/inbox/idempotency_keys, so SQLModel's default registry is never used). Columns
keep the exact types, nullability, defaults and constraint names of the migrations
(`test_orders_migrations` shows alembic autogenerate finds no difference). Table models do not
validate on construction: the domain validation stays in `orders.domain` and the API schemas.

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

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Table as SaTable
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

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


if TYPE_CHECKING:
    from sqlalchemy.orm import Mapped as Col
else:

    class Col:
        """``Col[T]`` is ``T`` for pydantic and SQLModel; for mypy it is SQLAlchemy's
        ``Mapped[T]`` (``Model.field`` is a column expression, ``row.field`` a ``T``), so queries
        type-check without wrapping every column in ``sqlmodel.col()``."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item


class Table(SQLModel, registry=registry(metadata=MetaData(naming_convention=NAMING))):
    """Base of the service's table models: the service's own registry and `metadata`."""

    if TYPE_CHECKING:
        __table__: ClassVar[SaTable]  # as on a DeclarativeBase


Base = Table
"""`Base.metadata` is the service's MetaData (the shared app factory reads it)."""
metadata = Table.metadata
"""Every table of the service (alembic's target; tests create it on fresh databases)."""


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
TRUE = {"server_default": text("true")}
FALSE = {"server_default": text("false")}
BIGSERIAL = BigInteger().with_variant(Integer, "sqlite")


def _fk(target: str, ondelete: str, **kw: Any) -> Any:
    """A foreign key with its ``ondelete`` (the column's type follows the annotation)."""
    return Field(foreign_key=target, ondelete=ondelete, **kw)  # type: ignore[call-overload]


# ------------------------------------------------------------------------------ reference data


class Institucion(Table, table=True):
    __tablename__ = "instituciones"

    id: Col[int] = Field(default=None, primary_key=True)
    clue: Col[str] = Field(sa_type=String(20), unique=True)
    denominacion: Col[str] = Field(sa_type=String(200))
    activo: Col[bool] = Field(default=True, sa_column_kwargs=TRUE)
    creado_en: Col[datetime] = Field(
        default=None, sa_type=TS, sa_column_kwargs={"server_default": func.now()}
    )


class Almacen(Table, table=True):
    __tablename__ = "almacenes"

    id: Col[int] = Field(default=None, primary_key=True)
    institucion_id: Col[int] = _fk("instituciones.id", "RESTRICT", index=True)
    nombre: Col[str] = Field(sa_type=String(150))
    codigo: Col[str] = Field(sa_type=String(50), unique=True)
    es_central: Col[bool] = Field(default=False, sa_column_kwargs=FALSE)
    activo: Col[bool] = Field(default=True, sa_column_kwargs=TRUE)


class Ubicacion(Table, table=True):
    __tablename__ = "ubicaciones"
    __table_args__ = (
        UniqueConstraint("almacen_id", "codigo", name="uq_ubicaciones_almacen_codigo"),
        CheckConstraint(_in("estado", ESTADOS_UBICACION), name="estado"),
    )

    id: Col[int] = Field(default=None, primary_key=True)
    almacen_id: Col[int] = _fk("almacenes.id", "RESTRICT")
    codigo: Col[str] = Field(sa_type=String(50))
    descripcion: Col[str | None] = Field(default=None, sa_type=String(200))
    estado: Col[str] = Field(
        default="disponible", sa_type=String(20), sa_column_kwargs={"server_default": "disponible"}
    )
    activo: Col[bool] = Field(default=True, sa_column_kwargs=TRUE)


class Producto(Table, table=True):
    __tablename__ = "productos"

    id: Col[int] = Field(default=None, primary_key=True)
    clave_cnis: Col[str] = Field(sa_type=String(150), unique=True)
    descripcion: Col[str] = Field(default="", sa_type=Text)
    unidad_medida: Col[str] = Field(default="PIEZA", sa_type=String(120))
    activo: Col[bool] = Field(default=True, sa_column_kwargs=TRUE)


class Lote(Table, table=True):
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

    id: Col[int] = Field(default=None, primary_key=True)
    uuid: Col[UUID] = Field(default_factory=uuid4, unique=True)
    numero_lote: Col[str] = Field(sa_type=String(50))
    producto_id: Col[int] = _fk("productos.id", "RESTRICT")
    institucion_id: Col[int] = _fk("instituciones.id", "RESTRICT")
    almacen_id: Col[int | None] = _fk("almacenes.id", "SET NULL", default=None)
    cantidad_inicial: Col[int] = Field(default=0)
    precio_unitario: Col[Decimal | None] = Field(default=None, sa_type=Numeric(10, 2))
    fecha_fabricacion: Col[date | None] = Field(default=None)
    fecha_caducidad: Col[date | None] = Field(default=None)
    fecha_recepcion: Col[date]
    estado: Col[int] = Field(default=1, sa_column_kwargs={"server_default": text("1")})
    motivo_cambio_estado: Col[str | None] = Field(default=None, sa_type=Text)
    fecha_cambio_estado: Col[datetime | None] = Field(default=None, sa_type=TS)
    usuario_cambio_estado: Col[str | None] = Field(default=None, sa_type=String(150))


class LoteUbicacion(Table, table=True):
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

    id: Col[int] = Field(default=None, primary_key=True)
    lote_id: Col[int] = _fk("lotes.id", "RESTRICT")
    ubicacion_id: Col[int] = _fk("ubicaciones.id", "RESTRICT")
    cantidad: Col[int] = Field(default=0)
    cantidad_reservada: Col[int] = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    fecha_actualizacion: Col[datetime | None] = Field(default=None, sa_type=TS)


# ------------------------------------------------------------------------------ requests

FOLIO_ACTIVO = (
    "folio_pedido_clave IS NOT NULL AND estado <> 'CANCELADA' AND NOT duplicado_autorizado"
)


class Solicitud(Table, table=True):
    __tablename__ = "solicitudes"
    __table_args__ = (
        CheckConstraint(_in("estado", ESTADOS_SOLICITUD), name="estado"),
        Index(
            "uq_solicitudes_folio_pedido_activo",
            "folio_pedido_clave",
            unique=True,
            postgresql_where=text(FOLIO_ACTIVO),
            sqlite_where=text(FOLIO_ACTIVO),
        ),
        Index("ix_solicitudes_estado_fecha", "estado", "fecha_solicitud"),
        Index("ix_solicitudes_folio_pedido_clave", "folio_pedido_clave"),
    )

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    folio: Col[str] = Field(sa_type=String(50), unique=True)
    folio_pedido: Col[str | None] = Field(default=None, sa_type=String(100))
    folio_pedido_clave: Col[str | None] = Field(default=None, sa_type=String(100))
    duplicado_autorizado: Col[bool] = Field(default=False, sa_column_kwargs=FALSE)
    institucion_id: Col[int] = _fk("instituciones.id", "RESTRICT", index=True)
    almacen_destino_id: Col[int] = _fk("almacenes.id", "RESTRICT", index=True)
    usuario_solicitante: Col[str] = Field(sa_type=String(150))
    usuario_validacion: Col[str | None] = Field(default=None, sa_type=String(150))
    fecha_solicitud: Col[datetime] = Field(sa_type=TS)
    fecha_validacion: Col[datetime | None] = Field(default=None, sa_type=TS)
    fecha_entrega_programada: Col[date]
    estado: Col[str] = Field(default="PENDIENTE", sa_type=String(20))
    observaciones: Col[str] = Field(default="", sa_type=Text)
    observaciones_validacion: Col[str] = Field(default="", sa_type=Text)
    version: Col[int] = Field(default=1, sa_column_kwargs={"server_default": text("1")})
    # why its proposal could not be generated (estado PROPUESTA_FALLIDA; migration 0006)
    fallo_propuesta_codigo: Col[str | None] = Field(default=None, sa_type=String(40))
    fallo_propuesta: Col[str | None] = Field(default=None, sa_type=Text)
    fecha_fallo_propuesta: Col[datetime | None] = Field(default=None, sa_type=TS)


class SolicitudItem(Table, table=True):
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

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    solicitud_id: Col[uuid.UUID] = _fk("solicitudes.id", "CASCADE")
    producto_id: Col[int] = _fk("productos.id", "RESTRICT", index=True)
    cantidad_solicitada: Col[int]
    cantidad_aprobada: Col[int | None] = Field(default=None)
    justificacion_codigo: Col[str | None] = Field(default=None, sa_type=String(40))
    justificacion: Col[str | None] = Field(default=None, sa_type=String(255))


# ------------------------------------------------------------------------------ proposals


class Propuesta(Table, table=True):
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

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    solicitud_id: Col[uuid.UUID] = _fk("solicitudes.id", "RESTRICT")
    estado: Col[str] = Field(default="GENERADA", sa_type=String(20))
    fecha_generacion: Col[datetime] = Field(sa_type=TS)
    usuario_generacion: Col[str] = Field(sa_type=String(150))
    evento_origen: Col[str | None] = Field(default=None, sa_type=String(64))
    fecha_revision: Col[datetime | None] = Field(default=None, sa_type=TS)
    usuario_revision: Col[str | None] = Field(default=None, sa_type=String(150))
    observaciones_revision: Col[str] = Field(default="", sa_type=Text)
    fecha_surtimiento: Col[datetime | None] = Field(default=None, sa_type=TS)
    usuario_surtimiento: Col[str | None] = Field(default=None, sa_type=String(150))
    fecha_cancelacion: Col[datetime | None] = Field(default=None, sa_type=TS)
    motivo_cancelacion: Col[str | None] = Field(default=None, sa_type=Text)
    requiere_replanificacion: Col[bool] = Field(default=False, sa_column_kwargs=FALSE)
    total_solicitado: Col[int] = Field(default=0)
    total_disponible: Col[int] = Field(default=0)
    total_propuesto: Col[int] = Field(default=0)
    version: Col[int] = Field(default=1, sa_column_kwargs={"server_default": text("1")})


class PropuestaItem(Table, table=True):
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

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    propuesta_id: Col[uuid.UUID] = _fk("propuestas.id", "RESTRICT")
    solicitud_item_id: Col[uuid.UUID] = _fk("solicitud_items.id", "RESTRICT")
    producto_id: Col[int] = _fk("productos.id", "RESTRICT")
    cantidad_aprobada: Col[int]
    cantidad_disponible: Col[int] = Field(default=0)
    cantidad_propuesta: Col[int] = Field(default=0)
    cantidad_surtida: Col[int] = Field(default=0)
    cantidad_pendiente: Col[int] = Field(default=0)
    estado: Col[str] = Field(default="NO_DISPONIBLE", sa_type=String(20))
    observaciones: Col[str] = Field(default="", sa_type=Text)


class LoteAsignado(Table, table=True):
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

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    propuesta_item_id: Col[uuid.UUID] = _fk("propuesta_items.id", "RESTRICT")
    lote_ubicacion_id: Col[int] = _fk("lote_ubicaciones.id", "RESTRICT")
    cantidad_asignada: Col[int]
    estado_linea: Col[str] = Field(default="RESERVADA", sa_type=String(12))
    override_caducidad: Col[bool] = Field(default=False, sa_column_kwargs=FALSE)
    motivo_override: Col[str | None] = Field(default=None, sa_type=Text)
    usuario_override: Col[str | None] = Field(default=None, sa_type=String(150))
    no_elegible_desde: Col[datetime | None] = Field(default=None, sa_type=TS)
    fecha_asignacion: Col[datetime] = Field(sa_type=TS)
    fecha_recogida: Col[datetime | None] = Field(default=None, sa_type=TS)
    usuario_recogida: Col[str | None] = Field(default=None, sa_type=String(150))
    fecha_surtimiento: Col[datetime | None] = Field(default=None, sa_type=TS)


# ------------------------------------------------------------------------------ kardex, audit


class MovimientoInventario(Table, table=True):
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

    id: Col[int] = Field(
        default=None, primary_key=True, sa_type=BIGSERIAL, sa_column_kwargs={"autoincrement": True}
    )
    lote_id: Col[int] = _fk("lotes.id", "RESTRICT")
    lote_ubicacion_id: Col[int | None] = _fk("lote_ubicaciones.id", "RESTRICT", default=None)
    propuesta_id: Col[uuid.UUID | None] = _fk("propuestas.id", "RESTRICT", default=None)
    tipo_movimiento: Col[str] = Field(sa_type=String(30))
    cantidad: Col[int]
    cantidad_anterior: Col[int]
    cantidad_nueva: Col[int]
    motivo: Col[str] = Field(default="", sa_type=Text)
    documento_referencia: Col[str | None] = Field(default=None, sa_type=String(100))
    pedido: Col[str | None] = Field(default=None, sa_type=String(255))
    folio: Col[str | None] = Field(default=None, sa_type=String(255))
    institucion_destino_id: Col[int | None] = _fk("instituciones.id", "RESTRICT", default=None)
    usuario: Col[str] = Field(sa_type=String(150))
    fecha_movimiento: Col[datetime] = Field(sa_type=TS)


class HistorialEstado(Table, table=True):
    """Append-only audit of every state transition and reservation change (§0.3-8, HO-D14/15).

    No foreign keys: audit rows outlive whatever they describe and are never cascade-deleted.
    """

    __tablename__ = "historial_estados"
    __table_args__ = (Index("ix_historial_entidad", "entidad", "entidad_id", "id"),)

    id: Col[int] = Field(
        default=None, primary_key=True, sa_type=BIGSERIAL, sa_column_kwargs={"autoincrement": True}
    )
    entidad: Col[str] = Field(sa_type=String(30))
    entidad_id: Col[str] = Field(sa_type=String(64))
    accion: Col[str] = Field(sa_type=String(40))
    estado_anterior: Col[str | None] = Field(default=None, sa_type=String(20))
    estado_nuevo: Col[str | None] = Field(default=None, sa_type=String(20))
    usuario: Col[str] = Field(sa_type=String(150))
    motivo: Col[str | None] = Field(default=None, sa_type=Text)
    payload: Col[dict[str, Any]] = Field(default_factory=dict, sa_type=JSON)
    fecha: Col[datetime] = Field(sa_type=TS)


# ------------------------------------------------------------------------------ CSV upload


class CargaCsv(Table, table=True):
    """A CSV upload held for its user between the preview and the save (§B.4.7): the summed
    items and the error lines, as `orders.domain.csv_upload` judged them. Deleted on save or
    discard."""

    __tablename__ = "cargas_csv"

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    usuario: Col[str] = Field(sa_type=String(150), index=True)
    creado_en: Col[datetime] = Field(sa_type=TS)
    codificacion: Col[str] = Field(sa_type=String(20))
    folio: Col[str | None] = Field(default=None, sa_type=String(100))
    total_lineas: Col[int]
    omitidas: Col[int]
    items: Col[list[dict[str, Any]]] = Field(default_factory=list, sa_type=JSON)
    errores: Col[list[dict[str, Any]]] = Field(default_factory=list, sa_type=JSON)


class LogErrorPedido(Table, table=True):
    """Per-line errors of a CSV upload (§B.2.9), written when the request is saved (HO-D25:
    never at the preview), read per request."""

    __tablename__ = "log_errores_pedido"
    __table_args__ = (Index("ix_log_errores_pedido_solicitud", "solicitud_id", "linea"),)

    id: Col[uuid.UUID] = Field(default_factory=uuid.uuid4, primary_key=True)
    solicitud_id: Col[uuid.UUID] = _fk("solicitudes.id", "CASCADE")
    usuario: Col[str] = Field(sa_type=String(150))
    fecha_error: Col[datetime] = Field(sa_type=TS)
    tipo_error: Col[str] = Field(sa_type=String(30))
    linea: Col[int]
    clave_solicitada: Col[str] = Field(sa_type=String(150))
    cantidad_solicitada: Col[str] = Field(sa_type=String(50))
    descripcion_error: Col[str] = Field(default="", sa_type=Text)


outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)
