"""The alembic revisions yield exactly `Base.metadata` (no autogenerate diff)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

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


def test_compared_metadata_is_the_sqlmodel_tables_on_their_own_registry() -> None:
    """The metadata the migrations are compared with is the one the SQLModel table models
    register on (not SQLModel's shared default, which other services' same-named tables such
    as ``outbox`` would collide in when they load in one process)."""
    tables = [
        m for m in vars(models).values() if isinstance(m, type) and issubclass(m, models.Base)
    ]
    table_models = [m for m in tables if m is not models.Base]
    assert {m.__tablename__ for m in table_models} <= set(models.Base.metadata.tables)
    assert all(issubclass(m, SQLModel) and m.metadata is models.Base.metadata for m in table_models)
    assert len(table_models) == 16  # + outbox, inbox, idempotency_keys (Core tables)
    assert len(models.Base.metadata.tables) == 19
    assert models.Base.metadata is not SQLModel.metadata
    assert not set(models.Base.metadata.tables) & set(SQLModel.metadata.tables)
