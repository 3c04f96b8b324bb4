"""Starting and stopping a service's `nexo_messaging` runtime inside its app lifespan."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Table

from service_defaults.health import add_ready_check
from service_defaults.logging import get_logger
from service_defaults.settings import ServiceSettings

log = get_logger("service_defaults.messaging")


def runtime_available() -> bool:
    """True when ``nexo_messaging.runtime`` can be imported."""
    try:
        return importlib.util.find_spec("nexo_messaging.runtime") is not None
    except ModuleNotFoundError:  # pragma: no cover
        return False


def new_memory_broker() -> Any:
    from nexo_messaging.memory import MemoryBroker

    return MemoryBroker()


@asynccontextmanager
async def messaging_runtime(
    app: FastAPI,
    settings: ServiceSettings,
    *,
    service: str,
    outbox: Table,
    inbox: Table,
    consumers: Sequence[Any],
    memory_broker: Any = None,
) -> AsyncIterator[Any]:
    """Build the transport + ``MessagingRuntime``, start it, expose it as ``app.state.runtime``
    with a ``messaging`` readiness check, and stop it (time-bounded) on exit."""
    if not runtime_available():
        log.warning("nexo_messaging.runtime not available; messaging disabled", service=service)
        app.state.runtime = None
        yield None
        return

    from nexo_messaging.runtime import MessagingRuntime, build_transport

    transport = build_transport(
        settings.transport,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        memory_broker=memory_broker,
    )
    runtime = MessagingRuntime(
        service=service,
        transport=transport,
        engine=app.state.engine,
        outbox=outbox,
        inbox=inbox,
        consumers=list(consumers),
    )
    await runtime.start()
    app.state.runtime = runtime
    add_ready_check(app, "messaging", runtime.health)
    try:
        yield runtime
    finally:
        app.state.runtime = None
        await runtime.stop()
