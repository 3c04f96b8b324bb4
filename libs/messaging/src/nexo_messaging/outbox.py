"""Adding an event to the outbox inside the caller's transaction (no dual writes)."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import TextClause

from contracts.events.base import DomainEvent
from nexo_messaging import tracing
from nexo_messaging.context import current_trace_headers


def _payload_value(table: Table, dialect: str, text: str) -> Any:
    """The payload as compact JSON text written verbatim (no dict round trip): the relay emits
    the stored text as the record value, exactly what ``contracts.codec.encode`` gives."""
    if dialect == "sqlite":  # JSON is stored as text there; a CAST would change affinity
        return type_coerce(text, Text)
    return cast(type_coerce(text, Text), table.c.payload.type)


def _payload_param(table: Table, dialect: str) -> Any:
    param = bindparam("payload_text", type_=Text())
    return param if dialect == "sqlite" else cast(param, table.c.payload.type)


async def _dialect(db: AsyncSession | AsyncConnection) -> str:
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    return str(conn.dialect.name)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """The column values of one outbox row (``payload_text``: the event as compact JSON)."""

    id: str
    aggregatetype: str
    aggregateid: str
    type: str
    topic: str
    payload_text: str
    headers: dict[str, Any]


def outbox_row(
    event: DomainEvent, *, headers: dict[str, str] | None = None, topic: str | None = None
) -> OutboxRow:
    """The outbox row for `event` (new event id; trace headers from the current context unless
    given). :func:`enqueue` inserts exactly this; a hand-written statement on a hot path may
    insert it itself (same transaction as its business rows, plus ``pg_notify``)."""
    row_headers: dict[str, Any] = current_trace_headers()
    topic = topic or event.topic
    if tracing.enabled:
        _trace_create(row_headers, event, topic, 1)
    return OutboxRow(
        id=str(uuid.uuid4()),
        aggregatetype=event.aggregate_type,
        aggregateid=event.aggregate_id(),
        type=event.ce_type(),
        topic=topic,
        payload_text=event.model_dump_json(),
        headers={**row_headers, **(headers or {})},
    )


def _trace_create(row_headers: dict[str, Any], event: DomainEvent, topic: str, n: int) -> None:
    """The ``create`` span of the row(s) becomes their traceparent (tracing on only)."""
    traceparent = tracing.create_span(event.service, topic, event.ce_type(), n)
    if traceparent is not None:
        row_headers["traceparent"] = traceparent


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
    values = outbox_row(event, headers=headers, topic=topic)
    dialect = await _dialect(db)
    row = insert(outbox).values(
        id=values.id,
        aggregatetype=values.aggregatetype,
        aggregateid=values.aggregateid,
        type=values.type,
        topic=values.topic,
        payload=_payload_value(outbox, dialect, values.payload_text),
        headers=values.headers,
    )
    if dialect == "postgresql":
        # One round trip: the insert runs as a data-modifying CTE beside the NOTIFY.
        channel = notify or f"outbox_{event.service}"
        inserted = row.returning(outbox.c.seq).cte("inserted")
        await db.execute(select(func.pg_notify(channel, "")).select_from(inserted))
    else:
        await db.execute(row)
    return values.id


async def enqueue_many(
    db: AsyncSession | AsyncConnection,
    outbox: Table,
    events: Sequence[DomainEvent],
    *,
    headers: dict[str, str] | None = None,
    notify: str | None = None,
    topic: str | None = None,
) -> list[str]:
    """Like :func:`enqueue` for many events in one statement (one NOTIFY); returns their ids.

    Rows get ``seq`` in the order of `events` (per-aggregate publication order)."""
    if not events:
        return []
    row_headers: dict[str, Any] = current_trace_headers()
    if tracing.enabled:
        _trace_create(row_headers, events[0], topic or events[0].topic, len(events))
    row_headers.update(headers or {})
    ids = [str(uuid.uuid4()) for _ in events]
    payloads = [event.model_dump_json() for event in events]
    dialect = await _dialect(db)
    if dialect == "postgresql":
        # One statement, one round trip: the rows as column arrays (no per-row Bind/Execute),
        # the NOTIFY beside the insert (a data-modifying CTE always runs to completion).
        conn = await db.connection() if isinstance(db, AsyncSession) else db
        await db.execute(
            _pg_insert_many(outbox, conn.dialect),
            {
                "ids": ids,
                "atypes": [event.aggregate_type for event in events],
                "aids": [event.aggregate_id() for event in events],
                "types": [event.ce_type() for event in events],
                "topics": [topic or event.topic for event in events],
                "payloads": payloads,
                "headers": json.dumps(row_headers),
                "channel": notify or f"outbox_{events[0].service}",
            },
        )
        return ids
    await db.execute(
        insert(outbox).values(payload=_payload_param(outbox, dialect)),
        [
            {
                "id": event_id,
                "aggregatetype": event.aggregate_type,
                "aggregateid": event.aggregate_id(),
                "type": event.ce_type(),
                "topic": topic or event.topic,
                "payload_text": payload,
                "headers": row_headers,
            }
            for event_id, event, payload in zip(ids, events, payloads, strict=True)
        ],
    )
    return ids


def _pg_insert_many(outbox: Table, dialect: Dialect) -> TextClause:
    return _pg_insert_many_sql(
        dialect.identifier_preparer.format_table(outbox),
        str(outbox.c.payload.type.compile(dialect=dialect)),
        str(outbox.c.headers.type.compile(dialect=dialect)),
    )


@functools.lru_cache(maxsize=64)
def _pg_insert_many_sql(name: str, payload_type: str, headers_type: str) -> TextClause:
    return text(
        f"WITH inserted AS ("
        f"INSERT INTO {name} (id, aggregatetype, aggregateid, type, topic, payload, headers) "
        f"SELECT i, a, g, t, tp, CAST(p AS {payload_type}), "
        f"CAST(CAST(:headers AS TEXT) AS {headers_type}) "
        "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:atypes AS VARCHAR[]), "
        "CAST(:aids AS VARCHAR[]), CAST(:types AS VARCHAR[]), CAST(:topics AS VARCHAR[]), "
        "CAST(:payloads AS TEXT[])) WITH ORDINALITY AS u(i, a, g, t, tp, p, n) "
        "ORDER BY n) "
        "SELECT pg_notify(CAST(:channel AS TEXT), '')"
    )
