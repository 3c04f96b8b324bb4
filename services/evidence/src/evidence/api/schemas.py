"""HTTP schemas of the evidence API as SQLModel families (non-table models, as the FastAPI
full-stack template): ``<Thing>Base`` holds fields several models share (``ReporteMensualBase``,
``Exito``, the grid rows' fixed members), ``<Thing>Create`` / ``<Thing>Update`` are request bodies
(extra fields forbidden, bounded), ``<Thing>Public`` the answers: every route declares one as its
``response_model``, listing the members in the order the route renders them (FastAPI writes the
JSON in the model's order, so the answers' key order is unchanged).

Answers carry volumes as decimal strings with 6 decimals, money with 2, unit prices with 4, and
timestamps as ISO strings, as the routes render them. Vocabulary-typed fields derive from
:mod:`evidence.domain.vocab`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, RootModel, create_model
from sqlmodel import SQLModel

from evidence import domain as d
from service_defaults.bounds import DomainDate, Id32, Int32, SafeText

# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    TipoTiempoIn = str
    BulkReviewTarget = str
else:
    TipoTiempoIn = Literal[d.values(d.TipoTiempo)]
    BulkReviewTarget = Literal[d.values(d.BULK_REVIEW_TARGETS)]

Mes = Annotated[int, Field(ge=1, le=12)]
Anio = Annotated[int, Field(ge=2000, le=2100)]
PositiveId = Annotated[Id32, Field(gt=0)]
DAYS = range(1, 32)


FORBID_EXTRA: Any = ConfigDict(extra="forbid")
"""(typed ``Any``: SQLModel types ``model_config`` with its own, non-public TypedDict)"""


class BodyModel(SQLModel):
    """A request body: unknown members are a 422 naming them."""

    model_config = FORBID_EXTRA


class PublicModel(SQLModel):
    """An answer: exactly the members the route renders (an unknown one is a server bug)."""

    model_config = FORBID_EXTRA


def with_days(
    name: str, base: type[SQLModel], day: Any, prefix: str, **after: tuple[Any, Any]
) -> Any:
    """``base`` plus ``<prefix>1`` … ``<prefix>31`` of type ``day`` (null past the month), then
    the ``after`` fields: the members in the order the route renders them."""
    fields: dict[str, Any] = {f"{prefix}{n}": (day | None, None) for n in DAYS} | after
    return create_model(name, __base__=base, __module__=__name__, **fields)


class Exito(PublicModel):
    """Seed-compatible answer ``{exito, mensaje}``."""

    exito: bool
    mensaje: str


# --- OTs ---------------------------------------------------------------------------------------


class OtCreate(BodyModel):
    orden_trabajo: SafeText = Field(min_length=1, max_length=100, examples=["OTE-2025-001"])
    descripcion_trabajo: SafeText = ""
    ot_principal: Int32 | None = Field(default=None, description="Principal OT (reprogramación)")
    fecha_inicio_programado: DomainDate | None = None
    fecha_termino_programado: DomainDate | None = None
    fecha_inicio_real: DomainDate | None = None
    fecha_termino_real: DomainDate | None = None
    id_frente: Id32 | None = Field(default=None, gt=0, description="Selects the site column")
    id_embarcacion: Id32 | None = Field(default=None, gt=0)
    id_plataforma: Id32 | None = Field(default=None, gt=0)
    id_intercom: Id32 | None = Field(default=None, gt=0)
    id_patio: Id32 | None = Field(default=None, gt=0)
    id_cliente: Id32 | None = Field(default=None, gt=0)


class OtPublic(PublicModel):
    id: int
    orden_trabajo: str
    descripcion_trabajo: str
    ot_principal: int | None
    id_tipo: int = Field(description="4 inicial, 5 reprogramación")
    fecha_inicio_programado: dt.date | None
    fecha_termino_programado: dt.date | None
    fecha_inicio_real: dt.date | None
    fecha_termino_real: dt.date | None
    id_frente: int | None
    id_embarcacion: int | None
    id_plataforma: int | None
    id_intercom: int | None
    id_patio: int | None
    id_cliente: int | None
    num_reprogramacion: int
    activo: bool


# --- annex imports and their lines (partidas) --------------------------------------------------


class PartidaCreate(BodyModel):
    id_partida: SafeText = Field(min_length=1, max_length=20, examples=["C-2.1.1"])
    descripcion: SafeText = ""
    anexo: SafeText | None = Field(default=None, max_length=10, examples=["C-2"])
    unidad: SafeText = Field(default="", max_length=20, examples=["JOR"])
    volumen_proyectado: Decimal = Field(ge=0, max_digits=18, decimal_places=6)
    precio_unitario_mn: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)
    precio_unitario_usd: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)


class PartidaPublic(PublicModel):
    id: int
    id_importacion_anexo: int
    codigo: str
    descripcion: str
    anexo: str | None
    unidad: str
    volumen_proyectado: str | None
    precio_unitario_mn: str
    precio_unitario_usd: str
    orden_fila: int
    requiere_gpu: bool


class ImportacionCreate(BodyModel):
    es_activo: bool = True
    archivo: SafeText | None = Field(default=None, max_length=500)
    partidas: list[PartidaCreate] = Field(min_length=1, max_length=5000)


class ImportacionUpdate(BodyModel):
    es_activo: bool


class ImportacionPublic(PublicModel):
    id: int
    id_ot: int
    es_activo: bool


class ImportacionConPartidas(ImportacionPublic):
    partidas: list[PartidaPublic]


# --- production --------------------------------------------------------------------------------


class PartidaValores(BodyModel):
    id_partida_imp: PositiveId
    valores: list[Decimal | None] = Field(
        max_length=31,
        description="Volume of day 1..N (decimal string or number); null = leave unchanged",
    )


class ReporteMensualBase(SQLModel):
    """The monthly report of an OT: what closing a month and saving its production name."""

    id_ot: PositiveId
    mes: Mes
    anio: Anio


class ProduccionMasivaCreate(ReporteMensualBase, BodyModel):
    tipo_tiempo: TipoTiempoIn = "TE"
    id_sitio: Id32 | None = Field(default=None, gt=0)
    partidas: list[PartidaValores] = Field(max_length=5000)


class ProduccionMasivaPublic(Exito):
    id_reporte_mensual: int
    creadas: int
    actualizadas: int
    sin_cambio: int
    eventos: int = Field(description="Changed productions announced")
    mensajes: int = Field(description="ProductionSaved.v2 events carrying them")


class ProduccionCreate(BodyModel):
    id_partida_anexo: PositiveId
    fecha: DomainDate
    tipo_tiempo: TipoTiempoIn
    volumen: Decimal
    id_sitio: Id32 | None = Field(default=None, gt=0)


class ProduccionUpdate(BodyModel):
    volumen: Decimal
    version: Int32 | None = Field(default=None, ge=1)


class ProduccionPublic(PublicModel):
    id: int
    id_partida_anexo: int
    id_reporte_mensual: int
    fecha: dt.date
    tipo_tiempo: str
    id_sitio: int | None
    volumen: str | None
    es_excedente: bool
    excedente_autorizado: bool
    version: int


class ProduccionNoCreada(PublicModel):
    """``PUT /producciones`` of a 0 on a row that does not exist: nothing created."""

    id: None
    volumen: str
    creada: Literal[False]


class ProduccionGuardada(RootModel[ProduccionPublic | ProduccionNoCreada]):
    """Answer of ``PUT /producciones``: the row, or "nothing created" (one named schema)."""


class ReporteMensualCierre(ReporteMensualBase, BodyModel):
    cerrado: bool = True


class ReporteMensualPublic(PublicModel):
    id: int
    id_ot: int
    mes: int
    anio: int
    cerrado: bool


class ReporteDiarioCierre(BodyModel):
    id_ot: PositiveId
    fecha: DomainDate
    cerrado: bool = True
    comentario: SafeText = Field(default="", max_length=255)


class ReporteDiarioPublic(PublicModel):
    id: int
    fecha: dt.date
    cerrado: bool


# --- GPUs --------------------------------------------------------------------------------------


class GpuTransicionCreate(BodyModel):
    a: SafeText = Field(description="Target status code (PENDIENTE, CARGADO, EN_REVISION, ...)")
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = Field(default=None, description="Rejection reason code")
    checklist: dict[str, bool] | None = None
    version: Int32 | None = Field(default=None, ge=1)


class GpuVersion(BodyModel):
    id_gpu: PositiveId
    version: Int32 | None = Field(default=None, ge=1)


class GpuTransicionMasivaCreate(BodyModel):
    a: BulkReviewTarget
    gpus: list[GpuVersion] = Field(min_length=1, max_length=1000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = None


class GpuEstatusLegacy(SQLModel):
    """Seed body of ``guardar_estatus_gpu`` (extra members ignored, as the seed client sends)."""

    id_produccion: Id32 | None = None
    estatus_id: Int32
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)


class GpuPublic(PublicModel):
    id: int
    id_produccion: int
    id_ot: int
    id_reporte_mensual: int
    anexo: str
    fecha: dt.date
    tipo_tiempo: str
    volumen: str | None
    estatus: str
    estatus_id: int
    estatus_texto: str
    archivo: str | None
    nota_bloqueo: str | None
    motivo_rechazo: str | None
    checklist: dict[str, Any] | None
    facturado: bool
    id_estimacion_detalle: int | None
    fecha_carga: str | None
    usuario_carga: str | None
    fecha_revision: str | None
    usuario_revision: str | None
    mes_cerrado: bool
    version: int
    transiciones_permitidas: list[str]


class GpuList(PublicModel):
    data: list[GpuPublic]


class GpuConflictoPublic(PublicModel):
    id: int
    id_gpu: int
    id_produccion: int
    estatus_gpu: str
    facturado: bool
    motivo: str
    detalle: str
    resuelto: bool
    fecha: str | None
    resolucion: str | None = Field(description="CONSERVAR, ANULAR or AUTOMATICA (GPU sync)")
    justificacion: str | None
    resuelto_por: str | None
    fecha_resolucion: str | None


class GpuConflictoResolucionCreate(BodyModel):
    decision: Literal["CONSERVAR", "ANULAR"] = Field(
        description="CONSERVAR keeps the GPU as it is; ANULAR removes it (history kept)"
    )
    justificacion: SafeText = Field(max_length=2000, description="Why (required, audited)")


class GpuConflictoList(PublicModel):
    data: list[GpuConflictoPublic]


class GpuHistorialPublic(PublicModel):
    id: int
    id_gpu: int
    id_produccion: int
    accion: str
    regla: str | None
    de_estatus: str | None
    a_estatus: str | None
    usuario: str
    fecha: str | None
    nota: str | None
    motivo: str | None
    archivo: str | None
    version: int | None


class GpuHistorialList(PublicModel):
    data: list[GpuHistorialPublic]


class GridCell(PublicModel):
    """One production of a grid day; ``id_gpu`` is absent while the GPU does not exist."""

    id_produccion: int
    volumen: str
    tipo_tiempo: str
    estatus_id: int
    estatus_texto: str
    archivos_count: int
    archivo: str
    id_gpu: int | None = None


class GridLineBase(PublicModel):
    id_partida_anexo: int
    codigo: str
    descripcion: str
    unidad: str
    anexo: str


# --- daily grids (seed paths) ------------------------------------------------------------------


class DiaProduccion(PublicModel):
    valor: str | None
    programado: str | None
    es_excedente: bool
    te_dia: str
    cma_dia: str


class PartidaProduccionBase(PublicModel):
    id_partida_imp: int
    ids_partida: list[int]
    codigo: str
    concepto: str
    unidad: str
    anexo: str | None
    vol_total_proyectado: str
    acumulado_mes: str
    acumulado_programado: str
    archivo: str | None


class OtSitioBase(PublicModel):
    id_ot: int
    ot: str
    desc: str
    inicio_v: str | None
    fin_v: str | None
    archivo: str | None


# The grids' rows: their fixed members plus one member per day of the month.
if TYPE_CHECKING:
    GridLine = GridLineBase
    PartidaProduccion = PartidaProduccionBase
    OtSitio = OtSitioBase
else:
    GridLine = with_days("GridLine", GridLineBase, list[GridCell], "dia_")
    PartidaProduccion = with_days(
        "PartidaProduccion",
        PartidaProduccionBase,
        DiaProduccion,
        "dia",
        estatus_gpu=(str, Field(description="Seed name of `estatus_volumen`")),
        estatus_volumen=(str, ...),
    )
    OtSitio = with_days("OtSitio", OtSitioBase, str, "dia")


class GridPublic(PublicModel):
    """The GPU grid (hand-rendered and cached; this model is its declared schema)."""

    data: list[GridLine]


class PartidasProduccionPublic(PublicModel):
    partidas: list[PartidaProduccion]
    dias_bloqueados: list[int]


class OtsPorSitioPublic(PublicModel):
    reportes_diarios: list[OtSitio]


class ReporteDias(BodyModel):
    id_ot: PositiveId
    valores: list[Annotated[SafeText, Field(max_length=40)] | None] = Field(max_length=31)


class ReportesDiariosCreate(BodyModel):
    mes: Mes
    anio: Anio
    reportes: list[ReporteDias] = Field(max_length=2000)


class ReportesDiariosPublic(Exito):
    guardados: int
    eliminados: int
    sin_cambio: int


# --- estimates (billing link) and completeness -------------------------------------------------


class EstimacionDetalleCreate(BodyModel):
    id_produccion: PositiveId
    volumen_estimado: Decimal | None = Field(default=None, ge=0, max_digits=15, decimal_places=2)
    comentario_ajuste: SafeText = ""


class EstimacionCreate(BodyModel):
    id_ot: PositiveId
    fecha_desde: DomainDate
    fecha_hasta: DomainDate
    fecha_estimacion: DomainDate | None = None
    comentario: SafeText = ""
    detalles: list[EstimacionDetalleCreate] | None = Field(
        default=None,
        description="Explicit lines; omitted → assembled from every billable production",
    )


class EstimacionDetallePublic(PublicModel):
    id: int
    id_produccion: int
    volumen_actual: str
    volumen_estimado: str
    precio_unitario_mn: str
    precio_unitario_usd: str
    importe_mn: str
    importe_usd: str
    es_excedente: bool


class Omitida(PublicModel):
    """A production left out of an assembled estimate, with the reason."""

    id_produccion: int
    motivo: str


class EstimacionPublic(PublicModel):
    id: int
    id_ot: int
    fecha_estimacion: dt.date
    fecha_desde: dt.date
    fecha_hasta: dt.date
    estatus_cobro: str
    total_volumen_producido: str
    total_volumen_estimado: str
    total_importe_mn: str
    total_importe_usd: str
    detalles: list[EstimacionDetallePublic]
    omitidas: list[Omitida]


class EstimacionResumen(PublicModel):
    id: int
    id_ot: int
    fecha_estimacion: dt.date
    fecha_desde: dt.date
    fecha_hasta: dt.date
    estatus_cobro: str
    total_volumen_estimado: str
    total_importe_mn: str
    total_importe_usd: str
    creado_por: str


class EstimacionList(PublicModel):
    data: list[EstimacionResumen]


class EstimacionCancelacion(BodyModel):
    motivo: SafeText = Field(max_length=2000, description="Why (required, audited)")


class Conteo(PublicModel):
    cantidad: int
    porcentaje: str


class ResumenEstatus(PublicModel):
    total: int
    por_estatus: dict[str, Conteo]


class Faltante(PublicModel):
    """A production still missing its evidence (also the CSV columns, in this order)."""

    id_produccion: int
    fecha: str
    tipo_tiempo: str
    volumen: str
    id_partida_anexo: int
    codigo: str
    descripcion: str
    anexo: str
    id_gpu: int | None
    estatus: str
    nota_bloqueo: str | None


class OtMesPublic(PublicModel):
    """The OT and month a report covers."""

    id_ot: int
    orden_trabajo: str
    mes: int
    anio: int


class CompletitudPublic(OtMesPublic):
    total: int
    por_estatus: dict[str, Conteo]
    por_anexo: dict[str, ResumenEstatus]
    faltantes: list[Faltante]
