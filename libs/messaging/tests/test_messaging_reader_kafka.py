"""`Transport.reader` on a real Kafka broker: every reader sees every record of every partition
(no consumer group shares them out), starts `tail` records before each end or where `resume`
says, and commits nothing."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import GroupCoordinatorNotAvailableError

from nexo_messaging.kafka import KafkaTransport
from nexo_messaging.transport import TP, Consumer, Record, TopicSpec

from .messaging_harness import wait_until

PARTITIONS = 3


async def _produce(producer: AIOKafkaProducer, topic: str, per_partition: int, tag: str) -> None:
    for p in range(PARTITIONS):
        for i in range(per_partition):
            await producer.send_and_wait(topic, f"{tag}-{p}-{i}".encode(), partition=p)


async def _read(reader: Consumer, want: int) -> list[Record]:
    got: list[Record] = []

    async def enough() -> bool:
        for records in (await reader.getmany(timeout_ms=200, max_records=100)).values():
            got.extend(records)
        return len(got) >= want

    await wait_until(enough, within=30, what=f"{want} records")
    # nothing more than wanted arrives
    extra = await reader.getmany(timeout_ms=300, max_records=100)
    assert not extra, extra
    return got


def _by_partition(records: list[Record]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r.offset)
    return {p: sorted(o) for p, o in sorted(out.items())}


async def test_readers_each_see_every_partition_from_their_tail_or_resume_point(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    transport = KafkaTransport(kafka_bootstrap)
    topic = unique_name("reader")
    group = unique_name("grp")
    await transport.ensure_topics([TopicSpec(topic, PARTITIONS)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    readers: list[Consumer] = []
    try:
        await _produce(producer, topic, 4, "old")  # offsets 0..3 in each partition
        a = transport.reader(group, [topic], tail=2)
        b = transport.reader(group, [topic], tail=0)
        c = transport.reader(group, [topic], tail=0, resume={TP(topic, 0): 1})
        readers.extend((a, b, c))
        for r in readers:
            await r.start()
            assert r.assignment() == {TP(topic, p) for p in range(PARTITIONS)}
        assert [a.position(TP(topic, p)) for p in range(PARTITIONS)] == [2, 2, 2]
        assert [b.position(TP(topic, p)) for p in range(PARTITIONS)] == [4, 4, 4]
        assert _by_partition(await _read(a, 6)) == {0: [2, 3], 1: [2, 3], 2: [2, 3]}
        assert _by_partition(await _read(c, 3)) == {0: [1, 2, 3]}
        await a.commit({TP(topic, 0): 4})  # a no-op: no group to commit to

        await _produce(producer, topic, 1, "new")
        # one group id, three readers: each still gets the new record of every partition
        for r in (a, b, c):
            assert _by_partition(await _read(r, 3)) == {0: [4], 1: [4], 2: [4]}
            assert [r.position(TP(topic, p)) for p in range(PARTITIONS)] == [5, 5, 5]
        committed: list[dict[TP, int]] = []

        async def group_offsets_read() -> bool:
            try:  # a new broker answers "coordinator not available" while it sets groups up
                committed.append(await transport.committed(group, [topic]))
            except GroupCoordinatorNotAvailableError:
                return False
            return True

        await wait_until(group_offsets_read, within=30, what="the group's committed offsets")
        assert committed == [{}]
    finally:
        for r in readers:
            await r.stop()
        await producer.stop()
