"""A PostgreSQL outage under a running consumer (``pg_ctl stop -m fast``, then started again on
the same data directory): events that arrive meanwhile wait in place and are applied exactly
once after recovery, nothing is dead-lettered, health shows ``retrying_transient`` during the
outage; a deterministic handler failure still reaches the DLQ after the retry budget; a stop or
a rebalance during the backoff is served promptly; the outbox relay just retries.

Runs on a throwaway cluster of its own (``deploy.local``), so stopping it disturbs no other test.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.codec import encode
from contracts.envelope import CloudEvent
from contracts.events.sales import StockLow
from nexo_messaging.consumer import ConsumerRunner
from nexo_messaging.dlq import H_REASON, dlq_topic
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.runtime import MessagingRuntime
from nexo_messaging.transport import OutMessage, Transport
from nexo_testing.outage import private_postgres, stop_fast
from service_defaults.db import create_engine
from service_defaults.logging import configure_logging

from .messaging_harness import Env, effects, metadata, wait_until

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Any]:
    """A cluster of this module's own: stopping it disturbs no other test."""
    yield from private_postgres(max_connections=50)


@pytest.fixture
async def engine(pg_server: Any) -> AsyncIterator[AsyncEngine]:
    pg_server.start()  # (again, when a failed test left it stopped)
    engine = create_engine(pg_server.dsn, pool_size=4)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["memory", "kafka"])
def transport(request: pytest.FixtureRequest) -> Transport:
    if request.param == "memory":
        return MemoryTransport(MemoryBroker())
    from nexo_messaging.kafka import KafkaTransport

    return KafkaTransport(request.getfixturevalue("kafka_bootstrap"))


@pytest.fixture
def env(engine: AsyncEngine, transport: Transport) -> Env:
    suffix = uuid.uuid4().hex[:8]
    return Env(transport.kind, engine, transport, f"outage-{suffix}", f"grp-{suffix}")


@pytest.fixture
def transient_log() -> Iterator[list[str]]:
    """The consumer's log lines about the outage (start + recovery)."""
    configure_logging("INFO")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = str(record.msg)
            if "transient" in text:
                lines.append(f"{record.levelname} {text}")

    handler = Collect(logging.INFO)
    logger = logging.getLogger("nexo_messaging.consumer")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _message(topic: str, material: int, n: int, nombre: str = "ok") -> OutMessage:
    event = StockLow(id_material=material, nombre=nombre, actual=n, minimo=0)
    rec = encode(CloudEvent.from_domain(event, id=str(uuid.uuid4())))
    return OutMessage(topic, rec.key, rec.value, rec.headers)


async def _publish(env: Env, messages: list[OutMessage]) -> None:
    """Events of another service (its database is up): straight to the broker."""
    producer = env.transport.producer()
    await producer.start()
    try:
        assert await producer.send_many(messages) == [None] * len(messages)
    finally:
        await producer.stop()


async def _dead_letters(env: Env) -> int:
    return len(await env.transport.read_records(dlq_topic(env.topic), limit=1000))


async def _applied(env: Env) -> tuple[int, int]:
    """(effect rows, distinct event ids among them)."""
    async with env.engine.connect() as conn:
        row = (
            await conn.execute(select(func.count(), func.count(func.distinct(effects.c.event_id))))
        ).one()
    return int(row[0]), int(row[1])


async def _started(env: Env, rt: MessagingRuntime) -> ConsumerRunner:
    await rt.start()
    return rt.consumers[0]


async def test_outage_events_wait_in_place_then_apply_once_and_poison_still_dead_letters(
    pg_server: Any, env: Env, transient_log: list[str]
) -> None:
    rt = env.runtime([env.spec(max_attempts=MAX_ATTEMPTS, retry_backoff=0.01)], relay=False)
    runner = await _started(env, rt)
    try:
        await _publish(env, [_message(env.topic, i % 3, i) for i in range(10)])
        await wait_until(lambda: _applied_is(env, 10), within=60, what="events before the outage")

        stop_fast(pg_server)
        await _publish(env, [_message(env.topic, i % 3, 100 + i) for i in range(20)])
        # well past the DLQ budget: with the old rule these would now be dead letters
        await wait_until(
            _async(lambda: runner.transient_retries > 3 * MAX_ATTEMPTS),
            within=60,
            what="transient retries during the outage",
        )
        health = rt.health()["consumers"][env.group]
        assert health["retrying_transient"] is True
        assert health["transient_error"], health
        assert health["transient_outage_s"] > 0
        assert runner.dead_lettered == 0
        assert await _dead_letters(env) == 0

        pg_server.start()
        await wait_until(lambda: _applied_is(env, 30), within=60, what="events after recovery")
        await wait_until(
            _async(lambda: not rt.health()["consumers"][env.group]["retrying_transient"]),
            within=30,
            what="the outage cleared in health",
        )
        assert await _applied(env) == (30, 30)  # every event exactly once
        assert runner.dead_lettered == 0
        assert await _dead_letters(env) == 0
        warnings = [line for line in transient_log if line.startswith("WARNING")]
        assert len(warnings) == 1, transient_log  # once per outage, not once per retry
        assert any(line.startswith("INFO") and "over" in line for line in transient_log)

        # a deterministic failure (not transient) still uses the budget and is dead-lettered,
        # and an explicit rule violation goes at once
        env.fail["flaky"] = 1_000
        await _publish(
            env,
            [
                _message(env.topic, 7, 1, "flaky"),
                _message(env.topic, 8, 2, "poison"),
                _message(env.topic, 9, 3),
            ],
        )
        await wait_until(
            lambda: _dead_letters_are(env, 2), within=60, what="the two poison events in the DLQ"
        )
        await wait_until(lambda: _applied_is(env, 31), within=30, what="the good event after")
        # (+1: the chunk's batch transaction may have called it once before one by one)
        assert 1_000 - env.fail["flaky"] in (MAX_ATTEMPTS, MAX_ATTEMPTS + 1), env.fail
        reasons = sorted(
            dict(r.headers).get(H_REASON, b"").decode()
            for r in await env.transport.read_records(dlq_topic(env.topic), limit=10)
        )
        assert reasons == ["permanent_error", "retries_exhausted"], reasons
        assert runner.transient_since is None
    finally:
        pg_server.start()
        await rt.stop()


