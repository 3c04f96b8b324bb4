"""Fixtures of the evidence service tests: a database per test (SQLite, and PostgreSQL as an
integration test) and the DOMAIN C.7 fixture (OT 10 ``OTE-2025-001`` with partidas 456-459)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evidence import models
from evidence.models import ImportacionAnexo, Ot, PartidaAnexo
from service_defaults.db import create_engine, session_factory

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


async def seed_fixture(session: AsyncSession) -> None:
    """DOMAIN §C.7 fixture: OT 10 (principal, active import), partidas 456-458 active,
    459 in an inactive import; reprogramación OT 11 of OT 10."""
    session.add_all(
        [
            Ot(id=10, orden_trabajo="OTE-2025-001", descripcion_trabajo="OT", fecha_creacion=NOW),
            Ot(
                id=11,
                orden_trabajo="OTE-2025-001-R1",
                id_tipo=5,
                ot_principal=10,
                fecha_creacion=NOW,
            ),
        ]
    )
    await session.flush()
    session.add_all(
        [
            ImportacionAnexo(id=1, id_ot=10, es_activo=True, fecha_carga=NOW),
            ImportacionAnexo(id=2, id_ot=10, es_activo=False, fecha_carga=NOW),
        ]
    )
    await session.flush()

    def line(pid: int, imp: int, code: str, anexo: str, vol: str, unidad: str, desc: str) -> dict:
        return {
            "id": pid,
            "id_importacion_anexo": imp,
            "id_partida": code,
            "descripcion_concepto": desc,
            "anexo": anexo,
            "unidad": unidad,
            "volumen_proyectado": Decimal(vol),
            "precio_unitario_mn": Decimal("1234.5678"),
            "precio_unitario_usd": Decimal("61.7284"),
            "orden_fila": pid,
        }

    await session.execute(
        insert(PartidaAnexo),
        [
            line(456, 1, "C-2.1.1", "C-2", "100", "JOR", "Técnico especializado"),
            line(457, 1, "C-3.4.2", "C-3", "300", "HR", "Grúa"),
            line(458, 1, "C-1.1.1", "C-1", "50", "", "Concepto C-1"),
            line(459, 2, "C-2.9.9", "C-2", "0", "JOR", "Import inactive"),
            line(460, 1, "C-2.5.5", " c-2 ", "100", "JOR", "Anexo sin normalizar"),
        ],
    )
    await session.flush()


SEEDED_IDS = ("ot", "importacion_anexo", "partida_anexo_importada")
"""Tables the fixture fills with explicit ids (PostgreSQL's sequences must move past them)."""


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The use cases run on SQLite (embedded mode, `adapters.portable`) and on PostgreSQL
    (`adapters.postgres`: array ids, unnest bulk statements): ``database_url`` is the
    `nexo_testing` parametrisation."""
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(models.Base.metadata.create_all)
        await conn.execute(insert(models.EstatusGpu), models.GPU_STATUS_ROWS)
        await conn.execute(insert(models.EstatusDiario), models.DAILY_STATUS_ROWS)
    sm = session_factory(engine)
    async with sm() as session:
        await seed_fixture(session)
        if engine.dialect.name == "postgresql":
            for table in SEEDED_IDS:
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                await session.execute(text(f"SELECT setval({sequence}, max(id)) FROM {table}"))
        await session.commit()
    try:
        yield sm
    finally:
        await engine.dispose()
