"""The sales app: `create_app(settings)` factory and `app_from_env()` for uvicorn."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nexo_messaging.memory import MemoryBroker
from sales import api, consumers, models
from sales.adapters import sale_writer_for
from sales.settings import SalesSettings
from service_defaults.service_app import create_domain_app
from service_defaults.settings import load_settings

SERVICE = "sales"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    settings: SalesSettings | None = None,
    *,
    memory_broker: MemoryBroker | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the app (no I/O here). `memory_broker` lets the embedded gateway share one
    in-memory broker between services; `freeze_gc` (process entry points) freezes the objects
    of start-up out of the collector's reach (see `service_defaults.app.build_service_app`)."""
    settings = settings if settings is not None else load_settings(SalesSettings)
    app = create_domain_app(
        settings,
        service=SERVICE,
        title="Nexo sales",
        description="Acrylitec quotes, POS sales and material stock.",
        router=api.router,
        models=models,
        consumers=consumers.CONSUMERS,
        migrations_dir=MIGRATIONS_DIR,
        memory_broker=memory_broker,
        freeze_gc=freeze_gc,
    )
    # the database-specific sale writer, chosen once (routes pass it to the use cases)
    app.state.sale_writer = sale_writer_for(settings.database_url)
    app.state.write_lock = app.state.sale_writer.write_lock  # SQLite: writes take turns
    return app


def app_from_env() -> FastAPI:
    """Zero-argument factory: `uvicorn --factory sales.main:app_from_env` (one process per
    app, so the start-up objects are frozen out of the garbage collector's full passes)."""
    return create_app(load_settings(SalesSettings), freeze_gc=True)
