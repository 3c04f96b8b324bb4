"""Consumer runner: fetch in batches, process in a DB transaction with an inbox row per event,
commit explicit offsets of still-assigned partitions after the effects committed.

Per fetched partition chunk, all known events are processed in ONE transaction (inbox rows +
handlers, or one ``batch_handler`` call). If that fails, the chunk is processed event by event
with bounded retries and backoff; an event that raises ``PermanentError`` or still fails after
the retries goes to ``<topic>.dlq``, as do undecodable records, unknown types and schema
violations — then the partition keeps flowing. Nothing is dropped silently.

A transient infrastructure failure (``errors.is_transient``: the database or broker unreachable,
restarting, a broken connection, ...) is not the event's fault, so it uses none of that budget:
the chunk is abandoned uncommitted, its partitions are rewound to the chunk's first records, and
the same records are fetched again after a backoff (exponential, ``transient_backoff_max``) for
as long as the outage lasts — order kept, nothing dead-lettered. Between tries the runner polls
the consumer, so a stop or a rebalance is served at once and revoked partitions are not fetched
again by this member. ``health()`` shows ``retrying_transient`` meanwhile. The cost of the rule:
a handler whose bug raises a "transient-looking" error (say ``ConnectionRefusedError`` from a
call it makes) blocks its partition until fixed, visibly, instead of dead-lettering.

What a group is (:class:`ConsumerSpec`, the handler types) lives in
:mod:`nexo_messaging.consumer_spec`, re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from contracts.codec import DecodeError, decode
from contracts.events.base import DomainEvent
from nexo_messaging import context, metrics, tracing
from nexo_messaging.consumer_spec import BatchHandler as BatchHandler
from nexo_messaging.consumer_spec import ConsumerSpec as ConsumerSpec
from nexo_messaging.consumer_spec import DeadLetterHook as DeadLetterHook
from nexo_messaging.consumer_spec import Handler as Handler
from nexo_messaging.decoding import EventMeta as EventMeta
from nexo_messaging.decoding import event_meta, fast_decode
from nexo_messaging.dlq import dead_letter_message
from nexo_messaging.errors import CommitFailed, PermanentError, is_transient, transient_cause
from nexo_messaging.inbox import record_processed_many
from nexo_messaging.transport import TP, Consumer, Producer, Record, Transport

log = structlog.get_logger("nexo_messaging.consumer")


def _registry() -> Mapping[str, type[DomainEvent]]:
    try:
        from contracts.registry import REGISTRY
    except ImportError:  # pragma: no cover - contracts without a registry
        return {}
    return REGISTRY


@dataclass
class _Item:
    record: Record
    event: DomainEvent
    meta: EventMeta
    cls: type[DomainEvent]


class _Abort(Exception):
    """Stop processing a chunk without committing the rest (shutdown)."""


class _TransientFailure(Exception):
    """A transient infrastructure failure stopped the chunk: retry it later, budget untouched."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.cause = cause


def _reason(exc: BaseException) -> str:
    cause = transient_cause(exc) or exc
    return f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:300]


