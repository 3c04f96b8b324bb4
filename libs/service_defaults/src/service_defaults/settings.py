"""Settings shared by every Nexo process (pydantic-settings, read from environment variables).

A service subclasses :class:`ServiceSettings` with ``env_prefix="<SVC>_"``; the gateway
subclasses :class:`CommonSettings` (it has no database).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEV_JWT_SECRET = "nexo-dev-secret-change-me-0123456789abcdef"  # dev/test only
MIN_PROD_SECRET_BYTES = 32
"""Shortest HS256 secret accepted with ``env=prod`` (RFC 7518 §3.2: at least the hash size)."""
ALLOWED_DB_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite://")

S = TypeVar("S", bound=BaseSettings)


def mask_url(url: str) -> str:
    """`url` with its password replaced by ``***`` (safe to log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: mask anything between ':' and '@'
        head, sep, tail = url.rpartition("@")
        if not sep:
            return url
        scheme, _, creds = head.partition("://")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{tail}"


class CommonSettings(BaseSettings):
    """Environment, logging and JWT settings common to services and the gateway."""

    model_config = SettingsConfigDict(env_prefix="NEXO_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = "dev"
    service_name: str = "nexo"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = False

    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None  # PEM, for RS256
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_max_lifetime_seconds: float = Field(default=12 * 3600, gt=0)
    """Longest token accepted with ``env=prod``: ``exp - iat`` (``exp - now`` without ``iat``)
    above it is 401."""
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)
    """On SIGTERM/SIGINT, ``/health/ready`` answers 503 for this long while the process keeps
    serving (load balancers and Kubernetes endpoints stop sending new requests), then requests
    in flight finish and the lifespan stops (consumers commit and leave, the relay releases)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets `field`, e.g. ``EVIDENCE_DATABASE_URL``."""
        prefix = str(cls.model_config.get("env_prefix") or "")
        return f"{prefix}{field}".upper()

    @model_validator(mode="after")
    def _check_jwt(self) -> CommonSettings:
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise ValueError(
                f"{self.env_name('jwt_public_key')} is required when "
                f"{self.env_name('jwt_algorithm')}=RS256"
            )
        if (
            self.env == "prod"
            and self.jwt_algorithm == "HS256"
            and (not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET)
        ):
            raise ValueError(f"{self.env_name('jwt_secret')} must be set in production")
        if (
            self.env == "prod"
            and self.jwt_algorithm == "HS256"
            and len(self.jwt_secret.encode()) < MIN_PROD_SECRET_BYTES
        ):
            raise ValueError(
                f"{self.env_name('jwt_secret')} must be at least {MIN_PROD_SECRET_BYTES} bytes "
                "in production (or use RS256)"
            )
        return self

    def dev_tokens_allowed(self) -> bool:
        """Whether development tokens may be handed out (gateway dev login, banner): only in
        ``env=dev`` with the built-in development secret — never with a real one."""
        return (
            self.env == "dev"
            and self.jwt_algorithm == "HS256"
            and self.jwt_secret == DEV_JWT_SECRET
        )


class ServiceSettings(CommonSettings):
    """Settings of one domain service (database + message transport on top of the common ones)."""

    database_url: str = "sqlite+aiosqlite:///./var/nexo.db"
    db_pool_size: int = Field(default=15, ge=1, le=1000)
    """Server connections per process, kept open and never exceeded (PostgreSQL only)."""
    transport: Literal["memory", "local", "kafka"] = "memory"
    """``local``: the durable event log file ``local_log_path`` (one process per file);
    ``memory``: in-process, lost on exit (tests); ``kafka``: ``kafka_bootstrap_servers``."""
    kafka_bootstrap_servers: str | None = None
    local_log_path: Path = Path("./var/events.db")
    idempotency_ttl_seconds: float = Field(default=24 * 3600, gt=0, le=30 * 24 * 3600)
    """How long a stored ``Idempotency-Key`` answer is replayed (then the key is forgotten)."""

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(ALLOWED_DB_SCHEMES):
            raise ValueError(
                "must start with postgresql+asyncpg:// or sqlite+aiosqlite:// "
                f"(got {mask_url(value)!r})"
            )
        return value

    @model_validator(mode="after")
    def _check_kafka(self) -> ServiceSettings:
        if self.transport == "kafka" and not self.kafka_bootstrap_servers:
            raise ValueError(
                f"{self.env_name('kafka_bootstrap_servers')} is required when "
                f"{self.env_name('transport')}=kafka"
            )
        return self


def describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    """One line naming every invalid setting by its environment variable."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    parts: list[str] = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        loc = err.get("loc") or ()
        if loc:
            name = f"{prefix}{loc[0]}".upper()
            parts.append(f"{name}: {msg}")
        else:
            parts.append(msg)
    return f"invalid settings for {cls.__name__}: " + "; ".join(parts)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build `cls` from the environment (plus `overrides`); exit with one clear line if invalid."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SystemExit(describe_validation_error(cls, exc)) from None
