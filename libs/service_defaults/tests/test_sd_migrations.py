from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, text

from service_defaults.db import create_engine
from service_defaults.migrations import prepare_schema, upgrade

ENV_PY = """
from sqlalchemy import MetaData
from service_defaults.migrations import run_env

run_env(MetaData(), "alembic_version_demo")
"""

REVISION = """
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

import sqlalchemy as sa
from alembic import op


def upgrade() -> None:
    op.create_table("widget", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("widget")
"""


def _migrations(tmp_path: Path) -> Path:
    mig = tmp_path / "migrations"
    (mig / "versions").mkdir(parents=True)
    (mig / "env.py").write_text(ENV_PY)
    (mig / "script.py.mako").write_text("")
    (mig / "versions" / "0001_widget.py").write_text(REVISION)
    return mig


async def test_upgrade_uses_service_version_table(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    mig = _migrations(tmp_path)
    await upgrade(url, mig, "alembic_version_demo")
    await upgrade(url, mig, "alembic_version_demo")  # idempotent
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
            version = (
                await conn.execute(text("SELECT version_num FROM alembic_version_demo"))
            ).scalar()
    finally:
        await engine.dispose()
    assert "widget" in names
    assert "alembic_version" not in names
    assert version == "0001"


async def test_prepare_schema_falls_back_to_create_all(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    metadata = MetaData()
    Table("thing", metadata, Column("id", Integer, primary_key=True), Column("n", String(5)))
    empty = tmp_path / "empty_migrations"
    (empty / "versions").mkdir(parents=True)
    engine = create_engine(url)
    try:
        how = await prepare_schema(engine, url, empty, "alembic_version_x", metadata)
        assert how == "create_all"
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "thing" in names
        how = await prepare_schema(
            engine, url, _migrations(tmp_path), "alembic_version_x", metadata
        )
        assert how == "migrated"
    finally:
        await engine.dispose()
