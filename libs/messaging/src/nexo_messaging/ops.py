"""Read-only helpers for the ops API/dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from nexo_messaging.relay import outbox_stats
from nexo_messaging.transport import Transport

__all__ = ["consumer_lag", "outbox_stats"]


async def consumer_lag(transport: Transport, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Per ``topic/partition``: end offset minus the group's committed offset."""
    ends = await transport.end_offsets(topics)
    committed = await transport.committed(group, topics)
    return {
        f"{tp.topic}/{tp.partition}": max(0, end - committed.get(tp, 0)) for tp, end in ends.items()
    }
