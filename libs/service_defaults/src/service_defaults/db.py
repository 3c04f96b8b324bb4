"""Async SQLAlchemy engine and sessions (PostgreSQL via asyncpg, SQLite via aiosqlite)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import StaticPool

from service_defaults.settings import mask_url

SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUnreachable(RuntimeError):
    """Raised at start-up when the database cannot be reached; str() is one clear line."""


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create an AsyncEngine with sensible settings for the URL's backend. No I/O happens here
    except creating the parent directory of a SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        kwargs: dict[str, Any] = {"echo": echo}
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    return _create_async_engine(
        url,
        echo=echo,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={"timeout": 10, "command_timeout": 60},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(engine: AsyncEngine, *, limit: float = 2.0) -> None:
    """`SELECT 1` bounded by `limit` seconds; raises on failure (readiness check)."""
    async with asyncio.timeout(limit), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def wait_for_database(
    engine: AsyncEngine,
    *,
    env_var: str = "DATABASE_URL",
    deadline: float = 10.0,
    attempt_timeout: float = 3.0,
) -> None:
    """Start-up check: retry `SELECT 1` until `deadline` seconds; then raise
    :class:`DatabaseUnreachable` with one line naming the (masked) URL and the reason."""
    end = time.monotonic() + deadline
    delay = 0.2
    while True:
        try:
            await check_database(engine, limit=attempt_timeout)
            return
        except Exception as exc:  # the reason goes into the message
            if time.monotonic() + delay >= end:
                url = mask_url(engine.url.render_as_string(hide_password=False))
                reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
                raise DatabaseUnreachable(
                    f"database unreachable: {env_var}={url} ({reason})"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
