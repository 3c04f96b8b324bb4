"""Tables of the evidence service (DOMAIN Part C, §C.2). SQLAlchemy 2.0 typed ORM.

Rules enforced by the schema itself:
* every FK is RESTRICT (no cascades, GP-D10): production, GPUs and billing lines are never
  deleted through a parent; GPU history has no FK so it survives a GPU deletion (G9);
* ``reporte_mensual_header``: ``id_ot`` NOT NULL, CHECK mes 1..12,
  UNIQUE (id_ot, mes, anio) (GP-D21);
* ``produccion``: ``tipo_tiempo`` NOT NULL in (TE, CMA); ``volumen_produccion`` Numeric(15,6) ≥ 0;
  the site is NOT NULL with the sentinel ``0`` = no site, so UNIQUE (partida, fecha, tipo, sitio)
  holds on every database (GP-D09);
* ``registro_generadores_pu``: one GPU per production (UNIQUE), status FK to the seeded
  ``cat_estatus_gpu`` catalogue (GP-D01/D02), a billed GPU must be VALIDADO (CHECK), one GPU
  per estimate line (UNIQUE), optimistic ``version``;
* ``estimacion_detalle``: one line per production, 0 ≤ volumen_estimado ≤ volumen_actual;
* ``reporte_diario_detalle.estatus``: FK to its own ``cat_estatus_diario`` catalogue of daily
  operational statuses, separate from the GPU one (GP-D02); ``cerrado`` mirrors the status'
  ``cierra_dia`` (legacy id 17) and is what production saves check.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    FromClause,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from evidence.domain.vocab import (
    COLORS,
    DESCRIPCIONES,
    LEGACY_IDS,
    EstatusCobro,
    EstatusOperativo,
    GpuStatus,
    TipoTiempo,
    values,
)
from nexo_messaging.tables import inbox_table, outbox_table
from service_defaults.idempotency import idempotency_table

NO_SITE = 0
"""Sentinel ``id_sitio_produccion`` for "no site" (keeps the unique key NULL-free)."""

GPU_STATUS_ROWS: list[dict[str, Any]] = [
    {
        "codigo": status.value,
        "id_legacy": LEGACY_IDS[status],
        "descripcion": DESCRIPCIONES[status],
        "color": COLORS[status],
    }
    for status in GpuStatus
]
"""The seeded ``cat_estatus_gpu`` catalogue, one row per :class:`GpuStatus`."""


DAILY_STATUS_ROWS: list[dict[str, Any]] = [
    {
        "codigo": EstatusOperativo.OPERATIVO.value,
        "id_legacy": 1,
        "descripcion": "Operativo",
        "cierra_dia": False,
    },
    {
        "codigo": EstatusOperativo.CERRADO.value,
        "id_legacy": 17,
        "descripcion": "Cerrado",
        "cierra_dia": True,
    },
]
"""Daily operational statuses (legacy nivel 6 "Estatus Operativo": default id 1, id 17 = closed
day). More rows are data, not code: only ``cierra_dia`` carries a rule."""
DEFAULT_DAILY_STATUS = EstatusOperativo.OPERATIVO.value
CLOSED_DAILY_STATUS = EstatusOperativo.CERRADO.value
"""The status ``POST /reportes-diarios/cierre`` sets (legacy id 17)."""


def check_in(column: str, vocabulary: type[enum.StrEnum]) -> str:
    """CHECK text ``column IN ('a', 'b')`` listing exactly the vocabulary's values."""
    return f"{column} IN ({', '.join(repr(v) for v in values(vocabulary))})"


if TYPE_CHECKING:
    from sqlalchemy.orm import Mapped as Col
