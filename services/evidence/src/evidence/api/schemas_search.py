"""HTTP schemas of the searches and OT edits (split from :mod:`evidence.api.schemas`, same
conventions): the cross-OT GPU search, the OT list, the OT edit and its audit, and the answer
of the annex import from Excel."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from evidence.api.schemas import BodyModel, OtPublic, PublicModel
from service_defaults.bounds import DomainDate, Id32, SafeText


class GpuBusquedaPublic(PublicModel):
    id_gpu: int
    id_produccion: int
    id_ot: int
    orden_trabajo: str
    id_cliente: int | None
    id_frente: int | None
    id_sitio: int | None = Field(description="The OT's site (the column its frente selects)")
    fecha: dt.date = Field(description="Production date")
    tipo_tiempo: str
    codigo: str
    descripcion: str
    anexo: str
    volumen: str
    estatus: str
    estatus_id: int = Field(description="Workflow id 19-23")
    archivo: str | None
    entregado: bool = Field(description="Evidence link loaded (legacy: trimmed length > 5)")
    facturado: bool


class Pagina(PublicModel):
    total: int = Field(description="Rows matching the filters (every page)")
    limit: int
    offset: int


class GpuBusquedaList(Pagina):
    data: list[GpuBusquedaPublic]


class OtList(Pagina):
    data: list[OtPublic]


class OtUpdate(BodyModel):
    """Members sent are changed (null clears a date or the client); absent ones are kept."""

    descripcion_trabajo: SafeText = Field(default="", max_length=4000)
    fecha_inicio_programado: DomainDate | None = None
    fecha_termino_programado: DomainDate | None = None
    fecha_inicio_real: DomainDate | None = None
    fecha_termino_real: DomainDate | None = None
    id_cliente: Id32 | None = Field(default=None, gt=0)
    activo: bool = Field(default=True, description="false deactivates the OT")
    motivo: SafeText | None = Field(
        default=None, max_length=2000, description="Why (kept in the OT's history)"
    )


class OtHistorialPublic(PublicModel):
    id: int
    id_ot: int
    usuario: str
    fecha: str | None
    cambios: dict[str, Any] = Field(description="field → [old, new]")
    motivo: str | None


class OtHistorialList(PublicModel):
    data: list[OtHistorialPublic]
