"""The runtime seam used by app lifespans: transport factory, relay + consumers, health, stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from nexo_messaging.consumer import ConsumerRunner, ConsumerSpec, EventMeta, Handler
from nexo_messaging.dlq import AUDIT_TOPIC, dlq_topic
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.ops import GroupLagCache
from nexo_messaging.relay import OutboxRelay, RelaySettings
from nexo_messaging.transport import TopicLike, TopicSpec, Transport

__all__ = [
    "ConsumerSpec",
    "EventMeta",
    "Handler",
    "MessagingRuntime",
    "RelaySettings",
    "build_transport",
]

log = structlog.get_logger("nexo_messaging.runtime")


def build_transport(
    kind: str,
    *,
    bootstrap_servers: str | None = None,
    memory_broker: MemoryBroker | None = None,
    local_path: str | Path | None = None,
) -> Transport:
    """``"memory"`` (shares ``memory_broker`` when given), ``"local"`` (the durable log file at
    ``local_path``, shared by every transport of the process for that file) or ``"kafka"``
    (needs bootstrap). No I/O here."""
    if kind == "memory":
        return MemoryTransport(memory_broker)
    if kind == "local":
        if local_path is None:
            raise ValueError("the local transport needs local_path")
        from nexo_messaging.locallog import LocalLogTransport, shared_log

        return LocalLogTransport(shared_log(local_path))
    if kind == "kafka":
        if not bootstrap_servers:
            raise ValueError("the kafka transport needs bootstrap_servers")
        from nexo_messaging.kafka import KafkaTransport

        return KafkaTransport(bootstrap_servers)
    raise ValueError(f"unknown transport {kind!r} (memory|local|kafka)")


def _contract_topics() -> dict[str, TopicLike]:
    try:
        from contracts.topics import all_topics
    except ImportError:  # pragma: no cover
        return {}
    return {t.name: t for t in all_topics(include_dlq=True)}


class MessagingRuntime:
    def __init__(
        self,
        service: str,
        transport: Transport,
        engine: AsyncEngine,
        outbox: Table | None,
        inbox: Table | None,
        consumers: Sequence[ConsumerSpec] = (),
        *,
        relay_settings: RelaySettings | None = None,
        extra_topics: Sequence[TopicLike] = (),
        default_partitions: int = 3,
        stop_timeout: float = 15.0,
    ) -> None:
        self.service = service
        self.transport = transport
        self.engine = engine
        self.outbox = outbox
        self.inbox = inbox
        self.specs = list(consumers)
        self.extra_topics = list(extra_topics)
        self.default_partitions = default_partitions
        self.stop_timeout = stop_timeout
        self.relay = (
            OutboxRelay(service, engine, outbox, transport, relay_settings)
            if outbox is not None
            else None
        )
        if self.specs and inbox is None:
            raise ValueError("consumers need an inbox table")
        self.consumers = [
            ConsumerRunner(s, service=service, transport=transport, engine=engine, inbox=inbox)  # type: ignore[arg-type]
            for s in self.specs
        ]
        self.started_at: float | None = None
        # group lag over every partition, from the broker (cached; see GroupLagCache)
        self.group_lag = GroupLagCache(transport)

    def topics_to_ensure(self) -> list[TopicLike]:
        """This service's topics (published + consumed) and their DLQs, from the topic table;
        topics not in the table get ``default_partitions``."""
        table = _contract_topics()
        names: list[str] = [
            t.name for t in table.values() if getattr(t, "producer", None) == self.service
        ]
        for spec in self.specs:
            names.extend(spec.topic_names())
        wanted: dict[str, TopicLike] = {}
        for name in names:
            for n in (name, dlq_topic(name)) if not name.endswith(".dlq") else (name,):
                base = table.get(n) or table.get(n.removesuffix(".dlq"))
                wanted[n] = table.get(n) or TopicSpec(
                    n, getattr(base, "partitions", self.default_partitions)
                )
        wanted[AUDIT_TOPIC] = TopicSpec(AUDIT_TOPIC, 1)
        for t in self.extra_topics:
            wanted[t.name] = t
        return list(wanted.values())

    async def start(self) -> None:
        await self.transport.ensure_topics(self.topics_to_ensure())
        for runner in self.consumers:
            await runner.start()
        if self.relay is not None:
            self.relay.start()
        self.started_at = time.time()
        log.info("messaging started", service=self.service, transport=self.transport.kind)

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def readiness(self) -> dict[str, Any]:
        """``health()`` after refreshing the group lag from the broker (cached for a few
        seconds, waits at most ``GroupLagCache.wait``): the readiness check."""
        if self.consumers:
            await self.group_lag.get({c.spec.group_id: c.topics for c in self.consumers})
        return self.health()

    def health(self) -> dict[str, Any]:
        """The state of the relay and consumers; consumer-group lag as last read by
        ``readiness()``."""
        now = time.time()
        out: dict[str, Any] = {"transport": self.transport.kind}
        healthy = True
        if self.relay is not None:
            r = self.relay
            out["relay"] = {
                "running": r.running,
                "last_success_age_s": round(now - r.last_success, 3) if r.last_success else None,
                "backlog": r.backlog,
                "oldest_age_s": r.oldest_age_s,
                "published": r.published_total,
                "last_error": r.last_error,
            }
            healthy = healthy and r.running
        lag = self.group_lag.snapshot
        known = bool(lag.at or lag.errors)
        consumers = {
            c.spec.group_id: c.health(lag.describe(c.spec.group_id, c.topics) if known else None)
            for c in self.consumers
        }
        out["consumers"] = consumers
        healthy = healthy and all(c["healthy"] for c in consumers.values())
        out["status"] = "ok" if healthy and self.started_at else "unhealthy"
        return out

    async def stop(self) -> None:
        """Stop consuming (in-flight chunks finish and commit), then flush and stop the relay."""
        share = self.stop_timeout / 2
        await asyncio.gather(*(c.stop(share) for c in self.consumers), return_exceptions=True)
        if self.relay is not None:
            await self.relay.stop(share)
        await self.group_lag.close()
        log.info("messaging stopped", service=self.service)
