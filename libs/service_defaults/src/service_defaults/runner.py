"""Running one app with uvicorn from a ``python -m <svc>`` entry point."""

from __future__ import annotations

import asyncio

import uvicorn

from service_defaults.app import configure_logging_for
from service_defaults.db import DatabaseUnreachable, create_engine, wait_for_database
from service_defaults.settings import CommonSettings, ServiceSettings


async def _preflight(settings: ServiceSettings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await wait_for_database(engine, env_var=settings.env_name("database_url"))
    finally:
        await engine.dispose()


def preflight_database(settings: ServiceSettings) -> None:
    """Exit with one clear line when the database is unreachable (before uvicorn starts)."""
    try:
        asyncio.run(_preflight(settings))
    except DatabaseUnreachable as exc:
        raise SystemExit(str(exc)) from None


def run_service(settings: CommonSettings, factory: str, *, host: str, port: int) -> None:
    """Configure logging, check the database, then serve ``factory`` (a zero-arg app factory
    given as ``"module:function"``) with uvicorn."""
    configure_logging_for(settings)
    if isinstance(settings, ServiceSettings):
        preflight_database(settings)
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
