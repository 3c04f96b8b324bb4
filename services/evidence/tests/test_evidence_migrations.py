"""The alembic revisions yield exactly `Base.metadata` (no autogenerate diff)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from evidence import models
from nexo_testing import (
    assert_outbox_autovacuum,
    engine_for,
    migrate_and_diff,
)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_evidence"


async def _check(url: str) -> None:
    diff, _ = await migrate_and_diff(url, MIGRATIONS, VERSION_TABLE, models.Base.metadata)
    assert diff == [], diff
    async with engine_for(url) as engine, engine.connect() as conn:
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


async def test_migration_matches_models_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'mig.db'}")


@pytest.mark.integration
async def test_migration_matches_models_postgres(pg_database: str) -> None:
    await _check(pg_database)
    await assert_outbox_autovacuum(pg_database)
