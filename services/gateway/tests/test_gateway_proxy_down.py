"""Proxy mode with the three services as real uvicorn servers: every flow goes through, and
with one service stopped the gateway answers 503 problem+json quickly while the others work."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, suppress
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from evidence.main import create_app as create_evidence
from evidence.settings import EvidenceSettings
from gateway.main import create_app
from gateway.settings import GatewaySettings
from orders.main import create_app as create_orders
from orders.settings import OrdersSettings
from sales.api import VENDEDOR
from sales.main import create_app as create_sales
from sales.settings import SalesSettings

from .gateway_testkit import bearer, free_port, serve


async def test_stopped_service_is_503_fast_others_keep_working(tmp_path: Path) -> None:
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"

    ports = {s: free_port() for s in ("evidence", "sales", "orders")}
    apps = {
        "evidence": create_evidence(EvidenceSettings(database_url=db("e"), env="test")),
        "sales": create_sales(SalesSettings(database_url=db("s"), env="test")),
        "orders": create_orders(OrdersSettings(database_url=db("o"), env="test")),
    }
    async with AsyncExitStack() as stack:
        for name in ("evidence", "orders"):
            await stack.enter_async_context(serve(apps[name], ports[name]))
        sales_stack = AsyncExitStack()
        await sales_stack.enter_async_context(serve(apps["sales"], ports["sales"]))
        stack.push_async_callback(sales_stack.aclose)
        gateway = create_app(
            GatewaySettings(
                mode="proxy",
                env="test",
                proxy_timeout=5,
                **{f"{s}_url": f"http://127.0.0.1:{p}" for s, p in ports.items()},
            )
        )
        manager = await stack.enter_async_context(LifespanManager(gateway))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw")
        )
        vendedor = bearer([VENDEDOR])

        # through the proxy: auth at the edge, a POST with an Idempotency-Key, a GET
        assert (await client.get("/api/sales/clientes")).status_code == 401
        post = {"nombre": "Proxy SA"}
        h = {**vendedor, "Idempotency-Key": "proxy-1"}
        created = await asyncio.gather(
            *(client.post("/api/sales/clientes", json=post, headers=h) for _ in range(3))
        )
        assert {r.status_code for r in created} == {201}
        assert len({r.content for r in created}) == 1
        listed = await client.get("/api/sales/clientes", params={"q": "Proxy"}, headers=vendedor)
        assert listed.status_code == 200
        assert len(listed.json()) == 1
        for name in ports:
            assert (await client.get(f"/api/{name}/health/ready")).status_code == 200

        # stop sales
        await sales_stack.aclose()
        for _ in range(3):
            started = time.monotonic()
            r = await client.get("/api/sales/clientes", headers=vendedor)
            elapsed = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "service-unavailable"
            assert "retry-after" in r.headers
            assert elapsed < 2.0
        started = time.monotonic()
        post_r = await client.post("/api/sales/clientes", json=post, headers=vendedor)
        assert post_r.status_code == 503
        assert time.monotonic() - started < 2.0

        # the others keep working
        for name in ("evidence", "orders"):
            r = await client.get(f"/api/{name}/health/ready")
            assert r.status_code == 200, r.text
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["sales"]["status"] == "failing"
        assert ready.json()["checks"]["orders"]["status"] == "ok"

        ops = (await client.get("/ops/api/health", headers=bearer(["ops"]))).json()
        assert ops["services"]["sales"]["status"] == "down"
        assert ops["services"]["evidence"]["status"] == "up"
        outbox = (await client.get("/ops/api/outbox", headers=bearer(["ops"]))).json()
        assert outbox["services"]["evidence"]["status"] == "ok"
        assert outbox["services"]["sales"]["status"] == "unknown"


async def test_slow_service_is_504() -> None:
    port = free_port()
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve(_Slow(), port))
        gateway = create_app(
            GatewaySettings(
                mode="proxy",
                env="test",
                proxy_timeout=0.5,
                evidence_url=f"http://127.0.0.1:{port}",
            )
        )
        manager = await stack.enter_async_context(LifespanManager(gateway))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw")
        )
        started = time.monotonic()
        r = await client.get("/api/evidence/anything", headers=bearer(["admin"]))
        assert r.status_code == 504
        assert r.headers["content-type"] == "application/problem+json"
        assert time.monotonic() - started < 2.0


class _Slow:
    """An ASGI app that accepts connections but never answers HTTP requests."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()

    async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()  # type: ignore[operator]
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
                elif message["type"] == "lifespan.shutdown":
                    self.stop.set()
                    await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
                    return
        with suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), 5)
