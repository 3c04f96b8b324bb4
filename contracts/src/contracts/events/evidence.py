"""Evidence (GPU) events — DOMAIN Part C.

Volumes are :data:`~contracts.types.DecimalStr` (DOMAIN §0.3.2: ``Decimal(15,6)``, serialised as
decimal strings). Ids are integers (the original's AutoField keys). Dates are ISO dates in the
business time zone (America/Mexico_City); datetimes are timezone-aware.

``ProductionSaved`` carries everything the GPU sync consumer (``evidence.gpu-sync``) needs to
decide eligibility (DOMAIN §C.4.1) without calling back: normalised annex, volume, import active
flag, monthly report; ``change="deleted"`` is sent when the production is removed (volume then 0).

Granularity (issue 4 lets the producer choose per row or per batch): ``ProductionSaved.v2``
(:class:`ProductionSavedV2`) is what the service publishes — ONE event per save and monthly
report, listing every changed production of that report (at most
:data:`MAX_PRODUCTIONS_PER_EVENT` per event; a bigger save is split into numbered parts). A
month's grid (200 lines × 31 days) is 7 events instead of 6,200. It is keyed by ``id_ot`` (the
OT of the monthly report), so a single-row edit (a one-item v2 event) and a bulk save that touch
the same production share a partition and are delivered in commit order: a production's report,
hence its OT, never changes. ``ProductionSaved.v1`` (one event per production, keyed by
``id_produccion``) is no longer produced; it stays registered so that v1 records still on the
topic are consumed (replay). The GPU sync decides from the productions' CURRENT state, so v1,
v2, redeliveries and replays all converge to the same GPUs.

``GpuStatusChanged`` covers the whole GPU lifecycle with an explicit ``change``:
``created`` (G1, ``from_status`` null), ``transition`` (G2–G8), ``deleted`` (G9, ``to_status``
null) and ``conflict`` (G10: production dropped to 0 / deleted while the GPU is EN_REVISION or
VALIDADO; the GPU is kept and ``conflict`` explains why). Status codes are the stable upper-case
codes of DOMAIN §C.2.1 (input is case-insensitive), with the authoritative legacy workflow ids
19–23 in ``*_status_id``; billing lock ("facturado") is the ``facturado`` flag, not a status.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contracts.events.base import DomainEvent
from contracts.types import DecimalStr

__all__ = [
    "GPU_STATUS_IDS",
    "MAX_PRODUCTIONS_PER_EVENT",
    "GpuStatus",
    "GpuStatusChanged",
    "ProductionSaved",
    "ProductionSavedV2",
    "SavedProduction",
]


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


GpuStatus = Annotated[
    Literal["PENDIENTE", "CARGADO", "EN_REVISION", "VALIDADO", "RECHAZADO"],
    BeforeValidator(_upper),
]
"""Stable GPU status code (DOMAIN §C.2.1)."""

GPU_STATUS_IDS: dict[str, int] = {
    "PENDIENTE": 19,
    "CARGADO": 20,
    "EN_REVISION": 21,
    "VALIDADO": 22,
    "RECHAZADO": 23,
}
"""Authoritative legacy workflow ids (``cat_estatus``) of each GPU status code."""


class ProductionSaved(DomainEvent):
    """Superseded (key id_produccion): one production was created, updated or deleted.

    DOMAIN §C.2.6, §C.4.2. Superseded by ``ProductionSaved.v2`` (one event per save and
    monthly report, keyed by ``id_ot``); no longer produced, still consumed (records already on
    the topic, replays). v1 records are keyed by ``id_produccion``, not by the topic's current
    key ``id_ot``.
    """

    event_name: ClassVar[str] = "ProductionSaved"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "evidence"
    topic: ClassVar[str] = "evidence.production"
    aggregate_type: ClassVar[str] = "produccion"
    key_field: ClassVar[str | None] = "id_produccion"

    id_produccion: int
    id_ot: int
    id_partida_anexo: int
    anexo: str = Field(description="Annex code normalised as upper(trim(anexo)), e.g. 'C-2'.")
    importacion_activa: bool = Field(
        description="importacion_anexo.es_activo of the budget line's import (§C.4.1)."
    )
    fecha: dt.date = Field(description="fecha_produccion (business date).")
    tipo_tiempo: Literal["TE", "CMA"]
    id_sitio: int | None = None
    sitio: str | None = Field(default=None, description="Site name, for display.")
    volumen: DecimalStr = Field(description="volumen_produccion after the change (0 if deleted).")
    volumen_anterior: DecimalStr | None = Field(
        default=None, description="Volume before the change; null when created."
    )
    es_excedente: bool = False
    id_reporte_mensual: int
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    change: Literal["created", "updated", "deleted"]
    saved_by: str = Field(description="User id (JWT sub) or 'system'.")
    saved_at: dt.datetime

    def aggregate_id(self) -> str:
        return str(self.id_produccion)


MAX_PRODUCTIONS_PER_EVENT = 1000
"""Productions per ``ProductionSaved.v2`` event. At most ~300 bytes each in JSON, so an event
stays under ~300 KB, well below Kafka's default 1 MiB message limit."""


