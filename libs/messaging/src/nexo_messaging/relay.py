"""Outbox relay: publishes outbox rows to the broker, marks them only after the ack.

* claims rows in ``seq`` order with ``FOR UPDATE SKIP LOCKED`` and a lease token (PostgreSQL;
  on SQLite, one relay per database reads in order — same code, the lock clause is dropped);
  on PostgreSQL the active relay also holds an advisory lock so that at most one relay per
  service database publishes at a time (per-aggregate order across relay replicas);
* publishes in waves: wave *k* holds the *k*-th claimed row of each aggregate, so many rows go
  out per round trip while a failed row stops the later rows of its aggregate in that pass;
* every broker call is bounded (``asyncio.wait_for``); after any failed publish the producer is
  recreated (covers fatal states such as OutOfOrderSequenceNumber);
* a failed row keeps ``attempts``/``last_error`` and is retried forever with exponential backoff
  (``lease_until`` holds the next attempt time); later rows of its aggregate wait for it;
* wakes on ``wake()``, on PostgreSQL ``NOTIFY outbox_<service>``, or every ``poll_interval``;
* deletes published rows older than ``retention``.

Failover. Claims (``lease_token``/``lease_until``) are released when the relay stops, gracefully
or by cancellation. A relay that crashed cannot release them, so claims do not wait for their
``lease`` to run out: since only the holder of the advisory lock claims, a relay that *acquires*
the lock (a standby retries once per ``poll_interval``; PostgreSQL frees the lock as soon as the
crashed relay's connection closes) first releases every claim of the table, then claims as
usual. On SQLite (one relay per database file) the relay does the same on its first pass.
Trade-off: a relay that lost the lock while still publishing (its session ended, e.g. a network
partition, but the process lives) may publish its claimed rows while the new leader publishes
them too. That is at-least-once, which consumers absorb with the inbox; per-aggregate order is
kept because each relay sends a row only after the previous row of its aggregate was
acknowledged, so the *first* copy of every row still arrives in ``seq`` order. The lease
remains the bound where no lock exists (PostgreSQL with ``listen=False``). The lock connection
enables TCP keepalives (idle 5 s, 3 probes 1 s apart) so that PostgreSQL also frees the lock
of a relay whose host vanished within ~10 s instead of the kernel's two hours.

The statements are in :mod:`nexo_messaging.relay_store`, the row → record encoding in
:mod:`nexo_messaging.encoding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Table
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from nexo_messaging import metrics, tracing
from nexo_messaging.encoding import RowEncoder
from nexo_messaging.relay_store import PublishFailure, RelayStore, cleanup_published, outbox_stats
from nexo_messaging.transport import Producer, Transport

log = structlog.get_logger("nexo_messaging.relay")


# The lock connection's server side notices a vanished client within ~10 s (not 2 h).
_KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
}


def notify_channel(service: str) -> str:
    return f"outbox_{service}"


@dataclass
class RelaySettings:
    batch_size: int = 1000
    poll_interval: float = 1.0
    send_timeout: float = 15.0
    stop_timeout: float = 5.0
    lease: float = 60.0
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    retention: timedelta | None = timedelta(days=7)
    cleanup_interval: float = 60.0
    stats_interval: float = 2.0
    listen: bool = True


class OutboxRelay:
    def __init__(
        self,
        service: str,
        engine: AsyncEngine,
        outbox: Table,
        transport: Transport,
        settings: RelaySettings | None = None,
    ) -> None:
        self.service = service
        self.engine = engine
        self.outbox = outbox
        self.transport = transport
        self.settings = settings or RelaySettings()
        self._store = RelayStore(
            engine, outbox, batch_size=self.settings.batch_size, lease=self.settings.lease
        )
        self.is_postgres = self._store.is_postgres
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._producer: Producer | None = None
        self._listen_conn: Any = None
        self._leader = not self.is_postgres
        # without the PostgreSQL lock (SQLite, listen=False) this relay always publishes
        metrics.RELAY_LEADER.labels(service).set(
            0 if self.is_postgres and self.settings.listen else 1
        )
        # release every claim before the first claim as leader (see the module docstring)
        self._reclaim = not self.is_postgres
        self._held: set[str] = set()  # lease tokens of claims not settled yet
        self._pass_failed = False
        self._next_leader_try = 0.0
        self._next_cleanup = 0.0
        self._next_stats = 0.0
        self._next_retry: float | None = None
        self._check_blocked = True
        self._encoder = RowEncoder(f"/services/{service}")
        # observable state (health)
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.backlog: int | None = None
        self.oldest_age_s: float | None = None
        self.published_total = 0

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Last flush, then stop; bounded by ``grace_s``."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None:
            await asyncio.wait([task], timeout=grace_s)  # (also when it ended or was cancelled)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            elif not task.cancelled() and task.exception() is not None:
                log.warning("outbox relay task failed", error=repr(task.exception()))
            self._task = None
        await self._release_claims()
        await self._close_producer()
        await self._close_listener()

    # -- main loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._loop()
        finally:  # also on cancellation: claims not published go back to the table
            await self._release_claims()

    async def _loop(self) -> None:
        failures = 0
        while True:
            stopping = self._stopping
            try:
                published = await self.run_once()
                failures = 0
                if self._pass_failed:
                    self._pass_failed = False
                    self.last_error = None
                await self._housekeeping()
            except Exception as exc:  # DB or unexpected error: back off, never give up
                failures += 1
                self._pass_failed = True
                self.last_error = repr(exc)
                log.warning("outbox relay pass failed", service=self.service, error=repr(exc))
                await self._close_listener()
                published = 0
                if stopping:
                    return
                await self._sleep(
                    min(self.settings.backoff_base * 2**failures, self.settings.backoff_max)
                )
                continue
            if stopping:
                return
            if published >= self.settings.batch_size:
                continue
            timeout = self.settings.poll_interval
            if self._next_retry is not None:
                timeout = max(0.0, min(timeout, self._next_retry - time.monotonic()))
            await self._sleep(timeout)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # -- LISTEN/NOTIFY + leadership (PostgreSQL) ----------------------------------------------
    async def _ensure_listener(self) -> None:
        if not self.is_postgres or not self.settings.listen:
            self._leader = True
            return
        if self._listen_conn is not None and not self._listen_conn.is_closed():
            # A standby relay (another replica or uvicorn worker holds the lock) is woken by
            # every NOTIFY; it asks for the lock at most once per poll interval, not per wake.
            if not self._leader and time.monotonic() >= self._next_leader_try:
                self._next_leader_try = time.monotonic() + self.settings.poll_interval
                self._set_leader(
                    await self._listen_conn.fetchval(
                        "SELECT pg_try_advisory_lock($1)", self._lock_key()
                    )
                )
            return
        import asyncpg

        url = self.engine.url.set(drivername="postgresql")
        conn = await asyncio.wait_for(
            asyncpg.connect(url.render_as_string(hide_password=False), server_settings=_KEEPALIVES),
            10,
        )
        await conn.add_listener(notify_channel(self.service), self._on_notify)
        self._listen_conn = conn
        self._set_leader(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key()))
        self._next_leader_try = time.monotonic() + self.settings.poll_interval

    def _set_leader(self, leader: bool) -> None:
        if leader and not self._leader:
            self._reclaim = True
        self._leader = leader
        metrics.RELAY_LEADER.labels(self.service).set(1 if leader else 0)

    def _lock_key(self) -> int:
        return zlib.crc32(f"nexo-outbox-relay:{self.service}".encode()) - 2**31

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if self.is_postgres:
            self._leader = False
            metrics.RELAY_LEADER.labels(self.service).set(0)
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    # -- producer ---------------------------------------------------------------------------
    async def _get_producer(self) -> Producer:
        if self._producer is None:
            producer = self.transport.producer()
            try:
                await asyncio.wait_for(producer.start(), self.settings.send_timeout)
            except BaseException:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(producer.stop(), self.settings.stop_timeout)
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self, *, abort: bool = False) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    producer.abort() if abort else producer.stop(), self.settings.stop_timeout
                )

    # -- claims ------------------------------------------------------------------------------
    async def _release_claims(self) -> None:
        """Give back the rows this relay claimed but did not settle (shutdown, cancellation)."""
        tokens = list(self._held)
        if not tokens:
            return
        try:
            async with asyncio.timeout(self.settings.stop_timeout):
                rows = await self._store.release(tokens)
        except Exception as exc:  # the lease (or the next leader) frees them later
            log.warning("outbox relay could not release its claims", error=repr(exc))
            return
        self._held.difference_update(tokens)
        log.info("outbox relay released its claims", service=self.service, rows=rows)

    async def _reclaim_all(self) -> None:
        """New leader: release every claim (only the leader claims, so they are abandoned)."""
        rows = await self._store.release_all()
        self._reclaim = False
        self._held.clear()
        if rows:
            log.info("outbox relay took over abandoned claims", service=self.service, rows=rows)

    async def _claim(self, token: str) -> list[Row[Any]]:
        rows, self._check_blocked = await self._store.claim(
            token, check_blocked=self._check_blocked
        )
        return rows

    # -- one pass ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim, publish and mark one batch; return how many rows were published."""
        await self._ensure_listener()
        if not self._leader:
            return 0
        if self._reclaim:
            await self._reclaim_all()
        token = str(uuid.uuid4())
        self._held.add(token)
        rows = await self._claim(token)
        self._next_retry = None
        if not rows:
            self._held.discard(token)
            return 0
        waves: list[list[Row[Any]]] = []
        depth: dict[tuple[str, str], int] = {}
        for r in rows:
            agg = (r.aggregatetype, r.aggregateid)
            k = depth.get(agg, 0)
            depth[agg] = k + 1
            if k == len(waves):
                waves.append([])
            waves[k].append(r)

        encoder = self._encoder
        published: list[Row[Any]] = []
        failed: dict[int, tuple[Row[Any], BaseException]] = {}
        failed_aggs: set[tuple[str, str]] = set()
        held: list[int] = []
        for wave in waves:
            todo = [r for r in wave if (r.aggregatetype, r.aggregateid) not in failed_aggs]
            held.extend(r.seq for r in wave if (r.aggregatetype, r.aggregateid) in failed_aggs)
            if not todo:
                continue
            results: Sequence[BaseException | None]
            spans = None
            try:
                messages = [encoder.encode_claimed(r) for r in todo]
                if tracing.enabled:
                    spans = tracing.start_send_spans(self.service, messages)
                producer = await self._get_producer()
                results = await asyncio.wait_for(
                    producer.send_many(messages), self.settings.send_timeout
                )
            except Exception as exc:
                results = [exc] * len(todo)
            if spans is not None:
                tracing.end_send_spans(spans, results)
            for r, res in zip(todo, results, strict=True):
                if res is None:
                    published.append(r)
                else:
                    failed[r.seq] = (r, res)
                    failed_aggs.add((r.aggregatetype, r.aggregateid))
            if failed:
                # recreate after any failure (fatal states too); its unsent batches are resent
                await self._close_producer(abort=True)
        await self._settle(token, published, failed, held)
        self._held.discard(token)
        return len(published)

    async def _settle(
        self,
        token: str,
        published: list[Row[Any]],
        failed: dict[int, tuple[Row[Any], BaseException]],
        held: list[int],
    ) -> None:
        settings = self.settings
        failures = [
            PublishFailure(
                seq,
                f"{type(exc).__name__}: {exc}",
                min(settings.backoff_base * 2 ** int(row.attempts), settings.backoff_max),
            )
            for seq, (row, exc) in failed.items()
        ]
        await self._store.settle(token, [r.seq for r in published], failures, held)
        if failures:
            self._check_blocked = True
            retry_at = time.monotonic() + min(f.delay for f in failures)
            self._next_retry = (
                retry_at if self._next_retry is None else min(self._next_retry, retry_at)
            )
        for topic, n in Counter(r.topic for r in published).items():
            metrics.PUBLISHED.labels(self.service, topic).inc(n)
        for topic, n in Counter(row.topic for row, _exc in failed.values()).items():
            metrics.PUBLISH_FAILED.labels(self.service, topic).inc(n)
        if published:
            self.last_success = time.time()
            self.published_total += len(published)
        if failed:
            first = next(iter(failed.values()))
            self.last_error = f"{type(first[1]).__name__}: {first[1]}"
            log.warning(
                "outbox publish failed; will retry",
                service=self.service,
                failed=len(failed),
                held=len(held),
                error=self.last_error,
            )
        else:
            if published:
                self.last_error = None  # the broker takes rows again
            if published or self.last_success is None:
                self.last_success = time.time()

    # -- housekeeping -----------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self.settings.stats_interval
            stats = await outbox_stats(self.engine, self.outbox)
            self.backlog = stats["backlog"]
            self.oldest_age_s = stats["oldest_age_s"]
            metrics.OUTBOX_BACKLOG.labels(self.service).set(self.backlog or 0)
            metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(self.oldest_age_s or 0)
        if self.settings.retention is not None and now >= self._next_cleanup:
            self._next_cleanup = now + self.settings.cleanup_interval
            await cleanup_published(self.engine, self.outbox, self.settings.retention)
