"""Every vocabulary has one definition (`sales.domain.vocab`): the CHECK constraints of the
MIGRATED database (alembic upgrade, SQLite and PostgreSQL) and the API's input types list
exactly the enum's values."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import get_args

import pytest

from nexo_testing.vocab import listed as _listed
from nexo_testing.vocab import migrated_check_constraints
from sales.domain.vocab import (
    EstadoAbono,
    EstadoCotizacion,
    EstatusVenta,
    MetodoPago,
    MotivoMovimiento,
    values,
)

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


async def _migrated_checks(url: str) -> dict[str, str]:
    return await migrated_check_constraints(
        url, MIGRATIONS, VERSION_TABLE, {t for t, *_ in CHECKED}
    )


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
