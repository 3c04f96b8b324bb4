"""Pure ASGI middleware: request/correlation ids, W3C traceparent, access log, HTTP metrics,
and a last-resort problem+json 500 (no stack trace leaves the process) or 503 for a transient
infrastructure failure."""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexo_messaging import tracing
from service_defaults import context
from service_defaults.errors import (
    internal_error_response,
    is_transient,
    log_transient,
    unavailable_response,
)
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
    span_id = _random_hex(64)
    if parent:
        m = _TRACEPARENT_RE.match(parent.strip().lower())
        if m and m.group(2) != "0" * 32 and m.group(3) != "0" * 16 and m.group(1) != "ff":
            return f"00-{m.group(2)}-{span_id}-{m.group(4)}"
    return f"00-{_random_hex(128)}-{span_id}-01"


def _random_hex(bits: int) -> str:
    """A non-zero random id of `bits` bits as lower-case hex (trace/span ids are identifiers,
    not secrets: the W3C spec asks for randomness, not unpredictability)."""
    value = 0
    while not value:
        value = random.getrandbits(bits)  # the module RNG is reseeded after fork
    return f"{value:0{bits // 4}x}"


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


_RID = REQUEST_ID_HEADER.encode()
_CID = CORRELATION_ID_HEADER.encode()
_TP = TRACEPARENT_HEADER.encode()
_ID_HEADERS = (_RID, _CID, _TP)
_MAX_METRIC_CHILDREN = 2048
CLIENT_CLOSED_REQUEST = 499
"""Status recorded (never sent) when the client went away before an answer (nginx's code)."""


_OUTER = "nexo.request_context"
"""Scope key set by the outermost instance. An app mounted inside another (the services in the
embedded gateway) finds the ids, context variables, response headers, error handling and the
access line already taken care of (one line per request), and only records its metrics."""


class RequestContextMiddleware:
    """Sets request id / correlation id / traceparent (context vars + response headers), logs
    one access line per request, records Prometheus metrics, and turns an unhandled exception
    into a problem+json 500 when the response has not started — a 503 ``unavailable`` with
    ``Retry-After`` when it is a transient infrastructure failure (``errors.is_transient``).
    A client that disconnects before the answer (``ClientDisconnect``, or the app returning
    without a response after ``http.disconnect``) is recorded as 499 and logged at debug
    level only: nothing is sent and nothing is an error.

    Hot path: one pass over the request headers, the metric children cached per
    (method, route, status), and no access-log call when the level filters it out."""

    def __init__(self, app: ASGIApp, *, service: str = "nexo", log_requests: bool = True) -> None:
        self.app = app
        self.service = service
        self.log_requests = log_requests
        self._metrics: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._access_std = logging.getLogger("nexo.access")

    def _observe(self, method: str, route: str, status: str, elapsed: float) -> None:
        key = (method, route, status)
        children = self._metrics.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(self.service, method, route, status),
                HTTP_LATENCY.labels(self.service, method, route),
            )
            if len(self._metrics) < _MAX_METRIC_CHILDREN:
                self._metrics[key] = children
        children[0].inc()
        children[1].observe(elapsed)

    async def _nested(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            self._observe(scope.get("method", "GET"), _route_template(scope), str(status), elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get(_OUTER):
            await self._nested(scope, receive, send)
            return

        incoming_rid = incoming_cid = incoming_tp = None
        forwarded: list[tuple[bytes, bytes]] = []
        for key, value in scope.get("headers", ()):
            name = key.lower()
            if name in _ID_HEADERS:
                if name == _RID:
                    if incoming_rid is None:
                        incoming_rid = value.decode("latin-1")
                elif name == _CID:
                    if incoming_cid is None:
                        incoming_cid = value.decode("latin-1")
                elif incoming_tp is None:
                    incoming_tp = value.decode("latin-1")
            else:
                forwarded.append((key, value))
        rid = incoming_rid if incoming_rid and _SAFE_ID_RE.match(incoming_rid) else uuid.uuid4().hex
        cid = incoming_cid if incoming_cid and _SAFE_ID_RE.match(incoming_cid) else rid
        # with tracing on, the server span (OpenTelemetry's middleware, outside this one) is
        # the request's trace context; otherwise a child id of the incoming one
        tp = (tracing.enabled and tracing.current_traceparent()) or new_traceparent(incoming_tp)
        rid_b, cid_b, tp_b = rid.encode(), cid.encode(), tp.encode()

        # Forward the ids to inner apps (e.g. services mounted in the gateway).
        forwarded += [(_RID, rid_b), (_CID, cid_b), (_TP, tp_b)]
        scope = {**scope, "headers": forwarded, _OUTER: True}

        tokens: list[Any] = [
            (context.request_id, context.request_id.set(rid)),
            (context.correlation_id, context.correlation_id.set(cid)),
            (context.traceparent, context.traceparent.set(tp)),
        ]
        status = 500
        started = False
        disconnected = False
        start = time.perf_counter()

        async def receive_wrapper() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                out = list(message.get("headers", ()))
                has_rid = has_cid = has_tp = False
                for k, _ in out:
                    k = k.lower()
                    if k == _RID:
                        has_rid = True
                    elif k == _CID:
                        has_cid = True
                    elif k == _TP:
                        has_tp = True
                if not has_rid:
                    out.append((_RID, rid_b))
                if not has_cid:
                    out.append((_CID, cid_b))
                if not has_tp:
                    out.append((_TP, tp_b))
                message = {**message, "headers": out}
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
            if not started and disconnected:
                status = CLIENT_CLOSED_REQUEST
        except ClientDisconnect:
            status = CLIENT_CLOSED_REQUEST
            access_log.debug("client disconnected before the request body was complete")
        except Exception as exc:
            path = scope.get("path")
            if is_transient(exc):
                # e.g. a session's clean-up failing after its answer went out: keep that status
                status = status if started else 503
                log_transient(path, exc)
                response = unavailable_response(path)
            else:
                status = 500
                access_log.error("unhandled error", path=path, exc_info=exc)
                response = internal_error_response(path)
            if not started:
                await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope.get("method", "GET")
            self._observe(method, route, str(status), elapsed)
            path = scope.get("path", "")
            if (
                self.log_requests
                and path not in _QUIET_PATHS
                and self._access_std.isEnabledFor(logging.INFO)
            ):
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
