"""Gateway settings (environment variables prefixed `GATEWAY_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import SettingsConfigDict

from service_defaults.settings import CommonSettings

SERVICES: tuple[str, ...] = ("evidence", "sales", "orders")


class GatewaySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    mode: Literal["embedded", "proxy"] = "embedded"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")

    # proxy mode: where each service listens
    evidence_url: str = "http://127.0.0.1:8001"
    sales_url: str = "http://127.0.0.1:8002"
    orders_url: str = "http://127.0.0.1:8003"
    proxy_timeout: float = 30.0
    proxy_connect_timeout: float = 3.0
    proxy_max_connections: int = 100

    def service_url(self, service: str) -> str:
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")

    def database_url(self, service: str) -> str:
        """SQLite file of `service` in embedded mode."""
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"
