"""Shared harness of the messaging contract tests (memory+SQLite and kafka+PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.events.sales import StockLow
from nexo_messaging.consumer import ConsumerSpec, EventMeta
from nexo_messaging.errors import PermanentError
from nexo_messaging.outbox import enqueue
from nexo_messaging.relay import RelaySettings
from nexo_messaging.runtime import MessagingRuntime
from nexo_messaging.tables import inbox_table, outbox_table
from nexo_messaging.transport import TopicSpec, Transport

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("material", Integer, nullable=False),
    Column("n", Integer, nullable=False),
)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("material", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("correlationid", String(64)),
    Column("consumer", String(64)),
)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Env:
    kind: str
    engine: AsyncEngine
    transport: Transport
    topic: str
    group: str
    broker: Any = None  # MemoryBroker or the kafka_broker fixture handle
    runtimes: list[MessagingRuntime] = field(default_factory=list)
    fail: dict[str, Any] = field(default_factory=dict)

    # -- writes ------------------------------------------------------------------------------
    async def write(
        self, items: Sequence[tuple[int, int]], *, rollback: bool = False, nombre: str = "ok"
    ) -> None:
        async with AsyncSession(self.engine) as session, session.begin():
            for material, n in items:
                await session.execute(insert(things).values(material=material, n=n))
                await enqueue(
                    session,
                    outbox,
                    StockLow(id_material=material, nombre=nombre, actual=n, minimo=0),
                    topic=self.topic,
                    notify="outbox_msgtest",
                )
            if rollback:
                await session.rollback()
        for rt in self.runtimes:
            rt.wake_relay()

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    async def effect_rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(select(effects).order_by(effects.c.id)))

    async def backlog(self) -> int:
        async with self.engine.connect() as conn:
            q = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            return int((await conn.execute(q)).scalar_one())

    # -- handler -----------------------------------------------------------------------------
    def handler(self, name: str = "c1") -> Callable[[AsyncSession, StockLow, EventMeta], Any]:
        async def handle(session: AsyncSession, event: StockLow, meta: EventMeta) -> None:
            if event.nombre == "poison" and not self.fail.get("healed"):
                raise PermanentError("rule violated")
            if event.nombre == "flaky" and self.fail.get("flaky", 0) > 0:
                self.fail["flaky"] -= 1
                raise RuntimeError("transient")
            await session.execute(
                insert(effects).values(
                    event_id=meta.event_id,
                    material=event.id_material,
                    n=event.actual,
                    correlationid=meta.correlationid,
                    consumer=name,
                )
            )

        return handle

    def spec(self, name: str = "c1", **kw: Any) -> ConsumerSpec:
        return ConsumerSpec(
            group_id=self.group, handlers={StockLow: self.handler(name)}, topics=[self.topic], **kw
        )

    def runtime(
        self, consumers: Sequence[ConsumerSpec] = (), *, relay: bool = True, **relay_kw: Any
    ) -> MessagingRuntime:
        settings = RelaySettings(poll_interval=0.2, backoff_max=1.0, **relay_kw)
        rt = MessagingRuntime(
            service="msgtest",
            transport=self.transport,
            engine=self.engine,
            outbox=outbox if relay else None,
            inbox=inbox,
            consumers=consumers,
            relay_settings=settings,
            extra_topics=[TopicSpec(self.topic, 3)],
        )
        self.runtimes.append(rt)
        return rt