class SavedProduction(BaseModel):
    """One changed production row inside ``ProductionSaved.v2``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id_produccion: int
    id_partida_anexo: int
    anexo: str = Field(description="Annex code normalised as upper(trim(anexo)), e.g. 'C-2'.")
    importacion_activa: bool = Field(
        description="importacion_anexo.es_activo of the budget line's import (§C.4.1)."
    )
    fecha: dt.date = Field(description="fecha_produccion (business date).")
    tipo_tiempo: Literal["TE", "CMA"]
    id_sitio: int | None = None
    volumen: DecimalStr = Field(description="volumen_produccion after the change (0 if deleted).")
    volumen_anterior: DecimalStr | None = Field(
        default=None, description="Volume before the change; null when created."
    )
    es_excedente: bool = False
    change: Literal["created", "updated", "deleted"]


class ProductionSavedV2(DomainEvent):
    """Productions of one monthly report were created, updated or set to 0 by one save.

    One event per save and monthly report (split into ``parte`` 1..``partes`` of at most 1,000
    productions); unchanged rows are not listed and a save that changes nothing publishes
    nothing. Key: ``id_ot`` of the monthly report — every event about a production has the same
    key (its report never changes), so single-row edits and bulk saves of a production stay in
    order on one partition. Consumers must treat it as "re-read these productions" (at-least-once
    delivery; the GPU sync is idempotent and converges under redelivery and replay).
    """

    event_name: ClassVar[str] = "ProductionSaved"
    version: ClassVar[int] = 2
    service: ClassVar[str] = "evidence"
    topic: ClassVar[str] = "evidence.production"
    aggregate_type: ClassVar[str] = "ot"

    id_ot: int = Field(description="OT of the monthly report; the Kafka key.")
    id_reporte_mensual: int
    mes: int = Field(ge=1, le=12)
    anio: int = Field(ge=2000, le=2100)
    parte: int = Field(default=1, ge=1, description="This event's part of the save (1-based).")
    partes: int = Field(default=1, ge=1, description="Parts this save was split into.")
    producciones: list[SavedProduction] = Field(min_length=1, max_length=MAX_PRODUCTIONS_PER_EVENT)
    saved_by: str = Field(description="User id (JWT sub) or 'system'.")
    saved_at: dt.datetime

    @model_validator(mode="after")
    def _parts(self) -> ProductionSavedV2:
        if self.parte > self.partes:
            raise ValueError("parte must be <= partes")
        return self

    def aggregate_id(self) -> str:
        return str(self.id_ot)


class GpuStatusChanged(DomainEvent):
    """The GPU registry of a production changed (DOMAIN §C.3.2, G1–G10)."""

    event_name: ClassVar[str] = "GpuStatusChanged"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "evidence"
    topic: ClassVar[str] = "evidence.gpu"
    aggregate_type: ClassVar[str] = "produccion"
    """Keyed by the production (the GPU is 1:1 with it), see ``contracts.topics``."""

    id_registro_gpu: int
    id_produccion: int
    id_ot: int
    id_reporte_mensual: int | None = None
    anexo: str
    fecha: dt.date | None = Field(default=None, description="fecha_produccion of the GPU.")
    change: Literal["created", "transition", "deleted", "conflict"]
    from_status: GpuStatus | None = None
    to_status: GpuStatus | None = None
    from_status_id: int | None = Field(default=None, description="Legacy workflow id (19-23).")
    to_status_id: int | None = Field(default=None, description="Legacy workflow id (19-23).")
    archivo: str | None = Field(default=None, description="Evidence link (https URL).")
    facturado: bool = Field(default=False, description="Linked to an estimate line: locked (G8).")
    reason_code: str | None = Field(
        default=None, description="Machine reason, e.g. 'GPU_EN_PROCESO', 'VOLUMEN_CERO'."
    )
    reason_text: str | None = Field(default=None, description="nota_bloqueo / reopen reason.")
    conflict: str | None = Field(
        default=None, description="For change='conflict': what was blocked and why."
    )
    changed_by: str = Field(description="User id (JWT sub) or 'system'.")
    changed_at: dt.datetime
    gpu_version: int = Field(ge=0, description="Optimistic-concurrency version after the change.")

    @model_validator(mode="after")
    def _consistent(self) -> GpuStatusChanged:
        if self.change == "created" and self.to_status is None:
            raise ValueError("change='created' needs to_status")
        if self.change == "transition" and (self.from_status is None or self.to_status is None):
            raise ValueError("change='transition' needs from_status and to_status")
        if self.change == "deleted" and self.from_status is None:
            raise ValueError("change='deleted' needs from_status (the last status)")
        if self.change == "conflict" and not self.conflict:
            raise ValueError("change='conflict' needs conflict")
        return self

    def aggregate_id(self) -> str:
        return str(self.id_produccion)
