"""The Kafka behind the integration fixtures is a real broker: partitions, idempotent
producer with acks=all, consumer groups with manual commits, restart on the same address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
        deadline = time.monotonic() + DEADLINE_S
        while True:  # wait until the topic's metadata is visible with every partition
            described = await admin.describe_topics([topic])
            if described and len(described[0].get("partitions", [])) == partitions:
                return
            assert time.monotonic() < deadline, f"topic {topic} not visible: {described}"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _consume(
    consumer: AIOKafkaConsumer, expected: int, deadline_s: float = DEADLINE_S
) -> list[Any]:
    received: list[Any] = []
    deadline = time.monotonic() + deadline_s
    while len(received) < expected:
        assert time.monotonic() < deadline, f"got {len(received)}/{expected} messages"
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        for tp, records in batches.items():
            received.extend(records)
            # manual commit of exactly what was processed, per partition
            await consumer.commit({tp: records[-1].offset + 1})
    return received


async def test_partitions_idempotent_producer_and_group_commit(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("infra.kafka"), unique_name("infra.group")
    await _create_topic(kafka_bootstrap, topic, partitions=3)

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        assert len(await producer.partitions_for(topic)) == 3
        keys = [f"agg-{i % 6}" for i in range(60)]
        sent = [
            await asyncio.wait_for(
                producer.send_and_wait(topic, key=k.encode(), value=f"{k}:{i}".encode()), 30
            )
            for i, k in enumerate(keys)
        ]
    finally:
        await asyncio.wait_for(producer.stop(), 30)
    assert {md.partition for md in sent} == {0, 1, 2}
    # same key -> same partition (per-aggregate ordering)
    partition_of: dict[str, int] = {}
    for k, md in zip(keys, sent, strict=True):
        assert partition_of.setdefault(k, md.partition) == md.partition

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records = await _consume(consumer, expected=60)
        assert sorted(r.value.decode() for r in records) == sorted(
            f"{k}:{i}" for i, k in enumerate(keys)
        )
        for r in records:
            assert partition_of[r.key.decode()] == r.partition
        # per key, order is preserved
        by_key: dict[str, list[int]] = {}
        for r in records:
            by_key.setdefault(r.key.decode(), []).append(int(r.value.decode().split(":")[1]))
        assert all(v == sorted(v) for v in by_key.values())
        committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        await asyncio.wait_for(consumer.stop(), 30)
    assert sum(v or 0 for v in committed.values()) == 60

    # A new member of the same group resumes after the committed offsets: nothing re-read.
    again = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await again.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not again.assignment():
            assert time.monotonic() < deadline, "no partitions assigned"
            await again.getmany(timeout_ms=200)
        positions = {tp.partition: await again.position(tp) for tp in again.assignment()}
    finally:
        await asyncio.wait_for(again.stop(), 30)
    assert positions == {p: committed[p] for p in range(3)}


async def test_broker_restart_keeps_address_and_data(
    kafka_broker: Any, unique_name: Callable[[str], str]
) -> None:
    if not kafka_broker.can_restart:
        pytest.skip("this broker cannot be restarted from the tests")
    bootstrap = kafka_broker.bootstrap_servers
    topic = unique_name("infra.restart")
    await _create_topic(bootstrap, topic, partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"before"), 30)
    finally:
        await asyncio.wait_for(producer.stop(), 30)

    await asyncio.to_thread(kafka_broker.stop)
    await asyncio.to_thread(kafka_broker.start)
    assert kafka_broker.bootstrap_servers == bootstrap

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"after"), 30)
    finally:
        await asyncio.wait_for(producer.stop(), 30)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique_name("infra.restart-group"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values = [r.value for r in await _consume(consumer, expected=2)]
    finally:
        await asyncio.wait_for(consumer.stop(), 30)
    assert values == [b"before", b"after"]
