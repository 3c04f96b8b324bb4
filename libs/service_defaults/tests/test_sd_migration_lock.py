"""Replicas that start together migrate one after the other (advisory lock), never racing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from service_defaults.db import create_engine
from service_defaults.migrations import upgrade

ENV_PY = """
from sqlalchemy import MetaData
from service_defaults.migrations import run_env

run_env(MetaData(), "alembic_version_lockdemo")
"""

# Slow on purpose: without the lock the second upgrade sees no version row yet and fails on
# CREATE TABLE (duplicate) or on the version table's primary key.
REVISION = """
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

import sqlalchemy as sa
from alembic import op


def upgrade() -> None:
    op.create_table("gadget", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT pg_sleep(1)")


def downgrade() -> None:
    op.drop_table("gadget")
"""


def _migrations(tmp_path: Path) -> Path:
    mig = tmp_path / "migrations"
    (mig / "versions").mkdir(parents=True)
    (mig / "env.py").write_text(ENV_PY)
    (mig / "script.py.mako").write_text("")
    (mig / "versions" / "0001_gadget.py").write_text(REVISION)
    return mig


async def test_concurrent_upgrades_on_postgresql_do_not_race(
    tmp_path: Path, pg_database: str
) -> None:
    mig = _migrations(tmp_path)
    results = await asyncio.gather(
        *(upgrade(pg_database, mig, "alembic_version_lockdemo") for _ in range(3)),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    engine = create_engine(pg_database)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT version_num FROM alembic_version_lockdemo"))
            ).all()
    finally:
        await engine.dispose()
    assert [r[0] for r in rows] == ["0001"]
