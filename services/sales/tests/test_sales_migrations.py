"""The single alembic revision yields exactly `Base.metadata` (SQLite, and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexo_testing import (
    assert_outbox_autovacuum,
    migrate_and_diff,
)
from sales.models import Base

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_sales"


async def _migrate_and_compare(url: str) -> None:
    diff, tables = await migrate_and_diff(url, MIGRATIONS, VERSION_TABLE, Base.metadata)
    assert diff == []
    assert set(Base.metadata.tables) <= tables


async def test_migration_matches_metadata_sqlite(tmp_path: Path) -> None:
    await _migrate_and_compare(f"sqlite+aiosqlite:///{tmp_path / 'sales.db'}")


@pytest.mark.integration
async def test_migration_matches_metadata_postgres(pg_database: str) -> None:
    await _migrate_and_compare(pg_database)
    await assert_outbox_autovacuum(pg_database)
