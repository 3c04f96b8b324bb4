"""FastAPI dependencies for routes: DB session, messaging runtime, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service_defaults.idempotency import open_session
from service_defaults.settings import CommonSettings


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] | None = getattr(
        request.app.state, "sessionmaker", None
    )
    if maker is None:
        raise RuntimeError("app.state.sessionmaker is not set (lifespan not started?)")
    return maker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """An AsyncSession from ``request.app.state.sessionmaker``; the route commits through
    :func:`service_defaults.idempotency.commit` (a keyed request's commit is deferred to the
    route wrapper, which then owns and closes the session)."""
    async with open_session(get_sessionmaker(request)) as session:
        yield session


def get_runtime(request: Request) -> Any:
    """The service's ``MessagingRuntime`` (``None`` when messaging is unavailable)."""
    return getattr(request.app.state, "runtime", None)


def get_settings(request: Request) -> CommonSettings:
    settings: CommonSettings = request.app.state.settings
    return settings
