"""On PostgreSQL an outbox insert wakes the relay through LISTEN/NOTIFY, not the poll."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.sales import StockLow
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.outbox import enqueue
from nexo_messaging.relay import RelaySettings
from nexo_messaging.runtime import MessagingRuntime
from nexo_messaging.transport import TopicSpec
from service_defaults.db import create_engine

from .messaging_harness import metadata, outbox, wait_until


async def test_insert_wakes_the_relay_without_polling(pg_database: str) -> None:
    engine = create_engine(pg_database)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = MemoryBroker()
    topic = "notify.test"
    runtime = MessagingRuntime(
        service="msgtest",
        transport=MemoryTransport(broker),
        engine=engine,
        outbox=outbox,
        inbox=None,
        relay_settings=RelaySettings(poll_interval=60.0),  # a poll would come far too late
        extra_topics=[TopicSpec(topic, 3)],
    )
    await runtime.start()
    try:
        assert runtime.relay is not None
        relay = runtime.relay
        await wait_until(
            lambda: _true(relay._listen_conn is not None), within=10, what="relay LISTEN"
        )
        started = time.monotonic()
        async with AsyncSession(engine) as session, session.begin():
            await enqueue(
                session,
                outbox,
                StockLow(id_material=1, nombre="n", actual=1, minimo=2),
                topic=topic,
                notify="outbox_msgtest",
            )
        # no runtime.wake_relay(): only the NOTIFY sent with the insert can wake it
        await wait_until(
            lambda: _true(sum(len(p) for p in broker.topics.get(topic, [])) == 1),
            within=10,
            what="the event on the wire",
        )
        assert time.monotonic() - started < 10
    finally:
        await runtime.stop()
        await engine.dispose()


async def _true(value: bool) -> bool:
    return value
