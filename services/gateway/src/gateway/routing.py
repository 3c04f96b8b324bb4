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

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.settings import SERVICES, GatewaySettings
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
RESPONSE_HOP_BY_HOP = HOP_BY_HOP - {"content-length"}


def service_prefix(service: str) -> str:
    return f"/api/{service}"


# ------------------------------------------------------------------------------ embedded


def embedded_service_settings(settings: GatewaySettings, service: str) -> ServiceSettings:
    """The service's settings from its own env vars, with the gateway's choices forced:
    SQLite under ``data_dir``, memory transport, the gateway's env, logging and JWT settings."""
    module = importlib.import_module(f"{service}.settings")
    cls: type[ServiceSettings] = getattr(module, f"{service.capitalize()}Settings")
    return load_settings(
        cls,
        env=settings.env,
        database_url=settings.database_url(service),
        transport="memory",
        log_level=settings.log_level,
        log_json=settings.log_json,
        jwt_secret=settings.jwt_secret,
        jwt_public_key=settings.jwt_public_key,
        jwt_algorithm=settings.jwt_algorithm,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
    )


def build_embedded_apps(settings: GatewaySettings, memory_broker: Any) -> dict[str, FastAPI]:
    """Create (without I/O) the three service apps sharing one in-memory broker."""
    apps: dict[str, FastAPI] = {}
    for service in SERVICES:
        main = importlib.import_module(f"{service}.main")
        apps[service] = main.create_app(
            embedded_service_settings(settings, service), memory_broker=memory_broker
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
    """The pooled httpx client, created in the lifespan (no I/O when the app is built)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.client: httpx.AsyncClient | None = None

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
        return self.client

    async def close(self) -> None:
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
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)


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
    """ASGI app forwarding every request under its mount point to `base_url`, streaming both
    bodies. Idempotent requests are retried on connection errors; a service that refuses
    connections answers 503 (and trips its circuit), a time-out 504, other upstream errors 502
    (all problem+json)."""

    def __init__(
        self,
        service: str,
        base_url: str,
        holder: ClientHolder,
        state: UpstreamState | None = None,
        retries: int = 2,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.holder = holder
        self.state = state or UpstreamState(3.0)
        self.retries = retries

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
    ) -> None:
        titles = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
        headers = (
            {"Retry-After": str(max(1, round(self.state.open_seconds)))} if status == 503 else {}
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
        client = self.holder.client
        if client is None:
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
        root = scope.get("root_path", "")
        path: str = scope["path"]
        if root and path.startswith(root):
            path = path[len(root) :]
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{self.base_url}{path or '/'}" + (f"?{query}" if query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope.get("headers", [])
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        client_addr = scope.get("client")
        if client_addr:
            headers.append(("x-forwarded-for", str(client_addr[0])))
        method: str = scope["method"]

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        retries = self.retries if method in IDEMPOTENT_METHODS else 0
        content: Any
        if retries:
            chunks = [c async for c in body()]
            content = b"".join(chunks)
        else:
            content = body()
        attempt = 0
        while True:
            request = client.build_request(method, url, headers=headers, content=content)
            try:
                response = await client.send(request, stream=True)
                break
            except RETRYABLE as exc:
                connect_failed = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < retries:
                    attempt += 1
                    await asyncio.sleep(0.05 * 2 ** (attempt - 1))
                    continue
                if connect_failed:
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
            except httpx.TimeoutException:
                await self._problem(
                    scope, receive, send, 504, "upstream-timeout", f"{self.service} did not answer"
                )
                return
            except httpx.HTTPError as exc:
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
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                        if k.lower() not in RESPONSE_HOP_BY_HOP
                    ],
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:  # upstream died mid-body: end the stream
                log.warning("upstream body interrupted", service=self.service, error=repr(exc))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


def build_proxies(settings: GatewaySettings, holder: ClientHolder) -> dict[str, ProxyApp]:
    return {
        service: ProxyApp(
            service,
            settings.service_url(service),
            holder,
            UpstreamState(settings.circuit_open_seconds),
            settings.proxy_retries,
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
