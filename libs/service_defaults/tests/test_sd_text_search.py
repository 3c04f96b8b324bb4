"""`contains_ci`: a search term matches whatever the case of any letter — accented and ñ
included — on SQLite and on PostgreSQL (whose cluster here runs with ``--locale=C``, where the
built-in ``lower()`` folds ASCII only), and ``%``/``_`` stay literal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from service_defaults.db import create_engine, sqlite_pragmas
from service_defaults.text_search import any_contains_ci, contains_ci

metadata = MetaData()
nombres = Table(
    "nombres",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("nombre", String(80)),
    Column("alias", String(80), nullable=True),
)
ROWS = [
    (1, "Ácido NÍTRICO", None),
    (2, "niño", "ÑANDÚ"),
    (3, "JOSÉ Pérez", "pepe"),
    (4, "Descuento 50% off", None),
    (5, "mesa_1", None),
    (6, "acido comun", None),
]
CASES = [
    ("ácido", {1}),
    ("ÁCIDO", {1}),
    ("nítrico", {1}),
    ("NIÑO", {2}),
    ("josé pé", {3}),
    ("ñandú", {2}),
    ("50%", {4}),
    ("%", {4}),
    ("_", {5}),
    ("acido", {6}),
]


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                insert(nombres), [{"id": i, "nombre": n, "alias": a} for i, n, a in ROWS]
            )
        async with engine.connect() as conn:
            for term, expected in CASES:
                found = set(
                    await conn.scalars(
                        select(nombres.c.id).where(
                            any_contains_ci(term, nombres.c.nombre, nombres.c.alias)
                        )
                    )
                )
                assert found == expected, term
            only_alias = select(nombres.c.id).where(contains_ci(nombres.c.alias, "PEPE"))
            assert set(await conn.scalars(only_alias)) == {3}
    finally:
        await engine.dispose()


async def test_search_folds_every_letter_on_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")


@pytest.mark.integration
async def test_search_folds_every_letter_on_postgresql(pg_database: str) -> None:
    await _check(pg_database)


def test_a_plain_sqlite3_connection_gets_the_function_too(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "raw.db")
    try:
        sqlite_pragmas(conn)
        assert conn.execute("SELECT nexo_lower('ÁÉÍÓÚÑ Ü')").fetchone() == ("áéíóúñ ü",)
        assert conn.execute("SELECT nexo_lower(NULL)").fetchone() == (None,)
    finally:
        conn.close()
