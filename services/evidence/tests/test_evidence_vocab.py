"""Every vocabulary has one definition (`evidence.domain.vocab`): the CHECK constraints and the
seeded catalogues of the MIGRATED database (alembic upgrade, SQLite and PostgreSQL) and the
API's input types list exactly the enum's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import select

from evidence import models
from evidence.domain.vocab import (
    BULK_REVIEW_TARGETS,
    COLORS,
    DESCRIPCIONES,
    LEGACY_IDS,
    EstatusOperativo,
    GpuStatus,
    TipoTiempo,
    values,
)
from nexo_testing import engine_for
from nexo_testing.vocab import listed as _listed
from nexo_testing.vocab import migrated_check_constraints

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_evidence"


async def _migrated(url: str) -> tuple[dict[str, str], list[Any], list[Any]]:
    found = await migrated_check_constraints(
        url, MIGRATIONS, VERSION_TABLE, ("produccion", "registro_generadores_pu")
    )
    async with engine_for(url) as engine, engine.connect() as conn:
        gpu = (await conn.execute(select(models.EstatusGpu))).all()
        daily = (await conn.execute(select(models.EstatusDiario))).all()
        return found, list(gpu), list(daily)


def _assert_match(found: dict[str, str], gpu: list[Any], daily: list[Any]) -> None:
    assert sorted(_listed(found["ck_produccion_tipo_tiempo"], "tipo_tiempo")) == sorted(
        values(TipoTiempo)
    )
    assert _listed(found["ck_gpu_facturado_validado"], "estatus") == [GpuStatus.VALIDADO.value]
    assert sorted((r.codigo, r.id_legacy, r.descripcion, r.color) for r in gpu) == sorted(
        (s.value, LEGACY_IDS[s], DESCRIPCIONES[s], COLORS[s]) for s in GpuStatus
    )
    # The daily catalogue may grow (data), but the statuses with a rule must be there.
    by_code = {r.codigo: r for r in daily}
    assert set(values(EstatusOperativo)) <= set(by_code)
    assert by_code[EstatusOperativo.CERRADO].cierra_dia
    assert not by_code[EstatusOperativo.OPERATIVO].cierra_dia


async def test_migrated_vocabularies_are_the_enums_sqlite(tmp_path: Path) -> None:
    _assert_match(*await _migrated(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"))


@pytest.mark.integration
async def test_migrated_vocabularies_are_the_enums_postgres(pg_database: str) -> None:
    _assert_match(*await _migrated(pg_database))


def test_listed_values_parser_reads_both_dialects() -> None:
    assert _listed("tipo_tiempo IN ('TE', 'CMA')", "tipo_tiempo") == ["TE", "CMA"]
    pg = (
        "((tipo_tiempo)::text = ANY "
        "((ARRAY['TE'::character varying, 'CMA'::character varying])::text[]))"
    )
    assert _listed(pg, "tipo_tiempo") == ["TE", "CMA"]


def test_api_types_are_the_enums() -> None:
    from evidence.api import schemas

    assert get_args(schemas.TipoTiempoIn) == values(TipoTiempo)
    assert get_args(schemas.BulkReviewTarget) == ("VALIDADO", "RECHAZADO", "EN_REVISION")
    assert set(get_args(schemas.BulkReviewTarget)) == set(values(BULK_REVIEW_TARGETS))
