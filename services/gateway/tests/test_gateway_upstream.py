"""The proxy's data path against a real upstream server: keep-alive reuse, request bodies
read whole and response bodies streamed, framing and hop-by-hop headers, raw paths, connection
bounds, time bounds and connections the server closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.main import create_app
from gateway.settings import GatewaySettings
from gateway.upstream import UpstreamPool

from .gateway_testkit import bearer, free_port, proxy_gateway, serve

ADMIN = bearer(["admin"])


class Upstream:
    """A small ASGI service: ``/echo`` answers what it received, ``/stream`` sends two chunks
    with a pause the test controls, ``/slow`` never answers, ``/peers`` counts connections."""

    def __init__(self) -> None:
        self.release_second_chunk = asyncio.Event()
        self.release_slow = asyncio.Event()
        self.peers: set[tuple[str, int]] = set()
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.peers.add(tuple(scope["client"]))
        path = scope["path"]
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            await self.release_second_chunk.wait()
            await send({"type": "http.response.body", "body": b"second", "more_body": False})
            return
        if path == "/slow":
            await self.release_slow.wait()
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            if path == "/hold":
                await asyncio.sleep(0.05)
            body = json.dumps(
                {
                    "method": scope["method"],
                    "raw_path": scope["raw_path"].decode(),
                    "query": scope["query_string"].decode(),
                    "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                    "body": b"".join(chunks).decode(),
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 201,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-upstream", b"yes"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            self.in_flight -= 1


@dataclass
class Proxied:
    base: str
    """the gateway's /api/evidence"""
    upstream: Upstream
    upstream_port: int


@pytest.fixture
async def proxied() -> AsyncIterator[Proxied]:
    """The gateway in proxy mode served by uvicorn, evidence pointing at :class:`Upstream`."""
    upstream = Upstream()
    async with proxy_gateway(upstream, proxy_timeout=0.5, proxy_max_connections=2) as (
        gw_port,
        up_port,
    ):
        try:
            yield Proxied(f"http://127.0.0.1:{gw_port}/api/evidence", upstream, up_port)
        finally:  # let the held requests end before the servers stop
            upstream.release_second_chunk.set()
            upstream.release_slow.set()


async def test_headers_paths_and_bodies_are_relayed(proxied: Proxied) -> None:
    base = proxied.base
    async with httpx.AsyncClient(headers=ADMIN, timeout=5) as client:
        r = await client.get(f"{base}/echo/a%2Fb%20c?x=1&y=%C3%A9", headers={"Connection": "close"})
        assert r.status_code == 201, r.text
        assert r.headers["x-upstream"] == "yes"
        assert int(r.headers["content-length"]) == len(r.content)
        seen = r.json()
        assert seen["raw_path"] == "/echo/a%2Fb%20c", "percent-encoding kept"
        assert seen["query"] == "x=1&y=%C3%A9"
        names = [k for k, _ in seen["headers"]]
        assert "connection" not in names, "hop-by-hop headers are not forwarded"
        assert dict(seen["headers"])["host"] == f"127.0.0.1:{proxied.upstream_port}"
        assert dict(seen["headers"])["x-forwarded-for"] == "127.0.0.1"
        assert dict(seen["headers"])["authorization"] == ADMIN["Authorization"]
        assert "x-request-id" in names
        assert "traceparent" in names

        # a POST with a known length and one streamed chunked: both arrive whole
        r = await client.post(f"{base}/echo", content=b"x" * 70_000)
        assert r.json()["body"] == "x" * 70_000
        assert dict(r.json()["headers"])["content-length"] == "70000"

        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part

        r = await client.post(f"{base}/echo", content=parts())
        assert r.json()["body"] == "one,two,three"
        # read whole before it is forwarded (a truncated body must never reach the service)
        assert dict(r.json()["headers"])["content-length"] == "13"
        assert "transfer-encoding" not in dict(r.json()["headers"])

        # an idempotent request's body is buffered (it may be sent again) and still arrives
        r = await client.request("DELETE", f"{base}/echo", content=b"gone")
        assert r.json()["method"] == "DELETE"
        assert r.json()["body"] == "gone"


async def test_response_is_streamed_as_it_arrives(proxied: Proxied) -> None:
    base, upstream = proxied.base, proxied.upstream
    async with (
        httpx.AsyncClient(headers=ADMIN, timeout=5) as client,
        client.stream("GET", f"{base}/stream") as r,
    ):
        assert r.status_code == 200
        chunks = r.aiter_raw()
        # the second chunk is only produced after the first reached us
        assert await asyncio.wait_for(anext(chunks), 5) == b"first;"
        upstream.release_second_chunk.set()
        rest = b"".join([c async for c in chunks])
        assert rest == b"second"


