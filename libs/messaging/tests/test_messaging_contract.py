"""The messaging contract suite: the same scenarios over memory+SQLite and kafka+PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.codec import encode
from contracts.envelope import CloudEvent
from contracts.events.sales import StockLow
from nexo_messaging import dlq
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.ops import consumer_lag, outbox_stats
from nexo_messaging.runtime import build_transport
from nexo_messaging.transport import OutMessage

from .messaging_harness import Env, effects, inbox, metadata, outbox, wait_until


@pytest.fixture(params=["memory", "local", "kafka"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, Any]:
    """(kind, database url, broker) — sync so that async fixtures resolve lazily."""
    if request.param == "memory":
        return "memory", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", MemoryBroker()
    if request.param == "local":
        return "local", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "events.db"
    url = request.getfixturevalue("pg_database")
    return "kafka", url, request.getfixturevalue("kafka_broker")


@pytest.fixture
async def env(
    backend: tuple[str, str, Any], unique_name: Callable[[str], str]
) -> AsyncIterator[Env]:
    kind, url, broker = backend
    if kind == "memory":
        engine = create_async_engine(url)
        transport = build_transport("memory", memory_broker=broker)
    elif kind == "local":
        engine = create_async_engine(url)
        transport = build_transport("local", local_path=broker)
        broker = transport.log  # type: ignore[attr-defined]  # the fault switch ``available``
    else:
        engine = create_async_engine(url, pool_size=10)
        transport = build_transport("kafka", bootstrap_servers=broker.bootstrap_servers)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    e = Env(kind, engine, transport, unique_name("msgtest"), unique_name("grp"), broker)
    try:
        yield e
    finally:
        for rt in e.runtimes:
            await rt.stop()
        await engine.dispose()


async def _effects_count(env: Env, n: int) -> bool:
    return await env.count(effects) >= n


async def test_a_outbox_delivers_once_and_rollback_publishes_nothing(env: Env) -> None:
    rt = env.runtime([env.spec()])
    await rt.start()
    await env.write([(i % 7, i) for i in range(50)])
    await env.write([(100, 1), (101, 2)], rollback=True)
    await wait_until(lambda: _effects_count(env, 50), what="50 effects")
    await wait_until(lambda: _backlog_zero(env), what="empty backlog")
    rows = await env.effect_rows()
    assert len(rows) == 50
    assert len({r.event_id for r in rows}) == 50
    assert not {r.material for r in rows} & {100, 101}
    # correlation id defaults to the event id (a new flow)
    assert all(r.correlationid == r.event_id for r in rows)
    stats = await outbox_stats(env.engine, outbox)
    assert stats["backlog"] == 0
    health = rt.health()
    assert health["status"] == "ok", health
    ends = await env.transport.end_offsets([env.topic])
    assert sum(ends.values()) == 50
    await wait_until(lambda: _lag_zero(env), what="committed offsets at the end", within=30)


async def _backlog_zero(env: Env) -> bool:
    return await env.backlog() == 0


async def _lag_zero(env: Env) -> bool:
    lag = await consumer_lag(env.transport, env.group, [env.topic])
    return bool(lag) and sum(lag.values()) == 0


def _record(material: int, n: int, event_id: str, nombre: str = "ok") -> OutMessage:
    ce = CloudEvent.from_domain(
        StockLow(id_material=material, nombre=nombre, actual=n, minimo=0), id=event_id
    )
    rec = encode(ce)
    return OutMessage(topic="", key=rec.key, value=rec.value, headers=rec.headers)


async def _send(env: Env, messages: list[OutMessage]) -> None:
    producer = env.transport.producer()
    await producer.start()
    try:
        results = await producer.send_many(
            [OutMessage(env.topic, m.key, m.value, m.headers) for m in messages]
        )
    finally:
        await producer.stop()
    assert results == [None] * len(messages)


async def test_b_duplicate_delivery_is_skipped_by_inbox(env: Env) -> None:
    rt = env.runtime([env.spec()], relay=False)
    await rt.start()
    msg = _record(1, 1, "dup-event-1")
    await _send(env, [msg, msg, _record(1, 2, "after-dup")])
    await wait_until(lambda: _effects_count(env, 2), what="2 effects")
    await wait_until(lambda: _lag_zero(env), what="all consumed", within=30)
    rows = await env.effect_rows()
    assert [r.event_id for r in rows] == ["dup-event-1", "after-dup"]
    assert await env.count(inbox) == 2


async def test_c_consumer_killed_before_offset_commit_no_double_effect(env: Env) -> None:
    rt1 = env.runtime([env.spec("first")], relay=True)
    runner = rt1.consumers[0]

    async def no_commit(*_a: Any, **_k: Any) -> None:  # crash point: effect committed, no offset
        return None

    runner._commit = no_commit  # type: ignore[method-assign]
    await rt1.start()
    await env.write([(i % 5, i) for i in range(30)])
    await wait_until(lambda: _effects_count(env, 30), what="30 effects")
    await runner.kill()
    rt2 = env.runtime([env.spec("second")], relay=False)
    await rt2.start()
    await wait_until(lambda: _lag_zero(env), what="restarted consumer caught up", within=60)
    rows = await env.effect_rows()
    assert len(rows) == 30
    assert {r.consumer for r in rows} == {"first"}
    assert rt2.consumers[0].processed == 0  # everything redelivered was a duplicate


async def test_d_relay_killed_after_publish_before_mark(env: Env) -> None:
    await env.write([(i % 4, i) for i in range(20)])
    rt1 = env.runtime([], lease=0.5)
    relay = rt1.relay
    assert relay is not None

    async def crash(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("relay crashed before marking")

    relay._settle = crash  # type: ignore[method-assign]
    await env.transport.ensure_topics(rt1.topics_to_ensure())
    with pytest.raises(RuntimeError):
        await relay.run_once()
    await relay.stop()
    assert await env.backlog() == 20  # nothing marked
    rt2 = env.runtime([env.spec()], lease=0.5)
    await rt2.start()
    await wait_until(lambda: _backlog_zero(env), what="re-published and marked")
    await wait_until(lambda: _lag_zero(env), what="all consumed", within=60)
    ends = await env.transport.end_offsets([env.topic])
    assert sum(ends.values()) == 40  # every event twice on the wire
    rows = await env.effect_rows()
    assert len(rows) == 20
    assert len({r.event_id for r in rows}) == 20


async def test_e_broker_outage_loses_nothing(env: Env) -> None:
    rt = env.runtime([env.spec()], send_timeout=5.0)
    await rt.start()
    await env.write([(0, -1)])
    await wait_until(lambda: _effects_count(env, 1), what="first effect")
    if env.kind in ("memory", "local"):
        env.broker.available = False
    else:
        if not env.broker.can_restart:
            pytest.skip("the provided Kafka cannot be restarted")
        await asyncio.to_thread(env.broker.stop)
    loop = asyncio.get_running_loop()
    start = loop.time()
    written = 0
    while written < 1000:  # 1,000 events spread over ~10 s of outage
        await env.write([(i % 50, i) for i in range(written, written + 100)])
        written += 100
        await asyncio.sleep(1.0)
    await asyncio.sleep(max(0.0, 10 - (loop.time() - start)))  # the outage lasts 10 s
    if env.kind in ("memory", "local"):
        env.broker.available = True
    else:
        await asyncio.to_thread(env.broker.start)
    await wait_until(lambda: _effects_count(env, 1001), within=120, what="all 1,001 effects")
    await wait_until(lambda: _backlog_zero(env), what="empty backlog", within=60)
    rows = await env.effect_rows()
    assert len({r.event_id for r in rows}) == 1001
    assert sorted(r.n for r in rows) == [-1, *range(1000)]


async def test_f_per_key_order_with_rebalance(env: Env) -> None:
    await env.transport.ensure_topics([_topic(env)])
    rt_a = env.runtime([env.spec("a", max_batch=50)])
    await rt_a.start()
    keys = 12
    for batch in range(10):
        await env.write([(k, batch * 10 + j) for j in range(10) for k in range(keys)])
    await wait_until(lambda: _effects_count(env, 200), what="first effects")
    rt_b = env.runtime([env.spec("b", max_batch=50)], relay=False)
    await rt_b.start()  # rebalance in the middle
    for batch in range(10, 20):
        await env.write([(k, batch * 10 + j) for j in range(10) for k in range(keys)])
    total = 20 * 10 * keys
    await wait_until(lambda: _effects_count(env, total), within=120, what="all effects")
    rows = await env.effect_rows()
    assert len(rows) == total
    per_key: dict[int, list[int]] = {}
    for r in rows:
        per_key.setdefault(r.material, []).append(r.n)
    for k, ns in per_key.items():
        assert ns == sorted(ns), f"key {k} out of order"
    assert {r.consumer for r in rows} == {"a", "b"}
    parts = await env.transport.end_offsets([env.topic])
    assert len(parts) == 3


def _topic(env: Env) -> Any:
    from nexo_messaging.transport import TopicSpec

    return TopicSpec(env.topic, 3)


async def test_g_poison_to_dlq_partition_flows_and_replay(env: Env) -> None:
    rt = env.runtime([env.spec(max_attempts=2)])
    await rt.start()
    producer_records = [
        OutMessage(env.topic, b"7", b"not json", [("ce_id", b"broken")]),
    ]
    await _send(env, producer_records)
    await env.write([(7, 1)], nombre="poison")
    env.fail["flaky"] = 10
    await env.write([(7, 2)], nombre="flaky")
    await env.write([(7, 3), (7, 4)])
    await wait_until(lambda: _effects_count(env, 2), what="events after the poison ones")
    dlq_name = dlq.dlq_topic(env.topic)

    async def dead_letters() -> bool:
        return len(await dlq.list_dead_letters(env.transport, env.topic)) >= 3

    await wait_until(dead_letters, what="3 dead letters", within=60)
    letters = await dlq.list_dead_letters(env.transport, env.topic)
    reasons = sorted(str(x.reason) for x in letters)
    assert reasons == ["permanent_error", "retries_exhausted", "undecodable"]
    assert all(x.original_topic == env.topic and x.consumer_group == env.group for x in letters)
    assert all(x.error for x in letters)
    poison = next(x for x in letters if x.reason == "permanent_error")
    assert poison.type == StockLow.ce_type()
    # the partition kept flowing
    assert [r.n for r in await env.effect_rows()] == [3, 4]
    # replay the rule violation after the "fix", discard the broken one
    env.fail["healed"] = True
    await dlq.replay(env.transport, dlq_name, poison.partition, poison.offset)
    broken = next(x for x in letters if x.reason == "undecodable")
    await dlq.discard(env.transport, dlq_name, broken.partition, broken.offset, note="garbage")
    await wait_until(lambda: _effects_count(env, 3), what="replayed effect")
    assert sorted(r.n for r in await env.effect_rows()) == [1, 3, 4]
    statuses = {x.reason: x.status for x in await dlq.list_dead_letters(env.transport, env.topic)}
    assert statuses == {
        "permanent_error": "replayed",
        "undecodable": "discarded",
        "retries_exhausted": "pending",
    }


async def test_memory_transport_is_default_shareable() -> None:
    broker = MemoryBroker()
    a = build_transport("memory", memory_broker=broker)
    b = build_transport("memory", memory_broker=broker)
    assert isinstance(a, MemoryTransport)
    assert isinstance(b, MemoryTransport)
    assert a.broker is b.broker
    with pytest.raises(ValueError, match="bootstrap"):
        build_transport("kafka")


def _unused(_: Any) -> str:
    return json.dumps(_)
