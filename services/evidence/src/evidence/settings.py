"""Settings of the evidence service (environment variables prefixed `EVIDENCE_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from service_defaults.settings import ServiceSettings


class EvidenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EVIDENCE_", extra="ignore", frozen=True)

    service_name: str = "evidence"
    database_url: str = "sqlite+aiosqlite:///./var/evidence.db"
    host: str = "127.0.0.1"
    port: int = 8001
