"""Ops API (roles ``ops``/``admin``) and the ``/ops`` dashboard.

* health of every service and of the broker (Kafka or the memory broker) and the databases;
* per topic: partitions, end offsets and every consumer group's lag;
* per service: outbox backlog and the age of its oldest unpublished row;
* dead letters: list, replay, discard (audited: who, when, what);
* recent events: the gateway consumes every topic as group ``gateway.ops`` into a ring buffer,
  counts rates per event type and streams them as server-sent events.

What the routes read is :class:`gateway.ops_context.OpsContext` (the feed:
:mod:`gateway.ops_feed`); their answers' models are in :mod:`gateway.ops_schemas`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.resources
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from gateway.ops_context import OpsContext
from gateway.ops_schemas import (
    SSE_RESPONSE,
    AuditEntries,
    DashboardConfig,
    DeadLetters,
    DevLoginAvailability,
    DevToken,
    DlqActionResult,
    OpsHealth,
    OpsSummary,
    OutboxReport,
    RecentEvents,
    TopicsReport,
)
from nexo_messaging import dlq as dlq_ops
from nexo_messaging.errors import MessagingError
from service_defaults.auth import OPS_ROLE, CurrentUser, issue_token, require_roles
from service_defaults.errors import ProblemError

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

    @router.get(
        "/dev-login",
        summary="Whether the development login is available",
        response_model=DevLoginAvailability,
    )
    async def dev_login_available(request: Request) -> dict[str, bool]:
        return {"available": request.app.state.settings.dev_tokens_allowed()}

    @router.post(
        "/dev-login",
        summary="Development only: a token with the ops and admin roles",
        response_model=DevToken,
    )
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

    @router.get(
        "/api/config",
        summary="Dashboard configuration (grid endpoint, services)",
        response_model=DashboardConfig,
    )
    async def config(request: Request, user: CurrentUser = OpsUser) -> dict[str, Any]:
        settings = request.app.state.settings
        return {
            "mode": settings.mode,
            "env": settings.env,
            "services": list(get_ctx(request).service_probes),
            "grid_url": grid_url(request.app),
            "user": {"sub": user.sub, "name": user.name, "roles": sorted(user.roles)},
        }

    @router.get(
        "/api/health",
        summary="Health of every service, the broker and the databases",
        response_model=OpsHealth,
        response_model_exclude_unset=True,
    )
    async def health(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.health()

    @router.get(
        "/api/topics",
        summary="Partitions, end offsets and consumer-group lag per topic",
        response_model=TopicsReport,
        response_model_exclude_unset=True,
    )
    async def topics(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.topics()

    @router.get(
        "/api/outbox",
        summary="Outbox backlog and oldest unpublished age per service",
        response_model=OutboxReport,
        response_model_exclude_unset=True,
    )
    async def outbox(ctx: OpsContext = Ctx, user: CurrentUser = OpsUser) -> dict[str, Any]:
        return await ctx.outbox()

    @router.get(
        "/api/dlq", summary="Dead letters with their error and status", response_model=DeadLetters
    )
    async def dead_letters(
        ctx: OpsContext = Ctx,
        user: CurrentUser = OpsUser,
        topic: str | None = Query(default=None, max_length=255),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return await ctx.dead_letters(topic, limit)

    async def act(
        ctx: OpsContext, user: CurrentUser, body: DlqAction, action: str
    ) -> dict[str, Any]:
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

    @router.post(
        "/api/dlq/replay",
        summary="Re-publish a dead letter to its original topic",
        response_model=DlqActionResult,
        response_model_exclude_unset=True,
    )
    async def replay(
        body: DlqAction, ctx: OpsContext = Ctx, user: CurrentUser = OpsUser
    ) -> dict[str, Any]:
        return await act(ctx, user, body, "replayed")

    @router.post(
        "/api/dlq/discard",
        summary="Mark a dead letter as deliberately not replayed",
        response_model=DlqActionResult,
        response_model_exclude_unset=True,
    )
    async def discard(
        body: DlqAction, ctx: OpsContext = Ctx, user: CurrentUser = OpsUser
    ) -> dict[str, Any]:
        return await act(ctx, user, body, "discarded")

    @router.get(
        "/api/audit",
        summary="Audit log of DLQ replays and discards",
        response_model=AuditEntries,
        response_model_exclude_unset=True,
    )
    async def audit(
        ctx: OpsContext = Ctx,
        user: CurrentUser = OpsUser,
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {"entries": list(ctx.audit.entries)[-limit:][::-1]}

    @router.get(
        "/api/events",
        summary="Recent events (newest first) and rates per event type",
        response_model=RecentEvents,
    )
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
        responses=SSE_RESPONSE,
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

    @router.get(
        "/api/summary",
        summary="Everything the dashboard shows, in one call",
        response_model=OpsSummary,
    )
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
