"""Kafka transport over aiokafka 0.14.

Producer: idempotent (``enable_idempotence=True``, ``acks="all"``); ``send_many`` enqueues every
record then awaits all acknowledgements. ``stop`` flushes for at most ``FLUSH_TIMEOUT_S`` and
``abort`` not at all; either way the undelivered batches fail and aiokafka's sender task and
connections are closed, even when the caller is cancelled meanwhile (a producer dropped with a
live sender is what logged "Task was destroyed but it is pending!" during broker outages).

Consumer: ``enable_auto_commit=False``, ``auto_offset_reset="earliest"``, explicit
per-partition commits, rebalance listener adapter. Failure detection: ``session_timeout_ms``
3 s with a heartbeat every 0.5 s, so the partitions of a consumer that died without leaving the
group move within ~4 s; a consumer that stops leaves the group at once (``LeaveGroup``).
The broker must allow it: ``group.min.session.timeout.ms`` ≤ 3000 (Kafka's default is 6000;
see the README's messaging section for the trade-off).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, ProducerClosed
from aiokafka.structs import OffsetAndMetadata

from nexo_messaging.errors import CommitFailed
from nexo_messaging.topics_admin import (
    broker_config,
    committed_offsets,
    ensure_topics,
    list_topics,
)
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

log = structlog.get_logger("nexo_messaging.kafka")

CALL_TIMEOUT_S = 15.0
FLUSH_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 2.0
# Group failure detection (see the module docstring); the broker's group.min.session.timeout.ms
# must not exceed SESSION_TIMEOUT_MS.
SESSION_TIMEOUT_MS = 3_000
HEARTBEAT_INTERVAL_MS = 500
# How long the coordinator waits for members to rejoin during a rebalance (covers a member
# finishing its in-flight chunk in on_partitions_revoked); aiokafka would default it to the
# short session timeout.
REBALANCE_TIMEOUT_MS = 20_000


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
        self._closing: asyncio.Future[None] | None = None

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
            fut = await self._producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            return exc
        # When the caller's timeout cancels send_many, nobody awaits this future any more.
        fut.add_done_callback(_consume_exception)
        return fut

    async def stop(self) -> None:
        """Flush (at most ``FLUSH_TIMEOUT_S``), then close; never leaves a task behind."""
        await self._close(flush=True)

    async def abort(self) -> None:
        """Close without flushing: undelivered batches fail (the caller retries them)."""
        await self._close(flush=False)

    async def _close(self, *, flush: bool) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown(flush))
        # shielded: a caller's own timeout must not interrupt the shutdown half-way
        await asyncio.shield(self._closing)

    async def _shutdown(self, flush: bool) -> None:
        producer = self._producer
        if not flush:
            self._fail_pending()
        stopping = asyncio.ensure_future(producer.stop())
        stopping.add_done_callback(_consume_exception)
        await asyncio.wait([stopping], timeout=FLUSH_TIMEOUT_S if flush else CLOSE_TIMEOUT_S)
        if not stopping.done():
            # The flush cannot finish (broker unreachable): fail what is left, stop the sender.
            self._fail_pending()
            await asyncio.wait([stopping], timeout=CLOSE_TIMEOUT_S)
        if not stopping.done():
            stopping.cancel()
            with contextlib.suppress(BaseException):
                await stopping
        if stopping.cancelled() or stopping.exception() is not None:
            # aiokafka's stop ended early (its sender task was cancelled twice, or failed) and
            # did not reach closing the client: its metadata task and connections stay alive.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.client.close(), CLOSE_TIMEOUT_S)

    def _fail_pending(self) -> None:
        """Stop aiokafka's sender and fail every undelivered batch (aiokafka 0.14 internals:
        its public ``stop`` waits for them forever while the broker is unreachable)."""
        producer = self._producer
        sender = getattr(producer._sender, "sender_task", None)
        if sender is not None and not sender.done():
            # cancelled first: a sender that fails instead trips aiokafka's _fail_all callback
            sender.cancel()
        accumulator = producer._message_accumulator
        batches = [b for bs in accumulator._batches.values() for b in bs]
        batches.extend(accumulator._pending_batches)
        error = ProducerClosed()
        for batch in batches:
            batch.failure(error)
            for fut in (batch.future, batch._drain_waiter):  # nobody waits on them any more
                if fut.done() and not fut.cancelled():
                    fut.exception()


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


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
        session_floor: Callable[[], Awaitable[int | None]] | None = None,
        **options: Any,
    ) -> None:
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": 300_000,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
            "rebalance_timeout_ms": REBALANCE_TIMEOUT_MS,
            "metadata_max_age_ms": 5_000,
            "fetch_max_wait_ms": 100,
        }
        settings.update(options)
        self._settings = settings
        self._session_floor = session_floor
        self._consumer = AIOKafkaConsumer(**settings)
        self._topics = list(topics)
        self._listener = _ListenerAdapter(listener) if listener is not None else None

    async def start(self) -> None:
        floor = await self._session_floor() if self._session_floor is not None else None
        wanted = int(self._settings["session_timeout_ms"])
        if floor is not None and floor > wanted:
            # A broker that forbids the short session would refuse the join outright.
            log.warning(
                "broker's group.min.session.timeout.ms exceeds the consumer's session timeout; "
                "using the broker's minimum (slower takeover after a crash)",
                wanted_ms=wanted,
                broker_min_ms=floor,
            )
            self._settings["session_timeout_ms"] = floor
            self._settings["heartbeat_interval_ms"] = min(
                int(self._settings["heartbeat_interval_ms"]), floor // 3
            )
            self._consumer = AIOKafkaConsumer(**self._settings)
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


async def _partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[str, set[int]]:
    """The partitions of `topics` the broker knows now (fresh metadata, not the cached)."""
    cluster = await asyncio.wait_for(consumer._client.fetch_all_metadata(), CALL_TIMEOUT_S)
    return {t: set(cluster.partitions_for_topic(t) or ()) for t in topics}


class KafkaReader(Consumer):
    """Every partition of ``topics`` outside any consumer group (``Transport.reader``): each
    process that runs one sees every record. It starts where ``resume`` names the partition,
    else ``tail`` records before its end (never before the log start), and commits nothing.
    The partitions are those the topics have when it starts (a topic's count is fixed by the
    contracts; a reader started again sees any added since)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        *,
        tail: int,
        resume: Mapping[TP, int] | None = None,
        **options: Any,
    ) -> None:
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "enable_auto_commit": False,
            "auto_offset_reset": "latest",
            "metadata_max_age_ms": 5_000,
            "fetch_max_wait_ms": 100,
            **options,
            "group_id": None,
        }
        self._consumer = AIOKafkaConsumer(**settings)
        self._topics = list(topics)
        self._tail = max(0, tail)
        self._resume = dict(resume or {})
        self._positions: dict[TP, int] = {}

    async def start(self) -> None:
        await self._consumer.start()
        known = await _partitions(self._consumer, self._topics)
        tps = [TopicPartition(t, p) for t in self._topics for p in sorted(known[t])]
        self._consumer.assign(tps)
        if not tps:
            return
        begins = await asyncio.wait_for(self._consumer.beginning_offsets(tps), CALL_TIMEOUT_S)
        ends = await asyncio.wait_for(self._consumer.end_offsets(tps), CALL_TIMEOUT_S)
        for tp in tps:
            wanted = self._resume.get(_tp(tp), ends[tp] - self._tail)
            self.seek(_tp(tp), min(max(begins[tp], wanted), ends[tp]))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TP, list[Record]]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out = {_tp(tp): [_record(m) for m in msgs] for tp, msgs in batches.items() if msgs}
        for tp, records in out.items():
            self._positions[tp] = records[-1].offset + 1
        return out

    async def commit(self, offsets: Mapping[TP, int]) -> None:
        """Nothing to commit: the reader belongs to no group."""

    def assignment(self) -> set[TP]:
        return {_tp(tp) for tp in self._consumer.assignment()}

    def seek(self, tp: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(tp.topic, tp.partition), offset)
        self._positions[tp] = offset

    def highwater(self, tp: TP) -> int | None:
        value = self._consumer.highwater(TopicPartition(tp.topic, tp.partition))
        return int(value) if value is not None else None

    def position(self, tp: TP) -> int | None:
        return self._positions.get(tp)

    async def stop(self) -> None:
        await self._consumer.stop()


class KafkaTransport(Transport):
    kind = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        consumer_options: Mapping[str, Any] | None = None,
        **producer_options: Any,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.producer_options = producer_options
        self.consumer_options = dict(consumer_options or {})
        self._session_min_ms: int | None = None

    async def _broker_session_min(self) -> int | None:
        """The broker's ``group.min.session.timeout.ms`` (asked once per transport)."""
        if self._session_min_ms is None:
            try:
                value = await asyncio.wait_for(
                    broker_config(self.bootstrap_servers, "group.min.session.timeout.ms"), 5.0
                )
            except Exception as exc:  # e.g. no DescribeConfigs permission: keep our setting
                log.info("cannot read the broker's minimum session timeout", error=repr(exc))
                return None
            self._session_min_ms = int(value) if value else 0
        return self._session_min_ms

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
            self._broker_session_min,
            **{"max_poll_interval_ms": max_poll_interval_ms, **self.consumer_options},
        )

    def reader(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        tail: int,
        resume: Mapping[TP, int] | None = None,
    ) -> Consumer:
        return KafkaReader(
            self.bootstrap_servers, topics, tail=tail, resume=resume, **self.consumer_options
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
        return await _partitions(consumer, topics)

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
