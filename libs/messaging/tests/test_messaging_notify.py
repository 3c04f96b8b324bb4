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


async def test_standby_relay_does_not_ask_for_the_lock_on_every_notify(pg_database: str) -> None:
    """Two relays of one service database (replicas, uvicorn workers): one publishes; the other
    is woken by every NOTIFY too, but retries the advisory lock only once per poll interval."""
    engine = create_engine(pg_database)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = MemoryBroker()
    topic = "notify.standby"
    runtimes = [
        MessagingRuntime(
            service="msgtest",
            transport=MemoryTransport(broker),
            engine=engine,
            outbox=outbox,
            inbox=None,
            relay_settings=RelaySettings(poll_interval=60.0),
            extra_topics=[TopicSpec(topic, 3)],
        )
        for _ in range(2)
    ]
    for runtime in runtimes:
        await runtime.start()
    try:
        relays = [r.relay for r in runtimes if r.relay is not None]
        await wait_until(
            lambda: _true(all(r._listen_conn is not None for r in relays)),
            within=10,
            what="both relays LISTEN",
        )
        (standby,) = [r for r in relays if not r._leader]
        attempts = 0
        lock_key = standby._lock_key

        def counting_lock_key() -> int:
            nonlocal attempts
            attempts += 1
            return lock_key()

        standby._lock_key = counting_lock_key  # type: ignore[method-assign]
        n = 20
        for i in range(n):
            async with AsyncSession(engine) as session, session.begin():
                await enqueue(
                    session,
                    outbox,
                    StockLow(id_material=i, nombre="n", actual=1, minimo=2),
                    topic=topic,
                    notify="outbox_msgtest",
                )
        await wait_until(
            lambda: _true(sum(len(p) for p in broker.topics.get(topic, [])) == n),
            within=10,
            what="every event published by the leader",
        )
        assert attempts == 0
        assert standby.published_total == 0
    finally:
        for runtime in runtimes:
            await runtime.stop()
        await engine.dispose()
