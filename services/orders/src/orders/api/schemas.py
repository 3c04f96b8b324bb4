"""HTTP schemas of the orders API: SQLModel families (non-table) as in the FastAPI template —
`<Thing>Base` (the fields a request and an answer share, named and bounded as the table's
columns), `<Thing>Create` / `<Thing>Update` (request bodies: extra fields forbidden, text
stripped) and `<Thing>Public` (answers). Answers made of row lists (proposals, requests,
reports) are plain pydantic models (`_Out`, see there). Vocabulary types derive from
`orders.domain.vocab`.

The answers are the read models `orders.queries` renders (dates and timestamps already ISO
text, quantities as integers, percentages as decimal text); the Public models declare them
field for field, so the OpenAPI document describes every answer and FastAPI serialises through
them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, Field
from sqlmodel import SQLModel
from sqlmodel._compat import SQLModelConfig

from orders import domain as d
from service_defaults.bounds import DomainDate, Id32, Int32, SafeText


class _In(SQLModel):
    """A request body: unknown fields are an error, text is stripped."""

    model_config = SQLModelConfig(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    """A read-model answer made of rows: a plain pydantic model, validated and serialised in
    pydantic-core alone (a SQLModel class's own ``__init__`` is called back once per nested
    row: about 12 extra calls a row, +11 % on a 200-item proposal answer)."""


Cantidad = Annotated[int, Field(ge=1, le=1_000_000)]


Texto = Annotated[str, Field(max_length=2000)]


IsoFecha = Annotated[str, Field(description="ISO 8601 date (YYYY-MM-DD)")]
IsoInstante = Annotated[str, Field(description="ISO 8601 timestamp")]

T = TypeVar("T")


class Lista(_Out, Generic[T]):
    """The shape of every list answer: its rows under `items`."""

    items: list[T]


class Pagina(Lista[T], Generic[T]):
    """A page of a list answer: the rows and the `limit` / `offset` they were read with."""

    limit: int
    offset: int


# ------------------------------------------------------------------------------ requests


class SolicitudItemCreate(_In):
    id_producto: Id32 = Field(gt=0)
    cantidad_solicitada: Cantidad


class SolicitudCreate(_In):
    id_institucion: Id32 = Field(gt=0)
    id_almacen_destino: Id32 = Field(gt=0)
    fecha_entrega_programada: DomainDate
    folio_pedido: SafeText | None = Field(default=None, max_length=100)
    observaciones: Texto = ""
    items: list[SolicitudItemCreate] = Field(min_length=1, max_length=10_000)


class SolicitudUpdate(SolicitudCreate):
    version: Int32 | None = Field(default=None, ge=1)


class AprobacionIn(_In):
    id_item: uuid.UUID
    cantidad_aprobada: int = Field(ge=0, le=1_000_000)
    justificacion_codigo: d.MotivoAjuste | None = None
    justificacion: SafeText | None = Field(default=None, max_length=255)


class ValidacionIn(_In):
    items: list[AprobacionIn] = Field(default_factory=list)
    observaciones: Texto = ""
    version: Int32 | None = Field(default=None, ge=1)


class MotivoIn(_In):
    motivo: SafeText = Field(min_length=1, max_length=2000)


class MotivoOpcionalIn(_In):
    motivo: SafeText | None = Field(default=None, max_length=2000)


class SolicitudItemPublic(_Out):
    id: uuid.UUID
    id_producto: int
    clave_cnis: str | None
    cantidad_solicitada: int
    cantidad_aprobada: int | None
    justificacion_codigo: str | None
    justificacion: str | None


class SolicitudResumen(_Out):
    """A request in a list."""

    id: uuid.UUID
    folio: str
    folio_pedido: str | None
    estado: d.EstadoSolicitud
    id_institucion: int
    fecha_entrega_programada: IsoFecha
    fecha_solicitud: IsoInstante
    fallo_propuesta_codigo: str | None = Field(
        default=None, description="Why the proposal could not be generated (PROPUESTA_FALLIDA)"
    )
    fallo_propuesta: str | None = None


class SolicitudPublic(SolicitudResumen):
    id_almacen_destino: int
    usuario_solicitante: str
    usuario_validacion: str | None
    fecha_validacion: IsoInstante | None
    observaciones: str
    observaciones_validacion: str
    version: int
    id_propuesta_activa: uuid.UUID | None
    items: list[SolicitudItemPublic]


class SolicitudCapturada(SolicitudPublic):
    """A created or edited request, with the capture's warnings (nothing was refused)."""

    advertencias: list[str]


