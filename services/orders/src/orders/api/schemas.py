"""Request bodies of the orders API (pydantic); vocabulary types derive from
`orders.domain.vocab`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from orders import domain as d
from service_defaults.bounds import DomainDate, Id32, Int32, SafeText


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Cantidad = Annotated[int, Field(ge=1, le=1_000_000)]


Texto = Annotated[str, Field(max_length=2000)]


class ItemIn(_In):
    id_producto: Id32 = Field(gt=0)
    cantidad_solicitada: Cantidad


class SolicitudIn(_In):
    id_institucion: Id32 = Field(gt=0)
    id_almacen_destino: Id32 = Field(gt=0)
    fecha_entrega_programada: DomainDate
    folio_pedido: SafeText | None = Field(default=None, max_length=100)
    observaciones: Texto = ""
    items: list[ItemIn] = Field(min_length=1, max_length=10_000)


class SolicitudEditIn(SolicitudIn):
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


class RevisionIn(_In):
    observaciones: Texto = ""


class LineaIn(_In):
    id_lote_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=1_000_000)


class LineasIn(_In):
    lineas: list[LineaIn] = Field(max_length=500)
    motivo_override: SafeText | None = Field(default=None, max_length=2000)
    version: Int32 | None = Field(default=None, ge=1)


if TYPE_CHECKING:
    EstadoLoteValor = int
    EstadoUbicacionValor = str
else:
    EstadoLoteValor = Literal[d.values(d.EstadoLote)]
    EstadoUbicacionValor = Literal[d.values(d.EstadoUbicacion)]


class EstadoLoteIn(_In):
    estado: EstadoLoteValor
    motivo: SafeText = Field(min_length=1, max_length=2000)


class InstitucionIn(_In):
    clue: SafeText = Field(min_length=1, max_length=20)
    denominacion: SafeText = Field(min_length=1, max_length=200)


class AlmacenIn(_In):
    id_institucion: Id32 = Field(gt=0)
    nombre: SafeText = Field(min_length=1, max_length=150)
    codigo: SafeText = Field(min_length=1, max_length=50)
    es_central: bool = False


class UbicacionIn(_In):
    id_almacen: Id32 = Field(gt=0)
    codigo: SafeText = Field(min_length=1, max_length=50)
    estado: EstadoUbicacionValor = d.EstadoUbicacion.DISPONIBLE.value


class ProductoIn(_In):
    clave_cnis: SafeText = Field(min_length=1, max_length=150)
    descripcion: SafeText = Field(default="", max_length=2000)


class StockIn(_In):
    id_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=100_000_000)


class LoteIn(_In):
    id_producto: Id32 = Field(gt=0)
    id_institucion: Id32 = Field(gt=0)
    numero_lote: SafeText = Field(min_length=1, max_length=50)
    fecha_caducidad: DomainDate | None
    estado: EstadoLoteValor = d.EstadoLote.DISPONIBLE.value
    ubicaciones: list[StockIn] = Field(min_length=1, max_length=200)
