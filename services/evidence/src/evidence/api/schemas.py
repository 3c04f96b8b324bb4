"""Request bodies of the evidence API (pydantic, extra fields forbidden); the vocabulary-typed
fields derive from :mod:`evidence.domain.vocab`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from evidence import domain as d
from service_defaults.bounds import DomainDate, Id32, Int32, SafeText

# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    TipoTiempoIn = str
    BulkReviewTarget = str
else:
    TipoTiempoIn = Literal[d.values(d.TipoTiempo)]
    BulkReviewTarget = Literal[d.values(d.BULK_REVIEW_TARGETS)]


class BodyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OtIn(BodyModel):
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


class PartidaIn(BodyModel):
    id_partida: SafeText = Field(min_length=1, max_length=20, examples=["C-2.1.1"])
    descripcion: SafeText = ""
    anexo: SafeText | None = Field(default=None, max_length=10, examples=["C-2"])
    unidad: SafeText = Field(default="", max_length=20, examples=["JOR"])
    volumen_proyectado: Decimal = Field(ge=0, max_digits=18, decimal_places=6)
    precio_unitario_mn: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)
    precio_unitario_usd: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=4)


class ImportacionIn(BodyModel):
    es_activo: bool = True
    archivo: SafeText | None = Field(default=None, max_length=500)
    partidas: list[PartidaIn] = Field(min_length=1, max_length=5000)


class ImportacionPatch(BodyModel):
    es_activo: bool


class PartidaValoresIn(BodyModel):
    id_partida_imp: Id32 = Field(gt=0)
    valores: list[Decimal | None] = Field(
        max_length=31,
        description="Volume of day 1..N (decimal string or number); null = leave unchanged",
    )


class ProduccionMasivaIn(BodyModel):
    id_ot: Id32 = Field(gt=0)
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    tipo_tiempo: TipoTiempoIn = "TE"
    id_sitio: Id32 | None = Field(default=None, gt=0)
    partidas: list[PartidaValoresIn] = Field(max_length=5000)


class ProduccionIn(BodyModel):
    id_partida_anexo: Id32 = Field(gt=0)
    fecha: DomainDate
    tipo_tiempo: TipoTiempoIn
    volumen: Decimal
    id_sitio: Id32 | None = Field(default=None, gt=0)


class ProduccionPatch(BodyModel):
    volumen: Decimal
    version: Int32 | None = Field(default=None, ge=1)


class CierreMesIn(BodyModel):
    id_ot: Id32 = Field(gt=0)
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    cerrado: bool = True


class CierreDiaIn(BodyModel):
    id_ot: Id32 = Field(gt=0)
    fecha: DomainDate
    cerrado: bool = True
    comentario: SafeText = Field(default="", max_length=255)


class TransicionIn(BodyModel):
    a: SafeText = Field(description="Target status code (PENDIENTE, CARGADO, EN_REVISION, ...)")
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = Field(default=None, description="Rejection reason code")
    checklist: dict[str, bool] | None = None
    version: Int32 | None = Field(default=None, ge=1)


class BulkGpuIn(BodyModel):
    id_gpu: Id32 = Field(gt=0)
    version: Int32 | None = Field(default=None, ge=1)


class TransicionMasivaIn(BodyModel):
    a: BulkReviewTarget
    gpus: list[BulkGpuIn] = Field(min_length=1, max_length=1000)
    nota: SafeText | None = Field(default=None, max_length=4000)
    motivo: SafeText | None = None


class EstatusLegacyIn(BaseModel):
    id_produccion: Id32 | None = None
    estatus_id: Int32
    archivo: SafeText | None = Field(default=None, max_length=2000)
    nota: SafeText | None = Field(default=None, max_length=4000)


class ReporteDiasIn(BodyModel):
    id_ot: Id32 = Field(gt=0)
    valores: list[Annotated[SafeText, Field(max_length=40)] | None] = Field(max_length=31)


class ReportesDiariosIn(BodyModel):
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    reportes: list[ReporteDiasIn] = Field(max_length=2000)


class DetalleIn(BodyModel):
    id_produccion: Id32 = Field(gt=0)
    volumen_estimado: Decimal | None = Field(default=None, ge=0, max_digits=15, decimal_places=2)
    comentario_ajuste: SafeText = ""


class EstimacionIn(BodyModel):
    id_ot: Id32 = Field(gt=0)
    fecha_desde: DomainDate
    fecha_hasta: DomainDate
    fecha_estimacion: DomainDate | None = None
    comentario: SafeText = ""
    detalles: list[DetalleIn] | None = Field(
        default=None,
        description="Explicit lines; omitted → assembled from every billable production",
    )
