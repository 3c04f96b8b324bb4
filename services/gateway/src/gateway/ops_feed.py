"""The ops feed: the gateway reads every topic into a ring buffer of event summaries, counts
rates per event type and fans new events out to server-sent-event subscribers. Each gateway
replica sees every event (``Transport.reader``: on Kafka every partition outside any group,
starting ``TAIL_PER_PARTITION`` records back, then where it left off after a reconnect; in
process, the group ``gateway.ops``), so every replica behind the load balancer shows the same
board. A stock shortage of any version also gets its ``shortage`` view: v1 records (still
on the topic) are read as v2 through ``contracts.registry.upcast`` (origen ``venta``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.events.sales import StockShortageV2
from contracts.registry import REGISTRY, upcast
from contracts.topics import OPS_GROUP, all_topics
from nexo_messaging import dlq as dlq_ops
from nexo_messaging.errors import CommitFailed
from nexo_messaging.transport import TP, Consumer, Record, TopicLike, TopicSpec, Transport
from service_defaults.logging import get_logger

log = get_logger("gateway.ops")

RATE_WINDOW_S = 60.0
TAIL_PER_PARTITION = 50
"""Records a new Kafka reader shows from before its start, per partition (a warm board)."""


def ops_topics() -> list[str]:
    return [t.name for t in all_topics(include_dlq=True)]


def ops_topic_specs() -> list[TopicLike]:
    """Topics the ops layer reads or writes: every contract topic, its DLQ and the DLQ audit
    topic (a Kafka broker with ``auto.create.topics.enable=false`` would otherwise fail a
    replay when no service has created the audit topic yet)."""
    return [*all_topics(include_dlq=True), TopicSpec(dlq_ops.AUDIT_TOPIC, 1)]


def _text(record: Record, name: str) -> str | None:
    value = record.header(name)
    return value.decode("utf-8", "replace") if value is not None else None


def _trace_id(traceparent: str | None) -> str | None:
    parts = traceparent.split("-") if traceparent else []
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def shortage_view(ce_type: str | None, payload: Any) -> dict[str, Any] | None:
    """A StockShortage record of any version as the board shows it (the v2 shape; v1 upcast,
    origen ``venta``); None for any other event or a payload that does not match its schema."""
    cls = REGISTRY.get(ce_type or "")
    if cls is None or cls.event_name != StockShortageV2.event_name or not isinstance(payload, dict):
        return None
    try:
        event = upcast(cls.model_validate(payload))
    except ValidationError:
        return None
    return event.model_dump(mode="json") if isinstance(event, StockShortageV2) else None


def event_summary(record: Record, seq: int) -> dict[str, Any]:
    ce_type = _text(record, "ce_type")
    payload: Any = None
    if record.value is not None:
        try:
            payload = json.loads(record.value)
        except ValueError:
            payload = record.value[:200].decode("utf-8", "replace")
    shortage = shortage_view(ce_type, payload)
    text = json.dumps(payload, default=str)
    if len(text) > 2000:
        payload = text[:2000] + "…"
    return {
        "seq": seq,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "type": ce_type or "(undecodable)",
        "id": _text(record, "ce_id"),
        "subject": _text(record, "ce_subject"),
        "source": _text(record, "ce_source"),
        "time": _text(record, "ce_time")
        or datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).isoformat(),
        "correlation_id": _text(record, "ce_correlationid") or _text(record, "correlationid"),
        "trace_id": _trace_id(_text(record, "ce_traceparent") or _text(record, "traceparent")),
        "dlq": record.topic.endswith(dlq_ops.DLQ_SUFFIX),
        "dlq_error": _text(record, dlq_ops.H_ERROR),
        "payload": payload,
        "shortage": shortage,
    }


class EventFeed:
    """Reads every topic (see the module docstring); keeps the last events, rates, SSE fan-out
    and, per partition, the next offset to read (``positions``: the board's lag)."""

    def __init__(self, transport: Transport, topics: list[str], size: int = 500) -> None:
        self.transport = transport
        self.topics = topics
        self.events: deque[dict[str, Any]] = deque(maxlen=size)
        self.totals: Counter[str] = Counter()
        self._recent: dict[str, deque[float]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self.running = False
        self.last_error: str | None = None
        self.last_poll: float | None = None
        self.positions: dict[TP, int] = {}
        self.topics_ensured = transport.kind == "memory"

    async def start(self) -> None:
        self.running = True
        self._task = asyncio.create_task(self._run(), name="gateway-ops-feed")

    async def _run(self) -> None:
        backoff = 0.5
        while self.running:
            try:
                if not self.topics_ensured:  # a real broker: create what is missing, once
                    await asyncio.wait_for(self.transport.ensure_topics(ops_topic_specs()), 60)
                    self.topics_ensured = True
                self._consumer = consumer = self.transport.reader(
                    OPS_GROUP, self.topics, tail=TAIL_PER_PARTITION, resume=self.positions
                )
                await asyncio.wait_for(consumer.start(), 15)
                backoff = 0.5
                while self.running:
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    self.last_poll = time.time()
                    for tp in consumer.assignment():
                        if (position := consumer.position(tp)) is not None:
                            self.positions[tp] = position
                    offsets: dict[TP, int] = {}
                    for tp, records in batches.items():
                        for record in records:
                            self._add(record)
                        if records:
                            offsets[tp] = records[-1].offset + 1
                    if offsets:
                        with contextlib.suppress(CommitFailed):
                            await consumer.commit(offsets)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("ops feed error", error=self.last_error)
                await self._close_consumer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _add(self, record: Record) -> None:
        self._seq += 1
        event = event_summary(record, self._seq)
        self.events.append(event)
        kind = event["type"]
        self.totals[kind] += 1
        if time.time() - record.timestamp_ms / 1000 < RATE_WINDOW_S:  # not a backlog read
            self._recent.setdefault(kind, deque()).append(time.monotonic())
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def rates(self) -> dict[str, dict[str, float]]:
        now = time.monotonic()
        out: dict[str, dict[str, float]] = {}
        for kind, stamps in self._recent.items():
            while stamps and now - stamps[0] > RATE_WINDOW_S:
                stamps.popleft()
            out[kind] = {
                "per_minute": float(len(stamps)),
                "per_second": round(len(stamps) / RATE_WINDOW_S, 3),
                "total": float(self.totals[kind]),
            }
        return dict(sorted(out.items()))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        items = list(self.events)[-limit:]
        items.reverse()
        return items

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=200)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5)

    async def stop(self) -> None:
        self.running = False
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close_consumer()

    def lag(self, topic: str, ends: Mapping[TP, int]) -> dict[str, Any]:
        """Records of `topic` this feed has not read yet, per partition (``lag`` None until
        it has a position in every partition)."""
        per_partition: dict[int, int] = {}
        for tp, end in sorted(ends.items()):
            if tp.topic != topic:
                continue
            position = self.positions.get(tp)
            if position is None:
                return {"lag": None, "partitions": {}, "error": "the ops feed has not read it yet"}
            per_partition[tp.partition] = max(0, end - position)
        return {"lag": sum(per_partition.values()), "partitions": per_partition}

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "buffered": len(self.events),
            "last_poll_age_s": round(time.time() - self.last_poll, 3) if self.last_poll else None,
            "last_error": self.last_error,
        }
