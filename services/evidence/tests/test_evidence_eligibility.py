"""GPU eligibility (§C.4.1) has one definition: the Python predicate the GPU sync runs
(`is_gpu_eligible`) and its SQL form (`gpu_eligible_sql`, the grid and completeness reads)
select exactly the same productions on the boundary cases, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import application as uc
from evidence import domain as d
from evidence import queries
from evidence.models import ImportacionAnexo, Ot, PartidaAnexo, Produccion, ReporteMensual
from service_defaults.db import create_engine, session_factory
from service_defaults.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_evidence"
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
MES, ANIO = 3, 2025

# Annexes as stored (String(10)): padding, case, other whitespace, near misses, empty, NULL.
ANNEXES: list[str | None] = [
    "C-2",
    " c-2 ",
    "c2ext",
    "C3EXT   ",
    "c-3",
    "\tC-2",
    "C-2\t",
    "C-2\n",
    "C-2\u00a0",
    "C - 2",
    "C-2.",
    "C-1",
    "",
    "   ",
    None,
]
VOLUMES = [Decimal("0"), Decimal("0.000001"), Decimal("1"), Decimal("999999999.999999")]
# The default set, and a configured one with a padded/lower-case member and an empty one.
ANNEX_SETS: list[frozenset[str]] = [d.DEFAULT_GPU_ANNEXES, frozenset({" c-1", "", "C2ext"})]


def test_normalisation_trims_what_sql_trim_trims() -> None:
    """`upper(trim(x))` (DOMAIN §C.4.1): spaces only. A tab used to be trimmed by Python and
    not by SQL, so a production got a GPU the grid then did not show."""
    assert d.ANNEX_PAD == " "
    assert d.is_gpu_eligible(" c-2 ", Decimal("0.000001"))
    assert not d.is_gpu_eligible("\tC-2", Decimal(1))
    assert not d.is_gpu_eligible("C-2", d.MIN_VOLUME)
    assert not d.is_gpu_eligible("  ", Decimal(1), annexes={"", "C-2"})


async def _seed(session: AsyncSession) -> dict[int, tuple[str | None, Decimal, bool]]:
    """One production per (annex, volume, import active); returns their inputs by id."""
    session.add(Ot(id=1, orden_trabajo="OT-ELIG", fecha_creacion=NOW))
    await session.flush()
    session.add_all(
        [
            ImportacionAnexo(id=1, id_ot=1, es_activo=True, fecha_carga=NOW),
            ImportacionAnexo(id=2, id_ot=1, es_activo=False, fecha_carga=NOW),
            ReporteMensual(
                id=1, id_ot=1, mes=MES, anio=ANIO, fecha_creacion=NOW, fecha_actualizacion=NOW
            ),
        ]
    )
    await session.flush()
    expected: dict[int, tuple[str | None, Decimal, bool]] = {}
    line_id = prod_id = 0
    for imp, activo in ((1, True), (2, False)):
        for anexo in ANNEXES:
            line_id += 1
            session.add(
                PartidaAnexo(
                    id=line_id,
                    id_importacion_anexo=imp,
                    id_partida=f"P{line_id}",
                    descripcion_concepto="x",
                    anexo=anexo,
                    unidad="JOR",
                    volumen_proyectado=Decimal(10**6),
                    orden_fila=line_id,
                )
            )
            await session.flush()
            for day, vol in enumerate(VOLUMES, start=1):
                prod_id += 1
                session.add(
                    Produccion(
                        id=prod_id,
                        id_partida_anexo=line_id,
                        id_reporte_mensual=1,
                        fecha_produccion=dt.date(ANIO, MES, day),
                        volumen_produccion=vol,
                        tipo_tiempo="TE",
                        fecha_creacion=NOW,
                        fecha_actualizacion=NOW,
                    )
                )
                expected[prod_id] = (anexo, vol, activo)
    await session.flush()
    return expected


async def _check_agreement(url: str) -> None:
    await upgrade(url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            inputs = await _seed(session)
            await session.commit()
            for annexes in ANNEX_SETS:
                python = {
                    pid
                    for pid, (anexo, vol, activo) in inputs.items()
                    if d.is_gpu_eligible(anexo, vol, importacion_activa=activo, annexes=annexes)
                }
                assert python, "the cases must include eligible productions"
                assert len(python) < len(inputs), "and ineligible ones"
                cfg = uc.EvidenceConfig(gpu_annexes=annexes)
                sql = set(
                    (
                        await session.scalars(
                            select(Produccion.id)
                            .join(PartidaAnexo, PartidaAnexo.id == Produccion.id_partida_anexo)
                            .join(
                                ImportacionAnexo,
                                ImportacionAnexo.id == PartidaAnexo.id_importacion_anexo,
                            )
                            .where(queries.eligible_where(cfg))
                        )
                    ).all()
                )
                assert sql == python, _explain(inputs, sql ^ python)
                # The reads that render it: the grid and the completeness report.
                rows = await queries.grid(session, id_ot=1, mes=MES, anio=ANIO, cfg=cfg)
                in_grid = {
                    cell["id_produccion"]
                    for line in rows
                    for day in range(1, 32)
                    for cell in line[f"dia_{day}"] or ()
                }
                assert in_grid == python, _explain(inputs, in_grid ^ python)
                report = await queries.completitud(session, id_ot=1, mes=MES, anio=ANIO, cfg=cfg)
                missing = {f["id_produccion"] for f in report["faltantes"]}  # no GPU yet: all
                assert missing == python, _explain(inputs, missing ^ python)
    finally:
        await engine.dispose()


def _explain(
    inputs: dict[int, tuple[str | None, Decimal, bool]], ids: set[int]
) -> list[tuple[str | None, Decimal, bool]]:
    return [inputs[i] for i in sorted(ids)]


async def test_python_and_sql_eligibility_agree_sqlite(tmp_path: Path) -> None:
    await _check_agreement(f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")


@pytest.mark.integration
async def test_python_and_sql_eligibility_agree_postgres(pg_database: str) -> None:
    await _check_agreement(pg_database)
