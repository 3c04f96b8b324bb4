from __future__ import annotations

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
