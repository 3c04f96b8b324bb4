"""RequestContextMiddleware inside another (a service app mounted in the embedded gateway): one
access line per request — the outer one's — while the inner app still records its metrics."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service_defaults import context, middleware
from service_defaults.metrics import HTTP_REQUESTS


class AccessLines:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append({"event": event, **kw})

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append({"event": event, **kw})


@pytest.fixture
def access(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> AccessLines:
    caplog.set_level(logging.INFO, logger="nexo.access")  # access lines are on at INFO
    lines = AccessLines()
    monkeypatch.setattr(middleware, "access_log", lines)
    return lines


def nested_apps() -> FastAPI:
    inner = FastAPI()

    @inner.get("/items/{item}")
    async def item(item: int) -> dict[str, Any]:
        return {"item": item, "request_id": context.request_id.get()}

    @inner.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    inner.add_middleware(middleware.RequestContextMiddleware, service="nested-inner")
    outer = FastAPI()
    outer.mount("/api/inner", inner)
    outer.add_middleware(middleware.RequestContextMiddleware, service="nested-outer")
    return outer


def inner_count(route: str, status: str) -> float:
    value = HTTP_REQUESTS.labels("nested-inner", "GET", route, status)._value.get()
    return float(value)


async def test_one_access_line_per_request_and_inner_metrics(access: AccessLines) -> None:
    before = inner_count("/items/{item}", "200")
    transport = httpx.ASGITransport(app=nested_apps())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/api/inner/items/7", headers={"X-Request-ID": "rid-123"})
    assert r.status_code == 200
    assert r.json() == {"item": 7, "request_id": "rid-123"}
    assert r.headers["x-request-id"] == "rid-123"
    assert [(x["service"], x["path"], x["status"]) for x in access.lines] == [
        ("nested-outer", "/api/inner/items/7", 200)
    ]
    assert inner_count("/items/{item}", "200") == before + 1


async def test_inner_failure_answered_and_logged_once_by_the_outer(access: AccessLines) -> None:
    before = inner_count("/boom", "500")
    transport = httpx.ASGITransport(app=nested_apps(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/api/inner/boom")
    assert r.status_code == 500
    assert "boom" not in r.text
    requests = [x for x in access.lines if x["event"] == "request"]
    assert [(x["service"], x["status"]) for x in requests] == [("nested-outer", 500)]
    assert inner_count("/boom", "500") == before + 1
