"""Shared helpers of the gateway tests: tokens, free ports, in-process uvicorn servers, the
sales catalogue a sale through the gateway needs (the generic harness is `nexo_testing`)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

import nexo_testing
from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_testing import ok
from service_defaults.auth import issue_token


def make_token(roles: Iterable[str], sub: str = "tester", **settings: Any) -> str:
    return issue_token(GatewaySettings(env="test", **settings), sub, list(roles))


def bearer(roles: Iterable[str], sub: str = "tester") -> dict[str, str]:
    return nexo_testing.bearer(GatewaySettings(env="test"), sub, *roles)


async def seed_sales_catalogue(
    client: httpx.AsyncClient, admin: dict[str, str], *, stock_actual: int, stock_minimo: int = 1
) -> dict[str, int]:
    """Through the gateway's ``/api/sales``: the laser rate, the 3 mm tabulador row, a product
    and a material; returns their ids (``p``, ``m``)."""
    base = "/api/sales"
    await ok(
        await client.put(
            f"{base}/configuracion/tarifa", json={"tarifa_laser_minuto": "15.00"}, headers=admin
        )
    )
    await ok(
        await client.put(
            f"{base}/configuracion/tabulador/3", json={"factor_costo": "450.0000"}, headers=admin
        )
    )
    p = await ok(
        await client.post(f"{base}/productos", json={"nombre": "Letrero"}, headers=admin), 201
    )
    material = {"descripcion": "M", "stock_actual": stock_actual, "stock_minimo": stock_minimo}
    m = await ok(await client.post(f"{base}/materiales", json=material, headers=admin), 201)
    return {"p": p["id_producto"], "m": m["id_material"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Any, port: int, startup_timeout: float = 60) -> AsyncIterator[uvicorn.Server]:
    """Run `app` on 127.0.0.1:`port` with uvicorn in this event loop until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.02)
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def proxy_gateway(upstream: Any, **settings: Any) -> AsyncIterator[tuple[int, int]]:
    """The gateway in proxy mode served by uvicorn with evidence pointing at `upstream` (an
    ASGI app, served too; sales and orders unreachable, no rate limit), until the block ends:
    yields (gateway port, upstream port)."""
    up_port, gw_port = free_port(), free_port()
    config = GatewaySettings(
        mode="proxy",
        env="test",
        evidence_url=f"http://127.0.0.1:{up_port}",
        sales_url="http://127.0.0.1:1",
        orders_url="http://127.0.0.1:1",
        rate_limit_per_second=0,
        **settings,
    )
    async with serve(upstream, up_port), serve(create_app(config), gw_port):
        yield gw_port, up_port


async def wait_for(probe: Callable[[], Awaitable[Any]], what: str, deadline_s: float = 10.0) -> Any:
    """Poll `probe` until it returns something truthy (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
