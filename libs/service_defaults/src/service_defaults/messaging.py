"""Starting and stopping a service's `nexo_messaging` runtime inside its app lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Table

from nexo_messaging.memory import MemoryBroker
from nexo_messaging.runtime import ConsumerSpec, MessagingRuntime, build_transport
from service_defaults.health import add_ready_check
from service_defaults.logging import get_logger
from service_defaults.settings import ServiceSettings

log = get_logger("service_defaults.messaging")


def new_memory_broker() -> MemoryBroker:
    """One in-process broker; the embedded gateway shares it between the services."""
    return MemoryBroker()


@asynccontextmanager
async def messaging_runtime(
    app: FastAPI,
    settings: ServiceSettings,
    *,
    service: str,
    outbox: Table,
    inbox: Table,
    consumers: Sequence[ConsumerSpec],
    memory_broker: MemoryBroker | None = None,
) -> AsyncIterator[MessagingRuntime]:
    """Build the transport + ``MessagingRuntime``, start it, expose it as ``app.state.runtime``
    with a ``messaging`` readiness check, and stop it (time-bounded) on exit."""
    transport = build_transport(
        settings.transport,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        memory_broker=memory_broker,
        local_path=settings.local_log_path,
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
    log.info("messaging started", service=service, transport=settings.transport)
    app.state.runtime = runtime
    add_ready_check(app, "messaging", runtime.readiness)
    try:
        yield runtime
    finally:
        app.state.runtime = None
        await runtime.stop()
