"""Pure ASGI middleware: request/correlation ids, W3C traceparent, access log, HTTP metrics,
and a last-resort problem+json 500 (no stack trace leaves the process)."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_defaults import context
from service_defaults.errors import internal_error_response
from service_defaults.logging import get_logger
from service_defaults.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
TRACEPARENT_HEADER = "traceparent"

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})

access_log = get_logger("nexo.access")


def new_traceparent(parent: str | None = None) -> str:
    """A child of `parent` (same trace id, new span id) or a fresh sampled root."""
    span_id = secrets.token_hex(8)
    if parent:
        m = _TRACEPARENT_RE.match(parent.strip().lower())
        if m and m.group(2) != "0" * 32 and m.group(3) != "0" * 16 and m.group(1) != "ff":
            return f"00-{m.group(2)}-{span_id}-{m.group(4)}"
    return f"00-{secrets.token_hex(16)}-{span_id}-01"


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            try:
                return value.decode("latin-1")
            except Exception:  # pragma: no cover
                return None
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "<unmatched>"


class RequestContextMiddleware:
    """Sets request id / correlation id / traceparent (context vars + response headers), logs
    one access line per request, records Prometheus metrics, and turns an unhandled exception
    into a problem+json 500 when the response has not started."""

    def __init__(self, app: ASGIApp, *, service: str = "nexo", log_requests: bool = True) -> None:
        self.app = app
        self.service = service
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        incoming_rid = _header(headers, REQUEST_ID_HEADER.encode())
        rid = incoming_rid if incoming_rid and _SAFE_ID_RE.match(incoming_rid) else uuid.uuid4().hex
        incoming_cid = _header(headers, CORRELATION_ID_HEADER.encode())
        cid = incoming_cid if incoming_cid and _SAFE_ID_RE.match(incoming_cid) else rid
        incoming_tp = _header(headers, TRACEPARENT_HEADER.encode())
        tp = new_traceparent(incoming_tp)

        # Forward the ids to inner apps (e.g. services mounted in the gateway).
        forwarded = [
            (k, v)
            for k, v in headers
            if k.lower()
            not in (REQUEST_ID_HEADER.encode(), CORRELATION_ID_HEADER.encode(), b"traceparent")
        ]
        forwarded += [
            (REQUEST_ID_HEADER.encode(), rid.encode()),
            (CORRELATION_ID_HEADER.encode(), cid.encode()),
            (b"traceparent", tp.encode()),
        ]
        scope = {**scope, "headers": forwarded}

        tokens: list[Any] = [
            (context.request_id, context.request_id.set(rid)),
            (context.correlation_id, context.correlation_id.set(cid)),
            (context.traceparent, context.traceparent.set(tp)),
        ]
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                out = list(message.get("headers", []))
                present = {k.lower() for k, _ in out}
                for name, value in (
                    (REQUEST_ID_HEADER.encode(), rid),
                    (CORRELATION_ID_HEADER.encode(), cid),
                    (b"traceparent", tp),
                ):
                    if name not in present:
                        out.append((name, value.encode()))
                message = {**message, "headers": out}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            status = 500
            access_log.error("unhandled error", path=scope.get("path"), exc_info=exc)
            if not started:
                response = internal_error_response(scope.get("path"))
                await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(elapsed)
            path = scope.get("path", "")
            if self.log_requests and path not in _QUIET_PATHS:
                access_log.info(
                    "request",
                    service=self.service,
                    method=method,
                    path=path,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            for var, token in reversed(tokens):
                var.reset(token)
