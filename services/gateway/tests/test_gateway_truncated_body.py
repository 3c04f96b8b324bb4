"""A client that disconnects before its request body is complete: the gateway forwards
nothing (the upstream never sees a request), answers nothing, logs no error (499 at debug
level) — in proxy mode over real sockets, and in the embedded mode for a mounted service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from starlette.types import Message

from gateway.main import create_app
from gateway.settings import GatewaySettings

from .gateway_testkit import bearer, free_port, proxy_gateway, serve, wait_for

ADMIN = bearer(["admin"])


def closed_requests() -> float:
    """Requests the gateway recorded as 499 (client closed the request)."""
    return sum(
        s.value
        for metric in REGISTRY.collect()
        if metric.name == "nexo_http_requests"
        for s in metric.samples
        if s.name == "nexo_http_requests_total"
        and s.labels["status"] == "499"
        and s.labels["service"] == "gateway"
    )


@dataclass
class Recording:
    """An upstream that records every request it is handed (uvicorn calls the app as soon
    as the request head is in, so a forwarded partial request would show up here)."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/openapi.json":  # the gateway's own fetch at start-up
            body = b'{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}'
        else:
            self.requests.append((scope["method"], scope["path"]))
            while (await receive()).get("more_body", False):
                pass
            body = b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class Proxy:
    port: int
    upstream: Recording


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    upstream = Recording()
    async with proxy_gateway(upstream) as (gw_port, _):
        yield Proxy(gw_port, upstream)


async def send_and_close(port: int, head: str, body: bytes) -> bytes:
    """Send a request head and (part of) a body on a raw socket, then close it; return what
    arrived before the close (nothing is expected)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.replace("\n", "\r\n").encode() + body)
    await writer.drain()
    try:
        received = await asyncio.wait_for(reader.read(65536), 0.2)
    except TimeoutError:
        received = b""
    writer.close()
    await writer.wait_closed()
    return received


def head(port: int, framing: str, extra: str = "") -> str:
    return (
        f"POST /api/evidence/things HTTP/1.1\n"
        f"Host: 127.0.0.1:{port}\n"
        f"Authorization: {ADMIN['Authorization']}\n"
        f"Content-Type: application/json\n"
        f"{extra}{framing}\n"
    )


async def test_short_body_is_never_forwarded(
    proxy: Proxy, error_logs: list[logging.LogRecord]
) -> None:
    port = proxy.port
    before = closed_requests()
    cases = [
        head(port, "Content-Length: 1000\n"),  # streamed straight to the proxy
        head(port, "Content-Length: 1000\n", "Idempotency-Key: k-1\n"),  # read by the gate
        head(port, "Transfer-Encoding: chunked\n"),  # read by the gate, no last chunk
    ]
    bodies = [b'{"nombre": "', b'{"nombre": "', b"64\r\n" + b'{"nombre": "']
    for i, (h, b) in enumerate(zip(cases, bodies, strict=True), start=1):
        received = await send_and_close(port, h, b)
        assert received == b"", received

        async def recorded(n: int = i) -> bool:
            return closed_requests() - before >= n

        await wait_for(recorded, f"the gateway recording disconnect {i} as 499")
    assert proxy.upstream.requests == []
    assert [r.getMessage() for r in error_logs] == []

    # the same request complete is forwarded: the upstream would have shown a partial one
    async with httpx.AsyncClient(headers=ADMIN, timeout=5) as client:
        r = await client.post(f"http://127.0.0.1:{port}/api/evidence/things", json={"n": 1})
    assert r.status_code == 200, r.text
    assert proxy.upstream.requests == [("POST", "/things")]


async def test_embedded_service_sees_disconnect_without_error(
    tmp_path: Path, error_logs: list[logging.LogRecord]
) -> None:
    """Embedded mode: the sales app mounted in the gateway reads the body itself (its hot
    POS route) and gets ``http.disconnect`` mid-body."""
    app = create_app(GatewaySettings(data_dir=tmp_path, env="test", rate_limit_per_second=0))
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"carrito": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        before = closed_requests()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/sales/ventas",
            "raw_path": b"/api/sales/ventas",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"gateway"),
                (b"authorization", bearer(["sales.vendedor"])["Authorization"].encode()),
                (b"content-type", b"application/json"),
                (b"content-length", b"500"),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("gateway", 80),
        }
        await manager.app(scope, receive, send)
        assert closed_requests() - before == 1
    assert [r.getMessage() for r in error_logs] == []
    assert [
        m["status"] for m in sent if m["type"] == "http.response.start" and m["status"] >= 500
    ] == []


async def test_upstream_reset_after_the_request_is_502_with_retry_after() -> None:
    """The service took the request and the connection broke before an answer: 502 (it may
    have acted on it), problem+json, with Retry-After."""
    seen = asyncio.Event()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"POST"):
            seen.set()
        writer.transport.abort()  # RST, no answer

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    up_port = server.sockets[0].getsockname()[1]
    settings = GatewaySettings(
        mode="proxy",
        env="test",
        evidence_url=f"http://127.0.0.1:{up_port}",
        sales_url="http://127.0.0.1:1",
        orders_url="http://127.0.0.1:1",
        rate_limit_per_second=0,
    )
    gw_port = free_port()
    try:
        async with (
            serve(create_app(settings), gw_port),
            httpx.AsyncClient(headers=ADMIN, timeout=5) as client,
        ):
            r = await client.post(f"http://127.0.0.1:{gw_port}/api/evidence/things", json={})
    finally:
        server.close()
        await server.wait_closed()
    assert seen.is_set()
    assert r.status_code == 502, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"].isdigit()
    assert r.json()["code"] == "upstream-unavailable"
