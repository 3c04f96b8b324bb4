"""On PostgreSQL an outbox insert wakes the relay through LISTEN/NOTIFY, not the poll."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.events.sales import StockLow
from nexo_messaging import context
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.outbox import enqueue, enqueue_many
from nexo_messaging.relay import RelaySettings
from nexo_messaging.runtime import MessagingRuntime
from nexo_messaging.transport import TopicSpec
from service_defaults.db import create_engine

from .messaging_harness import metadata, outbox, wait_until


@contextlib.asynccontextmanager
async def listening_relay(
    pg_database: str, service: str, topic: str
) -> AsyncIterator[tuple[AsyncEngine, MemoryBroker]]:
    """A started runtime whose relay is LISTENing and would poll only after 60 s."""
    engine = create_engine(pg_database)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = MemoryBroker()
    runtime = MessagingRuntime(
        service=service,
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
        yield engine, broker
    finally:
        await runtime.stop()
        await engine.dispose()


async def test_insert_wakes_the_relay_without_polling(pg_database: str) -> None:
    topic = "notify.test"
    async with listening_relay(pg_database, "msgtest", topic) as (engine, broker):
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


@contextlib.contextmanager
def _trace(correlation: str, causation: str) -> Iterator[None]:
    tokens = (context.correlation_id.set(correlation), context.causation_id.set(causation))
    try:
        yield
    finally:
        context.causation_id.reset(tokens[1])
        context.correlation_id.reset(tokens[0])


async def _outbox_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(
                outbox.c.id,
                outbox.c.aggregatetype,
                outbox.c.aggregateid,
                outbox.c.type,
                outbox.c.topic,
                outbox.c.payload,
                outbox.c.headers,
            ).order_by(outbox.c.seq)
        )
        return [tuple(r) for r in result]


async def test_enqueue_many_writes_what_enqueue_writes_in_order_postgresql(
    pg_database: str,
) -> None:
    """One statement for many rows: same columns as one ``enqueue`` per event, ``seq`` in the
    order of the events, ids returned in that order."""
    await _check_enqueue_many(pg_database)


async def test_enqueue_many_writes_what_enqueue_writes_in_order_sqlite(tmp_path: Path) -> None:
    await _check_enqueue_many(f"sqlite+aiosqlite:///{tmp_path}/m.sqlite")


async def _check_enqueue_many(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    events = [
        StockLow(id_material=(7 * i) % 5, nombre=f"n{i}", actual=i, minimo=2) for i in range(250)
    ]
    try:
        with _trace("corr-1", "cause-1"):
            async with AsyncSession(engine) as session, session.begin():
                ids = await enqueue_many(session, outbox, events, headers={"x": "y"})
        many = await _outbox_rows(engine)
        async with engine.begin() as conn:
            await conn.execute(delete(outbox))
        with _trace("corr-1", "cause-1"):
            async with AsyncSession(engine) as session, session.begin():
                for event in events:
                    await enqueue(session, outbox, event, headers={"x": "y"})
        one_by_one = await _outbox_rows(engine)
    finally:
        await engine.dispose()
    assert [r[0] for r in many] == ids
    assert len(set(ids)) == len(events)
    assert [r[1:] for r in many] == [r[1:] for r in one_by_one]
    assert many[0][6] == {"correlationid": "corr-1", "causationid": "cause-1", "x": "y"}
    assert [r[5]["actual"] for r in many] == list(range(250))


async def test_enqueue_many_wakes_the_relay_once_and_keeps_order(pg_database: str) -> None:
    topic = "notify.many"
    async with listening_relay(pg_database, "msgmany", topic) as (engine, broker):
        events = [StockLow(id_material=i % 3, nombre="n", actual=i, minimo=2) for i in range(60)]
        async with AsyncSession(engine) as session, session.begin():
            ids = await enqueue_many(session, outbox, events, topic=topic, notify="outbox_msgmany")
        await wait_until(
            lambda: _true(sum(len(p) for p in broker.topics.get(topic, [])) == 60),
            within=10,
            what="the events on the wire",
        )
        records = [m for part in broker.topics[topic] for m in part]
        by_key: dict[bytes | None, list[int]] = {}
        for m in records:
            by_key.setdefault(m.key, []).append(json.loads(m.value or b"")["actual"])
        assert by_key == {str(k).encode(): list(range(k, 60, 3)) for k in range(3)}
        assert {dict(m.headers)["ce_id"].decode() for m in records} == set(ids)
