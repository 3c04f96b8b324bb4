"""What a consumer group is: the event class → handler table and its tuning
(:class:`ConsumerSpec`), and the callable types a service writes against. The runner that
executes a spec is :mod:`nexo_messaging.consumer`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from nexo_messaging.decoding import EventMeta

Handler = Callable[[AsyncSession, Any, EventMeta], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[tuple[Any, EventMeta]]], Awaitable[None]]
DeadLetterHook = Callable[[AsyncSession, Any, EventMeta, BaseException], Awaitable[None]]
"""Called before an event that failed for good (``PermanentError`` or retries exhausted) is
dead-lettered, in a transaction of its own (the handler's rolled back), with the error."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group of a service: the explicit table event class → handler.

    Topics default to the ``topic`` of the handled event classes; ``topics`` overrides them
    (tests, replays). ``batch_handler``, when given, gets every new event of a fetched chunk in
    one call (same transaction as their inbox rows) instead of the per-event handlers.
    ``on_dead_letter``, when given, records a decoded event's final failure where the service's
    users see it (e.g. a request's state) just before the event goes to the DLQ.
    """

    group_id: str
    handlers: Mapping[type[DomainEvent], Handler] = field(default_factory=dict)
    batch_handler: BatchHandler | None = None
    on_dead_letter: DeadLetterHook | None = None
    topics: Sequence[str] | None = None
    max_batch: int = 500
    max_attempts: int = 5
    retry_backoff: float = 0.05
    retry_backoff_max: float = 2.0
    transient_backoff_max: float = 5.0
    max_poll_interval_ms: int = 300_000
    stall_after: float = 30.0

    def topic_names(self) -> list[str]:
        if self.topics:
            return list(dict.fromkeys(self.topics))
        return sorted({cls.topic for cls in self.handlers})
