"""Every vocabulary has one definition (`orders.domain.vocab`): the CHECK constraints of the
MIGRATED database (alembic upgrade, SQLite and PostgreSQL), the models' CHECK tuples and the
API's input types list exactly the enum's values."""

from __future__ import annotations

from enum import Enum, IntEnum
from pathlib import Path
from typing import get_args

import pytest

from nexo_testing.vocab import listed as _listed
from nexo_testing.vocab import migrated_check_constraints
from orders import domain as d
from orders.domain.vocab import (
    EstadoItemPropuesta,
    EstadoLinea,
    EstadoLote,
    EstadoPropuesta,
    EstadoSolicitud,
    EstadoUbicacion,
    TipoMovimiento,
    values,
)
from orders.main import MIGRATIONS_DIR

VERSION_TABLE = "alembic_version_orders"

# (table, constraint name, column) → the vocabulary its CHECK must list
CHECKED: list[tuple[str, str, str, type[Enum]]] = [
    ("solicitudes", "ck_solicitudes_estado", "estado", EstadoSolicitud),
    ("propuestas", "ck_propuestas_estado", "estado", EstadoPropuesta),
    ("propuesta_items", "ck_propuesta_items_estado", "estado", EstadoItemPropuesta),
    ("lotes_asignados", "ck_lotes_asignados_estado_linea", "estado_linea", EstadoLinea),
    ("ubicaciones", "ck_ubicaciones_estado", "estado", EstadoUbicacion),
    ("lotes", "ck_lotes_estado", "estado", EstadoLote),
    ("movimientos_inventario", "ck_movimientos_inventario_tipo", "tipo_movimiento", TipoMovimiento),
]


async def _migrated_checks(url: str) -> dict[str, str]:
    return await migrated_check_constraints(
        url, MIGRATIONS_DIR, VERSION_TABLE, {t for t, *_ in CHECKED}
    )


def _assert_checks_match(checks: dict[str, str]) -> None:
    for _table, name, column, vocabulary in CHECKED:
        assert name in checks, f"{name} missing from the migrated database"
        integers = issubclass(vocabulary, IntEnum)
        listed = _listed(checks[name], column, integers=integers)
        assert sorted(listed) == sorted(values(vocabulary)), name


async def test_migrated_check_constraints_list_the_enums_sqlite(tmp_path: Path) -> None:
    _assert_checks_match(await _migrated_checks(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"))


@pytest.mark.integration
async def test_migrated_check_constraints_list_the_enums_postgres(pg_database: str) -> None:
    _assert_checks_match(await _migrated_checks(pg_database))


def test_listed_values_parser_reads_both_dialects() -> None:
    """The parser itself: SQLite keeps the model's text, PostgreSQL rewrites it."""
    assert _listed("estado IN ('a', 'b')", "estado") == ["a", "b"]
    pg = "((estado)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))"
    assert _listed(pg, "estado") == ["a", "b"]
    assert _listed("estado IN (1, 4)", "estado", integers=True) == [1, 4]
    assert _listed("(estado = ANY (ARRAY[1, 4, 5]))", "estado", integers=True) == [1, 4, 5]


def test_model_check_tuples_are_the_enums() -> None:
    from orders import models

    assert values(EstadoSolicitud) == models.ESTADOS_SOLICITUD
    assert values(EstadoPropuesta) == models.ESTADOS_PROPUESTA
    assert values(EstadoItemPropuesta) == models.ESTADOS_ITEM_PROPUESTA
    assert values(EstadoLinea) == models.ESTADOS_LINEA
    assert values(EstadoUbicacion) == models.ESTADOS_UBICACION
    assert models.ESTADOS_LOTE == (1, 4, 5, 6) == values(EstadoLote)
    assert values(TipoMovimiento) == models.TIPOS_MOVIMIENTO


def test_api_literals_are_the_enums() -> None:
    from orders.api import schemas as api

    assert get_args(api.EstadoLoteValor) == values(EstadoLote)
    assert get_args(api.EstadoUbicacionValor) == values(EstadoUbicacion)
    assert api.AprobacionIn.model_fields["justificacion_codigo"].annotation == (
        d.MotivoAjuste | None
    )


def test_domain_sets_come_from_the_enums() -> None:
    assert set(values(EstadoLote)) == d.LOTE_ESTADOS
    assert set(values(EstadoUbicacion)) == d.UBICACION_ESTADOS
    assert set(d.ELIGIBLE_LOCATION_STATES) <= d.UBICACION_ESTADOS
    assert d.ELIGIBLE_LOT_STATE in d.LOTE_ESTADOS
