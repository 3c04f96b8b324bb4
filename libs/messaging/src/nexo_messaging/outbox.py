"""Adding an event to the outbox inside the caller's transaction (no dual writes)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contracts.events.base import DomainEvent
from nexo_messaging.context import current_trace_headers


async def enqueue(
    db: AsyncSession | AsyncConnection,
    outbox: Table,
    event: DomainEvent,
    *,
    headers: dict[str, str] | None = None,
) -> str:
    """Insert `event` as an outbox row in the open transaction of `db`; return its event id.

    Correlation id, causation id and traceparent come from the current request/consumer
    context unless given in `headers`. Nothing is published until the transaction commits.
    """
    event_id = str(uuid.uuid4())
    row_headers: dict[str, Any] = {**current_trace_headers(), **(headers or {})}
    await db.execute(
        insert(outbox).values(
            id=event_id,
            aggregatetype=event.aggregate_type,
            aggregateid=event.aggregate_id(),
            type=event.ce_type(),
            topic=event.topic,
            payload=event.model_dump(mode="json"),
            headers=row_headers,
        )
    )
    return event_id
