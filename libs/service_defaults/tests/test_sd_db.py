from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from service_defaults.db import (
    DatabaseUnreachable,
    check_database,
    create_engine,
    session_factory,
    wait_for_database,
)


async def test_sqlite_pragmas_and_parent_dir(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "x.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        assert db.parent.is_dir()
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
        await check_database(engine)
        maker = session_factory(engine)
        async with maker() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
        assert maker.kw["expire_on_commit"] is False
    finally:
        await engine.dispose()


async def test_unreachable_database_message_masks_password() -> None:
    engine = create_engine("postgresql+asyncpg://nexo:topsecret@127.0.0.1:1/nexo")
    try:
        with pytest.raises(DatabaseUnreachable) as info:
            await wait_for_database(engine, env_var="DEMO_DATABASE_URL", deadline=0.5)
    finally:
        await engine.dispose()
    msg = str(info.value)
    assert msg.startswith(
        "database unreachable: DEMO_DATABASE_URL=postgresql+asyncpg://nexo:***@127.0.0.1:1/nexo ("
    )
    assert "topsecret" not in msg
    assert "\n" not in msg


@pytest.mark.integration
@pytest.mark.parametrize("ping_after_idle_s", [0.0, 3600.0])
async def test_pooled_connection_killed_by_the_server_is_replaced(
    pg_database: str, ping_after_idle_s: float
) -> None:
    """No ping per checkout, yet a pooled connection the server terminated is never handed out:
    replaced after the idle ping (0 s) or as soon as the driver saw its socket close."""
    engine = create_engine(pg_database, pool_size=1, ping_after_idle_s=ping_after_idle_s)
    killer = create_engine(pg_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
        async with killer.connect() as conn:
            assert (await conn.execute(text(f"SELECT pg_terminate_backend({pid})"))).scalar()
        if ping_after_idle_s > 0:  # only the closed socket can tell: wait until the driver saw it
            deadline = time.monotonic() + 10
            while not driver.is_closed():
                assert time.monotonic() < deadline, "the driver never saw the socket close"
                await asyncio.sleep(0.01)
        async with engine.connect() as conn:
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        assert new_pid != pid
    finally:
        await engine.dispose()
        await killer.dispose()
