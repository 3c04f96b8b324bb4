"""Kafka transport over aiokafka 0.14.

Producer: idempotent (``enable_idempotence=True``, ``acks="all"``); ``send_many`` enqueues every
record then awaits all acknowledgements. Consumer: ``enable_auto_commit=False``,
``auto_offset_reset="earliest"``, explicit per-partition commits, rebalance listener adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from nexo_messaging.errors import CommitFailed
from nexo_messaging.topics_admin import committed_offsets, ensure_topics, list_topics
from nexo_messaging.transport import (
    TP,
    Consumer,
    OutMessage,
    Producer,
    RebalanceListener,
    Record,
    TopicLike,
    Transport,
)

CALL_TIMEOUT_S = 15.0


def _tp(tp: TopicPartition) -> TP:
    return TP(tp.topic, tp.partition)


def _record(msg: Any) -> Record:
    return Record(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        headers=list(msg.headers) if msg.headers else [],
        timestamp_ms=msg.timestamp,
    )


def _append(batch: Any, m: OutMessage) -> Any:
    return batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)


class KafkaProducer(Producer):
    def __init__(self, bootstrap_servers: str, **options: Any) -> None:
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 2,
            "max_batch_size": 256 * 1024,
            "request_timeout_ms": 10_000,
            "retry_backoff_ms": 200,
        }
        settings.update(options)
        self._producer = AIOKafkaProducer(**settings)

    async def start(self) -> None:
        await self._producer.start()

    async def send_many(self, messages: Sequence[OutMessage]) -> list[BaseException | None]:
        """Partition the messages (the producer's partitioner: murmur2 of the key), fill one
        record batch per partition at a time (``create_batch``/``send_batch``: no per-message
        future or accumulator call), then await every batch. A batch is acknowledged or fails
        as a whole; its error is reported for each of its messages. Order within a partition
        is the order of ``messages``."""
        producer = self._producer
        results: list[BaseException | None] = [None] * len(messages)
        by_tp: dict[tuple[str, int], list[int]] = {}
        partitions: dict[str, tuple[list[int], list[int]]] = {}
        for i, m in enumerate(messages):
            parts = partitions.get(m.topic)
            if parts is None:
                try:
                    await producer.partitions_for(m.topic)  # waits for the topic's metadata
                    meta = producer.client.cluster
                    parts = (
                        sorted(meta.partitions_for_topic(m.topic) or ()),
                        sorted(meta.available_partitions_for_topic(m.topic) or ()),
                    )
                except KafkaError as exc:
                    results[i] = exc
                    continue
                partitions[m.topic] = parts
            if not parts[0]:
                results[i] = KafkaError(f"no partitions known for {m.topic!r}")
                continue
            if m.key is None:
                partition = producer._partitioner(None, parts[0], parts[1])
            else:
                partition = producer._partitioner(m.key, parts[0], parts[1])
            by_tp.setdefault((m.topic, partition), []).append(i)
        pending: list[tuple[list[int], Any]] = []
        for (topic, partition), indexes in by_tp.items():
            batch = producer.create_batch()
            members: list[int] = []
            for i in indexes:
                m = messages[i]
                if (
                    batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
                    is None
                ):
                    if members:
                        pending.append((members, await self._submit(batch, topic, partition)))
                    batch = producer.create_batch()
                    members = []
                    if (
                        batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
                        is None
                    ):
                        results[i] = KafkaError("message larger than max_batch_size")
                        continue
                members.append(i)
            if members:
                pending.append((members, await self._submit(batch, topic, partition)))
        for members, fut in pending:
            err: BaseException | None
            if isinstance(fut, BaseException):
                err = fut
            else:
                try:
                    await fut
                    err = None
                except KafkaError as exc:
                    err = exc
            if err is not None:
                for i in members:
                    results[i] = err
        return results

    async def _submit(self, batch: Any, topic: str, partition: int) -> Any:
        try:
            return await self._producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            return exc

    async def stop(self) -> None:
        await self._producer.stop()


class _ListenerAdapter(ConsumerRebalanceListener):
    def __init__(self, listener: RebalanceListener) -> None:
        self.listener = listener

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.listener.on_partitions_revoked({_tp(tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.listener.on_partitions_assigned({_tp(tp) for tp in assigned})


class KafkaConsumer(Consumer):
    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        listener: RebalanceListener | None,
        **options: Any,
    ) -> None:
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": 300_000,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 1_000,
            "metadata_max_age_ms": 5_000,
            "fetch_max_wait_ms": 100,
        }
        settings.update(options)
        self._consumer = AIOKafkaConsumer(**settings)
        self._topics = list(topics)
        self._listener = _ListenerAdapter(listener) if listener is not None else None

    async def start(self) -> None:
        await self._consumer.start()
        if self._listener is not None:
            self._consumer.subscribe(self._topics, listener=self._listener)
        else:
            self._consumer.subscribe(self._topics)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TP, list[Record]]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return {_tp(tp): [_record(m) for m in msgs] for tp, msgs in batches.items() if msgs}

    async def commit(self, offsets: Mapping[TP, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {
                    TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(o, "")
                    for tp, o in offsets.items()
                }
            )
        except (CommitFailedError, IllegalStateError) as exc:
            raise CommitFailed(str(exc)) from exc

    def assignment(self) -> set[TP]:
        return {_tp(tp) for tp in self._consumer.assignment()}

    def seek(self, tp: TP, offset: int) -> None:
        with contextlib.suppress(IllegalStateError):
            self._consumer.seek(TopicPartition(tp.topic, tp.partition), offset)

    def highwater(self, tp: TP) -> int | None:
        try:
            value = self._consumer.highwater(TopicPartition(tp.topic, tp.partition))
        except IllegalStateError:
            return None
        return int(value) if value is not None else None

    async def stop(self) -> None:
        await self._consumer.stop()


class KafkaTransport(Transport):
    kind = "kafka"

    def __init__(self, bootstrap_servers: str, **producer_options: Any) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.producer_options = producer_options

    def producer(self) -> Producer:
        return KafkaProducer(self.bootstrap_servers, **self.producer_options)

    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        max_poll_interval_ms: int = 300_000,
    ) -> Consumer:
        return KafkaConsumer(
            self.bootstrap_servers,
            group_id,
            topics,
            listener,
            max_poll_interval_ms=max_poll_interval_ms,
        )

    async def ensure_topics(self, topics: Iterable[TopicLike]) -> None:
        await ensure_topics(self.bootstrap_servers, topics)

    async def list_topics(self) -> set[str]:
        return await list_topics(self.bootstrap_servers)

    async def _throwaway(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await asyncio.wait_for(consumer.start(), CALL_TIMEOUT_S)
        return consumer

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[str, set[int]]:
        cluster = await asyncio.wait_for(consumer._client.fetch_all_metadata(), CALL_TIMEOUT_S)
        return {t: set(cluster.partitions_for_topic(t) or ()) for t in topics}

    async def read_records(
        self, topic: str, *, partition: int | None = None, offset: int = 0, limit: int = 100
    ) -> list[Record]:
        consumer = await self._throwaway()
        try:
            parts = (await self._partitions(consumer, [topic]))[topic]
            if partition is not None:
                parts = {partition} & set(parts)
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                return []
            consumer.assign(tps)
            ends = await asyncio.wait_for(consumer.end_offsets(tps), CALL_TIMEOUT_S)
            for tp in tps:
                if partition is not None:
                    consumer.seek(tp, offset)
                else:
                    await consumer.seek_to_beginning(tp)
            out: list[Record] = []
            remaining = {tp for tp in tps if ends[tp] > (await consumer.position(tp))}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CALL_TIMEOUT_S
            while remaining and len(out) < limit and loop.time() < deadline:
                batches = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, msgs in batches.items():
                    for m in msgs:
                        if m.offset < ends[tp]:
                            out.append(_record(m))
                    if not msgs or msgs[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            return out[:limit]
        finally:
            await asyncio.wait_for(consumer.stop(), CALL_TIMEOUT_S)

    async def end_offsets(self, topics: Sequence[str]) -> dict[TP, int]:
        consumer = await self._throwaway()
        try:
            known = await self._partitions(consumer, topics)
            tps = [TopicPartition(t, p) for t in topics for p in sorted(known[t])]
            if not tps:
                return {}
            ends = await asyncio.wait_for(consumer.end_offsets(tps), CALL_TIMEOUT_S)
            return {_tp(tp): int(o) for tp, o in ends.items()}
        finally:
            await asyncio.wait_for(consumer.stop(), CALL_TIMEOUT_S)

    async def committed(self, group_id: str, topics: Sequence[str]) -> dict[TP, int]:
        return await committed_offsets(self.bootstrap_servers, group_id, topics)
