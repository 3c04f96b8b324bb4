"""The PostgreSQL behind the integration fixtures is real (server, transactions, isolation)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration

_CREATED: list[str] = []  # databases handed out by pg_database in this module


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_server_is_postgresql_15_or_newer(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(_libpq(postgres_url), timeout=10)
    try:
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    assert version_num >= 150000, version


async def test_transaction_rollback_discards_writes(pg_database: str) -> None:
    engine = create_async_engine(pg_database)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"))
            await conn.execute(text("INSERT INTO items VALUES (1, 'kept')"))

        async with engine.connect() as conn:
            trans = await conn.begin()
            await conn.execute(text("INSERT INTO items VALUES (2, 'discarded')"))
            inside = await conn.scalar(text("SELECT count(*) FROM items"))
            await trans.rollback()
        assert inside == 2

        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM items ORDER BY id"))).scalars().all()
        assert names == ["kept"]

        # a constraint violation aborts the whole transaction
        async def insert_then_violate() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO items VALUES (3, 'x')"))
                await conn.execute(text("INSERT INTO items VALUES (1, 'dup')"))

        with pytest.raises(IntegrityError, match="duplicate key"):
            await insert_then_violate()
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM items")) == 1
    finally:
        await engine.dispose()


async def test_pg_database_is_new_and_empty(pg_database: str, postgres_url: str) -> None:
    name = pg_database.rsplit("/", 1)[1]
    assert name != "postgres"
    _CREATED.append(name)
    conn = await asyncpg.connect(_libpq(pg_database), timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE marker (id int)")
    finally:
        await conn.close()


async def test_pg_database_gives_isolated_databases(pg_database: str, postgres_url: str) -> None:
    # The table created by the previous test (another database) is not visible here,
    # and the database of that test was dropped afterwards.
    conn = await asyncpg.connect(_libpq(pg_database), timeout=10)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.marker')") is None
    finally:
        await conn.close()
    name = pg_database.rsplit("/", 1)[1]
    assert name not in _CREATED
    server = await asyncpg.connect(_libpq(postgres_url), timeout=10)
    try:
        existing = {r["datname"] for r in await server.fetch("SELECT datname FROM pg_database")}
    finally:
        await server.close()
    assert name in existing
    assert not existing & set(_CREATED), "databases of earlier tests must have been dropped"