async def test_stop_during_the_backoff_is_prompt(pg_server: Any, env: Env) -> None:
    """A long backoff cap: a stop that waited for it would take ~30 s."""
    spec = env.spec(retry_backoff=1.0, transient_backoff_max=30.0)
    rt = env.runtime([spec], relay=False)
    runner = await _started(env, rt)
    try:
        stop_fast(pg_server)
        await _publish(env, [_message(env.topic, 1, i) for i in range(5)])
        await wait_until(
            _async(lambda: runner.transient_retries >= 2), within=60, what="backing off"
        )
        started = time.monotonic()
        await rt.stop()
        took = time.monotonic() - started
        assert took < 3.0, took
        assert not runner.running
        assert runner.dead_lettered == 0
    finally:
        pg_server.start()
        await rt.stop()
    assert await _dead_letters(env) == 0
    assert await _applied(env) == (0, 0)


async def test_rebalance_during_the_backoff(pg_server: Any, env: Env) -> None:
    """A second member joins mid-outage: the first gives partitions up while it backs off and
    does not process them afterwards; after recovery every event is applied once, by the
    member that owns its partition."""
    rt_a = env.runtime([env.spec("a", transient_backoff_max=1.0)], relay=False)
    rt_b = env.runtime([env.spec("b", transient_backoff_max=1.0)], relay=False)
    a = await _started(env, rt_a)
    try:
        stop_fast(pg_server)
        await _publish(env, [_message(env.topic, i % 3, i) for i in range(30)])
        await wait_until(_async(lambda: a.transient_retries >= 2), within=60, what="backing off")
        b = await _started(env, rt_b)
        await wait_until(
            _async(lambda: bool(b._consumer and b._consumer.assignment())),
            within=30,
            what="the rebalance while the database is down",
        )
        assert a._consumer is not None
        assert b._consumer is not None
        owned_a, owned_b = a._consumer.assignment(), b._consumer.assignment()
        assert owned_a
        assert owned_b
        assert not owned_a & owned_b
        pg_server.start()
        await wait_until(lambda: _applied_is(env, 30), within=60, what="events after recovery")
        assert await _applied(env) == (30, 30)
        async with env.engine.connect() as conn:
            rows = await conn.execute(select(effects.c.consumer, effects.c.material))
            by = {(c, m) for c, m in rows.all()}
        # StockLow's key is the material: material m lives on one partition, one owner
        assert not ({m for c, m in by if c == "a"} & {m for c, m in by if c == "b"}), by
        assert a.dead_lettered == b.dead_lettered == 0
        assert await _dead_letters(env) == 0
    finally:
        pg_server.start()
        await rt_a.stop()
        await rt_b.stop()


async def test_relay_outage_only_delays(pg_server: Any, env: Env) -> None:
    """The outbox relay during the same outage: it backs off and publishes every row once the
    database is back (consumer in the same runtime applies each once)."""
    rt = env.runtime([env.spec()], relay=True)
    await rt.start()
    try:
        await env.write([(i % 3, i) for i in range(10)])
        stop_fast(pg_server)
        assert rt.relay is not None
        await wait_until(
            _async(lambda: rt.relay is not None and rt.relay.last_error is not None),
            within=30,
            what="the relay noticing the outage",
        )
        assert rt.relay.running
        pg_server.start()
        await env.write([(i % 3, 100 + i) for i in range(10)])
        await wait_until(lambda: _applied_is(env, 20), within=60, what="all rows applied")
        await wait_until(_backlog_zero(env), within=30, what="outbox drained")
        assert await _applied(env) == (20, 20)
        assert await _dead_letters(env) == 0
    finally:
        pg_server.start()
        await rt.stop()


# ------------------------------------------------------------------------------ helpers


async def _applied_is(env: Env, n: int) -> bool:
    try:
        return (await _applied(env))[0] >= n
    except OSError:
        return False


async def _dead_letters_are(env: Env, n: int) -> bool:
    return await _dead_letters(env) >= n


def _async(check: Any) -> Any:
    async def run() -> bool:
        return bool(check())

    return run


def _backlog_zero(env: Env) -> Any:
    async def run() -> bool:
        return await env.backlog() == 0

    return run
