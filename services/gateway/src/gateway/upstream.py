"""A lean HTTP/1.1 keep-alive client for the proxy hot path (asyncio protocol + httptools).

httpx/httpcore cost the gateway more CPU per forwarded request than the service spends
answering it (request/headers models, cookies, auth and redirect layers, anyio streams, h11
in pure Python). The proxy needs none of that: it forwards raw bytes to a fixed loopback or
cluster URL. This client writes the request head in one ``write``, parses the answer with
``httptools`` (C), hands body chunks over without copies and keeps connections alive in a
per-upstream LIFO pool. httpx stays in use for the readiness/OpenAPI calls.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools


class UpstreamError(Exception):
    """Base: ``retryable`` is True when no byte of the answer arrived (safe to re-send an
    idempotent request)."""

    retryable = False


class UpstreamConnectError(UpstreamError):
    retryable = True


class UpstreamConnectTimeout(UpstreamConnectError):
    pass


class UpstreamProtocolError(UpstreamError):
    pass


class UpstreamReadTimeout(UpstreamError):
    pass


_HIGH_WATER = 256 * 1024


class _Connection(asyncio.Protocol):
    """One upstream connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.keep_alive = False
        self.head_done = False
        self.complete = False
        self.received = False
        self.error: UpstreamError | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - no upgrades proxied
            self._fail(UpstreamProtocolError("unexpected upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            err = UpstreamProtocolError("connection closed by upstream")
            err.retryable = not self.received
            self.error = err
        self._wake()

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if 100 <= self.status < 200:  # informational: wait for the real answer
            self.headers = []
            return
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200 and not self.head_done:
            return
        self.complete = True
        self._wake()

    # -- helpers
    def _fail(self, error: UpstreamError) -> None:
        self.error = error
        self.keep_alive = False
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, seconds: float) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self.waiter
        except TimeoutError:
            raise UpstreamReadTimeout("upstream did not answer in time") from None
        finally:
            self.waiter = None

    def abort(self) -> None:
        self.closed = True
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()


class UpstreamResponse:
    """Status, raw headers and the body as raw chunks (transfer coding removed)."""

    def __init__(self, pool: UpstreamPool, conn: _Connection, head_only: bool) -> None:
        self.pool = pool
        self.conn = conn
        self.status = conn.status
        self.headers = conn.headers
        self.head_only = head_only
        self._released = False

    @property
    def complete(self) -> bool:
        return self.head_only or self.conn.complete

    def take_buffered(self) -> bytes:
        """Whatever body bytes arrived so far (all of them when :attr:`complete`)."""
        conn = self.conn
        chunks = conn.chunks
        if not chunks:
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        conn.buffered = 0
        if conn.paused and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        return data

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            data = self.take_buffered()
            if data:
                yield data
            if self.complete:
                return
            if conn.error is not None:
                raise conn.error
            await conn._wait(self.pool.read_timeout)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        conn = self.conn
        if not self.head_only and conn.complete and conn.keep_alive and not conn.closed:
            self.pool._put(conn)
        else:
            conn.abort()


class UpstreamPool:
    """Keep-alive connections to one ``http://host:port`` upstream."""

    def __init__(
        self, base_url: str, *, connect_timeout: float, read_timeout: float, max_idle: int
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"lean upstream client only speaks http://, not {base_url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode("latin-1")
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: list[_Connection] = []

    def _put(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            conn._reset()
            self._idle.append(conn)
        else:
            conn.abort()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, protocol = await loop.create_connection(
                    _Connection, self.host, self.port
                )
        except TimeoutError:
            raise UpstreamConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise UpstreamConnectError(f"connect failed: {exc}") from None
        protocol.transport = transport  # uvloop may call connection_made only later
        return protocol

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes],
    ) -> UpstreamResponse:
        """Send one request and wait for the answer's head. ``target`` is the path and query;
        ``headers`` must not hold hop-by-hop headers (``Host`` and framing are added here)."""
        head = bytearray(
            b"%s %s%s HTTP/1.1\r\nhost: %s\r\n"
            % (
                method.encode("latin-1"),
                self.prefix.encode("latin-1"),
                target.encode("latin-1"),
                self.host_header,
            )
        )
        for name, value in headers:
            head += name + b": " + value + b"\r\n"
        streamed = True
        if isinstance(content, bytes | bytearray):
            streamed = False
            head += b"content-length: %d\r\n\r\n" % len(content) if content else b"\r\n"
        else:
            head += b"transfer-encoding: chunked\r\n\r\n"

        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, method, head, content, streamed)
            except UpstreamProtocolError as exc:
                # a kept-alive connection the upstream had just closed: try a fresh one
                if reused and exc.retryable and not streamed:
                    continue
                raise

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        head: bytearray,
        content: bytes | AsyncIterator[bytes],
        streamed: bool,
    ) -> UpstreamResponse:
        transport = conn.transport
        assert transport is not None
        try:
            if streamed:
                transport.write(bytes(head))
                assert not isinstance(content, bytes | bytearray)
                async for chunk in content:
                    if conn.closed:
                        break
                    if chunk:
                        transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if not conn.closed:
                    transport.write(b"0\r\n\r\n")
            else:
                assert isinstance(content, bytes | bytearray)
                transport.write(bytes(head + content) if content else bytes(head))
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.error
                await conn._wait(self.read_timeout)
        except BaseException:
            conn.abort()
            raise
        return UpstreamResponse(self, conn, head_only=method == "HEAD")

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()