async def test_keep_alive_and_connection_bound(proxied: Proxied) -> None:
    base, upstream = proxied.base, proxied.upstream
    upstream.peers.clear()  # the gateway's own OpenAPI fetch at startup
    async with httpx.AsyncClient(headers=ADMIN, timeout=5) as client:
        for _ in range(5):
            assert (await client.get(f"{base}/echo")).status_code == 201
        assert len(upstream.peers) == 1, "sequential requests reuse one upstream connection"

        rs = await asyncio.gather(*(client.get(f"{base}/hold") for _ in range(8)))
        assert [r.status_code for r in rs] == [201] * 8
        assert upstream.max_in_flight <= 2, "proxy_max_connections bounds concurrent requests"
        assert len(upstream.peers) <= 2


async def test_slow_upstream_is_504_within_the_time_bound(proxied: Proxied) -> None:
    base = proxied.base
    async with httpx.AsyncClient(headers=ADMIN, timeout=5) as client:
        r = await client.get(f"{base}/slow")
        assert r.status_code == 504
        assert r.json()["code"] == "upstream-timeout"
        assert r.elapsed.total_seconds() < 2.0
        # the timed-out connection is not reused: the next request is fine
        assert (await client.get(f"{base}/echo")).status_code == 201


async def test_pool_drops_an_idle_connection_closed_by_the_server() -> None:
    port = free_port()
    upstream = Upstream()
    pool = UpstreamPool(f"http://127.0.0.1:{port}", max_connections=1, timeout=5)
    try:
        async with serve(upstream, port):
            response = await pool.send("GET", b"/echo", [])
            assert json.loads(b"".join([c async for c in response.stream]))["method"] == "GET"
            await response.aclose()
            assert pool.idle_connections == 1, "a complete exchange keeps its connection"
        # uvicorn closed the idle keep-alive connection on shutdown; a new server listens
        async with serve(upstream, port):
            response = await pool.send("GET", b"/echo", [])
            assert response.status == 201
            await response.aclose()
            assert pool.idle_connections == 0, "a response left unread closes its connection"
    finally:
        await pool.aclose()


async def test_pool_errors_are_httpcore_errors() -> None:
    pool = UpstreamPool(f"http://127.0.0.1:{free_port()}", connect_timeout=1, timeout=1)
    with pytest.raises(httpcore.ConnectError):
        await pool.send("GET", b"/", [])
    with pytest.raises(ValueError, match="http"):
        UpstreamPool("ftp://example/")


async def test_pools_live_with_the_lifespan() -> None:
    ports = [free_port() for _ in range(3)]
    settings = GatewaySettings(
        env="test",
        mode="proxy",
        evidence_url=f"http://127.0.0.1:{ports[0]}",
        sales_url=f"http://127.0.0.1:{ports[1]}",
        orders_url=f"http://127.0.0.1:{ports[2]}",
    )
    app = create_app(settings)
    assert app.state.proxy.pools == {}, "no pools before the lifespan"
    async with LifespanManager(app):
        assert set(app.state.proxy.pools) == {f"http://127.0.0.1:{p}" for p in ports}
    assert app.state.proxy.pools == {}


async def test_write_on_a_connection_the_server_closed_is_a_write_error() -> None:
    """A service killed between checkout and write: on uvloop (what the gateway runs) writing
    raised RuntimeError there, which reached the client as a 500 (chaos kill-sales); it must be
    httpcore's WriteError (a 502 with Retry-After)."""
    import uvloop

    from gateway.upstream import AsyncioStream

    async def scenario() -> BaseException | None:
        closed = asyncio.Event()

        async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()
            closed.set()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = AsyncioStream(reader, writer)
        try:
            await asyncio.wait_for(closed.wait(), 5)
            writer.transport.close()  # what the loop does once it sees the peer's reset
            await writer.wait_closed()
            await stream.write(b"POST /ventas HTTP/1.1\r\n\r\n", timeout=1)
        except BaseException as exc:
            return exc
        finally:
            await stream.aclose()
            server.close()
            await server.wait_closed()
        return None

    raised = await asyncio.to_thread(uvloop.run, scenario())
    assert isinstance(raised, httpcore.WriteError), repr(raised)
