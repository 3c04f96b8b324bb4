"""Failover on real Kafka + PostgreSQL: relay claims released on stop and taken over after a
crash, consumer-group takeover after a member dies without leaving, ``last_error`` after a
broker outage, and consumer-group lag read from the broker for every partition.

Measured takeover times are printed (``-s``) as ``[failover] ...`` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nexo_messaging.kafka import SESSION_TIMEOUT_MS, KafkaTransport
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.relay import OutboxRelay, RelaySettings
from nexo_messaging.transport import TP, Consumer, TopicSpec
from service_defaults.db import create_engine

from .messaging_harness import Env, metadata, outbox, wait_until

TAKEOVER_LIMIT_S = 5.0


def _report(what: str, seconds: float) -> None:
    print(f"\n[failover] {what}: {seconds:.2f} s", file=sys.stderr)


@pytest.fixture
async def pg_engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_database)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaTransport:
    return KafkaTransport(kafka_bootstrap)


def _env(engine: AsyncEngine, transport: Any, unique_name: Callable[[str], str]) -> Env:
    return Env("kafka", engine, transport, unique_name("failover"), unique_name("grp"))


async def _outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(outbox).order_by(outbox.c.seq)))


async def _all_claimed(engine: AsyncEngine, n: int) -> bool:
    rows = await _outbox_rows(engine)
    return len(rows) == n and all(r.lease_token is not None for r in rows)


# -- 1. claims are released on shutdown ------------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "cancel"])
async def test_relay_releases_its_claims_on_shutdown(
    pg_engine: AsyncEngine, kafka: KafkaTransport, unique_name: Callable[[str], str], how: str
) -> None:
    env = _env(pg_engine, kafka, unique_name)
    # The topic does not exist (and the broker creates none): the publish hangs in the
    # metadata wait, so the relay holds its claims until it is stopped.
    relay = OutboxRelay("msgtest", pg_engine, outbox, kafka, RelaySettings(send_timeout=60.0))
    relay.start()
    try:
        await env.write([(1, 1), (2, 2), (1, 3)])
        relay.wake()
        await wait_until(lambda: _all_claimed(pg_engine, 3), within=20, what="rows claimed")
        if how == "stop":
            await relay.stop(grace_s=0.5)  # the pass cannot finish: the task is cancelled
        else:
            assert relay._task is not None
            relay._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay._task
        rows = await _outbox_rows(pg_engine)
        assert [(r.lease_token, r.lease_until, r.published_at) for r in rows] == [
            (None, None, None)
        ] * 3
    finally:
        await relay.stop(grace_s=1.0)


# -- 2. a crashed relay's claims are taken over within 5 s ----------------------------------


async def _published(engine: AsyncEngine, n: int) -> bool:
    rows = await _outbox_rows(engine)
    return len(rows) == n and all(r.published_at is not None for r in rows)


async def test_standby_publishes_a_crashed_relays_claims_within_5s(
    pg_engine: AsyncEngine, kafka: KafkaTransport, unique_name: Callable[[str], str]
) -> None:
    env = _env(pg_engine, kafka, unique_name)
    await kafka.ensure_topics([TopicSpec(env.topic, 3)])
    crashed = OutboxRelay("msgtest", pg_engine, outbox, kafka)  # lease 60 s (default)
    await crashed._ensure_listener()
    assert crashed._leader
    standby = env.runtime([])  # poll_interval 0.2 s: it asks for the lock every 0.2 s
    await standby.start()
    try:
        assert standby.relay is not None
        await wait_until(
            lambda: _true(standby.relay is not None and standby.relay._listen_conn is not None),
            what="the standby relay LISTENs",
        )
        assert not standby.relay._leader
        # three rows of one aggregate, two of another: order per aggregate must survive
        await env.write([(1, 1), (2, 1), (1, 2), (2, 2), (1, 3)])
        claimed = await crashed._claim(str(uuid.uuid4()))
        assert len(claimed) == 5
        rows = await _outbox_rows(pg_engine)
        lease_until = min(r.lease_until for r in rows)
        assert lease_until > datetime.now(UTC) + timedelta(seconds=50)  # would wait ~60 s
        # the crash: the lock connection drops, nothing is released, nothing published
        crashed._listen_conn.terminate()
        started = time.monotonic()
        await wait_until(lambda: _published(pg_engine, 5), within=TAKEOVER_LIMIT_S, what="takeover")
        took = time.monotonic() - started
        _report("relay crash -> standby published the crashed relay's claims", took)
        assert took < TAKEOVER_LIMIT_S
        records = await kafka.read_records(env.topic, limit=100)
        ids = {r.id: r for r in rows}
        per_key: dict[bytes | None, list[int]] = {}
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            ce_id = (record.header("ce_id") or b"").decode()
            per_key.setdefault(record.key, []).append(ids[ce_id].seq)
        assert sorted(len(v) for v in per_key.values()) == [2, 3]
        assert all(seqs == sorted(seqs) for seqs in per_key.values()), per_key
    finally:
        await crashed._close_listener()
        await standby.stop()


async def _true(value: bool) -> bool:
    return value


async def test_sqlite_relay_takes_over_claims_of_a_crashed_predecessor(tmp_path: Path) -> None:
    """Embedded path (one relay per SQLite file): a restarted relay does not wait for the
    lease of rows its crashed predecessor claimed."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = MemoryBroker()
    transport = MemoryTransport(broker)
    env = Env("memory", engine, transport, "failover.sqlite", "grp")
    try:
        await env.write([(1, 1), (1, 2)])
        crashed = OutboxRelay("msgtest", engine, outbox, transport)
        assert len(await crashed._claim(str(uuid.uuid4()))) == 2  # then it "dies"
        restarted = OutboxRelay("msgtest", engine, outbox, transport)
        started = time.monotonic()
        assert await restarted.run_once() == 2
        assert time.monotonic() - started < TAKEOVER_LIMIT_S
        assert await _published(engine, 2)
    finally:
        await engine.dispose()


