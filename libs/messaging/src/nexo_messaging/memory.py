"""In-memory transport: the embedded default, with Kafka's semantics where they matter.

* topics have partitions; a record goes to ``murmur2(key) % partitions`` like Kafka's default
  partitioner (no key: round robin), so per-key order holds;
* consumer groups (:mod:`nexo_messaging.groups`): each group gets every record once;
  partitions are spread over the group's members (range assignment), with an eager rebalance:
  every member revokes (listener called) before the new assignment takes effect; committed
  offsets are kept per group/partition and a member starts from them (earliest when none), so
  un-committed records are delivered again;
* ``available = False`` simulates a broker outage (sends and polls fail/return nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence

from aiokafka.partitioner import murmur2

from nexo_messaging.errors import TransportUnavailable
from nexo_messaging.groups import AnyMember, GroupCoordinator, GroupMember
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

DEFAULT_PARTITIONS = 3


def partition_for(key: bytes | None, partitions: int, counter: int = 0) -> int:
    if key is None:
        return counter % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class MemoryBroker(GroupCoordinator):
    """Shared by every service of one process (the embedded default)."""

    def __init__(self, default_partitions: int = DEFAULT_PARTITIONS) -> None:
        super().__init__()
        self.default_partitions = default_partitions
        self.topics: dict[str, list[list[Record]]] = {}
        self.available = True
        # A fresh Event per change, swapped on notify: a broadcast with no lock to hold, so a
        # waiter cancelled mid-wait (shutdown, timeouts) can never leave others blocked.
        self._changed = asyncio.Event()
        self._rr = itertools.count()

    # -- topics -----------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int | None = None) -> None:
        if name not in self.topics:
            self.topics[name] = [[] for _ in range(partitions or self.default_partitions)]
            self.rebalance_subscribers({name})

    def partitions(self, topic: str) -> int:
        self.create_topic(topic)
        return len(self.topics[topic])

    def partition_count(self, topic: str) -> int:
        return self.partitions(topic)

    def check_available(self) -> None:
        if not self.available:
            raise TransportUnavailable("memory broker is unavailable (fault injection)")

    async def append(self, message: OutMessage) -> Record:
        self.check_available()
        parts = self.topics.get(message.topic)
        if parts is None:
            self.create_topic(message.topic)
            parts = self.topics[message.topic]
        p = partition_for(message.key, len(parts), next(self._rr))
        record = Record(
            topic=message.topic,
            partition=p,
            offset=len(parts[p]),
            key=message.key,
            value=message.value,
            headers=list(message.headers),
            timestamp_ms=int(time.time() * 1000),
        )
        parts[p].append(record)
        return record

    async def notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    # -- groups (coordination in nexo_messaging.groups) --------------------------------------
    def join(self, group_id: str, member: AnyMember) -> None:
        for t in member.topics:
            self.create_topic(t)
        super().join(group_id, member)

    def commit(self, group_id: str, member: AnyMember, offsets: Mapping[TP, int]) -> None:
        group = self.check_commit(group_id, member, offsets)
        assert group.committed is not None  # a memory group knows its offsets from the start
        group.committed.update(offsets)

    def end_offsets(self, topics: Sequence[str]) -> dict[TP, int]:
        out: dict[TP, int] = {}
        for t in topics:
            for p, records in enumerate(self.topics.get(t, [])):
                out[TP(t, p)] = len(records)
        return out


class MemoryProducer(Producer):
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    async def start(self) -> None:
        self.broker.check_available()

    async def send_many(self, messages: Sequence[OutMessage]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for m in messages:
            try:
                await self.broker.append(m)
                results.append(None)
            except TransportUnavailable as exc:
                results.append(exc)
        await self.broker.notify()
        return results

    async def stop(self) -> None:
        return None


class _MemoryConsumer(GroupMember[MemoryBroker]):
    @property
    def broker(self) -> MemoryBroker:
        return self.coordinator

    async def start(self) -> None:
        self.broker.join(self.group_id, self)
        self.started = True

    def _fetch(self, max_records: int) -> dict[TP, list[Record]]:
        out: dict[TP, list[Record]] = {}
        budget = max_records
        for tp in sorted(self.assigned):
            if budget <= 0:
                break
            records = self.broker.topics[tp.topic][tp.partition]
            pos = self.positions.get(tp, 0)
            if pos < len(records):
                chunk = records[pos : pos + budget]
                out[tp] = chunk
                self.positions[tp] = pos + len(chunk)
                budget -= len(chunk)
        return out

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TP, list[Record]]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            await self.sync_group()
            if (
                self.broker.available
                and self.generation == self.broker.groups[self.group_id].generation
            ):
                out = self._fetch(max_records)
                if out:
                    return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {}
            await self.broker.wait_change(min(remaining, 0.05))

    async def commit(self, offsets: Mapping[TP, int]) -> None:
        self.broker.check_available()
        self.broker.commit(self.group_id, self, offsets)

    def highwater(self, tp: TP) -> int | None:
        parts = self.broker.topics.get(tp.topic)
        return len(parts[tp.partition]) if parts else None

    async def stop(self) -> None:
        if self.started:
            self.started = False
            self.broker.leave(self.group_id, self)
            await self.broker.notify()


class MemoryTransport(Transport):
    kind = "memory"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()

    def producer(self) -> Producer:
        return MemoryProducer(self.broker)

    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        max_poll_interval_ms: int = 300_000,
    ) -> Consumer:
        return _MemoryConsumer(self.broker, group_id, topics, listener)

    async def ensure_topics(self, topics: Iterable[TopicLike]) -> None:
        for t in topics:
            self.broker.create_topic(t.name, t.partitions)

    async def list_topics(self) -> set[str]:
        return set(self.broker.topics)

    async def read_records(
        self, topic: str, *, partition: int | None = None, offset: int = 0, limit: int = 100
    ) -> list[Record]:
        parts = self.broker.topics.get(topic, [])
        if partition is not None:
            if partition >= len(parts):
                return []
            return list(parts[partition][offset : offset + limit])
        out: list[Record] = []
        for records in parts:
            out.extend(records)
        return out[:limit]

    async def end_offsets(self, topics: Sequence[str]) -> dict[TP, int]:
        return self.broker.end_offsets(topics)

    async def committed(self, group_id: str, topics: Sequence[str]) -> dict[TP, int]:
        group = self.broker.groups.get(group_id)
        if group is None:
            return {}
        return {tp: o for tp, o in (group.committed or {}).items() if tp.topic in topics}
