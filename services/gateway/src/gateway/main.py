"""The gateway app: one front door for evidence, sales and orders.

- ``embedded`` (default): the three service apps run in this process, mounted at
  ``/api/<svc>``, sharing one durable event log (``<data_dir>/events.db``; or an in-memory
  broker with ``GATEWAY_TRANSPORT=memory``), SQLite files under ``data_dir``.
- ``proxy``: requests under ``/api/<svc>`` are forwarded to the service URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from gateway import ops, ops_history, routing
from gateway.edge import EdgeGuard
from gateway.gate import ServiceGate
from gateway.idempotency import MemoryIdempotencyStore
from gateway.openapi import merge_openapi
from gateway.ops_context import AuditLog, OpsContext, embedded_probes, proxy_outbox_probe
from gateway.ops_feed import EventFeed, ops_topics
from gateway.ops_schemas import GatewayIndex
from gateway.policy import ServicePolicy
from gateway.ratelimit import EdgeLimits, RateLimiter
from gateway.settings import SERVICES, GatewaySettings
from nexo_messaging.memory import MemoryBroker, MemoryTransport
from nexo_messaging.runtime import build_transport
from nexo_messaging.transport import Transport
from service_defaults.app import build_service_app
from service_defaults.messaging import new_memory_broker
from service_defaults.settings import load_settings

VERSION = "0.1.0"


def _index_router() -> APIRouter:
    router = APIRouter(tags=["gateway"])

    @router.get(
        "/", summary="Links to the docs, health and each service", response_model=GatewayIndex
    )
    async def index(request: Request) -> dict[str, Any]:
        settings: GatewaySettings = request.app.state.settings
        return {
            "name": "Nexo gateway",
            "mode": settings.mode,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": {"live": "/health/live", "ready": "/health/ready"},
            "services": {svc: routing.service_prefix(svc) for svc in SERVICES},
            "ops": {"dashboard": "/ops", "api": "/ops/api/summary"},
        }

    return router


def create_app(
    settings: GatewaySettings | None = None,
    *,
    memory_broker: MemoryBroker | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the gateway (no I/O here; services, proxy client and ops feed start in the
    lifespan). `freeze_gc` (the process entry point): once everything, the embedded services
    included, has started, its objects are frozen out of the garbage collector's full passes
    (see `service_defaults.app.build_service_app`)."""
    settings = settings if settings is not None else load_settings(GatewaySettings)
    ready_checks: dict[str, Any] = {}
    hooks: list[Any] = []
    service_specs: dict[str, dict[str, Any]] = {}
    apps: dict[str, FastAPI] = {}
    holder: routing.ClientHolder | None = None
    targets: dict[str, Any] = {}
    policies: dict[str, ServicePolicy] = {}
    upstreams: dict[str, routing.UpstreamState] = {}
    ops_transport: Transport

    if settings.mode == "embedded":
        if routing.embedded_transport(settings, memory_broker) == "local":
            apps = routing.build_embedded_apps(settings, None)
            ops_transport = build_transport("local", local_path=settings.event_log_path())
        else:
            broker = memory_broker if memory_broker is not None else new_memory_broker()
            apps = routing.build_embedded_apps(settings, broker)
            ops_transport = MemoryTransport(broker)
        hooks.append(routing.embedded_lifespan(apps))
        for service, sub in apps.items():
            ready_checks[service] = routing.embedded_ready_check(sub)
            policies[service] = ServicePolicy.load(service, sub.routes)
        targets = dict(apps)
        service_probes, outbox_probes = embedded_probes(apps)
        database_kinds = dict.fromkeys(apps, "sqlite")
    else:
        holder = routing.ClientHolder(settings)
        hooks.append(holder.lifespan())
        proxies = routing.build_proxies(settings, holder)
        for service in SERVICES:
            upstreams[service] = proxies[service].state
            ready_checks[service] = routing.proxy_ready_check(
                service, settings.service_url(service), holder, upstreams[service]
            )
            policies[service] = ServicePolicy.load(service)
        targets = dict(proxies)
        ops_transport = build_transport(
            "kafka" if settings.transport == "kafka" else "memory",
            bootstrap_servers=settings.kafka_bootstrap_servers,
        )
        service_probes = dict(ready_checks)
        outbox_probes = {s: proxy_outbox_probe(p) for s, p in service_probes.items()}
        database_kinds = dict.fromkeys(SERVICES, "postgresql")

        @asynccontextmanager
        async def load_specs(app: FastAPI) -> AsyncIterator[None]:
            assert holder is not None
            for service in SERVICES:
                spec = await routing.fetch_openapi(holder, settings.service_url(service))
                if spec is not None:
                    service_specs[service] = spec
            app.openapi_schema = None
            yield

        hooks.append(load_specs)

    feed = EventFeed(ops_transport, ops_topics(), settings.ops_buffer_size)
    ops_ctx = OpsContext(
        settings=settings,
        transport=ops_transport,
        feed=feed,
        audit=AuditLog(settings.ops_audit_file),
        service_probes=service_probes,
        outbox_probes=outbox_probes,
        database_kinds=database_kinds,
        upstreams=upstreams,
    )

    history = ops_history.History(ops_ctx, settings.ops_history_interval)

    @asynccontextmanager
    async def ops_feed(_app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        await history.start()
        try:
            yield
        finally:
            await history.stop()
            await feed.stop()
            await ops_ctx.close()
            if settings.mode != "embedded":
                await ops_transport.close()

    hooks.append(ops_feed)

    app = build_service_app(
        settings,
        title="Nexo",
        version=VERSION,
        description=(
            "Nexo gateway: evidence, sales and orders services under `/api/<service>`. "
            "Authenticate with a bearer JWT (in dev mode with the built-in development secret "
            "`python -m gateway` prints a development token). "
            "POSTs accept an `Idempotency-Key` header. Ops API and dashboard under `/ops`."
        ),
        routers=[
            _index_router(),
            ops.ops_router(_ops_context),
            ops_history.history_router(_ops_context),
        ],
        lifespan_hooks=hooks,
        ready_checks=ready_checks,
        database=False,
        freeze_gc=freeze_gc,
    )
    app.state.services = apps
    app.state.proxy = holder
    app.state.ops = ops_ctx
    app.state.ops_history = history
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    limits = EdgeLimits.from_settings(settings, principal=limiter)
    store = MemoryIdempotencyStore(settings.idempotency_ttl_seconds, settings.idempotency_max_keys)
    app.state.idempotency = store
    app.state.rate_limiter = limiter
    app.state.rate_limits = limits
    gates = {
        service: ServiceGate(service, target, settings, policies[service], limiter, store, limits)
        for service, target in targets.items()
    }
    routing.mount_apps(app, gates)
    # innermost of the user middleware: its 401/413/429 answers get request ids, logs, metrics
    app.user_middleware.append(
        Middleware(
            EdgeGuard,
            settings=settings,
            limits=limits,
            service_prefixes=[routing.service_prefix(s) for s in targets],
        )
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Correlation-ID",
                "traceparent",
            ],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "Idempotent-Replayed",
                "traceparent",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        app.openapi_schema = None
        gateway_spec = base_openapi()
        specs = {svc: sub.openapi() for svc, sub in apps.items()} or dict(service_specs)
        app.openapi_schema = merge_openapi(gateway_spec, specs)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _ops_context(request: Request) -> OpsContext:
    ctx: OpsContext = request.app.state.ops
    return ctx


def app_from_env() -> FastAPI:
    """Zero-argument factory: ``uvicorn --factory gateway.main:app_from_env`` (one process per
    app, so the start-up objects are frozen out of the garbage collector's full passes)."""
    return create_app(load_settings(GatewaySettings), freeze_gc=True)