# -- 3. consumer-group takeover -----------------------------------------------------------

_MEMBER = textwrap.dedent(
    """
    import asyncio, sys
    from nexo_messaging.kafka import KafkaTransport

    class Listener:
        async def on_partitions_revoked(self, revoked):
            pass
        async def on_partitions_assigned(self, assigned):
            print("assigned", len(assigned), flush=True)

    async def main():
        consumer = KafkaTransport(sys.argv[1]).consumer(sys.argv[2], [sys.argv[3]], Listener())
        await consumer.start()
        while True:
            await consumer.getmany(timeout_ms=200, max_records=10)

    asyncio.run(main())
    """
)


class _Assignments:
    def __init__(self) -> None:
        self.current: set[TP] = set()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.current -= revoked

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        self.current |= assigned


async def _poll_until(consumer: Consumer, check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no takeover within {within} s: {consumer.assignment()}")
        await consumer.getmany(timeout_ms=50, max_records=10)


async def test_partitions_of_a_killed_consumer_move_within_5s(
    kafka: KafkaTransport, unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("failover"), unique_name("grp")
    await kafka.ensure_topics([TopicSpec(topic, 4)])
    member = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _MEMBER,
        kafka.bootstrap_servers,
        group,
        topic,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    survivor = kafka.consumer(group, [topic], listener := _Assignments())
    try:
        assert member.stdout is not None
        line = await asyncio.wait_for(member.stdout.readline(), 60)
        assert line.startswith(b"assigned 4"), line
        await survivor.start()
        await _poll_until(survivor, lambda: len(listener.current) == 2, within=60)
        member.send_signal(signal.SIGKILL)  # no LeaveGroup: the broker must notice
        await asyncio.wait_for(member.wait(), 10)
        started = time.monotonic()
        await _poll_until(survivor, lambda: len(listener.current) == 4, within=15)
        took = time.monotonic() - started
        _report(f"consumer SIGKILL -> reassigned (session {SESSION_TIMEOUT_MS} ms)", took)
        assert took < TAKEOVER_LIMIT_S
    finally:
        if member.returncode is None:
            member.kill()
            await asyncio.wait_for(member.wait(), 10)
        await survivor.stop()


async def test_a_stopping_consumer_leaves_the_group_at_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """With a 30 s session, only a LeaveGroup explains a takeover within a few seconds."""
    transport = KafkaTransport(kafka_bootstrap, consumer_options={"session_timeout_ms": 30_000})
    topic, group = unique_name("failover"), unique_name("grp")
    await transport.ensure_topics([TopicSpec(topic, 4)])
    first = transport.consumer(group, [topic], a := _Assignments())
    second = transport.consumer(group, [topic], b := _Assignments())
    await first.start()
    try:
        await _poll_until(first, lambda: len(a.current) == 4, within=60)
        await second.start()
        both = asyncio.gather(
            _poll_until(first, lambda: len(a.current) == 2, within=60),
            _poll_until(second, lambda: len(b.current) == 2, within=60),
        )
        await both
        started = time.monotonic()
        await first.stop()
        await _poll_until(second, lambda: len(b.current) == 4, within=25)
        took = time.monotonic() - started
        _report("consumer stop (LeaveGroup) -> partitions reassigned", took)
        assert took < 10
    finally:
        await first.stop()
        await second.stop()


# -- 4. last_error after an outage, no aiokafka task left -----------------------------------


class _Destroyed(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Task was destroyed" in message or "never retrieved" in message:
            self.messages.append(message)


def _aiokafka_tasks() -> list[asyncio.Task[Any]]:
    def source(task: asyncio.Task[Any]) -> str:
        return str(getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", ""))

    return [t for t in asyncio.all_tasks() if not t.done() and "aiokafka" in source(t)]


async def test_last_error_clears_after_a_broker_outage_and_no_task_leaks(
    kafka_broker: Any, pg_engine: AsyncEngine, unique_name: Callable[[str], str]
) -> None:
    if not kafka_broker.can_restart:
        pytest.skip("the provided Kafka cannot be restarted")
    transport = KafkaTransport(kafka_broker.bootstrap_servers)
    env = _env(pg_engine, transport, unique_name)
    rt = env.runtime([], send_timeout=3.0)
    destroyed = _Destroyed()
    logging.getLogger("asyncio").addHandler(destroyed)
    try:
        await rt.start()
        assert rt.relay is not None
        relay = rt.relay
        await env.write([(1, 1)])
        await wait_until(lambda: _published(pg_engine, 1), within=30, what="first publish")
        await asyncio.to_thread(kafka_broker.stop)
        try:
            await env.write([(1, 2), (2, 1)])
            await wait_until(
                lambda: _true(relay.last_error is not None), within=30, what="a publish error"
            )
            # several failed attempts, each recreating the producer, each collected
            published = relay.published_total
            for _ in range(3):
                gc.collect()
                await asyncio.sleep(1.0)
            assert relay.published_total == published
        finally:
            await asyncio.to_thread(kafka_broker.start)
        await wait_until(lambda: _published(pg_engine, 3), within=60, what="publish after")
        await wait_until(lambda: _true(relay.last_error is None), within=10, what="cleared")
        assert rt.health()["relay"]["last_error"] is None
        await rt.stop()
        gc.collect()
        await asyncio.sleep(0)
        assert _aiokafka_tasks() == []
        assert destroyed.messages == []
    finally:
        logging.getLogger("asyncio").removeHandler(destroyed)
        await rt.stop()


# -- 5. group lag from the broker ----------------------------------------------------------


async def test_health_shows_lag_of_partitions_other_members_hold(
    pg_engine: AsyncEngine, kafka: KafkaTransport, unique_name: Callable[[str], str]
) -> None:
    env = _env(pg_engine, kafka, unique_name)
    await kafka.ensure_topics([TopicSpec(env.topic, 3)])
    rt = env.runtime([env.spec()])
    await rt.start()
    (runner,) = rt.consumers
    idle = kafka.consumer(env.group, [env.topic], other := _Assignments())  # never commits
    await idle.start()
    stop = asyncio.Event()

    async def keep_polling() -> None:
        while not stop.is_set():
            await idle.getmany(timeout_ms=100, max_records=1)  # dropped, never committed

    poller = asyncio.create_task(keep_polling())
    try:
        await wait_until(
            lambda: _true(bool(other.current) and bool(runner._consumer.assignment())),  # type: ignore[union-attr]
            within=60,
            what="both members hold partitions",
        )
        await env.write([(m, m) for m in range(30)])
        await wait_until(lambda: _published(pg_engine, 30), within=30, what="all published")
        ends = await kafka.end_offsets([env.topic])
        idle_tps = set(other.current)
        expected = sum(ends[tp] for tp in idle_tps)
        assert expected > 0
        mine = {TP(tp.topic, tp.partition) for tp in runner._consumer.assignment()}  # type: ignore[union-attr]
        assert not mine & idle_tps

        async def settled() -> bool:
            health = (await rt.readiness())["consumers"][env.group]
            return bool(health["assigned_lag"] == 0 and health["lag"] == expected)

        await wait_until(settled, within=60, what="group lag from the broker")
        health = (await rt.readiness())["consumers"][env.group]
        lag = health["group_lag"]
        assert set(lag["partitions"]) == {f"{env.topic}/{p}" for p in range(3)}
        assert all(lag["partitions"][f"{tp.topic}/{tp.partition}"] == ends[tp] for tp in idle_tps)
        assert lag["error"] is None
        # cached: a second read within the TTL does not go back to the broker
        before = rt.group_lag.snapshot
        await rt.readiness()
        assert rt.group_lag.snapshot is before
    finally:
        stop.set()
        await poller
        await idle.stop()
        await rt.stop()