else:

    class Col:
        """``Col[T]`` is ``T`` for pydantic and SQLModel; for mypy it is SQLAlchemy's ``Mapped[T]``
        (``Model.field`` is a column expression, ``row.field`` a ``T``), so queries type-check
        without wrapping every column in ``sqlmodel.col()``."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item


class Base(SQLModel, registry=registry(metadata=MetaData())):
    """Base of the evidence table models: its own registry and MetaData (the services of the
    embedded mode share one process and each has an ``outbox``/``inbox``/``idempotency_keys``),
    with SQLAlchemy's default naming (every constraint here is named explicitly, or was unnamed
    in the migrations too)."""

    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]  # as on DeclarativeBase


REQUIRED: Any = ...
"""``column(default=REQUIRED)``: the constructor must give the value (no Python default)."""


def column(*args: Any, nullable: bool = False, default: Any = REQUIRED, **kwargs: Any) -> Any:
    """A SQLModel field over exactly ``Column(*args, nullable=..., default=..., **kwargs)``.

    The column keeps the type, nullability, defaults, keys and indexes the migrations create;
    a nullable column (or a primary key the database assigns) defaults to ``None`` in Python."""
    if (nullable or kwargs.get("primary_key")) and default is REQUIRED:
        default = None
    if default is not REQUIRED and default is not None:
        kwargs["default"] = default
    return Field(default=default, sa_column=Column(*args, nullable=nullable, **kwargs))


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="RESTRICT")


class EstatusGpu(Base, table=True):
    """Dedicated GPU status catalogue (§C.2.1), seeded by the migration."""

    __tablename__ = "cat_estatus_gpu"

    codigo: Col[str] = column(String(12), primary_key=True)
    id_legacy: Col[int] = column(Integer, unique=True)
    descripcion: Col[str] = column(String(40))
    color: Col[str] = column(String(10))


class EstatusDiario(Base, table=True):
    """Daily operational status catalogue (``ReporteDiario``), separate from GPU statuses."""

    __tablename__ = "cat_estatus_diario"

    codigo: Col[str] = column(String(12), primary_key=True)
    id_legacy: Col[int] = column(Integer, unique=True)
    descripcion: Col[str] = column(String(40), unique=True)
    cierra_dia: Col[bool] = column(Boolean, default=False)


class Ot(Base, table=True):
    __tablename__ = "ot"

    id: Col[int] = column(Integer, primary_key=True)
    orden_trabajo: Col[str] = column(String(100), unique=True)
    descripcion_trabajo: Col[str] = column(Text, default="")
    id_tipo: Col[int] = column(Integer, default=4)  # 4 inicial, 5 reprogramación
    ot_principal: Col[int | None] = column(_fk("ot.id"), index=True, nullable=True)
    num_reprogramacion: Col[int] = column(Integer, default=0)
    estatus: Col[int] = column(Integer, default=1)
    fecha_inicio_programado: Col[dt.date | None] = column(Date, nullable=True)
    fecha_termino_programado: Col[dt.date | None] = column(Date, nullable=True)
    fecha_inicio_real: Col[dt.date | None] = column(Date, nullable=True)
    fecha_termino_real: Col[dt.date | None] = column(Date, nullable=True)
    # Site of the OT by frente (DOMAIN §C.2.2): plain Sitio ids, not FKs (no Sitio table here).
    id_frente: Col[int | None] = column(Integer, nullable=True)
    id_embarcacion: Col[int | None] = column(Integer, nullable=True)
    id_plataforma: Col[int | None] = column(Integer, nullable=True)
    id_intercom: Col[int | None] = column(Integer, nullable=True)
    id_patio: Col[int | None] = column(Integer, nullable=True)
    id_cliente: Col[int | None] = column(Integer, nullable=True, index=True)
    monto_mxn: Col[Decimal] = column(Numeric(25, 2), default=Decimal("0.00"))
    monto_usd: Col[Decimal] = column(Numeric(25, 2), default=Decimal("0.00"))
    fecha_creacion: Col[dt.datetime] = column(DateTime(timezone=True))


class OtHistorial(Base, table=True):
    """Append-only audit of OT edits (dates, reprogramming, client, active flag): who, when,
    each changed field's old and new value, and the reason. No FK: it is history."""

    __tablename__ = "ot_historial"
    __table_args__ = (Index("ix_ot_historial_ot", "id_ot", "id"),)

    id: Col[int] = column(Integer, primary_key=True)
    id_ot: Col[int] = column(Integer)
    usuario: Col[str] = column(String(200))
    fecha: Col[dt.datetime] = column(DateTime(timezone=True))
    cambios: Col[dict[str, Any]] = column(JSON)
    motivo: Col[str | None] = column(Text, nullable=True)


class ImportacionAnexo(Base, table=True):
    __tablename__ = "importacion_anexo"

    id: Col[int] = column(Integer, primary_key=True)
    id_ot: Col[int] = column(_fk("ot.id"), index=True)
    archivo: Col[str | None] = column(String(500), nullable=True)
    es_activo: Col[bool] = column(Boolean, default=True)
    total_registros: Col[int] = column(Integer, default=0)
    usuario_carga: Col[str | None] = column(String(200), nullable=True)
    fecha_carga: Col[dt.datetime] = column(DateTime(timezone=True))


