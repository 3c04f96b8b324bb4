"""The database parametrisation of the suites: every test that asks for ``database_url`` runs
on a SQLite file and on a fresh database of a real PostgreSQL (the root conftest's
``pg_database``; the PostgreSQL variant is an integration test), plus engines over a URL and
the alembic upgrade of a service's migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service_defaults.db import create_engine
from service_defaults.migrations import upgrade

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
"""The ``params`` of a database-parametrised fixture (ids ``sqlite`` and ``postgres``)."""


def sqlite_url(tmp_path: Path, name: str = "test.db") -> str:
    """The URL of a SQLite file under `tmp_path`."""
    return f"sqlite+aiosqlite:///{tmp_path / name}"


def database_url_for(request: pytest.FixtureRequest, tmp_path: Path, name: str = "test.db") -> str:
    """The URL of the parametrised database: a SQLite file under `tmp_path`, or a new empty
    PostgreSQL database (``pg_database``) when ``request.param == "postgres"``."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_database"))
    return sqlite_url(tmp_path, name)


@asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    """The service's engine over `url`, disposed after the block."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def migrated_engine(
    url: str, migrations: Path, version_table: str
) -> AsyncIterator[AsyncEngine]:
    """`url` upgraded to the head of `migrations` (the schema the app runs on), then its
    engine, disposed after the block."""
    await upgrade(url, migrations, version_table)
    async with engine_for(url) as engine:
        yield engine


@contextmanager
def hypothesis_runner(
    url: str, migrations: Path, version_table: str
) -> Iterator[tuple[asyncio.Runner, AsyncEngine]]:
    """For a property test (sync ``@given`` function) over a database: `url` upgraded to the
    head of `migrations`, an event loop of its own to run each example on, and the engine
    (created and disposed on that loop). One database serves every example."""
    with asyncio.Runner() as runner:
        runner.run(upgrade(url, migrations, version_table))
        engine = create_engine(url)
        try:
            yield runner, engine
        finally:
            runner.run(engine.dispose())


__all__ = [
    "DATABASES",
    "database_url_for",
    "engine_for",
    "hypothesis_runner",
    "migrated_engine",
    "sqlite_url",
    "upgrade",
]
