"""The unit of work of a route: one transaction, committed at a clean exit, rolled back on an
error, with hooks (relay wake-up, cache invalidation) that run only after a successful commit.

    async with unit_of_work_for(request, session) as uow:
        result = await use_case(session, ...)      # use cases never commit
        uow.after_commit(cache.invalidate)        # optional, besides the relay wake-up

Inside a keyed request (Idempotency-Key) the commit is deferred to the route wrapper, which
adds the key row to the same transaction first (:func:`service_defaults.idempotency.commit`);
the hooks then run after that commit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from types import TracebackType

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service_defaults import idempotency

Hook = Callable[[], None]


class UnitOfWork:
    """``async with UnitOfWork(session):`` — commit at a clean exit, roll back on an error;
    :meth:`after_commit` hooks run after a successful commit only, in registration order."""

    __slots__ = ("hooks", "session")

    def __init__(self, session: AsyncSession, hooks: list[Hook] | None = None) -> None:
        self.session = session
        self.hooks: list[Hook] = hooks if hooks is not None else []

    def after_commit(self, hook: Hook) -> None:
        self.hooks.append(hook)

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await idempotency.commit(self.session, *self.hooks)
            return
        with suppress(Exception):  # the error being raised is the one worth reporting
            await self.session.rollback()


def unit_of_work(session: AsyncSession, *hooks: Hook) -> UnitOfWork:
    """A unit of work on `session` with `hooks` to run after its commit."""
    return UnitOfWork(session, list(hooks))


def unit_of_work_for(request: Request, session: AsyncSession, *hooks: Hook) -> UnitOfWork:
    """A route's unit of work: `hooks`, then the app's relay wake-up, after the commit."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return UnitOfWork(session, list(hooks))
    return UnitOfWork(session, [*hooks, runtime.wake_relay])
