from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from service_defaults.settings import ServiceSettings, load_settings, mask_url


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)


def test_defaults_are_dev_sqlite_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(DemoSettings)
    assert s.env == "dev"
    assert s.transport == "memory"
    assert s.database_url.startswith("sqlite+aiosqlite://")


def test_database_url_scheme_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DATABASE_URL", "mysql://u:secret@h/db")
    with pytest.raises(SystemExit) as info:
        load_settings(DemoSettings)
    msg = str(info.value)
    assert "DEMO_DATABASE_URL" in msg
    assert "postgresql+asyncpg://" in msg
    assert "secret" not in msg
    assert "\n" not in msg


def test_kafka_requires_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_TRANSPORT", "kafka")
    with pytest.raises(SystemExit, match="DEMO_KAFKA_BOOTSTRAP_SERVERS is required"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DEMO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    assert load_settings(DemoSettings).kafka_bootstrap_servers == "127.0.0.1:9092"


def test_prod_refuses_dev_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENV", "prod")
    with pytest.raises(SystemExit, match="DEMO_JWT_SECRET must be set in production"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DEMO_JWT_SECRET", "a-real-secret-of-enough-length-0123456789")
    assert load_settings(DemoSettings).env == "prod"


def test_several_errors_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENV", "staging")
    monkeypatch.setenv("DEMO_TRANSPORT", "rabbit")
    with pytest.raises(SystemExit) as info:
        load_settings(DemoSettings)
    msg = str(info.value)
    assert "DEMO_ENV" in msg
    assert "DEMO_TRANSPORT" in msg
    assert "\n" not in msg


def test_rs256_requires_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_JWT_ALGORITHM", "RS256")
    with pytest.raises(SystemExit, match="DEMO_JWT_PUBLIC_KEY is required"):
        load_settings(DemoSettings)


def test_service_settings_prefix() -> None:
    from evidence.settings import EvidenceSettings

    assert EvidenceSettings.env_name("database_url") == "EVIDENCE_DATABASE_URL"
    assert EvidenceSettings().database_url == "sqlite+aiosqlite:///./var/evidence.db"


def test_mask_url() -> None:
    masked = mask_url("postgresql+asyncpg://user:pw@host:5432/db")
    assert masked == "postgresql+asyncpg://user:***@host:5432/db"