class FolioVerificado(_Out):
    existe_activo: bool
    existe_cancelado: bool


# ------------------------------------------------------------------------------ proposals


class RevisionIn(_In):
    observaciones: Texto = ""


class LineaIn(_In):
    id_lote_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=1_000_000)


class LineasIn(_In):
    lineas: list[LineaIn] = Field(max_length=500)
    motivo_override: SafeText | None = Field(default=None, max_length=2000)
    version: Int32 | None = Field(default=None, ge=1)


class CantidadLineaIn(_In):
    """A picking quantity correction: 0 releases the line."""

    cantidad: int = Field(ge=0, le=1_000_000)


class MoverLineaIn(_In):
    """A picking lot/location correction: the target stock row of the same product, and the
    quantity it gets (default: the line's)."""

    id_lote_ubicacion: Id32 = Field(gt=0)
    cantidad: int | None = Field(default=None, ge=1, le=1_000_000)
    motivo_override: SafeText | None = Field(default=None, max_length=2000)


class LimitesLineaPublic(_Out):
    """The bounds of a picking quantity correction: minimo ≤ cantidad ≤ maximo."""

    id_linea: uuid.UUID
    estado_linea: d.EstadoLinea
    cantidad_actual: int
    minimo: int
    maximo: int = Field(description="min(libre_ubicacion + cantidad_actual, aprobada − otros)")
    libre_ubicacion: int = Field(description="The stock row's quantity no line reserves")
    cantidad_aprobada: int
    total_otros: int = Field(description="Σ the item's other active lines")


if TYPE_CHECKING:
    EstadoLoteValor = int
    EstadoUbicacionValor = str
else:
    EstadoLoteValor = Literal[d.values(d.EstadoLote)]
    EstadoUbicacionValor = Literal[d.values(d.EstadoUbicacion)]


class LineaPublic(_Out):
    """A reservation / pick line of a proposal item."""

    id: uuid.UUID
    id_lote_ubicacion: int
    id_lote: int
    numero_lote: str
    fecha_caducidad: IsoFecha | None
    ubicacion: str
    cantidad_asignada: int
    estado_linea: d.EstadoLinea
    override_caducidad: bool
    motivo_override: str | None
    no_elegible: bool


class PropuestaItemPublic(_Out):
    id: uuid.UUID
    id_item_solicitud: uuid.UUID
    id_producto: int
    clave_cnis: str
    cantidad_aprobada: int
    cantidad_disponible: int
    cantidad_propuesta: int
    cantidad_surtida: int
    cantidad_pendiente: int
    estado: d.EstadoItemPropuesta
    observaciones: str
    lotes: list[LineaPublic]


PORCENTAJE_SURTIDO = (
    "Decimal percentage Σ cantidad_surtida / Σ cantidad_aprobada × 100, HALF_UP to 0.01 "
    "(0.00 when nothing is approved)"
)


class PropuestaResumen(_Out):
    """A proposal in a list, with its request's folio."""

    id: uuid.UUID
    id_solicitud: uuid.UUID
    folio: str
    folio_pedido: str | None
    id_institucion: int
    estado: d.EstadoPropuesta
    total_solicitado: int
    total_propuesto: int
    total_surtido: int
    porcentaje_surtido: str = Field(description=PORCENTAJE_SURTIDO)


class PropuestaPublic(_Out):
    id: uuid.UUID
    id_solicitud: uuid.UUID
    estado: d.EstadoPropuesta
    version: int
    fecha_generacion: IsoInstante
    fecha_revision: IsoInstante | None
    fecha_surtimiento: IsoInstante | None
    requiere_replanificacion: bool
    total_solicitado: int
    total_disponible: int
    total_propuesto: int
    cobertura: str = Field(description="Decimal percentage of the approved quantity available")
    porcentaje_surtido: str = Field(description=PORCENTAJE_SURTIDO)
    items: list[PropuestaItemPublic]


class CandidatoPublic(_Out):
    id_lote_ubicacion: int
    id_lote: int
    numero_lote: str
    ubicacion: str
    fecha_caducidad: IsoFecha | None
    cantidad: int
    disponible: int
    requiere_override: bool


