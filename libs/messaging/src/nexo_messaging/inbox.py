"""Inbox: one ``(consumer_group, event_id)`` row per processed event, written in the handler's
transaction; a duplicate insert (nothing inserted) means the event was already processed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession


def _insert_ignore(session: AsyncSession, inbox: Table) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(inbox).on_conflict_do_nothing(
            index_elements=["consumer_group", "event_id"]
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(inbox).on_conflict_do_nothing(
            index_elements=["consumer_group", "event_id"]
        )
    return insert(inbox).prefix_with("IGNORE")  # mysql-like fallback


async def record_processed(
    session: AsyncSession, inbox: Table, consumer_group: str, event_id: str, event_type: str
) -> bool:
    """Insert the inbox row; True if it is new (process the event), False for a duplicate."""
    result = await session.execute(
        _insert_ignore(session, inbox).values(
            consumer_group=consumer_group, event_id=event_id, event_type=event_type
        )
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def record_processed_many(
    session: AsyncSession, inbox: Table, consumer_group: str, events: list[tuple[str, str]]
) -> set[str]:
    """Insert inbox rows for ``(event_id, event_type)`` pairs in one statement; return the ids
    that were new (to process). Duplicates — earlier or within ``events`` — are left out."""
    if not events:
        return set()
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect not in ("postgresql", "sqlite"):
        fresh: set[str] = set()
        for event_id, event_type in events:
            if await record_processed(session, inbox, consumer_group, event_id, event_type):
                fresh.add(event_id)
        return fresh
    unique = dict(events)
    if dialect == "postgresql":
        # one statement with two array parameters: no per-row parameter handling
        assert session.bind is not None
        table = session.bind.dialect.identifier_preparer.format_table(inbox)
        result = await session.execute(
            text(
                f"INSERT INTO {table} (consumer_group, event_id, event_type) "
                "SELECT CAST(:group AS VARCHAR), e, t "
                "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:types AS VARCHAR[])) AS u(e, t) "
                "ON CONFLICT (consumer_group, event_id) DO NOTHING RETURNING event_id"
            ),
            {"group": consumer_group, "ids": list(unique), "types": list(unique.values())},
        )
        return {row[0] for row in result}
    stmt = _insert_ignore(session, inbox).returning(inbox.c.event_id)
    result = await session.execute(
        stmt,
        [
            {"consumer_group": consumer_group, "event_id": e, "event_type": t}
            for e, t in unique.items()
        ],
    )
    return {row[0] for row in result}
