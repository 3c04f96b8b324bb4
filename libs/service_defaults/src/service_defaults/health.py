"""Liveness, readiness (database + registered checks) and Prometheus metrics endpoints."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service_defaults.db import check_database
from service_defaults.metrics import render_latest

# A readiness check returns a dict (details), a bool, or None; it fails by raising, by
# returning False, or by a dict with ``ok: False`` / ``status`` not in the OK set.
ReadyCheck = Callable[[], Any]
CHECK_TIMEOUT = 3.0
_OK_STATUSES = frozenset({"ok", "up", "ready", "running", "healthy", "pass"})


class Readiness(BaseModel):
    """The ``/health/ready`` answer: ``ok`` (200) or ``failing`` (503), each check's result."""

    status: Literal["ok", "failing"]
    checks: dict[str, Any]


def _interpret(result: Any) -> tuple[bool, Any]:
    if result is None or result is True:
        return True, "ok"
    if result is False:
        return False, "failing"
    if isinstance(result, Mapping):
        if result.get("ok") is False or result.get("healthy") is False:
            return False, dict(result)
        status = result.get("status")
        if isinstance(status, str) and status.lower() not in _OK_STATUSES:
            return False, dict(result)
        return True, dict(result)
    return True, result


async def run_check(check: ReadyCheck, limit: float = CHECK_TIMEOUT) -> tuple[bool, Any]:
    try:
        async with asyncio.timeout(limit):
            result = check()
            if inspect.isawaitable(result):
                result = await result
        return _interpret(result)
    except TimeoutError:
        return False, {"status": "failing", "error": f"timed out after {limit}s"}
    except Exception as exc:
        return False, {"status": "failing", "error": f"{type(exc).__name__}: {exc}"[:300]}


_draining_since: float | None = None


def begin_draining() -> None:
    """The process is shutting down: readiness answers 503 from now on (one app per process;
    in embedded mode the mounted services share the gateway's process and fate)."""
    global _draining_since
    if _draining_since is None:
        _draining_since = time.monotonic()


def is_draining() -> bool:
    return _draining_since is not None


def reset_draining() -> None:
    """Tests only: forget a drain begun in this process."""
    global _draining_since
    _draining_since = None


async def readiness(app: FastAPI) -> tuple[bool, dict[str, Any]]:
    """Run the app's readiness checks: the database (when it has one) plus
    ``app.state.ready_checks`` (name -> callable); always failing once draining."""
    if _draining_since is not None:
        since = round(time.monotonic() - _draining_since, 1)
        return False, {"shutdown": {"status": "draining", "since_s": since}}
    state = app.state
    if not getattr(state, "started", False):
        return False, {"startup": {"status": "starting"}}
    checks: dict[str, ReadyCheck] = {}
    engine = getattr(state, "engine", None)
    if engine is not None:

        async def database() -> None:
            await check_database(engine)

        checks["database"] = database
    checks.update(getattr(state, "ready_checks", {}) or {})
    names = list(checks)
    results = await asyncio.gather(*(run_check(checks[n]) for n in names))
    ok = all(r[0] for r in results)
    return ok, {n: r[1] for n, r in zip(names, results, strict=True)}


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="Liveness: the process is up")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/health/ready",
        summary="Readiness: database and messaging are usable",
        response_model=Readiness,
        responses={503: {"description": "Not ready; the failing check is named"}},
    )
    async def ready(request: Request) -> JSONResponse:
        ok, checks = await readiness(request.app)
        return JSONResponse(
            {"status": "ok" if ok else "failing", "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    return router


def add_ready_check(app: FastAPI, name: str, check: Callable[[], Any | Awaitable[Any]]) -> None:
    checks: dict[str, ReadyCheck] = getattr(app.state, "ready_checks", None) or {}
    checks[name] = check
    app.state.ready_checks = checks
