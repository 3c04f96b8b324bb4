"""Ops API (roles ``ops``/``admin``) and the ``/ops`` dashboard.

* health of every service and of the broker (Kafka or the memory broker) and the databases;
* per topic: partitions, end offsets and every consumer group's lag;
* per service: outbox backlog and the age of its oldest unpublished row;
* dead letters: list, replay, discard (audited: who, when, what);
* recent events: the gateway consumes every topic as group ``gateway.ops`` into a ring buffer,
  counts rates per event type and streams them as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.resources
import json
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from contracts.topics import OPS_GROUP, all_topics, consumer_groups
from nexo_messaging import dlq as dlq_ops
from nexo_messaging.errors import CommitFailed, MessagingError
from nexo_messaging.ops import GroupLagCache, outbox_stats
from nexo_messaging.transport import TP, Consumer, Record, TopicLike, TopicSpec, Transport
from service_defaults.auth import OPS_ROLE, CurrentUser, issue_token, require_roles
from service_defaults.errors import ProblemError
from service_defaults.health import readiness, run_check
from service_defaults.logging import get_logger

log = get_logger("gateway.ops")

RATE_WINDOW_S = 60.0
# Topic/lag figures come from the broker at most every LAG_CACHE_S; a request waits at most
# LAG_WAIT_S for fresh ones (else it gets the previous figures with their age).
LAG_CACHE_S = 3.0
LAG_WAIT_S = 2.5
SSE_MAX_LIFETIME_S = 25.0
DEV_ROLES = ("admin", "ops")
STATIC_FILES = {
    "ops.html": "text/html; charset=utf-8",
    "ops.css": "text/css; charset=utf-8",
    "ops.js": "text/javascript; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",  # uPlot 1.6.32 (MIT), from npm
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE.txt": "text/plain; charset=utf-8",
}

OpsUser = Depends(require_roles(OPS_ROLE))


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


def event_summary(record: Record, seq: int) -> dict[str, Any]:
    ce_type = _text(record, "ce_type")
    payload: Any = None
    if record.value is not None:
        try:
            payload = json.loads(record.value)
        except ValueError:
            payload = record.value[:200].decode("utf-8", "replace")
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
    }


class EventFeed:
    """Consumes every topic as ``gateway.ops``; keeps the last events, rates, SSE fan-out."""

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
                self._consumer = self.transport.consumer(OPS_GROUP, self.topics)
                await asyncio.wait_for(self._consumer.start(), 15)
                backoff = 0.5
                while self.running:
                    batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
                    self.last_poll = time.time()
                    offsets: dict[TP, int] = {}
                    for tp, records in batches.items():
                        for record in records:
                            self._add(record)
                        if records:
                            offsets[tp] = records[-1].offset + 1
                    if offsets:
                        with contextlib.suppress(CommitFailed):
                            await self._consumer.commit(offsets)
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
        now = time.monotonic()
        kind = event["type"]
        self.totals[kind] += 1
        self._recent.setdefault(kind, deque()).append(now)
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

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "buffered": len(self.events),
            "last_poll_age_s": round(time.time() - self.last_poll, 3) if self.last_poll else None,
            "last_error": self.last_error,
        }


class AuditLog:
    """Who did what to which dead letter, when: in memory, and appended to a JSON-lines file
    when ``GATEWAY_OPS_AUDIT_FILE`` is set."""

    def __init__(self, path: Path | None = None, size: int = 1000) -> None:
        self.path = path
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        if path is not None and path.exists():
            for line in path.read_text().splitlines()[-size:]:
                with contextlib.suppress(ValueError):
                    self.entries.append(json.loads(line))

    def record(self, user: CurrentUser, action: str, **what: Any) -> dict[str, Any]:
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "sub": user.sub,
            "name": user.name,
            "action": action,
            **what,
        }
        self.entries.append(entry)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps(entry, default=str) + "\n")
        log.info("ops audit", **entry)
        return entry


ServiceProbe = Callable[[], Awaitable[dict[str, Any]]]
OutboxProbe = Callable[[], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class OpsContext:
    """What the ops API needs, whichever the mode."""

    settings: Any
    transport: Transport
    feed: EventFeed
    audit: AuditLog
    service_probes: Mapping[str, ServiceProbe]
    outbox_probes: Mapping[str, OutboxProbe]
    database_kinds: Mapping[str, str]
    upstreams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    lag_cache: GroupLagCache | None = None

    def __post_init__(self) -> None:
        if self.lag_cache is None:
            self.lag_cache = GroupLagCache(self.transport, ttl=LAG_CACHE_S, wait=LAG_WAIT_S)

    async def close(self) -> None:
        if self.lag_cache is not None:
            await self.lag_cache.close()

    async def broker_health(self) -> dict[str, Any]:
        kind = self.transport.kind
        if kind == "memory":
            broker = getattr(self.transport, "broker", None)
            up = bool(getattr(broker, "available", True))
            return {"kind": "memory", "status": "ok" if up else "failing"}
        try:
            topics = await asyncio.wait_for(self.transport.list_topics(), 3.0)
            return {"kind": kind, "status": "ok", "topics": len(topics)}
        except Exception as exc:
            return {"kind": kind, "status": "failing", "error": f"{type(exc).__name__}: {exc}"}

    async def health(self) -> dict[str, Any]:
        names = list(self.service_probes)
        results = await asyncio.gather(*(run_check(self.service_probes[n]) for n in names))
        services: dict[str, Any] = {}
        databases: dict[str, Any] = {}
        for name, (ok, detail) in zip(names, results, strict=True):
            detail = detail if isinstance(detail, dict) else {"detail": detail}
            entry: dict[str, Any] = {"status": "up" if ok else "down", "detail": detail}
            if name in self.upstreams:
                entry["proxy"] = self.upstreams[name].snapshot()
            services[name] = entry
            checks = detail.get("checks") or (detail.get("upstream") or {}).get("checks") or {}
            db = checks.get("database")
            databases[name] = {
                "kind": self.database_kinds.get(name, "postgresql"),
                "status": "ok" if db == "ok" else ("unknown" if db is None else "failing"),
            }
        broker = await self.broker_health()
        pg = [d for d in databases.values() if d["kind"] == "postgresql"]
        postgresql = {
            "status": (
                "not used (embedded SQLite)"
                if not pg
                else "ok"
                if all(d["status"] == "ok" for d in pg)
                else "failing"
            ),
            "databases": databases,
        }
        all_up = all(s["status"] == "up" for s in services.values())
        return {
            "status": "ok" if all_up and broker["status"] == "ok" else "degraded",
            "services": services,
            "kafka": broker,
            "postgresql": postgresql,
            "ops_feed": self.feed.health(),
        }

    async def topics(self) -> dict[str, Any]:
        """Every partition of every topic with each group's lag, from the broker: the group's
        committed offsets vs the end offsets, whichever member (if any) owns the partition."""
        names = ops_topics()
        groups = {g: list(ts) for g, ts in consumer_groups().items()}
        groups[OPS_GROUP] = names
        assert self.lag_cache is not None
        snapshot = await self.lag_cache.get(groups)
        out: list[dict[str, Any]] = []
        for name in names:
            parts = sorted(
                (tp.partition, end) for tp, end in snapshot.ends.items() if tp.topic == name
            )
            entry: dict[str, Any] = {
                "topic": name,
                "partitions": [{"partition": p, "end_offset": e} for p, e in parts],
                "end_offset_total": sum(e for _, e in parts),
                "groups": {},
            }
            for group, topics in groups.items():
                if name not in topics:
                    continue
                lags = snapshot.lag(group, [name])
                if lags is None:
                    error = snapshot.errors.get(group) or snapshot.errors.get("*")
                    entry["groups"][group] = {"lag": None, "partitions": {}, "error": error}
                    continue
                per_partition = {tp.partition: n for tp, n in sorted(lags.items())}
                entry["groups"][group] = {
                    "lag": sum(per_partition.values()),
                    "partitions": per_partition,
                }
            out.append(entry)
        return {
            "topics": out,
            "lag_age_s": round(max(0.0, time.time() - snapshot.at), 3) if snapshot.at else None,
            "lag_error": snapshot.errors.get("*"),
        }

    async def outbox(self) -> dict[str, Any]:
        names = list(self.outbox_probes)
        results = await asyncio.gather(
            *(self.outbox_probes[n]() for n in names), return_exceptions=True
        )
        out: dict[str, Any] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                out[name] = {"status": "unknown", "error": f"{type(result).__name__}: {result}"}
            else:
                out[name] = {"status": "ok", **result}
        return {"services": out}

    async def dead_letters(self, topic: str | None, limit: int) -> dict[str, Any]:
        letters = await dlq_ops.list_dead_letters(self.transport, topic, limit)
        return {"dead_letters": [dataclasses.asdict(d) for d in letters]}


class DlqAction(BaseModel):
    dlq_topic: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._-]+\.dlq$")
    partition: int = Field(ge=0, le=2_147_483_647)  # Kafka partitions are int32
    offset: int = Field(ge=0, le=9_223_372_036_854_775_807)  # and offsets int64
    note: str | None = Field(default=None, max_length=500)


def ops_router(get_ctx: Callable[[Request], OpsContext]) -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["ops"])
    Ctx = Depends(get_ctx)

    @router.get("", include_in_schema=False)
    async def dashboard() -> Response:
        return _static("ops.html")

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return _static(name)

    @router.get("/dev-login", summary="Whether the development login is available")
    async def dev_login_available(request: Request) -> dict[str, bool]:
        return {"available": request.app.state.settings.dev_tokens_allowed()}

    @router.post("/dev-login", summary="Development only: a token with the ops and admin roles")
    async def dev_login(request: Request) -> dict[str, Any]:
        settings = request.app.state.settings
        if not settings.dev_tokens_allowed():
            raise ProblemError(
                404,
                "not-found",
                "Not Found",
                "dev login exists only in dev mode with the built-in development secret",
            )
        ttl = timedelta(hours=12)
        token = issue_token(settings, "dev-ops", DEV_ROLES, name="Ops developer", ttl=ttl)
        return {
            "access_token": token,
            "token_type": "bearer",
            "roles": list(DEV_ROLES),
            "expires_in": int(ttl.total_seconds()),
        }

    @router.get("/api/config", summary="Dashboard configuration (grid endpoint, services)")
    async def config(request: Request, user: CurrentUser = OpsUser) -> dict[str, Any]:
        settings = request.app.state.settings
        return {
            "mode": settings.mode,
            "env": settings.env,
            "services": list(get_ctx(request).service_probes),
            "grid_url": grid_url(request.app),
            "user": {"sub": user.sub, "name": user.name, "roles": sorted(user.roles)},
        }

    @router.get("/api/health", summary="Health of every service, the broker and the databases")
    async def health(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.health()

    @router.get("/api/topics", summary="Partitions, end offsets and consumer-group lag per topic")
    async def topics(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.topics()

    @router.get("/api/outbox", summary="Outbox backlog and oldest unpublished age per service")
    async def outbox(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.outbox()

    @router.get("/api/dlq", summary="Dead letters with their error and status")
    async def dead_letters(
        ctx: OpsContext = Ctx,
        user: CurrentUser = OpsUser,
        topic: str | None = Query(default=None, max_length=255),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return await ctx.dead_letters(topic, limit)

    async def act(ctx: OpsContext, user: CurrentUser, body: DlqAction, action: str) -> Any:
        letters = await dlq_ops.list_dead_letters(ctx.transport, body.dlq_topic, 100_000)
        current = next(
            (d for d in letters if d.partition == body.partition and d.offset == body.offset),
            None,
        )
        if current is None:
            raise ProblemError(
                404,
                "dead-letter-not-found",
                "Dead letter not found",
                f"no dead letter at {body.dlq_topic}[{body.partition}]@{body.offset}",
            )
        if current.status != "pending":
            raise ProblemError(
                409,
                "dead-letter-already-handled",
                "Dead letter already handled",
                f"this dead letter was already {current.status}",
                status_now=current.status,
            )
        fn = dlq_ops.replay if action == "replayed" else dlq_ops.discard
        try:
            letter = await fn(
                ctx.transport, body.dlq_topic, body.partition, body.offset, note=body.note
            )
        except MessagingError as exc:
            raise ProblemError(503, "broker-unavailable", "Broker unavailable", str(exc)) from exc
        entry = ctx.audit.record(
            user,
            action,
            dlq_topic=body.dlq_topic,
            partition=body.partition,
            offset=body.offset,
            event_id=letter.id,
            event_type=letter.type,
            original_topic=letter.original_topic,
            note=body.note,
        )
        return {"dead_letter": dataclasses.asdict(letter), "audit": entry}

    @router.post("/api/dlq/replay", summary="Re-publish a dead letter to its original topic")
    async def replay(
        body: DlqAction, ctx: OpsContext = Ctx, user: CurrentUser = OpsUser
    ) -> dict[str, Any]:
        result: dict[str, Any] = await act(ctx, user, body, "replayed")
        return result

    @router.post("/api/dlq/discard", summary="Mark a dead letter as deliberately not replayed")
    async def discard(
        body: DlqAction, ctx: OpsContext = Ctx, user: CurrentUser = OpsUser
    ) -> dict[str, Any]:
        result: dict[str, Any] = await act(ctx, user, body, "discarded")
        return result

    @router.get("/api/audit", summary="Audit log of DLQ replays and discards")
    async def audit(
        ctx: OpsContext = Ctx,
        user: CurrentUser = OpsUser,
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {"entries": list(ctx.audit.entries)[-limit:][::-1]}

    @router.get("/api/events", summary="Recent events (newest first) and rates per event type")
    async def events(
        ctx: OpsContext = Ctx,
        user: CurrentUser = OpsUser,
        limit: int = Query(default=50, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {"events": ctx.feed.recent(limit), "rates": ctx.feed.rates()}

    @router.get(
        "/api/events/stream",
        summary="Server-sent events: every new event (`event: nexo`)",
        response_class=StreamingResponse,
    )
    async def stream(
        request: Request, ctx: OpsContext = Ctx, user: CurrentUser = OpsUser
    ) -> StreamingResponse:
        queue = ctx.feed.subscribe()

        async def body() -> AsyncIterator[str]:
            started = time.monotonic()
            try:
                yield "retry: 1000\n: connected\n\n"
                while ctx.feed.running and time.monotonic() - started < SSE_MAX_LIFETIME_S:
                    try:
                        event = await asyncio.wait_for(queue.get(), 5.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            break
                        yield ": keep-alive\n\n"
                        continue
                    if event is None:
                        break
                    yield f"id: {event['seq']}\nevent: nexo\ndata: {json.dumps(event)}\n\n"
            finally:
                ctx.feed.unsubscribe(queue)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/api/summary", summary="Everything the dashboard shows, in one call")
    async def summary(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> JSONResponse:
        health, topics_, outbox_, dlq_ = await asyncio.gather(
            ctx.health(), ctx.topics(), ctx.outbox(), ctx.dead_letters(None, 200)
        )
        return JSONResponse(
            {
                "at": datetime.now(UTC).isoformat(),
                "health": health,
                **topics_,
                "outbox": outbox_["services"],
                **dlq_,
                "rates": ctx.feed.rates(),
                "audit": list(ctx.audit.entries)[-20:][::-1],
            }
        )

    return router


def _static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        raise ProblemError(404, "not-found", "Not Found", f"no static file {name!r}")
    data = importlib.resources.files("gateway").joinpath("static", name).read_bytes()
    return Response(data, media_type=media, headers={"Cache-Control": "no-cache"})


def grid_url(app: FastAPI) -> str | None:
    """``/api/evidence<grid path>``: the setting, else the evidence GET path with ``grid`` in it
    (from the merged OpenAPI document)."""
    settings = app.state.settings
    if settings.evidence_grid_path:
        return "/api/evidence" + "/" + settings.evidence_grid_path.lstrip("/")
    cached = getattr(app.state, "grid_url", None)
    if cached:
        return str(cached)
    paths = app.openapi().get("paths", {})
    candidates = [
        p
        for p, item in paths.items()
        if p.startswith("/api/evidence/") and "grid" in p.lower() and "{" not in p and "get" in item
    ]
    if not candidates:
        return None
    candidates.sort(key=lambda p: ("gpu" not in p.lower(), len(p)))
    app.state.grid_url = candidates[0]
    return candidates[0]


# ----------------------------------------------------------------------------- probes


def embedded_probes(
    apps: Mapping[str, FastAPI],
) -> tuple[dict[str, ServiceProbe], dict[str, OutboxProbe]]:
    service_probes: dict[str, ServiceProbe] = {}
    outbox_probes: dict[str, OutboxProbe] = {}
    for name, sub in apps.items():

        def make(sub: FastAPI = sub, name: str = name) -> tuple[ServiceProbe, OutboxProbe]:
            async def probe() -> dict[str, Any]:
                ok, checks = await readiness(sub)
                return {"status": "ok" if ok else "failing", "checks": checks}

            async def outbox() -> dict[str, Any]:
                engine = sub.state.engine
                if engine is None:
                    raise RuntimeError("service not started")
                table = importlib.import_module(f"{name}.models").outbox
                stats = await outbox_stats(engine, table)
                return {
                    "backlog": stats["backlog"],
                    "oldest_age_s": round(stats["oldest_age_s"], 3),
                }

            return probe, outbox

        service_probes[name], outbox_probes[name] = make()
    return service_probes, outbox_probes


def proxy_outbox_probe(probe: ServiceProbe) -> OutboxProbe:
    """In proxy mode the backlog comes from the service's readiness (messaging relay)."""

    async def outbox() -> dict[str, Any]:
        detail = await probe()
        relay = (((detail.get("upstream") or {}).get("checks") or {}).get("messaging") or {}).get(
            "relay"
        )
        if not isinstance(relay, dict):
            raise RuntimeError(detail.get("error") or "no relay figures in the readiness answer")
        return {"backlog": relay.get("backlog"), "oldest_age_s": relay.get("oldest_age_s")}

    return outbox
