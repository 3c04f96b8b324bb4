"""Consumers of the orders service: the explicit table event → handler.

`orders.proposals` consumes `RequestValidated` and generates the FEFO proposal (DOMAIN §B.4.1),
reserving stock under row locks. Idempotent under redelivery: the runner's inbox row skips an
exact duplicate, and `generar_propuesta` returns the request's active proposal if one exists
(at most one active proposal per request, also a partial unique index), or does nothing if the
request is no longer VALIDADA (a stale event after release or cancellation).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.orders import RequestValidated
from nexo_messaging.consumer import ConsumerSpec, EventMeta, Handler
from nexo_messaging.errors import PermanentError
from orders import domain as d
from orders import service

GROUP_PROPOSALS = "orders.proposals"


async def handle_request_validated(
    session: AsyncSession, event: RequestValidated, meta: EventMeta
) -> None:
    try:
        await service.generar_propuesta(
            session, event.id_solicitud, evento_id=meta.event_id, actor=service.Actor.system()
        )
    except d.Conflict:
        raise  # e.g. a reservation race lost: transient, retried with backoff
    except d.DomainError as exc:  # unknown request or another rule violation: DLQ
        raise PermanentError(f"{exc.code}: {exc.detail}") from exc


HANDLERS: dict[type[DomainEvent], Handler] = {RequestValidated: handle_request_validated}

CONSUMERS: list[Any] = [ConsumerSpec(group_id=GROUP_PROPOSALS, handlers=HANDLERS)]
