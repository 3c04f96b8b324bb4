"""The gateway app: one front door for evidence, sales and orders.

- ``embedded`` (default): the three service apps run in this process, mounted at
  ``/api/<svc>``, sharing one in-memory broker, SQLite files under ``data_dir``.
- ``proxy``: requests under ``/api/<svc>`` are forwarded to the service URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from gateway import routing
from gateway.openapi import merge_openapi
from gateway.settings import SERVICES, GatewaySettings
from nexo_messaging.memory import MemoryBroker
from service_defaults.app import build_service_app
from service_defaults.messaging import new_memory_broker
from service_defaults.settings import load_settings

VERSION = "0.1.0"


def _index_router() -> APIRouter:
    router = APIRouter(tags=["gateway"])

    @router.get("/", summary="Links to the docs, health and each service")
    async def index(request: Request) -> dict[str, Any]:
        settings: GatewaySettings = request.app.state.settings
        return {
            "name": "Nexo gateway",
            "mode": settings.mode,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": {"live": "/health/live", "ready": "/health/ready"},
            "services": {svc: routing.service_prefix(svc) for svc in SERVICES},
        }

    return router


def create_app(
    settings: GatewaySettings | None = None, *, memory_broker: MemoryBroker | None = None
) -> FastAPI:
    """Build the gateway (no I/O here; services start in the lifespan)."""
    settings = settings if settings is not None else load_settings(GatewaySettings)
    ready_checks: dict[str, Any] = {}
    hooks: list[Any] = []
    service_specs: dict[str, dict[str, Any]] = {}
    apps: dict[str, FastAPI] = {}
    holder: routing.ClientHolder | None = None

    if settings.mode == "embedded":
        broker = memory_broker if memory_broker is not None else new_memory_broker()
        apps = routing.build_embedded_apps(settings, broker)
        hooks.append(routing.embedded_lifespan(apps))
        for service, sub in apps.items():
            ready_checks[service] = routing.embedded_ready_check(sub)
    else:
        holder = routing.ClientHolder(settings)
        hooks.append(holder.lifespan())
        for service in SERVICES:
            ready_checks[service] = routing.proxy_ready_check(
                service, settings.service_url(service), holder
            )

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

    app = build_service_app(
        settings,
        title="Nexo",
        version=VERSION,
        description=(
            "Nexo gateway: evidence, sales and orders services under `/api/<service>`. "
            "Authenticate with a bearer JWT (`python -m gateway` prints a development token)."
        ),
        routers=[_index_router()],
        lifespan_hooks=hooks,
        ready_checks=ready_checks,
        database=False,
    )
    app.state.services = apps
    app.state.proxy = holder

    if settings.mode == "embedded":
        routing.mount_apps(app, apps)
    else:
        assert holder is not None
        routing.mount_proxies(app, settings, holder)

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


def app_from_env() -> FastAPI:
    """Zero-argument factory: ``uvicorn --factory gateway.main:app_from_env``."""
    return create_app(load_settings(GatewaySettings))