class PartidaAnexo(Base, table=True):
    """``PartidaAnexoImportada``: a contract annex budget line."""

    __tablename__ = "partida_anexo_importada"
    __table_args__ = (
        CheckConstraint("volumen_proyectado >= 0", name="ck_partida_volumen"),
        Index("ix_partida_importacion", "id_importacion_anexo", "orden_fila"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_importacion_anexo: Col[int] = column(_fk("importacion_anexo.id"))
    id_partida: Col[str] = column(String(20))  # line code, e.g. C-2.1.1
    descripcion_concepto: Col[str] = column(Text, default="")
    anexo: Col[str | None] = column(String(10), nullable=True)
    unidad: Col[str] = column(String(20), default="")
    volumen_proyectado: Col[Decimal] = column(Numeric(18, 6), default=Decimal(0))
    precio_unitario_mn: Col[Decimal] = column(Numeric(15, 4), default=Decimal(0))
    precio_unitario_usd: Col[Decimal] = column(Numeric(15, 4), default=Decimal(0))
    orden_fila: Col[int] = column(Integer, default=0)


class ReporteMensual(Base, table=True):
    __tablename__ = "reporte_mensual_header"
    __table_args__ = (
        UniqueConstraint("id_ot", "mes", "anio", name="uq_reporte_mensual_ot_mes_anio"),
        CheckConstraint("mes BETWEEN 1 AND 12", name="ck_reporte_mensual_mes"),
        CheckConstraint("anio BETWEEN 2000 AND 2100", name="ck_reporte_mensual_anio"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_ot: Col[int] = column(_fk("ot.id"))
    mes: Col[int] = column(Integer)
    anio: Col[int] = column(Integer)
    archivo: Col[str | None] = column(String(500), nullable=True)  # monthly evidence link
    usuario_archivo: Col[str | None] = column(String(200), nullable=True)
    fecha_archivo: Col[dt.datetime | None] = column(DateTime(timezone=True), nullable=True)
    cerrado: Col[bool] = column(Boolean, default=False)  # "Estatus Cierre"
    fecha_creacion: Col[dt.datetime] = column(DateTime(timezone=True))
    fecha_actualizacion: Col[dt.datetime] = column(DateTime(timezone=True))


class GridVersion(Base, table=True):
    """Change counter of a month's GPU grid (read-model cache key and ETag). Bumped in the same
    transaction as every write that changes what the grid shows. A separate row (not a column of
    the report) so GPU transitions never lock the report row: lock order is always
    report → GPU rows → grid version, which cannot deadlock."""

    __tablename__ = "grid_version"

    id_reporte_mensual: Col[int] = column(_fk("reporte_mensual_header.id"), primary_key=True)
    version: Col[int] = column(Integer, default=1)


class ReporteDiario(Base, table=True):
    """Day status of a monthly report; ``cerrado`` is the legacy id 17 ("closed day")."""

    __tablename__ = "reporte_diario_detalle"
    __table_args__ = (
        UniqueConstraint("id_reporte_mensual", "fecha", name="uq_reporte_diario_fecha"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_reporte_mensual: Col[int] = column(_fk("reporte_mensual_header.id"))
    fecha: Col[dt.date] = column(Date)
    cerrado: Col[bool] = column(Boolean, default=False)
    comentario: Col[str] = column(String(255), default="")
    estatus: Col[str] = column(
        _fk("cat_estatus_diario.codigo"),
        default=DEFAULT_DAILY_STATUS,
        server_default=DEFAULT_DAILY_STATUS,
    )


class PartidaProyectada(Base, table=True):
    """Daily plan of a budget line (``programacion_diaria``), shown next to production."""

    __tablename__ = "partida_proyectada"
    __table_args__ = (
        UniqueConstraint("id_partida_anexo", "fecha", name="uq_partida_proyectada_fecha"),
        CheckConstraint("volumen_programado >= 0", name="ck_partida_proyectada_volumen"),
        Index("ix_partida_proyectada_ot_fecha", "id_ot", "fecha"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_ot: Col[int] = column(_fk("ot.id"))
    id_partida_anexo: Col[int] = column(_fk("partida_anexo_importada.id"))
    fecha: Col[dt.date] = column(Date)
    volumen_programado: Col[Decimal] = column(Numeric(15, 6), default=Decimal(0))
    usuario_actualizacion: Col[str | None] = column(String(200), nullable=True)
    fecha_actualizacion: Col[dt.datetime | None] = column(DateTime(timezone=True), nullable=True)


class Produccion(Base, table=True):
    __tablename__ = "produccion"
    __table_args__ = (
        UniqueConstraint(
            "id_partida_anexo",
            "fecha_produccion",
            "tipo_tiempo",
            "id_sitio_produccion",
            name="uq_produccion_partida_fecha_tipo_sitio",
        ),
        CheckConstraint("volumen_produccion >= 0", name="ck_produccion_volumen"),
        CheckConstraint(check_in("tipo_tiempo", TipoTiempo), name="ck_produccion_tipo_tiempo"),
        Index("ix_produccion_reporte", "id_reporte_mensual", "fecha_produccion"),
        Index("ix_produccion_fecha", "fecha_produccion"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_partida_anexo: Col[int] = column(_fk("partida_anexo_importada.id"))
    id_reporte_mensual: Col[int] = column(_fk("reporte_mensual_header.id"))
    fecha_produccion: Col[dt.date] = column(Date)
    volumen_produccion: Col[Decimal] = column(Numeric(15, 6))
    tipo_tiempo: Col[str] = column(String(3))
    id_sitio_produccion: Col[int] = column(Integer, default=NO_SITE)
    es_excedente: Col[bool] = column(Boolean, default=False)
    excedente_autorizado_por: Col[str | None] = column(String(200), nullable=True)
    excedente_autorizado_en: Col[dt.datetime | None] = column(
        DateTime(timezone=True), nullable=True
    )
    comentario: Col[str] = column(Text, default="")
    version: Col[int] = column(Integer, default=1)
    usuario_actualizacion: Col[str | None] = column(String(200), nullable=True)
    fecha_creacion: Col[dt.datetime] = column(DateTime(timezone=True))
    fecha_actualizacion: Col[dt.datetime] = column(DateTime(timezone=True))

    def __str__(self) -> str:  # GP-D19: no reference to a non-existent attribute
        return (
            f"Produccion {self.id} partida {self.id_partida_anexo} "
            f"{self.fecha_produccion} {self.tipo_tiempo}"
        )


class EstimacionHeader(Base, table=True):
    __tablename__ = "estimacion_header"
    __table_args__ = (
        CheckConstraint("fecha_desde <= fecha_hasta", name="ck_estimacion_periodo"),
        Index("ix_estimacion_ot", "id_ot", "fecha_desde"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_ot: Col[int] = column(_fk("ot.id"))
    fecha_estimacion: Col[dt.date] = column(Date)
    fecha_desde: Col[dt.date] = column(Date)
    fecha_hasta: Col[dt.date] = column(Date)
    estatus_cobro: Col[str] = column(String(20), default=EstatusCobro.BORRADOR.value)
    total_volumen_producido: Col[Decimal] = column(Numeric(15, 2), default=Decimal(0))
    total_volumen_estimado: Col[Decimal] = column(Numeric(15, 2), default=Decimal(0))
    total_importe_mn: Col[Decimal] = column(Numeric(15, 2), default=Decimal(0))
    total_importe_usd: Col[Decimal] = column(Numeric(15, 2), default=Decimal(0))
    comentario: Col[str] = column(Text, default="")
    creado_por: Col[str] = column(String(200))
    fecha_creacion: Col[dt.datetime] = column(DateTime(timezone=True))


class EstimacionDetalle(Base, table=True):
    __tablename__ = "estimacion_detalle"
    __table_args__ = (
        UniqueConstraint("id_produccion", name="uq_estimacion_detalle_produccion"),
        CheckConstraint(
            "volumen_estimado >= 0 AND volumen_estimado <= volumen_actual",
            name="ck_estimacion_detalle_volumen",
        ),
        Index("ix_estimacion_detalle_header", "id_estimacion_header"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_estimacion_header: Col[int] = column(_fk("estimacion_header.id"))
    id_produccion: Col[int] = column(_fk("produccion.id"))
    volumen_actual: Col[Decimal] = column(Numeric(15, 2))
    volumen_estimado: Col[Decimal] = column(Numeric(15, 2))
    precio_unitario_mn: Col[Decimal] = column(Numeric(15, 4))
    precio_unitario_usd: Col[Decimal] = column(Numeric(15, 4))
    importe_mn: Col[Decimal] = column(Numeric(15, 2))
    importe_usd: Col[Decimal] = column(Numeric(15, 2))
    es_excedente: Col[bool] = column(Boolean, default=False)
    comentario_ajuste: Col[str] = column(Text, default="")


class RegistroGpu(Base, table=True):
    __tablename__ = "registro_generadores_pu"
    __table_args__ = (
        UniqueConstraint("id_produccion", name="uq_gpu_produccion"),
        UniqueConstraint("id_estimacion_detalle", name="uq_gpu_estimacion_detalle"),
        CheckConstraint(
            f"id_estimacion_detalle IS NULL OR estatus = '{GpuStatus.VALIDADO.value}'",
            name="ck_gpu_facturado_validado",
        ),
        CheckConstraint("version >= 1", name="ck_gpu_version"),
        Index("ix_gpu_estatus", "estatus"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_produccion: Col[int] = column(_fk("produccion.id"))
    estatus: Col[str] = column(_fk("cat_estatus_gpu.codigo"))
    archivo: Col[str | None] = column(String(500), nullable=True)
    nota_bloqueo: Col[str | None] = column(Text, nullable=True)
    motivo_rechazo: Col[str | None] = column(String(40), nullable=True)
    checklist: Col[dict[str, Any] | None] = column(JSON, nullable=True)
    id_estimacion_detalle: Col[int | None] = column(_fk("estimacion_detalle.id"), nullable=True)
    fecha_carga: Col[dt.datetime | None] = column(DateTime(timezone=True), nullable=True)
    usuario_carga: Col[str | None] = column(String(200), nullable=True)
    fecha_revision: Col[dt.datetime | None] = column(DateTime(timezone=True), nullable=True)
    usuario_revision: Col[str | None] = column(String(200), nullable=True)
    version: Col[int] = column(Integer, default=1)
    fecha_creacion: Col[dt.datetime] = column(DateTime(timezone=True))
    fecha_actualizacion: Col[dt.datetime] = column(DateTime(timezone=True))


class RegistroGpuHistorial(Base, table=True):
    """Append-only GPU audit (GP-D15). No FK to the GPU: rows outlive a deleted GPU (G9)."""

    __tablename__ = "registro_gpu_historial"
    __table_args__ = (
        Index("ix_gpu_historial_gpu", "id_gpu", "id"),
        Index("ix_gpu_historial_produccion", "id_produccion"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_gpu: Col[int] = column(Integer)
    id_produccion: Col[int] = column(Integer)
    accion: Col[str] = column(String(20))  # CREADO TRANSICION ELIMINADO FACTURADO ...
    regla: Col[str | None] = column(String(4), nullable=True)  # G1..G10
    de_estatus: Col[str | None] = column(String(12), nullable=True)
    a_estatus: Col[str | None] = column(String(12), nullable=True)
    usuario: Col[str] = column(String(200))
    fecha: Col[dt.datetime] = column(DateTime(timezone=True))
    nota: Col[str | None] = column(Text, nullable=True)
    motivo: Col[str | None] = column(String(40), nullable=True)
    archivo: Col[str | None] = column(String(500), nullable=True)
    version: Col[int | None] = column(Integer, nullable=True)


class GpuConflicto(Base, table=True):
    """A production change that could not retire a protected GPU (G10), kept for follow-up."""

    __tablename__ = "gpu_conflicto"
    __table_args__ = (
        Index("ix_gpu_conflicto_abierto", "id_gpu", "resuelto"),
        Index("ix_gpu_conflicto_produccion", "id_produccion"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    id_gpu: Col[int] = column(Integer)
    id_produccion: Col[int] = column(Integer)
    estatus_gpu: Col[str] = column(String(12))
    facturado: Col[bool] = column(Boolean, default=False)
    motivo: Col[str] = column(String(40))
    detalle: Col[str] = column(Text)
    resuelto: Col[bool] = column(Boolean, default=False)
    fecha: Col[dt.datetime] = column(DateTime(timezone=True))
    # How it was closed: CONSERVAR / ANULAR (a supervisor) or AUTOMATICA (the GPU sync).
    resolucion: Col[str | None] = column(String(12), nullable=True)
    justificacion: Col[str | None] = column(Text, nullable=True)
    resuelto_por: Col[str | None] = column(String(200), nullable=True)
    fecha_resolucion: Col[dt.datetime | None] = column(DateTime(timezone=True), nullable=True)
