"""Settings of the orders service (environment variables prefixed `ORDERS_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from service_defaults.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    service_name: str = "orders"
    database_url: str = "sqlite+aiosqlite:///./var/orders.db"
    host: str = "127.0.0.1"
    port: int = 8003
