"""Migration checks shared by the services: the alembic head yields exactly the models'
metadata (autogenerate finds nothing), a second upgrade is a no-op, and the outbox has the
autovacuum settings the migration (not ``create_all``) gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from nexo_testing.databases import engine_for, migrated_engine
from service_defaults.migrations import upgrade


def metadata_diff(connection: Connection, metadata: MetaData, version_table: str) -> list[Any]:
    """What alembic's autogenerate would change to make the database match `metadata`."""
    ctx = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": version_table}
    )
    return list(compare_metadata(ctx, metadata))


async def migrate_and_diff(
    url: str, migrations: Path, version_table: str, metadata: MetaData
) -> tuple[list[Any], set[str]]:
    """Upgrade `url` to the head, then (the autogenerate diff against `metadata`, the table
    names of the database); finally upgrade again (which must be a no-op)."""
    async with (
        migrated_engine(url, migrations, version_table) as engine,
        engine.connect() as conn,
    ):
        diff = await conn.run_sync(metadata_diff, metadata, version_table)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await upgrade(url, migrations, version_table)
    return diff, tables


async def assert_outbox_autovacuum(url: str) -> None:
    """The migrated PostgreSQL database gives the outbox its autovacuum settings."""
    async with engine_for(url) as engine, engine.connect() as conn:
        options = (
            await conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'outbox'"))
        ).scalar_one()
    assert "autovacuum_vacuum_threshold=5000" in options
    assert "autovacuum_vacuum_scale_factor=0" in options
