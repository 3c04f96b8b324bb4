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


def test_the_compared_metadata_is_the_sqlmodel_table_models() -> None:
    """The diff above checks the SQLModel table models: every table but the messaging ones is
    a SQLModel `table=True` class of the service's own registry, none in SQLModel's default
    MetaData (embedded mode loads several services with the same messaging table names)."""
    from sqlmodel import SQLModel

    mapped = {m.class_.__tablename__: m.class_ for m in Base._sa_registry.mappers}
    assert set(Base.metadata.tables) - set(mapped) == {"outbox", "inbox", "idempotency_keys"}
    assert all(issubclass(c, SQLModel) and c.model_config.get("table") for c in mapped.values())
    assert Base.metadata is not SQLModel.metadata
    assert not set(mapped) & set(SQLModel.metadata.tables)
