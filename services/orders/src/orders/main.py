"""The orders app: `create_app(settings)` factory and `app_from_env()` for uvicorn."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nexo_messaging.memory import MemoryBroker
from orders import api, consumers, models, service
from orders.settings import OrdersSettings
from service_defaults.service_app import create_domain_app
from service_defaults.settings import load_settings

SERVICE = "orders"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    settings: OrdersSettings | None = None, *, memory_broker: MemoryBroker | None = None
) -> FastAPI:
    """Build the app (no I/O here). `memory_broker` lets the embedded gateway share one
    in-memory broker between services."""
    settings = settings if settings is not None else load_settings(OrdersSettings)
    return create_domain_app(
        settings,
        service=SERVICE,
        title="Nexo orders",
        description="Hospital supply requests and FEFO proposals.",
        router=api.router,
        models=models,
        consumers=consumers.build_consumers(service.config_from_settings(settings)),
        migrations_dir=MIGRATIONS_DIR,
        memory_broker=memory_broker,
    )


def app_from_env() -> FastAPI:
    """Zero-argument factory: `uvicorn --factory orders.main:app_from_env`."""
    return create_app(load_settings(OrdersSettings))
