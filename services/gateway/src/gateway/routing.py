"""How the gateway reaches the services: mounted in-process (embedded) or proxied over HTTP.

Kept apart from ``main.py`` so later features (per-route auth, idempotency keys, rate limits,
ops dashboard) can wrap these apps without touching app creation.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.gate import BodyTooLarge, declared_length, read_body
from gateway.settings import SERVICES, GatewaySettings
from gateway.upstream import PooledResponse, UpstreamPool
from service_defaults.errors import problem_response
from service_defaults.health import readiness
from service_defaults.logging import get_logger
from service_defaults.settings import ServiceSettings, load_settings

log = get_logger("gateway.routing")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# The body is relayed raw (undecoded), so the upstream Content-Length stays valid; keeping it
# spares uvicorn a chunked re-encoding of every response.
RESPONSE_HOP_BY_HOP = frozenset(h.encode() for h in HOP_BY_HOP - {"content-length"})
# Content-Length is set again from the body actually forwarded
REQUEST_HOP_BY_HOP = frozenset(h.encode() for h in HOP_BY_HOP)


def service_prefix(service: str) -> str:
    return f"/api/{service}"


# ------------------------------------------------------------------------------ embedded


def embedded_transport(settings: GatewaySettings, memory_broker: Any) -> str:
    """``local`` (the durable event log) unless a memory broker is given or asked for."""
    return "local" if memory_broker is None and settings.transport == "local" else "memory"


def embedded_service_settings(
    settings: GatewaySettings, service: str, transport: str = "memory"
) -> ServiceSettings:
    """The service's settings from its own env vars, with the gateway's choices forced:
    SQLite under ``data_dir``, the transport (one event log file for all services), the
    gateway's env, logging and JWT settings."""
    module = importlib.import_module(f"{service}.settings")
    cls: type[ServiceSettings] = getattr(module, f"{service.capitalize()}Settings")
    return load_settings(
        cls,
        env=settings.env,
        database_url=settings.database_url(service),
        transport=transport,
        local_log_path=settings.event_log_path(),
        log_level=settings.log_level,
        log_json=settings.log_json,
        jwt_secret=settings.jwt_secret,
        jwt_public_key=settings.jwt_public_key,
        jwt_algorithm=settings.jwt_algorithm,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
        jwt_max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
    )


def build_embedded_apps(settings: GatewaySettings, memory_broker: Any) -> dict[str, FastAPI]:
    """Create (without I/O) the three service apps sharing one event log (or, when
    ``memory_broker`` is given, that in-memory broker)."""
    apps: dict[str, FastAPI] = {}
    transport = embedded_transport(settings, memory_broker)
    for service in SERVICES:
        main = importlib.import_module(f"{service}.main")
        apps[service] = main.create_app(
            embedded_service_settings(settings, service, transport), memory_broker=memory_broker
        )
    return apps


def mount_apps(app: FastAPI, apps: Mapping[str, ASGIApp]) -> None:
    for service, sub in apps.items():
        app.mount(service_prefix(service), sub, name=service)


def embedded_lifespan(apps: Mapping[str, FastAPI]) -> Callable[[FastAPI], Any]:
    """Starlette does not run lifespans of mounted apps: run them from the gateway's."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for service, sub in apps.items():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
                log.info("service started", service=service)
            yield

    return lifespan


def embedded_ready_check(sub: FastAPI) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def check() -> dict[str, Any]:
        ok, checks = await readiness(sub)
        return {"status": "ok" if ok else "failing", "checks": checks}

    return check


# ------------------------------------------------------------------------------ proxy


class ClientHolder:
    """The gateway's upstream clients, opened in the lifespan (no I/O when the app is built):
    one :class:`~gateway.upstream.UpstreamPool` per service URL for the proxied requests, and an
    httpx client for the gateway's own calls (readiness probes, OpenAPI documents)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.client: httpx.AsyncClient | None = None
        self.pools: dict[str, UpstreamPool] = {}
        self._urls: set[str] = set()

    def register(self, base_url: str) -> None:
        """Have a pool for `base_url` once the holder is open."""
        self._urls.add(base_url)

    def open(self) -> httpx.AsyncClient:
        s = self.settings
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.proxy_timeout, connect=s.proxy_connect_timeout),
            limits=httpx.Limits(
                max_connections=s.proxy_max_connections,
                max_keepalive_connections=s.proxy_max_connections,
            ),
            follow_redirects=False,
        )
        self.pools = {
            url: UpstreamPool(
                url,
                max_connections=s.proxy_max_connections,
                connect_timeout=s.proxy_connect_timeout,
                timeout=s.proxy_timeout,
            )
            for url in self._urls
        }
        return self.client

    async def close(self) -> None:
        pools, self.pools = self.pools, {}
        for pool in pools.values():
            await pool.aclose()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def lifespan(self) -> Callable[[FastAPI], Any]:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            self.open()
            try:
                yield
            finally:
                await self.close()

        return lifespan


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
BODYLESS_METHODS = frozenset({"GET", "HEAD"})
"""A body on these is refused (400), never read; a DELETE body is forwarded, within the limit."""
# worth another attempt for an idempotent request: the request never reached a live server, or
# a reused keep-alive connection turned out closed
RETRYABLE = (
    httpcore.ConnectError,
    httpcore.ConnectTimeout,
    httpcore.RemoteProtocolError,
    httpcore.ReadError,
)
CONNECT_FAILED = (httpcore.ConnectError, httpcore.ConnectTimeout)
UPSTREAM_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


