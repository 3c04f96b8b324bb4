"""Hospital supply orders events, v1 — DOMAIN Part B.

Ids are UUIDs (the original's UUID primary keys), serialised as strings. Quantities are ``int``:
units in the hospital domain are integers (DOMAIN §0.3.2); there is no money in these events.
Dates (``fecha_caducidad``) are ISO dates; datetimes are timezone-aware.

``RequestValidated`` carries the approved items with the destination warehouse so the proposal
consumer (``orders.proposals``) can run FEFO allocation (§B.4.1) without calling back.
``ProposalGenerated`` / ``ProposalDispatched`` carry per-item quantities and the lots
(reservations / issued stock) for the ops dashboard and downstream readers.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.base import DomainEvent

__all__ = [
    "AllocatedLot",
    "DispatchedItem",
    "ProposalDispatched",
    "ProposalGenerated",
    "ProposalItem",
    "RequestRejected",
    "RequestValidated",
    "ValidatedItem",
]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ValidatedItem(_Part):
    id_item: UUID
    id_producto: int
    clave_cnis: str
    cantidad_solicitada: int = Field(ge=1)
    cantidad_aprobada: int = Field(ge=0, description="0 = not to be supplied.")


class RequestValidated(DomainEvent):
    """A supply request was validated (PENDIENTE → VALIDADA, DOMAIN §B.3.1)."""

    event_name: ClassVar[str] = "RequestValidated"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "orders"
    topic: ClassVar[str] = "orders.requests"
    aggregate_type: ClassVar[str] = "solicitud"

    id_solicitud: UUID
    folio: str = Field(description="Internal folio SOL-YYYYMMDD-XXXXXX.")
    folio_pedido: str | None = Field(default=None, description="External order folio.")
    id_institucion: int
    id_almacen_destino: int = Field(description="Stock is sourced only from here (DECIDE-B2).")
    fecha_entrega_programada: dt.date | None = None
    items: list[ValidatedItem] = Field(min_length=1)
    validated_by: str
    validated_at: dt.datetime

    def aggregate_id(self) -> str:
        return str(self.id_solicitud)


class RequestRejected(DomainEvent):
    """A supply request was rejected (PENDIENTE → RECHAZADA, DOMAIN §B.3.1), for the requester's
    side: by the validator's reject, or by a validation that approves nothing."""

    event_name: ClassVar[str] = "RequestRejected"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "orders"
    topic: ClassVar[str] = "orders.requests"
    aggregate_type: ClassVar[str] = "solicitud"

    id_solicitud: UUID
    folio: str = Field(description="Internal folio SOL-YYYYMMDD-XXXXXX.")
    folio_pedido: str | None = Field(default=None, description="External order folio.")
    id_institucion: int
    motivo_codigo: str = Field(
        description=(
            "RECHAZO_VALIDADOR (the validator rejected the request), or for a validation that "
            "approves nothing the items' common justification code (e.g. SIN_EXISTENCIA), "
            "else SIN_CANTIDAD_APROBADA."
        )
    )
    motivo: str = Field(description="The validator's reason, as written.")
    rejected_by: str
    rejected_at: dt.datetime

    def aggregate_id(self) -> str:
        return str(self.id_solicitud)


class AllocatedLot(_Part):
    id_lote_asignado: UUID | None = None
    id_lote: int
    numero_lote: str
    fecha_caducidad: dt.date
    id_lote_ubicacion: int | None = None
    ubicacion: str | None = Field(default=None, description="Location code, for picking.")
    cantidad: int = Field(ge=1)


class ProposalItem(_Part):
    id_item: UUID = Field(description="ItemSolicitud id.")
    id_item_propuesta: UUID | None = None
    id_producto: int
    clave_cnis: str | None = None
    cantidad_aprobada: int = Field(ge=0)
    cantidad_asignada: int = Field(ge=0)
    cantidad_pendiente: int = Field(ge=0, description="Open shortfall (DECIDE-B5).")
    estado: Literal["COMPLETO", "PARCIAL", "SIN_EXISTENCIA"]
    lotes: list[AllocatedLot] = Field(default_factory=list)


class ProposalGenerated(DomainEvent):
    """A FEFO proposal was generated and its lots reserved (DOMAIN §B.4.1)."""

    event_name: ClassVar[str] = "ProposalGenerated"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "orders"
    topic: ClassVar[str] = "orders.proposals"
    aggregate_type: ClassVar[str] = "solicitud"

    id_propuesta: UUID
    id_solicitud: UUID
    folio: str
    id_almacen_destino: int
    estado_propuesta: Literal["GENERADA", "NO_DISPONIBLE"] = "GENERADA"
    items: list[ProposalItem]
    total_solicitado: int = Field(ge=0)
    total_propuesto: int = Field(ge=0)
    generated_by: str = "system"
    generated_at: dt.datetime
    source_event_id: str | None = Field(
        default=None, description="ce id of the RequestValidated that caused it."
    )

    def aggregate_id(self) -> str:
        return str(self.id_solicitud)


class DispatchedItem(_Part):
    id_item: UUID
    id_producto: int
    cantidad_aprobada: int = Field(ge=0)
    cantidad_surtida: int = Field(ge=0)
    cantidad_pendiente: int = Field(ge=0)
    lotes: list[AllocatedLot] = Field(default_factory=list)


class ProposalDispatched(DomainEvent):
    """A proposal was dispatched: stock issued (DOMAIN §B.4.5); request → ENTREGADA."""

    event_name: ClassVar[str] = "ProposalDispatched"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "orders"
    topic: ClassVar[str] = "orders.proposals"
    aggregate_type: ClassVar[str] = "solicitud"

    id_propuesta: UUID
    id_solicitud: UUID
    folio: str
    estado_propuesta: Literal["SURTIDA", "PARCIAL"]
    estado_solicitud: Literal["ENTREGADA", "PARCIAL"] = Field(
        description="ENTREGADA (also after a partial dispatch, §B.4.5 d) or PARCIAL."
    )
    items: list[DispatchedItem] = Field(min_length=1)
    dispatched_by: str
    dispatched_at: dt.datetime

    def aggregate_id(self) -> str:
        return str(self.id_solicitud)
