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
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Base(DeclarativeBase):
    pass


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="RESTRICT")


class EstatusGpu(Base):
    """Dedicated GPU status catalogue (§C.2.1), seeded by the migration."""

    __tablename__ = "cat_estatus_gpu"

    codigo: Mapped[str] = mapped_column(String(12), primary_key=True)
    id_legacy: Mapped[int] = mapped_column(Integer, unique=True)
    descripcion: Mapped[str] = mapped_column(String(40))
    color: Mapped[str] = mapped_column(String(10))


class EstatusDiario(Base):
    """Daily operational status catalogue (``ReporteDiario``), separate from GPU statuses."""

    __tablename__ = "cat_estatus_diario"

    codigo: Mapped[str] = mapped_column(String(12), primary_key=True)
    id_legacy: Mapped[int] = mapped_column(Integer, unique=True)
    descripcion: Mapped[str] = mapped_column(String(40), unique=True)
    cierra_dia: Mapped[bool] = mapped_column(Boolean, default=False)


class Ot(Base):
    __tablename__ = "ot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    orden_trabajo: Mapped[str] = mapped_column(String(100), unique=True)
    descripcion_trabajo: Mapped[str] = mapped_column(Text, default="")
    id_tipo: Mapped[int] = mapped_column(Integer, default=4)  # 4 inicial, 5 reprogramación
    ot_principal: Mapped[int | None] = mapped_column(_fk("ot.id"), index=True)
    num_reprogramacion: Mapped[int] = mapped_column(Integer, default=0)
    estatus: Mapped[int] = mapped_column(Integer, default=1)
    fecha_inicio_programado: Mapped[dt.date | None] = mapped_column(Date)
    fecha_termino_programado: Mapped[dt.date | None] = mapped_column(Date)
    fecha_inicio_real: Mapped[dt.date | None] = mapped_column(Date)
    fecha_termino_real: Mapped[dt.date | None] = mapped_column(Date)
    # Site of the OT by frente (DOMAIN §C.2.2): plain Sitio ids, not FKs (no Sitio table here).
    id_frente: Mapped[int | None] = mapped_column(Integer)
    id_embarcacion: Mapped[int | None] = mapped_column(Integer)
    id_plataforma: Mapped[int | None] = mapped_column(Integer)
    id_intercom: Mapped[int | None] = mapped_column(Integer)
    id_patio: Mapped[int | None] = mapped_column(Integer)
    monto_mxn: Mapped[Decimal] = mapped_column(Numeric(25, 2), default=Decimal("0.00"))
    monto_usd: Mapped[Decimal] = mapped_column(Numeric(25, 2), default=Decimal("0.00"))
    fecha_creacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ImportacionAnexo(Base):
    __tablename__ = "importacion_anexo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_ot: Mapped[int] = mapped_column(_fk("ot.id"), index=True)
    archivo: Mapped[str | None] = mapped_column(String(500))
    es_activo: Mapped[bool] = mapped_column(Boolean, default=True)
    total_registros: Mapped[int] = mapped_column(Integer, default=0)
    usuario_carga: Mapped[str | None] = mapped_column(String(200))
    fecha_carga: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PartidaAnexo(Base):
    """``PartidaAnexoImportada``: a contract annex budget line."""

    __tablename__ = "partida_anexo_importada"
    __table_args__ = (
        CheckConstraint("volumen_proyectado >= 0", name="ck_partida_volumen"),
        Index("ix_partida_importacion", "id_importacion_anexo", "orden_fila"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_importacion_anexo: Mapped[int] = mapped_column(_fk("importacion_anexo.id"))
    id_partida: Mapped[str] = mapped_column(String(20))  # line code, e.g. C-2.1.1
    descripcion_concepto: Mapped[str] = mapped_column(Text, default="")
    anexo: Mapped[str | None] = mapped_column(String(10))
    unidad: Mapped[str] = mapped_column(String(20), default="")
    volumen_proyectado: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal(0))
    precio_unitario_mn: Mapped[Decimal] = mapped_column(Numeric(15, 4), default=Decimal(0))
    precio_unitario_usd: Mapped[Decimal] = mapped_column(Numeric(15, 4), default=Decimal(0))
    orden_fila: Mapped[int] = mapped_column(Integer, default=0)


class ReporteMensual(Base):
    __tablename__ = "reporte_mensual_header"
    __table_args__ = (
        UniqueConstraint("id_ot", "mes", "anio", name="uq_reporte_mensual_ot_mes_anio"),
        CheckConstraint("mes BETWEEN 1 AND 12", name="ck_reporte_mensual_mes"),
        CheckConstraint("anio BETWEEN 2000 AND 2100", name="ck_reporte_mensual_anio"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_ot: Mapped[int] = mapped_column(_fk("ot.id"))
    mes: Mapped[int] = mapped_column(Integer)
    anio: Mapped[int] = mapped_column(Integer)
    archivo: Mapped[str | None] = mapped_column(String(500))
    cerrado: Mapped[bool] = mapped_column(Boolean, default=False)  # "Estatus Cierre"
    fecha_creacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    fecha_actualizacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GridVersion(Base):
    """Change counter of a month's GPU grid (read-model cache key and ETag). Bumped in the same
    transaction as every write that changes what the grid shows. A separate row (not a column of
    the report) so GPU transitions never lock the report row: lock order is always
    report → GPU rows → grid version, which cannot deadlock."""

    __tablename__ = "grid_version"

    id_reporte_mensual: Mapped[int] = mapped_column(
        _fk("reporte_mensual_header.id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)


class ReporteDiario(Base):
    """Day status of a monthly report; ``cerrado`` is the legacy id 17 ("closed day")."""

    __tablename__ = "reporte_diario_detalle"
    __table_args__ = (
        UniqueConstraint("id_reporte_mensual", "fecha", name="uq_reporte_diario_fecha"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_reporte_mensual: Mapped[int] = mapped_column(_fk("reporte_mensual_header.id"))
    fecha: Mapped[dt.date] = mapped_column(Date)
    cerrado: Mapped[bool] = mapped_column(Boolean, default=False)
    comentario: Mapped[str] = mapped_column(String(255), default="")
    estatus: Mapped[str] = mapped_column(
        _fk("cat_estatus_diario.codigo"),
        default=DEFAULT_DAILY_STATUS,
        server_default=DEFAULT_DAILY_STATUS,
    )


class PartidaProyectada(Base):
    """Daily plan of a budget line (``programacion_diaria``), shown next to production."""

    __tablename__ = "partida_proyectada"
    __table_args__ = (
        UniqueConstraint("id_partida_anexo", "fecha", name="uq_partida_proyectada_fecha"),
        CheckConstraint("volumen_programado >= 0", name="ck_partida_proyectada_volumen"),
        Index("ix_partida_proyectada_ot_fecha", "id_ot", "fecha"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_ot: Mapped[int] = mapped_column(_fk("ot.id"))
    id_partida_anexo: Mapped[int] = mapped_column(_fk("partida_anexo_importada.id"))
    fecha: Mapped[dt.date] = mapped_column(Date)
    volumen_programado: Mapped[Decimal] = mapped_column(Numeric(15, 6), default=Decimal(0))


class Produccion(Base):
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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_partida_anexo: Mapped[int] = mapped_column(_fk("partida_anexo_importada.id"))
    id_reporte_mensual: Mapped[int] = mapped_column(_fk("reporte_mensual_header.id"))
    fecha_produccion: Mapped[dt.date] = mapped_column(Date)
    volumen_produccion: Mapped[Decimal] = mapped_column(Numeric(15, 6))
    tipo_tiempo: Mapped[str] = mapped_column(String(3))
    id_sitio_produccion: Mapped[int] = mapped_column(Integer, default=NO_SITE)
    es_excedente: Mapped[bool] = mapped_column(Boolean, default=False)
    excedente_autorizado_por: Mapped[str | None] = mapped_column(String(200))
    excedente_autorizado_en: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    comentario: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    usuario_actualizacion: Mapped[str | None] = mapped_column(String(200))
    fecha_creacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    fecha_actualizacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:  # GP-D19: no reference to a non-existent attribute
        return (
            f"Produccion {self.id} partida {self.id_partida_anexo} "
            f"{self.fecha_produccion} {self.tipo_tiempo}"
        )


class EstimacionHeader(Base):
    __tablename__ = "estimacion_header"
    __table_args__ = (
        CheckConstraint("fecha_desde <= fecha_hasta", name="ck_estimacion_periodo"),
        Index("ix_estimacion_ot", "id_ot", "fecha_desde"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_ot: Mapped[int] = mapped_column(_fk("ot.id"))
    fecha_estimacion: Mapped[dt.date] = mapped_column(Date)
    fecha_desde: Mapped[dt.date] = mapped_column(Date)
    fecha_hasta: Mapped[dt.date] = mapped_column(Date)
    estatus_cobro: Mapped[str] = mapped_column(String(20), default=EstatusCobro.BORRADOR.value)
    total_volumen_producido: Mapped[Decimal] = mapped_column(Numeric(15, 2), default=Decimal(0))
    total_volumen_estimado: Mapped[Decimal] = mapped_column(Numeric(15, 2), default=Decimal(0))
    total_importe_mn: Mapped[Decimal] = mapped_column(Numeric(15, 2), default=Decimal(0))
    total_importe_usd: Mapped[Decimal] = mapped_column(Numeric(15, 2), default=Decimal(0))
    comentario: Mapped[str] = mapped_column(Text, default="")
    creado_por: Mapped[str] = mapped_column(String(200))
    fecha_creacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class EstimacionDetalle(Base):
    __tablename__ = "estimacion_detalle"
    __table_args__ = (
        UniqueConstraint("id_produccion", name="uq_estimacion_detalle_produccion"),
        CheckConstraint(
            "volumen_estimado >= 0 AND volumen_estimado <= volumen_actual",
            name="ck_estimacion_detalle_volumen",
        ),
        Index("ix_estimacion_detalle_header", "id_estimacion_header"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_estimacion_header: Mapped[int] = mapped_column(_fk("estimacion_header.id"))
    id_produccion: Mapped[int] = mapped_column(_fk("produccion.id"))
    volumen_actual: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    volumen_estimado: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    precio_unitario_mn: Mapped[Decimal] = mapped_column(Numeric(15, 4))
    precio_unitario_usd: Mapped[Decimal] = mapped_column(Numeric(15, 4))
    importe_mn: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    importe_usd: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    es_excedente: Mapped[bool] = mapped_column(Boolean, default=False)
    comentario_ajuste: Mapped[str] = mapped_column(Text, default="")


class RegistroGpu(Base):
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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_produccion: Mapped[int] = mapped_column(_fk("produccion.id"))
    estatus: Mapped[str] = mapped_column(_fk("cat_estatus_gpu.codigo"))
    archivo: Mapped[str | None] = mapped_column(String(500))
    nota_bloqueo: Mapped[str | None] = mapped_column(Text)
    motivo_rechazo: Mapped[str | None] = mapped_column(String(40))
    checklist: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    id_estimacion_detalle: Mapped[int | None] = mapped_column(_fk("estimacion_detalle.id"))
    fecha_carga: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    usuario_carga: Mapped[str | None] = mapped_column(String(200))
    fecha_revision: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    usuario_revision: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    fecha_creacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    fecha_actualizacion: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RegistroGpuHistorial(Base):
    """Append-only GPU audit (GP-D15). No FK to the GPU: rows outlive a deleted GPU (G9)."""

    __tablename__ = "registro_gpu_historial"
    __table_args__ = (
        Index("ix_gpu_historial_gpu", "id_gpu", "id"),
        Index("ix_gpu_historial_produccion", "id_produccion"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_gpu: Mapped[int] = mapped_column(Integer)
    id_produccion: Mapped[int] = mapped_column(Integer)
    accion: Mapped[str] = mapped_column(String(20))  # CREADO TRANSICION ELIMINADO FACTURADO ...
    regla: Mapped[str | None] = mapped_column(String(4))  # G1..G10
    de_estatus: Mapped[str | None] = mapped_column(String(12))
    a_estatus: Mapped[str | None] = mapped_column(String(12))
    usuario: Mapped[str] = mapped_column(String(200))
    fecha: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    nota: Mapped[str | None] = mapped_column(Text)
    motivo: Mapped[str | None] = mapped_column(String(40))
    archivo: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int | None] = mapped_column(Integer)


class GpuConflicto(Base):
    """A production change that could not retire a protected GPU (G10), kept for follow-up."""

    __tablename__ = "gpu_conflicto"
    __table_args__ = (
        Index("ix_gpu_conflicto_abierto", "id_gpu", "resuelto"),
        Index("ix_gpu_conflicto_produccion", "id_produccion"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_gpu: Mapped[int] = mapped_column(Integer)
    id_produccion: Mapped[int] = mapped_column(Integer)
    estatus_gpu: Mapped[str] = mapped_column(String(12))
    facturado: Mapped[bool] = mapped_column(Boolean, default=False)
    motivo: Mapped[str] = mapped_column(String(40))
    detalle: Mapped[str] = mapped_column(Text)
    resuelto: Mapped[bool] = mapped_column(Boolean, default=False)
    fecha: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
