"""The single alembic revision yields exactly `Base.metadata` (SQLite, and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from sales.models import Base
from service_defaults.db import create_engine
from service_defaults.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_sales"


def _diff(connection: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
    )
    return list(compare_metadata(ctx, Base.metadata))


async def _migrate_and_compare(url: str) -> None:
    await upgrade(url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == []
    assert set(Base.metadata.tables) <= tables
    # idempotent: a second upgrade is a no-op
    await upgrade(url, MIGRATIONS, VERSION_TABLE)


async def test_migration_matches_metadata_sqlite(tmp_path: Path) -> None:
    await _migrate_and_compare(f"sqlite+aiosqlite:///{tmp_path / 'sales.db'}")


@pytest.mark.integration
async def test_migration_matches_metadata_postgres(pg_database: str) -> None:
    await _migrate_and_compare(pg_database)
    await _assert_outbox_autovacuum(pg_database)


async def _assert_outbox_autovacuum(url: str) -> None:
    """The migration (not only ``create_all``) gives the outbox its autovacuum settings."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            options = (
                await conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'outbox'"))
            ).scalar_one()
    finally:
        await engine.dispose()
    assert "autovacuum_vacuum_threshold=5000" in options
    assert "autovacuum_vacuum_scale_factor=0" in options
