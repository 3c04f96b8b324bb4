"""The single alembic revision yields exactly `metadata` (SQLite, and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexo_testing import (
    assert_outbox_autovacuum,
    migrate_and_diff,
    migrated_check_constraints,
)
from orders.models import metadata

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_orders"


async def _migrate_and_compare(url: str) -> None:
    diff, tables = await migrate_and_diff(url, MIGRATIONS, VERSION_TABLE, metadata)
    checks = await migrated_check_constraints(url, MIGRATIONS, VERSION_TABLE, ["lote_ubicaciones"])
    assert diff == []
    assert set(metadata.tables) <= tables
    assert "ck_lote_ubicaciones_reservada" in checks


async def test_orders_migration_matches_metadata_sqlite(tmp_path: Path) -> None:
    await _migrate_and_compare(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}")


@pytest.mark.integration
async def test_orders_migration_matches_metadata_postgres(pg_database: str) -> None:
    await _migrate_and_compare(pg_database)
    await assert_outbox_autovacuum(pg_database)