class UpstreamState:
    """Per-service circuit flag: after a connect failure the service is answered 503 at once
    for ``open_seconds`` (then one request probes it again)."""

    def __init__(self, open_seconds: float) -> None:
        self.open_seconds = open_seconds
        self.down_until = 0.0
        self.last_error: str | None = None
        self.failures = 0

    def is_open(self) -> bool:
        return time.monotonic() < self.down_until

    def trip(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self.down_until = time.monotonic() + self.open_seconds

    def ok(self) -> None:
        self.failures = 0
        self.down_until = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "circuit": "open" if self.is_open() else "closed",
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
        }


class ProxyApp:
    """ASGI app forwarding every request under its mount point to `base_url`.

    The request body is read whole (at most ``max_body_bytes``) before anything is sent
    upstream: a client that disconnects or sends less than its Content-Length gets nothing
    forwarded — the service never sees a truncated request — and ``ClientDisconnect`` is
    raised (recorded as 499 at debug level by the request-context middleware). The response
    is streamed as it arrives.

    Failures (problem+json): connection refused / connect time-out — the request never reached
    the service — is 503 ``service-unavailable`` with ``Retry-After`` and trips the circuit;
    a connection reset or closed after the request was sent is 502 ``upstream-unavailable``
    with ``Retry-After`` (the service may or may not have acted on it: retry with the same
    ``Idempotency-Key``); a time-out 504. Idempotent requests are retried on connection errors
    first."""

    def __init__(
        self,
        service: str,
        base_url: str,
        holder: ClientHolder,
        state: UpstreamState | None = None,
        retries: int = 2,
        max_body_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.holder = holder
        holder.register(self.base_url)
        self.state = state or UpstreamState(3.0)
        self.retries = retries
        self.max_body_bytes = max_body_bytes

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
    ) -> None:
        titles = {
            400: "Bad Request",
            413: "Payload Too Large",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        headers = (
            {"Retry-After": str(max(1, round(self.state.open_seconds)))}
            if status in (502, 503)
            else {}
        )
        await problem_response(
            status,
            code,
            titles[status],
            detail,
            scope.get("path"),
            {"service": self.service},
            headers,
        )(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets/lifespan are not proxied
            return
        pool = self.holder.pools.get(self.base_url)
        if pool is None:
            raise RuntimeError("proxy client not open (gateway lifespan not running)")
        if self.state.is_open():
            await self._problem(
                scope,
                receive,
                send,
                503,
                "service-unavailable",
                f"{self.service} is down ({self.state.last_error})",
            )
            return
        target = upstream_target(scope)
        method: str = scope["method"]
        length = declared_length(scope)
        if method in BODYLESS_METHODS and (
            length or any(k.lower() == b"transfer-encoding" for k, _ in scope["headers"])
        ):
            await self._problem(
                scope,
                receive,
                send,
                400,
                "body-not-allowed",
                f"a {method} request must not carry a body",
            )
            return
        try:
            content = await read_body(receive, self.max_body_bytes, length)
        except BodyTooLarge:
            detail = f"the request body exceeds {self.max_body_bytes} bytes"
            await self._problem(scope, receive, send, 413, "payload-too-large", detail)
            return
        headers: list[tuple[bytes, bytes]] = []
        for key, value in scope["headers"]:
            if key.lower() not in REQUEST_HOP_BY_HOP:
                headers.append((key, value))
        client_addr = scope.get("client")
        if client_addr:
            headers.append((b"x-forwarded-for", str(client_addr[0]).encode("latin-1")))
        if content or length is not None:
            headers.append((b"content-length", str(len(content)).encode()))
        retries = self.retries if method in IDEMPOTENT_METHODS else 0
        attempt = 0
        while True:
            try:
                response = await pool.send(method, target, headers, content)
                break
            except RETRYABLE as exc:
                if attempt < retries:
                    attempt += 1
                    await asyncio.sleep(0.05 * 2 ** (attempt - 1))
                    continue
                if isinstance(exc, CONNECT_FAILED):
                    self.state.trip(type(exc).__name__)
                    await self._problem(
                        scope,
                        receive,
                        send,
                        503,
                        "service-unavailable",
                        f"{self.service} unreachable ({type(exc).__name__})",
                    )
                else:
                    await self._problem(
                        scope,
                        receive,
                        send,
                        502,
                        "upstream-unavailable",
                        f"{self.service} failed ({type(exc).__name__})",
                    )
                return
            except httpcore.TimeoutException:
                await self._problem(
                    scope, receive, send, 504, "upstream-timeout", f"{self.service} did not answer"
                )
                return
            except UPSTREAM_ERRORS as exc:
                await self._problem(
                    scope,
                    receive,
                    send,
                    502,
                    "upstream-unavailable",
                    f"{self.service} failed ({type(exc).__name__})",
                )
                return
        self.state.ok()
        try:
            await self._relay(response, send)
        finally:
            await response.aclose()

    async def _relay(self, response: PooledResponse, send: Send) -> None:
        """Stream the upstream answer as it arrives. The chunk that completes a declared
        Content-Length goes out as the last one (no extra empty message through the stack)."""
        remaining = -1
        out: list[tuple[bytes, bytes]] = []
        for key, value in response.headers:
            name = key.lower()
            if name not in RESPONSE_HOP_BY_HOP:
                out.append((name, value))
                if name == b"content-length" and value.isdigit():
                    remaining = int(value)
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        finished = False
        try:
            async for chunk in response.stream:
                if finished or not chunk:
                    continue
                remaining -= len(chunk)
                finished = remaining == 0
                await send({"type": "http.response.body", "body": chunk, "more_body": not finished})
        except UPSTREAM_ERRORS as exc:  # upstream died mid-body: end the stream
            log.warning("upstream body interrupted", service=self.service, error=repr(exc))
        if not finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def upstream_target(scope: Scope) -> bytes:
    """Path and query below the mount point, as the client sent them (percent-encoding kept)."""
    root: str = scope.get("root_path", "")
    raw: bytes | None = scope.get("raw_path")
    prefix = root.encode("latin-1")
    if raw is not None and raw.startswith(prefix):
        # some ASGI clients (httpx's ASGITransport) put the query into raw_path as well
        path = raw[len(prefix) :].partition(b"?")[0]
    else:
        path_str: str = scope["path"]
        if root and path_str.startswith(root):
            path_str = path_str[len(root) :]
        path = quote(path_str).encode("latin-1")
    if not path.startswith(b"/"):
        path = b"/" + path
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def build_proxies(settings: GatewaySettings, holder: ClientHolder) -> dict[str, ProxyApp]:
    return {
        service: ProxyApp(
            service,
            settings.service_url(service),
            holder,
            UpstreamState(settings.circuit_open_seconds),
            settings.proxy_retries,
            settings.max_body_bytes,
        )
        for service in SERVICES
    }


def proxy_ready_check(
    service: str, base_url: str, holder: ClientHolder, state: UpstreamState | None = None
) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def check() -> dict[str, Any]:
        client = holder.client
        if client is None:
            return {"status": "failing", "error": "proxy client not open"}
        try:
            response = await client.get(f"{base_url}/health/ready", timeout=2.5)
        except httpx.HTTPError as exc:
            if state is not None and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                state.trip(type(exc).__name__)
            return {"status": "failing", "error": f"{service} unreachable: {type(exc).__name__}"}
        if state is not None:
            state.ok()
        try:
            body = response.json()
        except ValueError:
            body = {"raw": response.text[:200]}
        return {"status": "ok" if response.status_code == 200 else "failing", "upstream": body}

    return check


async def fetch_openapi(holder: ClientHolder, base_url: str) -> dict[str, Any] | None:
    client = holder.client
    if client is None:
        return None
    try:
        response = await client.get(f"{base_url}/openapi.json", timeout=3.0)
        response.raise_for_status()
        spec: dict[str, Any] = response.json()
        return spec
    except (httpx.HTTPError, ValueError):
        return None
