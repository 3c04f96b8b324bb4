"""The unit of work (`service_defaults.uow`): commit at a clean exit, roll back on an error,
after-commit hooks only after a successful commit; the route's version adds the relay wake-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_defaults.db import create_engine
from service_defaults.uow import UnitOfWork, unit_of_work, unit_of_work_for


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


meta = Base.metadata
rows = meta.tables["rows"]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    yield engine
    await engine.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(rows))).scalar_one())


async def test_a_clean_exit_commits_then_runs_the_hooks_in_order(engine: AsyncEngine) -> None:
    seen: list[str] = []
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        async with unit_of_work(session, lambda: seen.append("first")) as uow:
            await session.execute(rows.insert().values(id=1))
            uow.after_commit(lambda: seen.append(f"second, rows={session.in_transaction()}"))
            assert seen == []
        assert seen == ["first", "second, rows=False"]
    assert await _count(engine) == 1


async def test_an_error_rolls_back_and_runs_no_hook(engine: AsyncEngine) -> None:
    seen: list[str] = []
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:

        async def use_case() -> None:
            async with unit_of_work(session) as uow:
                await session.execute(rows.insert().values(id=1))
                uow.after_commit(lambda: seen.append("hook"))
                raise LookupError("rule violated")

        with pytest.raises(LookupError):
            await use_case()
        assert not session.in_transaction()
    assert seen == []
    assert await _count(engine) == 0


async def test_a_failed_commit_runs_no_hook(engine: AsyncEngine) -> None:
    seen: list[str] = []
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        await session.execute(rows.insert().values(id=1))
        await session.commit()
    async with maker() as session:

        async def duplicate() -> None:
            async with unit_of_work(session, lambda: seen.append("hook")):
                session.add(Row(id=1))  # the duplicate key fails at the commit's flush

        with pytest.raises(IntegrityError, match="UNIQUE"):
            await duplicate()
    assert seen == []
    assert await _count(engine) == 1


def _request(runtime: object) -> SimpleNamespace:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(runtime=runtime)))


async def test_the_route_unit_of_work_wakes_the_relay_after_the_given_hooks() -> None:
    seen: list[str] = []
    runtime = SimpleNamespace(wake_relay=lambda: seen.append("relay"))
    session = AsyncSession()
    uow = unit_of_work_for(_request(runtime), session, lambda: seen.append("cache"))  # type: ignore[arg-type]
    for hook in uow.hooks:
        hook()
    assert seen == ["cache", "relay"]
    alone = unit_of_work_for(_request(None), session)  # type: ignore[arg-type]
    assert isinstance(alone, UnitOfWork)
    assert alone.hooks == []
