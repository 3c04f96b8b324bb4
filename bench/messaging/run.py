"""Messaging benchmark: outbox insert → relay → Kafka → consumer → inbox + effect, against raw
aiokafka produce+consume on the same broker in the same run.

    uv run python bench/messaging/run.py [--duration 60] [--rate 1000] [--latency-duration 20]

Starts its own Kafka + PostgreSQL (``deploy.local``) unless ``KAFKA_BOOTSTRAP_SERVERS`` /
``DATABASE_URL`` are set. Targets: ≥ 5,000 events/s end-to-end, p99 ≤ 250 ms at 1,000 events/s,
pipeline ≥ 25 % of raw throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from contracts.events.sales import StockLow
from deploy.local.provision import database_and_kafka
from nexo_messaging.consumer import ConsumerSpec, EventMeta
from nexo_messaging.outbox import enqueue_many
from nexo_messaging.relay import RelaySettings
from nexo_messaging.runtime import MessagingRuntime, build_transport
from nexo_messaging.tables import inbox_table, outbox_table
from nexo_messaging.transport import TopicSpec

KEYS = 1000
TX_SIZE = 100


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, str]]:
    with database_and_kafka() as (database, bootstrap):
        yield bootstrap, database


def _payload(i: int, t0: float) -> StockLow:
    return StockLow(
        id_material=i % KEYS, nombre="bench", actual=i, minimo=0, source_event_id=repr(t0)
    )


# -- raw aiokafka --------------------------------------------------------------------------
async def raw_run(bootstrap: str, duration: float, rate: float | None) -> dict[str, Any]:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await build_transport("kafka", bootstrap_servers=bootstrap).ensure_topics([TopicSpec(topic, 3)])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
        max_batch_size=256 * 1024,
    )  # fmt: skip
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    value = _payload(0, 0).model_dump_json().encode()
    latencies: list[float] = []
    consumed = 0
    stop = asyncio.Event()

    async def consume() -> None:
        nonlocal consumed
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            now = time.time()
            for msgs in batches.values():
                for m in msgs:
                    latencies.append(now - float(dict(m.headers)["t0"].decode()))
                consumed += len(msgs)
            if batches:
                await consumer.commit()

    async def produce() -> None:
        start = time.monotonic()
        sent = 0
        while not stop.is_set():
            n = TX_SIZE if rate is None else max(1, int(rate / 50))
            futs = [
                await producer.send(
                    topic,
                    value,
                    key=str((sent + j) % KEYS).encode(),
                    headers=[("t0", repr(time.time()).encode())],
                )
                for j in range(n)
            ]
            sent += n
            if rate is None:
                if sent % 2000 == 0:
                    await asyncio.gather(*futs)
            else:
                await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))

    task = asyncio.create_task(consume())
    producing = asyncio.create_task(produce())
    deadline = time.monotonic() + 60
    while consumed == 0:  # same warm-up as the pipeline: first delivery + 1 s, not measured
        assert time.monotonic() < deadline, "the raw consumer never received a record"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    first_consumed, first_latency = consumed, len(latencies)
    start = time.monotonic()
    await asyncio.sleep(duration)
    produced_in_window = consumed - first_consumed
    elapsed = time.monotonic() - start
    window = latencies[first_latency:]
    stop.set()
    await producing
    await task
    await producer.stop()
    await consumer.stop()
    return {
        "throughput": produced_in_window / elapsed,
        "p50_ms": percentile(window, 0.5) * 1000,
        "p99_ms": percentile(window, 0.99) * 1000,
    }


async def _count(engine: Any, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def _writer_process(url: str, topic: str, duration: float, rate: float | None, cap: int) -> None:
    asyncio.run(_writer(url, topic, duration, rate, cap))


async def _writer(url: str, topic: str, duration: float, rate: float | None, cap: int) -> None:
    """Business transactions of TX_SIZE outbox rows, as fast as possible or at ``rate``/s."""
    outbox = outbox_table(MetaData())
    engine = create_async_engine(url, pool_size=2)
    start = time.monotonic()
    written = 0
    while time.monotonic() - start < duration + 1:
        n = TX_SIZE if rate is None else max(1, int(rate / 50))
        now = time.time()
        async with AsyncSession(engine) as session, session.begin():
            await enqueue_many(
                session, outbox, [_payload(written + j, now) for j in range(n)], topic=topic
            )
        written += n
        if rate is not None:
            await asyncio.sleep(max(0.0, start + written / rate - time.monotonic()))
        elif written % (10 * TX_SIZE) == 0:
            # back-pressure: a writer far ahead only steals CPU from the pipeline (2 cores)
            while await _backlog(engine, outbox) > cap:  # noqa: ASYNC110 - polls the DB
                await asyncio.sleep(0.02)
    await engine.dispose()


async def _backlog(engine: Any, outbox: Table) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int((await conn.execute(q)).scalar_one())


# -- pipeline -------------------------------------------------------------------------------
def _tables() -> tuple[MetaData, Table, Table, Table, Table]:
    metadata = MetaData()
    effects = Table(
        "bench_effects", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),
        Column("material", Integer, nullable=False),
        Column("latency_ms", Float, nullable=False),
    )  # fmt: skip
    # end-to-end latency per event: outbox insert (t0, taken before the writer's transaction)
    # → the consumer's effect transaction COMMITTED (taken in an after-commit hook)
    committed = Table(
        "bench_committed", metadata,
        Column("t0", Float, nullable=False),
        Column("latency_ms", Float, nullable=False),
    )  # fmt: skip
    return metadata, outbox_table(metadata), inbox_table(metadata), effects, committed


def _consumer_process(bootstrap: str, url: str, topic: str, group: str, stop: Any) -> None:
    asyncio.run(_consumer(bootstrap, url, topic, group, stop))


async def _consumer(bootstrap: str, url: str, topic: str, group: str, stop: Any) -> None:
    """The consuming service: its own process, like in a deployment."""
    _, _, inbox, effects, committed = _tables()
    engine = create_async_engine(url, pool_size=4)
    done: list[tuple[float, float]] = []

    async def batch(session: AsyncSession, items: list[tuple[Any, EventMeta]]) -> None:
        now = time.time()
        t0s = [float(e.source_event_id) for e, _ in items]

        def after_commit(_session: Any) -> None:
            at = time.time()
            done.extend((t0, (at - t0) * 1000) for t0 in t0s)

        sa_event.listen(session.sync_session, "after_commit", after_commit, once=True)
        await session.execute(
            insert(effects),
            [
                {
                    "event_id": m.event_id,
                    "material": e.id_material,
                    "latency_ms": (now - float(e.source_event_id)) * 1000,
                }
                for e, m in items
            ],
        )

    spec = ConsumerSpec(
        group_id=group, handlers={StockLow: batch}, batch_handler=batch, topics=[topic],
        max_batch=2000,
    )  # fmt: skip
    runtime = MessagingRuntime(
        "bench-consumer", build_transport("kafka", bootstrap_servers=bootstrap), engine,
        None, inbox, [spec],
    )  # fmt: skip
    await runtime.start()
    await asyncio.to_thread(stop.wait)
    await runtime.stop()
    async with engine.begin() as conn:
        for i in range(0, len(done), 5000):
            chunk = done[i : i + 5000]
            await conn.execute(insert(committed), [{"t0": t, "latency_ms": ms} for t, ms in chunk])
    await engine.dispose()


async def pipeline_run(
    bootstrap: str, database: str, duration: float, rate: float | None
) -> dict[str, Any]:
    """Three processes, like a deployment: writer (use cases), relay (producing service),
    consumer (consuming service). Effects and their latencies are read back from the DB."""
    metadata, outbox, _, effects, committed = _tables()
    dbname = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(database, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    await admin.dispose()
    url = database.rsplit("/", 1)[0] + f"/{dbname}"
    engine = create_async_engine(url, pool_size=4)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    topic = f"bench-pipe-{uuid.uuid4().hex[:8]}"
    runtime = MessagingRuntime(
        "sales", build_transport("kafka", bootstrap_servers=bootstrap), engine, outbox, None,
        [], relay_settings=RelaySettings(batch_size=2000), extra_topics=[TopicSpec(topic, 3)],
    )  # fmt: skip
    await runtime.start()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    consumer = ctx.Process(
        target=_consumer_process, args=(bootstrap, url, topic, f"bench-{dbname}", stop)
    )
    consumer.start()
    writer = ctx.Process(target=_writer_process, args=(url, topic, duration + 30, rate, 5_000))
    writer.start()
    deadline = time.monotonic() + 60
    while await _count(engine, effects) == 0:
        assert time.monotonic() < deadline, "the consumer never produced an effect"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # warm-up, not measured
    first_done = await _count(engine, effects)
    window_t0 = time.time()
    start = time.monotonic()
    if os.environ.get("BENCH_DEBUG"):
        end = start + duration
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, left))
            print(
                f"t={time.monotonic() - start:5.1f}s outbox={await _count(engine, outbox)} "
                f"backlog={await _backlog(engine, outbox)} effects={await _count(engine, effects)}",
                flush=True,
            )
    else:
        await asyncio.sleep(duration)  # the measurement window
    done = await _count(engine, effects)
    elapsed = time.monotonic() - start
    window_t1 = time.time()
    writer.terminate()
    await asyncio.to_thread(writer.join, 60)
    written = await _count(engine, outbox)
    drain = time.monotonic() + 60  # let every written event reach its effect (no survivor bias)
    while await _count(engine, effects) < written and time.monotonic() < drain:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.to_thread(consumer.join, 60)
    await runtime.stop()
    async with engine.connect() as conn:
        lat = [
            float(v)
            for v in (
                await conn.execute(
                    select(committed.c.latency_ms).where(
                        committed.c.t0 >= window_t0, committed.c.t0 < window_t1
                    )
                )
            ).scalars()
        ]
        relay_ms = [
            float(v) * 1000
            for v in (
                await conn.execute(
                    select(func.extract("epoch", outbox.c.published_at - outbox.c.created_at))
                    .where(outbox.c.published_at.is_not(None))
                    .order_by(outbox.c.seq)
                )
            ).scalars()
        ]
        relay_ms = relay_ms[len(relay_ms) // 5 :]
    await engine.dispose()
    return {
        "relay_p50_ms": percentile(relay_ms, 0.5),
        "relay_p99_ms": percentile(relay_ms, 0.99),
        "throughput": (done - first_done) / elapsed,
        "written": written,
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--latency-duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with infrastructure() as (bootstrap, database):
        raw = await raw_run(bootstrap, args.duration, None)
        pipe = await pipeline_run(bootstrap, database, args.duration, None)
        raw_lat = await raw_run(bootstrap, args.latency_duration, args.rate)
        pipe_lat = await pipeline_run(bootstrap, database, args.latency_duration, args.rate)
    report = {
        "duration_s": args.duration,
        "pipeline_events_per_s": round(pipe["throughput"]),
        "raw_events_per_s": round(raw["throughput"]),
        "pipeline_vs_raw": round(pipe["throughput"] / raw["throughput"], 3),
        f"pipeline_p50_ms_at_{int(args.rate)}": round(pipe_lat["p50_ms"], 1),
        f"pipeline_p99_ms_at_{int(args.rate)}": round(pipe_lat["p99_ms"], 1),
        f"raw_p50_ms_at_{int(args.rate)}": round(raw_lat["p50_ms"], 1),
        f"raw_p99_ms_at_{int(args.rate)}": round(raw_lat["p99_ms"], 1),
    }
    print(json.dumps(report, indent=2))
    print(
        f"targets: >=5000 ev/s {'OK' if pipe['throughput'] >= 5000 else 'MISSED'}; "
        f"p99<=250ms {'OK' if pipe_lat['p99_ms'] <= 250 else 'MISSED'}; "
        f">=25% of raw {'OK' if report['pipeline_vs_raw'] >= 0.25 else 'MISSED'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