class CandidatosPublic(_Out):
    umbral_caducidad: IsoFecha
    candidatos: list[CandidatoPublic]


# ------------------------------------------------------------------------------ catalogue
# `<Thing>Base`: the fields a request and an answer share, named and bounded as the table's
# columns (`orders.models`; `test_orders_openapi` checks the lengths agree)


class InstitucionBase(SQLModel):
    clue: SafeText = Field(min_length=1, max_length=20)
    denominacion: SafeText = Field(min_length=1, max_length=200)


class AlmacenBase(SQLModel):
    nombre: SafeText = Field(min_length=1, max_length=150)
    codigo: SafeText = Field(min_length=1, max_length=50)
    es_central: bool = False


class UbicacionBase(SQLModel):
    codigo: SafeText = Field(min_length=1, max_length=50)
    estado: EstadoUbicacionValor = d.EstadoUbicacion.DISPONIBLE.value


class ProductoBase(SQLModel):
    clave_cnis: SafeText = Field(min_length=1, max_length=150)
    descripcion: SafeText = Field(default="", max_length=2000)


class LoteBase(SQLModel):
    numero_lote: SafeText = Field(min_length=1, max_length=50)
    estado: EstadoLoteValor = d.EstadoLote.DISPONIBLE.value


class InstitucionCreate(_In, InstitucionBase):
    pass


class InstitucionPublic(InstitucionBase):
    id: int
    activo: bool


class AlmacenCreate(_In, AlmacenBase):
    id_institucion: Id32 = Field(gt=0)


class AlmacenPublic(AlmacenBase):
    id: int
    id_institucion: int
    activo: bool


class UbicacionCreate(_In, UbicacionBase):
    id_almacen: Id32 = Field(gt=0)


class UbicacionPublic(UbicacionBase):
    id: int
    id_almacen: int
    descripcion: str | None
    activo: bool


class ProductoCreate(_In, ProductoBase):
    pass


class ProductoPublic(ProductoBase):
    id: int
    unidad_medida: str
    activo: bool


# PATCH bodies: every field optional, only the ones sent change; `activo: false` retires the row
# (refused with 409 while reservations depend on it), `activo: true` brings it back


class InstitucionUpdate(_In):
    clue: SafeText | None = Field(default=None, min_length=1, max_length=20)
    denominacion: SafeText | None = Field(default=None, min_length=1, max_length=200)
    activo: bool | None = None


class AlmacenUpdate(_In):
    nombre: SafeText | None = Field(default=None, min_length=1, max_length=150)
    codigo: SafeText | None = Field(default=None, min_length=1, max_length=50)
    es_central: bool | None = None
    activo: bool | None = None


class UbicacionUpdate(_In):
    codigo: SafeText | None = Field(default=None, min_length=1, max_length=50)
    descripcion: SafeText | None = Field(default=None, max_length=200)
    estado: EstadoUbicacionValor | None = None
    activo: bool | None = None


class ProductoUpdate(_In):
    clave_cnis: SafeText | None = Field(default=None, min_length=1, max_length=150)
    descripcion: SafeText | None = Field(default=None, max_length=2000)
    unidad_medida: SafeText | None = Field(default=None, min_length=1, max_length=120)
    activo: bool | None = None


# ------------------------------------------------------------------------------ stock


class EstadoLoteUpdate(_In):
    estado: EstadoLoteValor
    motivo: SafeText = Field(min_length=1, max_length=2000)


class StockIn(_In):
    id_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=100_000_000)


class LoteCreate(_In, LoteBase):
    id_producto: Id32 = Field(gt=0)
    id_institucion: Id32 = Field(gt=0)
    fecha_caducidad: DomainDate | None
    ubicaciones: list[StockIn] = Field(min_length=1, max_length=200)


class LoteUbicacionPublic(_Out):
    id_lote_ubicacion: int
    id_ubicacion: int
    codigo: str
    id_almacen: int
    estado_ubicacion: EstadoUbicacionValor
    cantidad: int
    cantidad_reservada: int
    disponible: int


class LotePublic(LoteBase):
    id: int
    id_producto: int
    fecha_caducidad: IsoFecha | None
    cantidad_disponible: int = Field(description="Σ locations (HO-D21)")
    cantidad_reservada: int
    ubicaciones: list[LoteUbicacionPublic]


