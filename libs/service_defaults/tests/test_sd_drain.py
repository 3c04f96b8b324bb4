"""SIGTERM drain: readiness answers 503 from the moment the process starts draining."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service_defaults import health
from service_defaults.health import begin_draining, health_router, reset_draining
from service_defaults.runner import DrainingServer


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_draining()
    yield
    reset_draining()


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(health_router())
    app.state.started = True
    return app


async def test_readiness_is_503_while_draining_and_liveness_stays_200() -> None:
    app = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/health/ready")).status_code == 200
        begin_draining()
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["shutdown"]["status"] == "draining"
        assert (await client.get("/health/live")).status_code == 200


def test_first_signal_drains_then_exits_second_exits_at_once() -> None:
    server = DrainingServer(uvicorn.Config(_app()), drain_seconds=30)
    server.handle_exit(signal.SIGTERM, None)
    assert health.is_draining()
    assert not server.should_exit  # still serving during the drain
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit


def test_without_drain_seconds_it_exits_at_once_but_still_reports_draining() -> None:
    server = DrainingServer(uvicorn.Config(_app()), drain_seconds=0)
    server.handle_exit(signal.SIGTERM, None)
    assert health.is_draining()
    assert server.should_exit
