"""The alembic revisions yield exactly `Base.metadata` (no autogenerate diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select, text

from evidence import models
from service_defaults.db import create_engine
from service_defaults.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_evidence"


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn,
        opts={"compare_type": True, "version_table": VERSION_TABLE},
    )
    return list(compare_metadata(ctx, models.Base.metadata))


async def _check(url: str) -> None:
    await upgrade(url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            assert diff == [], diff
            rows = (await conn.execute(select(models.EstatusGpu).order_by("id_legacy"))).all()
            assert [(r.codigo, r.id_legacy) for r in rows] == [
                ("PENDIENTE", 19),
                ("CARGADO", 20),
                ("EN_REVISION", 21),
                ("VALIDADO", 22),
                ("RECHAZADO", 23),
            ]
            daily = (await conn.execute(select(models.EstatusDiario).order_by("id_legacy"))).all()
            assert [(r.codigo, r.id_legacy, r.cierra_dia) for r in daily] == [
                ("OPERATIVO", 1, False),
                ("CERRADO", 17, True),
            ]
    finally:
        await engine.dispose()


async def test_migration_matches_models_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'mig.db'}")


@pytest.mark.integration
async def test_migration_matches_models_postgres(pg_database: str) -> None:
    await _check(pg_database)
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
