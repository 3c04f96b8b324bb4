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

    # GPU rules (DOMAIN [DECIDE-C1], [DECIDE-C3]); env values are JSON lists.
    gpu_annexes: tuple[str, ...] = ("C-2", "C-3", "C2EXT", "C3EXT")
    evidence_allowed_hosts: tuple[str, ...] = ("drive.google.com", "docs.google.com")
