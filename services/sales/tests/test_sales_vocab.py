"""Every vocabulary has one definition (`sales.domain.vocab`): the CHECK constraints of the
MIGRATED database (alembic upgrade, SQLite and PostgreSQL) and the API's input types list
exactly the enum's values."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import inspect

from sales.domain.vocab import (
    EstadoAbono,
    EstadoCotizacion,
    EstatusVenta,
    MetodoPago,
    MotivoMovimiento,
    values,
)
from service_defaults.db import create_engine
from service_defaults.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
VERSION_TABLE = "alembic_version_sales"

# (table, constraint name, column) → the vocabulary its CHECK must list
CHECKED: list[tuple[str, str, str, type[StrEnum]]] = [
    ("ventas", "ck_ventas_estatus_valido", "estatus", EstatusVenta),
    ("cotizaciones", "ck_cotizaciones_estado_valido", "estado", EstadoCotizacion),
    ("abonos", "ck_abonos_metodo_valido", "metodo", MetodoPago),
    ("abonos", "ck_abonos_estado_valido", "estado", EstadoAbono),
    ("movimientos_stock", "ck_movimientos_stock_motivo_valido", "motivo", MotivoMovimiento),
]


def _listed(sqltext: str, column: str) -> list[str]:
    """The string literals of `column IN (...)` (or PostgreSQL's `= ANY (ARRAY[...])`)."""
    assert re.search(rf"\b{column}\b", sqltext), sqltext
    return re.findall(r"'([^']*)'", sqltext)


async def _migrated_checks(url: str) -> dict[str, str]:
    await upgrade(url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(url)

    def read(conn: Any) -> dict[str, str]:
        insp = inspect(conn)
        out: dict[str, str] = {}
        for table in {t for t, *_ in CHECKED}:
            for ck in insp.get_check_constraints(table):
                out[str(ck["name"])] = str(ck["sqltext"])
        return out

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


def _assert_checks_match(checks: dict[str, str]) -> None:
    for _table, name, column, vocabulary in CHECKED:
        assert name in checks, f"{name} missing from the migrated database"
        assert sorted(_listed(checks[name], column)) == sorted(values(vocabulary)), name


async def test_migrated_check_constraints_list_the_enums_sqlite(tmp_path: Path) -> None:
    _assert_checks_match(await _migrated_checks(f"sqlite+aiosqlite:///{tmp_path / 's.db'}"))


@pytest.mark.integration
async def test_migrated_check_constraints_list_the_enums_postgres(pg_database: str) -> None:
    _assert_checks_match(await _migrated_checks(pg_database))


def test_listed_values_parser_reads_both_dialects() -> None:
    """The parser itself: SQLite keeps the model's text, PostgreSQL rewrites it."""
    assert _listed("estatus IN ('a', 'b')", "estatus") == ["a", "b"]
    pg = "((estatus)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))"
    assert _listed(pg, "estatus") == ["a", "b"]


def test_api_literals_are_the_enums() -> None:
    from sales.api import schemas

    assert get_args(schemas.MetodoPago) == values(MetodoPago)
    assert set(get_args(schemas.EstadoCotizacionPedido)) < set(values(EstadoCotizacion))
    assert get_args(schemas.EstadoCotizacionPedido) == ("enviada", "aceptada", "rechazada")
