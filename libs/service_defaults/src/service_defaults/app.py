"""`build_service_app`: a FastAPI app with Nexo's middleware, problem+json errors, health,
metrics and bearer-auth OpenAPI. Cheap to call: all I/O happens in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from service_defaults.auth import BEARER_SCHEME_NAME
from service_defaults.db import create_engine, session_factory, wait_for_database
from service_defaults.errors import install_error_handlers
from service_defaults.health import ReadyCheck, health_router
from service_defaults.logging import configure_logging, get_logger
from service_defaults.middleware import RequestContextMiddleware
from service_defaults.openapi import document_problems
from service_defaults.settings import CommonSettings, ServiceSettings
from service_defaults.tracing import instrument_app, instrument_engine

LifespanHook = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
AppCallback = Callable[[FastAPI], Awaitable[None]]

log = get_logger("service_defaults.app")


def configure_logging_for(settings: CommonSettings) -> None:
    configure_logging(settings.log_level, json=settings.log_json or settings.env == "prod")


def build_service_app(
    settings: CommonSettings,
    *,
    title: str,
    version: str = "0.1.0",
    description: str | None = None,
    routers: Sequence[APIRouter] = (),
    prefix: str = "",
    lifespan_hooks: Sequence[LifespanHook] = (),
    startup: Sequence[AppCallback] = (),
    shutdown: Sequence[AppCallback] = (),
    ready_checks: Mapping[str, ReadyCheck] | None = None,
    database: bool = True,
    database_wait: float = 10.0,
    freeze_gc: bool = False,
) -> FastAPI:
    """Create the app. Lifespan order: logging, engine + sessionmaker (for a
    :class:`ServiceSettings` with ``database=True``; waits for the DB), each lifespan hook
    (entered in order, exited in reverse), each startup callable; on shutdown the shutdown
    callables, the hooks, then the engine is disposed.

    ``app.state`` holds ``settings``, ``engine``, ``sessionmaker``, ``ready_checks``,
    ``started``; hooks add more (e.g. ``runtime``).

    ``freeze_gc`` (for the process entry point, not for tests that build many apps): after
    start-up, collect once and move every surviving object (modules, models, schemas, caches)
    to the permanent generation, so that full collections under load scan only what requests
    left behind instead of pausing the loop for tens of milliseconds.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging_for(settings)
        async with AsyncExitStack() as stack:
            if database and isinstance(settings, ServiceSettings):
                engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
                instrument_engine(engine, settings.service_name)
                stack.push_async_callback(engine.dispose)
                app.state.engine = engine
                app.state.sessionmaker = session_factory(engine)
                try:
                    await wait_for_database(
                        engine,
                        env_var=settings.env_name("database_url"),
                        deadline=database_wait,
                    )
                except Exception as exc:
                    log.error(str(exc), service=settings.service_name)
                    raise
            for hook in lifespan_hooks:
                await stack.enter_async_context(hook(app))
            for fn in startup:
                await fn(app)
            if freeze_gc:
                gc.collect()
                gc.freeze()
            app.state.started = True
            log.info("started", service=settings.service_name, env=settings.env)
            try:
                yield
            finally:
                app.state.started = False
                if freeze_gc:  # a stopped app's objects (tests, benches) become collectable
                    gc.unfreeze()
                for fn in reversed(shutdown):
                    try:
                        await fn(app)
                    except Exception:
                        log.exception("shutdown callback failed")
                log.info("stopping", service=settings.service_name)

    app = FastAPI(title=title, version=version, description=description or "", lifespan=lifespan)
    app.state.settings = settings
    app.state.started = False
    app.state.engine = None
    app.state.sessionmaker = None
    app.state.runtime = None
    app.state.write_lock = None  # service_defaults.routing.write_lock; SQLite apps set one
    app.state.ready_checks = dict(ready_checks or {})
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router, prefix=prefix)
    install_openapi(app)
    instrument_app(app, settings.service_name)
    return app


def install_openapi(app: FastAPI) -> None:
    """Generate the schema once, with a ``bearerAuth`` (JWT) security scheme declared and each
    operation's problem+json answers (:func:`service_defaults.openapi.document_problems`)."""

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER_SCHEME_NAME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        app.openapi_schema = document_problems(schema)
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
