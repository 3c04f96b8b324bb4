"""The transport interface shared by the Kafka and the in-memory implementations.

Semantics both honour: records are partitioned by key hash (Kafka's murmur2), ordered per
partition; a consumer group receives every record once per group (at-least-once: what was not
committed is delivered again after a restart or a rebalance); offsets are committed explicitly
per partition; a rebalance calls the listener's ``on_partitions_revoked`` before partitions move.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class TP(NamedTuple):
    """A topic partition."""

    topic: str
    partition: int


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class OutMessage:
    """A record to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class Record:
    """A consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create (``contracts.topics.Topic`` has the same attributes)."""

    name: str
    partitions: int = 3
    retention_ms: int | None = None
    replication_factor: int = 1


class TopicLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def partitions(self) -> int: ...


class RebalanceListener(Protocol):
    async def on_partitions_revoked(self, revoked: set[TP]) -> None: ...
    async def on_partitions_assigned(self, assigned: set[TP]) -> None: ...


class Producer(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def send_many(self, messages: Sequence[OutMessage]) -> list[BaseException | None]:
        """Send every message, then wait for all acknowledgements. One entry per message: None
        when the broker acknowledged it, else the error. Callers bound it with a timeout."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Flush what is pending (time-bounded by the implementation), then close."""

    async def abort(self) -> None:
        """Close without waiting for pending sends (after a failure: the caller resends)."""
        await self.stop()


class Consumer(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TP, list[Record]]: ...

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit the next offset to read per partition; raise ``CommitFailed`` if refused."""

    @abc.abstractmethod
    def assignment(self) -> set[TP]: ...

    @abc.abstractmethod
    def seek(self, tp: TP, offset: int) -> None: ...

    @abc.abstractmethod
    def highwater(self, tp: TP) -> int | None:
        """Last known end offset of ``tp`` (None if unknown yet)."""

    def position(self, tp: TP) -> int | None:
        """The next offset this consumer reads from ``tp`` (None if not assigned or unknown)."""
        return None

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Transport(abc.ABC):
    kind: str

    @abc.abstractmethod
    def producer(self) -> Producer: ...

    @abc.abstractmethod
    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        max_poll_interval_ms: int = 300_000,
    ) -> Consumer: ...

    def reader(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        tail: int,
        resume: Mapping[TP, int] | None = None,
    ) -> Consumer:
        """A consumer that sees every record of ``topics`` in this process, whatever other
        processes read: the view each replica of a service keeps (the gateway's ops feed).

        On Kafka it reads every partition outside any consumer group — from ``resume`` where it
        names the partition, else ``tail`` records before the partition's end — and its commit
        does nothing. The in-process transports serve a single process, so their consumer of
        ``group_id`` is that reader (it resumes at the group's committed offsets)."""
        return self.consumer(group_id, topics)

    @abc.abstractmethod
    async def ensure_topics(self, topics: Iterable[TopicLike]) -> None: ...

    @abc.abstractmethod
    async def list_topics(self) -> set[str]: ...

    @abc.abstractmethod
    async def read_records(
        self, topic: str, *, partition: int | None = None, offset: int = 0, limit: int = 100
    ) -> list[Record]:
        """Read records by offset without a consumer group (from ``offset`` of one partition,
        or from the beginning of every partition)."""

    @abc.abstractmethod
    async def end_offsets(self, topics: Sequence[str]) -> dict[TP, int]: ...

    @abc.abstractmethod
    async def committed(self, group_id: str, topics: Sequence[str]) -> dict[TP, int]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release shared resources."""
