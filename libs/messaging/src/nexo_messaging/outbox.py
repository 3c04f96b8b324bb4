"""Adding an event to the outbox inside the caller's transaction (no dual writes)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contracts.events.base import DomainEvent
from nexo_messaging.context import current_trace_headers


async def enqueue(
    db: AsyncSession | AsyncConnection,
    outbox: Table,
    event: DomainEvent,
    *,
    headers: dict[str, str] | None = None,
    notify: str | None = None,
    topic: str | None = None,
) -> str:
    """Insert `event` as an outbox row in the open transaction of `db`; return its event id.

    Correlation id, causation id and traceparent come from the current request/consumer
    context unless given in `headers`. Nothing is published until the transaction commits.
    On PostgreSQL a ``pg_notify('outbox_<service>')`` (delivered at commit; ``notify`` overrides
    the channel) wakes the relay at once; elsewhere call ``runtime.wake_relay()`` after commit.
    """
    event_id = str(uuid.uuid4())
    row_headers: dict[str, Any] = {**current_trace_headers(), **(headers or {})}
    await db.execute(
        insert(outbox).values(
            id=event_id,
            aggregatetype=event.aggregate_type,
            aggregateid=event.aggregate_id(),
            type=event.ce_type(),
            topic=topic or event.topic,
            payload=event.model_dump(mode="json"),
            headers=row_headers,
        )
    )
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    if conn.dialect.name == "postgresql":
        channel = notify or f"outbox_{event.service}"
        await db.execute(select(func.pg_notify(channel, "")))
    return event_id


async def enqueue_many(
    db: AsyncSession | AsyncConnection,
    outbox: Table,
    events: list[DomainEvent],
    *,
    headers: dict[str, str] | None = None,
    notify: str | None = None,
    topic: str | None = None,
) -> list[str]:
    """Like :func:`enqueue` for many events in one statement (one NOTIFY); returns their ids."""
    if not events:
        return []
    row_headers: dict[str, Any] = {**current_trace_headers(), **(headers or {})}
    ids = [str(uuid.uuid4()) for _ in events]
    await db.execute(
        insert(outbox),
        [
            {
                "id": event_id,
                "aggregatetype": event.aggregate_type,
                "aggregateid": event.aggregate_id(),
                "type": event.ce_type(),
                "topic": topic or event.topic,
                "payload": event.model_dump(mode="json"),
                "headers": row_headers,
            }
            for event_id, event in zip(ids, events, strict=True)
        ],
    )
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    if conn.dialect.name == "postgresql":
        channel = notify or f"outbox_{events[0].service}"
        await db.execute(select(func.pg_notify(channel, "")))
    return ids
