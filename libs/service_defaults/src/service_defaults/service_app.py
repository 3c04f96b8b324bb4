"""`create_domain_app`: the shared shape of the evidence, sales and orders apps.

Lifespan: engine (from :func:`service_defaults.app.build_service_app`), migrations (or
``create_all`` while a service has no revisions), the ``Idempotency-Key`` store
(``models.idempotency``), messaging runtime, dev demo seed.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData, Table

from nexo_messaging.memory import MemoryBroker
from service_defaults.app import build_service_app
from service_defaults.idempotency import idempotency_store
from service_defaults.logging import get_logger
from service_defaults.messaging import messaging_runtime
from service_defaults.migrations import prepare_schema, version_table_for
from service_defaults.settings import ServiceSettings

log = get_logger("service_defaults.service_app")


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def create_domain_app(
    settings: ServiceSettings,
    *,
    service: str,
    title: str,
    version: str = "0.1.0",
    description: str | None = None,
    router: APIRouter,
    models: ModuleType,
    consumers: Sequence[Any],
    migrations_dir: Path,
    memory_broker: MemoryBroker | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    metadata: MetaData = models.Base.metadata
    outbox: Table = models.outbox
    inbox: Table = models.inbox

    @asynccontextmanager
    async def schema(app: FastAPI) -> AsyncIterator[None]:
        how = await prepare_schema(
            app.state.engine,
            settings.database_url,
            migrations_dir,
            version_table_for(service),
            metadata,
        )
        log.info("schema ready", service=service, how=how)
        yield

    def idempotency_hook(app: FastAPI) -> Any:
        return idempotency_store(app, models.idempotency, settings.idempotency_ttl_seconds)

    def runtime_hook(app: FastAPI) -> Any:
        return messaging_runtime(
            app,
            settings,
            service=service,
            outbox=outbox,
            inbox=inbox,
            consumers=consumers,
            memory_broker=memory_broker,
        )

    async def seed_demo(app: FastAPI) -> None:
        if settings.env != "dev" or not _module_exists(f"{service}.demo"):
            return
        demo = importlib.import_module(f"{service}.demo")
        seed = getattr(demo, "seed", None)
        if seed is None:
            return
        await seed(app.state.sessionmaker)
        runtime = app.state.runtime
        if runtime is not None:
            runtime.wake_relay()
        log.info("demo data seeded", service=service)

    return build_service_app(
        settings,
        title=title,
        version=version,
        description=description,
        routers=[router],
        lifespan_hooks=[schema, idempotency_hook, runtime_hook],
        startup=[seed_demo],
        freeze_gc=freeze_gc,
    )
