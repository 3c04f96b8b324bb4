"""The explicit event registry: ``ce_type`` → event class. No reflection: adding an event (or a
new version) means adding a line here, which the completeness tests check against the topic
table and the committed JSON Schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from contracts.envelope import CloudEvent
from contracts.events.base import DomainEvent
from contracts.events.evidence import GpuStatusChanged, ProductionSaved, ProductionSavedV2
from contracts.events.orders import (
    ProposalDispatched,
    ProposalGenerated,
    RequestRejected,
    RequestValidated,
)
from contracts.events.sales import (
    SaleCancelled,
    SaleConfirmed,
    StockLow,
    StockShortage,
    StockShortageV2,
)

__all__ = [
    "EVENTS",
    "REGISTRY",
    "UPCASTERS",
    "ContractError",
    "SchemaViolation",
    "UnknownEventType",
    "event_class",
    "events_for_topic",
    "parse",
    "to_cloudevent",
    "upcast",
]

EVENTS: tuple[type[DomainEvent], ...] = (
    ProductionSaved,
    ProductionSavedV2,
    GpuStatusChanged,
    SaleConfirmed,
    SaleCancelled,
    StockLow,
    StockShortage,
    StockShortageV2,
    RequestValidated,
    RequestRejected,
    ProposalGenerated,
    ProposalDispatched,
)

REGISTRY: dict[str, type[DomainEvent]] = {
    "nexo.evidence.ProductionSaved.v1": ProductionSaved,  # superseded by v2; still consumed
    "nexo.evidence.ProductionSaved.v2": ProductionSavedV2,
    "nexo.evidence.GpuStatusChanged.v1": GpuStatusChanged,
    "nexo.sales.SaleConfirmed.v1": SaleConfirmed,
    "nexo.sales.SaleCancelled.v1": SaleCancelled,
    "nexo.sales.StockLow.v1": StockLow,
    "nexo.sales.StockShortage.v1": StockShortage,  # superseded by v2; still consumed
    "nexo.sales.StockShortage.v2": StockShortageV2,
    "nexo.orders.RequestValidated.v1": RequestValidated,
    "nexo.orders.RequestRejected.v1": RequestRejected,
    "nexo.orders.ProposalGenerated.v1": ProposalGenerated,
    "nexo.orders.ProposalDispatched.v1": ProposalDispatched,
}


UPCASTERS: dict[type[DomainEvent], Callable[[Any], DomainEvent]] = {
    StockShortage: StockShortageV2.from_v1,
}
"""Superseded version → its next version: the one definition of how an old event reads now."""


class ContractError(ValueError):
    """Base of the contract errors: a message that retrying will never fix (→ DLQ)."""


class UnknownEventType(ContractError):
    def __init__(self, ce_type: str) -> None:
        super().__init__(f"unknown event type {ce_type!r}: not in contracts.registry.REGISTRY")
        self.ce_type = ce_type


class SchemaViolation(ContractError):
    """The event's data does not match its schema; ``errors`` are pydantic's error dicts."""

    def __init__(self, ce_type: str, event_id: str | None, error: ValidationError) -> None:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in error.errors()
        )
        super().__init__(f"{ce_type} (id={event_id}) violates its schema: {details}")
        self.ce_type = ce_type
        self.event_id = event_id
        self.errors = error.errors(include_url=False)


def event_class(ce_type: str) -> type[DomainEvent]:
    try:
        return REGISTRY[ce_type]
    except KeyError:
        raise UnknownEventType(ce_type) from None


def parse(ce: CloudEvent) -> DomainEvent:
    """Validate the envelope's data into its event class (JSON mode: decimals from strings)."""
    cls = event_class(ce.type)
    try:
        return cls.model_validate(ce.data)
    except ValidationError as exc:
        raise SchemaViolation(ce.type, ce.id, exc) from exc


def to_cloudevent(
    event: DomainEvent,
    *,
    id: str,
    headers: Mapping[str, str] | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Envelope for a registered event (raises UnknownEventType for an unregistered class)."""
    if REGISTRY.get(event.ce_type()) is not type(event):
        raise UnknownEventType(event.ce_type())
    return CloudEvent.from_domain(event, id=id, time=time, headers=dict(headers or {}))


def events_for_topic(topic: str) -> list[type[DomainEvent]]:
    return [cls for cls in REGISTRY.values() if cls.topic == topic]


def upcast(event: DomainEvent) -> DomainEvent:
    """The newest version of ``event`` (itself when no newer version supersedes it), so a
    consumer handles one shape whichever version is on the topic."""
    while (step := UPCASTERS.get(type(event))) is not None:
        event = step(event)
    return event