class MovimientoPublic(_Out):
    id: int
    id_lote: int
    numero_lote: str
    id_lote_ubicacion: int | None
    tipo_movimiento: d.TipoMovimiento
    cantidad: int
    cantidad_anterior: int
    cantidad_nueva: int
    motivo: str
    documento_referencia: str | None
    pedido: str | None
    folio: str | None
    id_institucion_destino: int | None
    usuario: str
    fecha_movimiento: IsoInstante


class JobCaducidadPublic(_Out):
    lotes_caducados: list[str] = Field(description="Lot numbers that expired in this run")
    lineas_marcadas: int
    propuestas_replanificar: list[str] = Field(
        description="Ids of the proposals marked for replanning"
    )


# ------------------------------------------------------------------------------ reports


class PendientePublic(_Out):
    folio: str
    folio_pedido: str | None
    estado: d.EstadoSolicitud
    clue: str
    institucion: str
    fecha_entrega_programada: IsoFecha
    dias_atraso: int


class FaltantePublic(_Out):
    """An open shortfall: a proposal item with units still owed (DECIDE-B5)."""

    folio: str
    folio_pedido: str | None
    fecha_solicitud: IsoInstante
    id_institucion: int
    clue: str
    institucion: str
    id_propuesta: uuid.UUID
    estado_propuesta: d.EstadoPropuesta
    id_producto: int
    clave_cnis: str
    descripcion: str
    cantidad_aprobada: int
    cantidad_propuesta: int
    cantidad_surtida: int
    cantidad_pendiente: int


class FillRateProducto(_Out):
    clave_cnis: str
    cantidad_aprobada: int
    cantidad_surtida: int
    fill_rate: str = Field(description="Decimal percentage surtida / aprobada")


class FillRatePublic(_Out):
    cantidad_aprobada: int
    cantidad_surtida: int
    fill_rate: str = Field(description="Decimal percentage surtida / aprobada")
    productos: list[FillRateProducto]


class LotePorCaducar(_Out):
    id_lote: int
    numero_lote: str
    clave_cnis: str
    fecha_caducidad: IsoFecha
    dias_para_caducidad: int | None
    estado: EstadoLoteValor
    cantidad_disponible: int
    cantidad_reservada: int


# ------------------------------------------------------------------------------ CSV upload


class ProductoEncontrado(ProductoPublic):
    """A product found by clave or name."""


class CargaItemPublic(SQLModel):
    """An item of a held upload: a distinct valid clave, its quantities summed."""

    id_producto: int
    clave: str
    descripcion: str
    cantidad_solicitada: int


class CargaErrorPublic(SQLModel):
    """A line of a held upload that will not be saved (logged when the request is saved)."""

    linea: int = Field(description="Line number in the file (the header is line 1)")
    clave: str
    cantidad: str = Field(description="The quantity as written")
    tipo_error: Literal["CLAVE_NO_EXISTE", "CANTIDAD_INVALIDA"]
    mensaje: str


class CargaPublic(SQLModel):
    """A page of a held CSV upload: its summed items (``vista=items``) or its error lines."""

    id: uuid.UUID
    codificacion: str
    folio: str | None = Field(description="The file's FOLIO column (first non-empty value)")
    total_lineas: int
    omitidas: int = Field(description="Lines with an empty clave or quantity (skipped)")
    total_items: int
    total_errores: int
    vista: Literal["items", "errores"]
    limit: int
    offset: int
    filas: list[CargaItemPublic | CargaErrorPublic]


class CargaGuardarCreate(_In):
    """The request header a held upload is saved with (its items come from the file)."""

    id_institucion: Id32 = Field(gt=0)
    id_almacen_destino: Id32 = Field(gt=0)
    fecha_entrega_programada: DomainDate
    folio_pedido: SafeText | None = Field(
        default=None, max_length=100, description="Empty: the file's FOLIO column"
    )
    observaciones: Texto = ""


class CargaGuardada(SolicitudCapturada):
    """The request created from an upload, with the number of error lines logged."""

    errores_registrados: int


class LogErrorPedidoPublic(SQLModel):
    linea: int
    tipo_error: str
    clave_solicitada: str
    cantidad_solicitada: str
    descripcion_error: str
    usuario: str
    fecha_error: IsoInstante


class ErroresCarga(Pagina[LogErrorPedidoPublic]):
    """A page of a request's CSV error log and its total."""

    total: int
