"""App/client factories, tokens and the small answer/polling helpers of the API suites."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from service_defaults.auth import issue_token
from service_defaults.settings import CommonSettings


@asynccontextmanager
async def app_client(
    app: Any,
    base_url: str,
    *,
    startup_timeout: float = 60,
    shutdown_timeout: float = 30,
    raise_app_exceptions: bool = True,
    **client_options: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over `app` (e.g. a service's ``create_app(settings)``) running inside
    its lifespan (startup before the first request, shutdown after the block): in-process,
    no socket."""
    async with LifespanManager(
        app, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout
    ) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, **client_options
        ) as client:
            yield client


def bearer(settings: CommonSettings, sub: str, *roles: str) -> dict[str, str]:
    """The ``Authorization`` header of a test token for `sub` with `roles` (signed with the
    key `settings` verify with)."""
    return {"Authorization": f"Bearer {issue_token(settings, sub, roles)}"}


async def ok(r: httpx.Response, status: int = 200) -> Any:
    """The JSON body of an answer that must have `status` (None when it has no body)."""
    assert r.status_code == status, r.text
    return r.json() if r.content else None


PROBLEM = "application/problem+json"


def problem(r: httpx.Response, status: int, code: str, field: str | None = None) -> Any:
    """The body of a problem+json answer with `status` whose type ends with `code` (and, when
    given, whose field or one of whose errors' fields contains `field`)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["type"].endswith("/" + code), body
    assert body["status"] == status
    if field is not None:
        fields = [e.get("field") for e in body.get("errors", [])] + [body.get("field")]
        assert any(f is not None and field in f for f in fields), body
    return body


async def until(
    cond: Callable[[], Awaitable[bool] | bool], deadline_s: float = 10.0, what: str = ""
) -> None:
    """Poll `cond` until it holds; fail after `deadline_s` (never a fixed sleep)."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            suffix = f": {what}" if what else ""
            raise AssertionError(f"condition not met before the deadline{suffix}")
        await asyncio.sleep(0.02)