class ConsumerRunner:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        service: str,
        transport: Transport,
        engine: AsyncEngine,
        inbox: Table,
        call_timeout: float = 15.0,
        revoke_timeout: float = 10.0,
    ) -> None:
        self.spec = spec
        self.service = service
        self.transport = transport
        self.inbox = inbox
        self.topics = spec.topic_names()
        self.call_timeout = call_timeout
        self.revoke_timeout = revoke_timeout
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._types = {cls.ce_type(): cls for cls in spec.handlers}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._wake = asyncio.Event()  # cuts a transient backoff short (stop)
        self._positions: dict[TP, int] = {}
        # records dead-lettered in a chunk that was then abandoned uncommitted: skipped when
        # fetched again, so a retried chunk does not dead-letter them twice
        self._settled: dict[TP, set[int]] = {}
        # observable state
        self.last_progress = time.time()
        self.last_error: str | None = None
        self.processed = 0
        self.dead_lettered = 0
        # transient outage: since when (wall clock), tries so far, partitions held back
        self.transient_since: float | None = None
        self.transient_retries = 0
        self.transient_error: str | None = None
        self._transient_tps: set[TP] = set()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        consumer = self.transport.consumer(
            self.spec.group_id,
            self.topics,
            self,
            max_poll_interval_ms=self.spec.max_poll_interval_ms,
        )
        await asyncio.wait_for(consumer.start(), self.call_timeout * 2)
        self._consumer = consumer
        self._stopping = False
        self._wake.clear()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.spec.group_id}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop fetching, let the in-flight chunk finish and commit, then leave the group."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
            self._task = None
        if self._consumer is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._consumer.stop(), self.call_timeout)
            self._consumer = None
        await self._close_producer()

    async def kill(self) -> None:
        """Abandon everything at once (tests: a crash without offset commit)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        if self._consumer is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._consumer.stop(), self.call_timeout)
            self._consumer = None
        await self._close_producer()

    # -- rebalance listener -----------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        try:  # let the in-flight chunk finish (it commits only still-assigned partitions)
            await asyncio.wait_for(self._lock.acquire(), self.revoke_timeout)
            self._lock.release()
        except TimeoutError:
            log.warning("rebalance: abandoning in-flight work", group=self.spec.group_id)
        for tp in revoked:
            self._positions.pop(tp, None)
            self._settled.pop(tp, None)
            self._transient_tps.discard(tp)

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        self.last_progress = time.time()

    # -- health -----------------------------------------------------------------------------
    def lag(self) -> dict[TP, int]:
        out: dict[TP, int] = {}
        if self._consumer is None:
            return out
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is not None and tp in self._positions:
                out[tp] = max(0, high - self._positions[tp])
        return out

    def health(self, group_lag: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``group_lag`` (``LagSnapshot.describe``): the whole group's lag read from the broker,
        every partition of the topics; ``lag`` is its total when known, else this member's.
        ``assigned_lag`` covers only this member's partitions (what ``stalled`` looks at)."""
        lag = sum(self.lag().values())
        idle = time.time() - self.last_progress
        stalled = self.running and lag > 0 and idle > self.spec.stall_after
        total = group_lag.get("total") if group_lag is not None else None
        return {
            "running": self.running,
            "topics": self.topics,
            "lag": total if total is not None else lag,
            "assigned_lag": lag,
            "assigned_partitions": len(self._consumer.assignment()) if self._consumer else 0,
            "group_lag": dict(group_lag) if group_lag is not None else None,
            "last_progress_age_s": round(idle, 3),
            "processed": self.processed,
            "dead_lettered": self.dead_lettered,
            "stalled": stalled,
            "healthy": self.running and not stalled,
            "last_error": self.last_error,
            # a database/broker outage: events wait in place (not dead-lettered) until it ends
            "retrying_transient": self.transient_since is not None,
            "transient_outage_s": (
                round(time.time() - self.transient_since, 3)
                if self.transient_since is not None
                else None
            ),
            "transient_retries": self.transient_retries,
            "transient_error": self.transient_error,
        }

    # -- loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        failures = 0
        while not self._stopping:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self.spec.max_batch)
                failures = 0
            except Exception as exc:
                failures += 1
                self.last_error = repr(exc)
                log.warning("fetch failed", group=self.spec.group_id, error=repr(exc))
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            if not batches:
                if not any(self.lag().values()):
                    self.last_progress = time.time()
                if self.transient_since is not None and not (
                    self._transient_tps & consumer.assignment()
                ):
                    self._transient_over()  # what was held back belongs to another member now
                continue
            transient: BaseException | None = None
            async with self._lock:
                assigned = consumer.assignment()
                # revoked meanwhile: the new owner reads those partitions again
                live = {tp: recs for tp, recs in batches.items() if tp in assigned}
                offsets: dict[TP, int] = {}
                try:
                    if live and await self._process_batch(live):
                        offsets = {tp: recs[-1].offset + 1 for tp, recs in live.items()}
                except _TransientFailure as exc:
                    transient = exc.cause
                    self._rewind(consumer, live)
                finally:
                    await self._commit(consumer, offsets)
            if transient is not None:
                await self._transient_backoff(transient, set(live))
                continue
            if self.transient_since is not None and live:
                self._transient_over()
            self._update_lag_metrics()

    def _rewind(self, consumer: Consumer, chunk: Mapping[TP, list[Record]]) -> None:
        """Put the chunk back: its partitions are read again from its first records."""
        assigned = consumer.assignment()
        for tp, recs in chunk.items():
            if tp in assigned:
                consumer.seek(tp, recs[0].offset)

    async def _transient_backoff(self, cause: BaseException, tps: set[TP]) -> None:
        self.transient_retries += 1
        self._transient_tps = tps
        reason = _reason(cause)
        self.last_error = self.transient_error = reason
        metrics.TRANSIENT_RETRIES.labels(self.service, self.spec.group_id).inc()
        if self.transient_since is None:
            self.transient_since = time.time()
            log.warning(
                "transient infrastructure failure: events wait in place and are retried "
                "until it passes (not dead-lettered)",
                group=self.spec.group_id,
                partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in tps),
                error=reason,
            )
        delay = min(
            self.spec.retry_backoff * 2 ** min(self.transient_retries - 1, 30),
            self.spec.transient_backoff_max,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _transient_over(self) -> None:
        since = self.transient_since or time.time()
        log.info(
            "transient failure over: processing again",
            group=self.spec.group_id,
            outage_s=round(time.time() - since, 3),
            retries=self.transient_retries,
            last_error=self.transient_error,
        )
        self.transient_since = None
        self.transient_retries = 0
        self.transient_error = None
        self._transient_tps = set()

    async def _commit(self, consumer: Consumer, offsets: dict[TP, int]) -> None:
        assigned = consumer.assignment()
        todo = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not todo:
            return
        try:
            await asyncio.wait_for(consumer.commit(todo), self.call_timeout)
        except Exception as exc:
            if not isinstance(exc, CommitFailed | TimeoutError) and not is_transient(exc):
                raise
            # The effects are committed with their inbox rows: redelivery is deduplicated.
            log.warning("offset commit failed", group=self.spec.group_id, error=repr(exc))
            return
        for tp, o in todo.items():
            self._positions[tp] = o
            if tp in self._settled:
                later = {offset for offset in self._settled.pop(tp) if offset >= o}
                if later:
                    self._settled[tp] = later
        self.last_progress = time.time()

    def _update_lag_metrics(self) -> None:
        per_topic: dict[str, int] = {}
        for tp, lag in self.lag().items():
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + lag
        for topic, lag in per_topic.items():
            metrics.CONSUMER_LAG.labels(self.service, topic, self.spec.group_id).set(lag)

    # -- processing -------------------------------------------------------------------------
    async def _process_batch(self, batches: dict[TP, list[Record]]) -> bool:
        """Process every record of one fetch; True when all are done (commit the offsets)."""
        started = time.perf_counter()
        items: list[_Item] = []
        poison: list[tuple[Record, str, str]] = []
        registry = _registry()
        types = self._types
        handlers = self.spec.handlers
        for tp, records in batches.items():
            settled = self._settled.get(tp)
            for rec in records:
                if settled is not None and rec.offset in settled:
                    continue
                fast = fast_decode(rec, types)
                if fast is not None:
                    items.append(_Item(rec, fast[1], fast[2], fast[0]))
                    continue
                try:
                    ce = decode(rec.key, rec.value, rec.headers)
                except DecodeError as exc:
                    poison.append((rec, "undecodable", str(exc)))
                    continue
                cls = self._types.get(ce.type) or registry.get(ce.type)
                if cls is None:
                    poison.append((rec, "unknown_type", f"unknown event type {ce.type!r}"))
                    continue
                try:
                    event = cls.model_validate(ce.data)
                except ValidationError as exc:
                    poison.append((rec, "schema_violation", str(exc)))
                    continue
                if cls not in handlers:
                    continue  # another group's event on a shared topic
                items.append(_Item(rec, event, event_meta(ce, rec), cls))
        try:
            await self._handle_items(items)
            for rec, reason, error in poison:
                await self._dead_letter(rec, reason, error)
        except _Abort:
            return False
        elapsed = time.perf_counter() - started
        for tp in batches:
            metrics.HANDLER_LATENCY.labels(self.service, tp.topic, self.spec.group_id).observe(
                elapsed
            )
        self.last_progress = time.time()
        return True

    async def _handle_items(self, items: list[_Item]) -> None:
        if not items:
            return
        if len(items) > 1:
            try:
                await self._transaction(items)
                return
            except Exception as exc:
                if is_transient(exc):
                    raise _TransientFailure(exc) from exc
                log.info(
                    "batch failed; processing one by one", group=self.spec.group_id, error=repr(exc)
                )
        for item in items:
            await self._handle_one(item)

    async def _handle_one(self, item: _Item) -> None:
        labels = (self.service, item.meta.topic, self.spec.group_id)
        last: Exception | None = None
        for attempt in range(1, self.spec.max_attempts + 1):
            try:
                await self._transaction([item])
                return
            except PermanentError as exc:
                metrics.HANDLER_FAILED.labels(*labels).inc()
                await self._before_dead_letter(item, exc)
                await self._dead_letter(
                    item.record, "permanent_error", f"{type(exc).__name__}: {exc}"
                )
                return
            except Exception as exc:
                if is_transient(exc):  # not the event's fault: no attempt used
                    raise _TransientFailure(exc) from exc
                last = exc
                metrics.HANDLER_FAILED.labels(*labels).inc()
                self.last_error = repr(exc)
                log.warning(
                    "handler failed; retrying",
                    group=self.spec.group_id,
                    event_id=item.meta.event_id,
                    correlation_id=item.meta.correlationid,
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt < self.spec.max_attempts:
                    await asyncio.sleep(
                        min(
                            self.spec.retry_backoff * 2 ** (attempt - 1),
                            self.spec.retry_backoff_max,
                        )
                    )
        if last is not None:
            await self._before_dead_letter(item, last)
        await self._dead_letter(
            item.record, "retries_exhausted", f"{type(last).__name__}: {last}"[:4000]
        )

    async def _before_dead_letter(self, item: _Item, exc: BaseException) -> None:
        """The spec's ``on_dead_letter`` hook, in its own transaction. A transient failure of
        the hook holds the chunk like any other (retried after the outage, nothing
        dead-lettered yet); any other failure is logged and the event is dead-lettered."""
        hook = self.spec.on_dead_letter
        if hook is None:
            return
        try:
            async with self._sessions() as session, session.begin():
                with _event_context(item.meta):
                    await hook(session, item.event, item.meta, exc)
        except Exception as hook_exc:
            if is_transient(hook_exc):
                raise _TransientFailure(hook_exc) from hook_exc
            log.error(
                "dead-letter hook failed",
                group=self.spec.group_id,
                event_id=item.meta.event_id,
                error=repr(hook_exc),
            )

    async def _transaction(self, items: list[_Item]) -> None:
        group = self.spec.group_id
        async with self._sessions() as session, session.begin():
            new_ids = await record_processed_many(
                session, self.inbox, group, [(i.meta.event_id, i.meta.type) for i in items]
            )
            fresh: list[_Item] = []
            for item in items:
                if item.meta.event_id in new_ids:
                    new_ids.discard(item.meta.event_id)  # a repeat inside the batch is a dup
                    fresh.append(item)
            if fresh and self.spec.batch_handler is not None:
                with _event_context(fresh[0].meta), self._span(fresh[0]):
                    await self.spec.batch_handler(session, [(i.event, i.meta) for i in fresh])
            else:
                for item in fresh:
                    with _event_context(item.meta), self._span(item):
                        await self.spec.handlers[item.cls](session, item.event, item.meta)
        self.processed += len(fresh)
        consumed = Counter(i.meta.topic for i in fresh)
        for topic, n in consumed.items():
            metrics.CONSUMED.labels(self.service, topic, group).inc(n)
        for topic, n in (Counter(i.meta.topic for i in items) - consumed).items():
            metrics.DUPLICATES.labels(self.service, topic, group).inc(n)

    def _span(self, item: _Item) -> contextlib.AbstractContextManager[None]:
        """The ``process`` span of `item` (a batch handler's span is its first event's)."""
        if not tracing.enabled:
            return contextlib.nullcontext()
        meta, rec = item.meta, item.record
        return tracing.process_span(
            self.service,
            topic=meta.topic,
            group=self.spec.group_id,
            event_id=meta.event_id,
            event_type=meta.type,
            traceparent=meta.traceparent,
            partition=rec.partition,
            offset=rec.offset,
        )

    # -- dead letters -----------------------------------------------------------------------
    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(producer.stop(), self.call_timeout)

    async def _dead_letter(self, rec: Record, reason: str, error: str) -> None:
        message = dead_letter_message(
            rec, reason=reason, error=error, consumer_group=self.spec.group_id
        )
        attempt = 0
        while True:  # never drop: retry until the DLQ took it (or abort on shutdown)
            attempt += 1
            try:
                if self._producer is None:
                    producer = self.transport.producer()
                    await asyncio.wait_for(producer.start(), self.call_timeout)
                    self._producer = producer
                results = await asyncio.wait_for(
                    self._producer.send_many([message]), self.call_timeout
                )
                if results[0] is None:
                    break
                raise results[0]
            except Exception as exc:
                await self._close_producer()
                log.warning("dead-letter publish failed", group=self.spec.group_id, error=repr(exc))
                if self._stopping and attempt >= 3:
                    raise _Abort from exc
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
        self.dead_lettered += 1
        self._settled.setdefault(TP(rec.topic, rec.partition), set()).add(rec.offset)
        metrics.DEAD_LETTERED.labels(self.service, rec.topic, self.spec.group_id, reason).inc()
        log.error(
            "event dead-lettered",
            group=self.spec.group_id,
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            reason=reason,
            error=error[:500],
        )


@contextlib.contextmanager
def _event_context(meta: EventMeta) -> Any:
    tokens = (
        context.correlation_id.set(meta.correlationid or meta.event_id),
        context.causation_id.set(meta.event_id),
        context.traceparent.set(meta.traceparent),
    )
    try:
        yield
    finally:
        context.traceparent.reset(tokens[2])
        context.causation_id.reset(tokens[1])
        context.correlation_id.reset(tokens[0])
