"""Gateway settings (environment variables prefixed `GATEWAY_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

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
    traces_query_url: str | None = None
    """Jaeger query API (e.g. ``http://127.0.0.1:16686``) for the /ops trace view; without it
    the view shows the events the board kept."""
    ops_history_interval: float = 5.0
    """Seconds between the /ops chart samples (15 minutes are kept)."""
    proxy_connect_timeout: float = 1.0
    proxy_max_connections: int = 100
    """Keep-alive connections per service; a request beyond waits (up to ``proxy_timeout``)."""
    proxy_retries: int = 2
    """Extra attempts for idempotent requests (GET/HEAD/OPTIONS/PUT/DELETE) on connect errors."""
    circuit_open_seconds: float = 3.0
    """After a connect failure a service is answered 503 at once for this long."""

    # edge policies
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body on any route (413 above it)."""
    rate_limit_per_second: float = 50.0
    """Token bucket refill per client (token ``sub``, else client address); 0 disables."""
    rate_limit_burst: int = 100
    anonymous_rate_limit_per_second: float = 5.0
    """Per client address, for requests without a valid token (401s included); 0 disables."""
    anonymous_rate_limit_burst: int = 30
    public_rate_limit_per_second: float = 200.0
    """Per client address, for ``/health/*`` and ``/metrics``; 0 disables."""
    public_rate_limit_burst: int = 400
    dev_login_rate_limit_per_minute: float = 10.0
    """Per client address, for ``POST /ops/dev-login`` (dev mode only); 0 disables."""
    dev_login_rate_limit_burst: int = 5
    idempotency_ttl_seconds: float = 24 * 3600
    idempotency_wait_seconds: float = 30.0
    idempotency_max_keys: int = 10_000
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated origins allowed by CORS (``*`` for any); empty = CORS off."""

    # embedded mode: the services' transport (``local``: the durable event log file shared by
    # the three services, ``memory``: lost on exit); proxy mode: the broker the ops views read
    # (``kafka``; anything else leaves them on an empty in-memory broker)
    transport: Literal["local", "memory", "kafka"] = "local"
    kafka_bootstrap_servers: str | None = None
    local_log_path: Path | None = None
    """The event log file of the embedded mode (default ``<data_dir>/events.db``)."""
    ops_buffer_size: int = 500
    ops_audit_file: Path | None = None
    evidence_grid_path: str | None = None
    """Path of the evidence GPU grid (``GET ...?id_ot=&mes=&anio=``) below ``/api/evidence``;
    discovered from the evidence OpenAPI when unset."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _check_kafka(self) -> GatewaySettings:
        if self.transport == "kafka" and not self.kafka_bootstrap_servers:
            raise ValueError(
                f"{self.env_name('kafka_bootstrap_servers')} is required when "
                f"{self.env_name('transport')}=kafka"
            )
        return self

    def service_url(self, service: str) -> str:
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")

    def event_log_path(self) -> Path:
        """The embedded mode's event log file (``transport=local``)."""
        return (self.local_log_path or self.data_dir / "events.db").resolve()

    def database_url(self, service: str) -> str:
        """SQLite file of `service` in embedded mode."""
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"
