"""Settings of the sales service (environment variables prefixed `SALES_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from service_defaults.settings import ServiceSettings


class SalesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SALES_", extra="ignore", frozen=True)

    service_name: str = "sales"
    database_url: str = "sqlite+aiosqlite:///./var/sales.db"
    host: str = "127.0.0.1"
    port: int = 8002
