"""The edge in front of the gateway's own routes (``/ops``, ``/``, docs, health, metrics):
what :class:`~gateway.gate.ServiceGate` does for ``/api/<service>``.

* ``/ops/api/*``: the token and its role are checked before the body is read (FastAPI parses
  a body before it resolves dependencies, so an anonymous 50 MB POST would otherwise be read
  and parsed before the 401);
* one body limit (``max_body_bytes``) on every route: a declared Content-Length above it is
  413 at once, a chunked body is read at most that far;
* rate limits: per token ``sub`` when a valid token comes along, else per client address
  (``/health/*`` and ``/metrics`` on a generous limiter of their own, ``POST /ops/dev-login``
  on a strict one); ``RateLimit-*`` headers on the answers, 429 problem+json with
  ``Retry-After``;
* security headers on ``/ops`` (CSP without inline script, no framing, no sniffing, no
  referrer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.gate import (
    BodyTooLarge,
    authenticate,
    declared_length,
    header,
    read_body,
    replay_receive,
    too_many,
    with_headers,
)
from gateway.ratelimit import EdgeLimits, Quota, client_address
from service_defaults.auth import ADMIN_ROLE, OPS_ROLE, CurrentUser, Unauthorized
from service_defaults.errors import problem_response

OPS_PREFIX = "/ops"
OPS_API_PREFIX = "/ops/api/"
DEV_LOGIN_PATH = "/ops/dev-login"
OPS_ROLES = frozenset({OPS_ROLE, ADMIN_ROLE})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def is_ops(path: str) -> bool:
    return path == OPS_PREFIX or path.startswith(OPS_PREFIX + "/")


def is_public(path: str) -> bool:
    return path.startswith("/health/") or path == "/metrics"


def add_headers(send: Send, extra: Iterable[tuple[bytes, bytes]]) -> Send:
    """`send` adding `extra` to the response headers (those the response sets itself win)."""
    extra = tuple(extra)

    async def inner(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in extra if k not in present]
            message = {**message, "headers": headers}
        await send(message)

    return inner


class EdgeGuard:
    """Pure ASGI middleware; requests under a service mount (``service_prefixes``) pass
    through untouched — their :class:`~gateway.gate.ServiceGate` applies the same rules."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Any,
        limits: EdgeLimits,
        service_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.limits = limits
        self.service_prefixes = tuple(p.rstrip("/") + "/" for p in service_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self.service_prefixes):
            await self.app(scope, receive, send)
            return
        if is_ops(path):
            send = add_headers(send, SECURITY_HEADERS)
        method: str = scope["method"]

        async def problem(
            status: int,
            code: str,
            title: str,
            detail: str | None = None,
            headers: dict[str, str] | None = None,
            **extensions: Any,
        ) -> None:
            await problem_response(status, code, title, detail, path, extensions, headers)(
                scope, receive, send
            )

        address = client_address(scope)
        quota: Quota | None
        if is_public(path):
            limiter = self.limits.public
            quota = limiter.acquire(address)
        elif path == DEV_LOGIN_PATH and method == "POST":
            limiter = self.limits.dev_login
            quota = limiter.acquire(address)
        else:
            user: CurrentUser | None = None
            failure: Unauthorized | None = None
            if header(scope, b"authorization") is not None or path.startswith(OPS_API_PREFIX):
                try:
                    user = authenticate(self.settings, scope)
                except Unauthorized as exc:
                    failure = exc
            limiter = self.limits.principal if user is not None else self.limits.anonymous
            quota = limiter.acquire(user.sub if user is not None else address)
            if quota is not None and not quota.allowed:
                await too_many(problem, limiter, quota)
                return
            if path.startswith(OPS_API_PREFIX) and method != "OPTIONS":
                if failure is not None:
                    await problem(401, failure.code, failure.title, failure.detail, failure.headers)
                    return
                if user is not None and not (user.roles & OPS_ROLES):
                    needed = sorted(OPS_ROLES)
                    await problem(
                        403,
                        "forbidden",
                        "Forbidden",
                        f"requires one of the roles: {', '.join(needed)}",
                        required_roles=needed,
                        denied_by="gateway",
                    )
                    return
        if quota is not None and not quota.allowed:
            await too_many(problem, limiter, quota)
            return
        send = with_headers(send, quota)

        limit: int = self.settings.max_body_bytes
        length = declared_length(scope)
        if length is not None and length > limit:
            await self._too_large(problem, limit)
            return
        if length or header(scope, b"transfer-encoding") is not None:
            try:
                body = await read_body(receive, limit, length)
            except BodyTooLarge:
                await self._too_large(problem, limit)
                return
            receive = replay_receive(body, receive)
        await self.app(scope, receive, send)

    @staticmethod
    async def _too_large(problem: Any, limit: int) -> None:
        await problem(
            413,
            "payload-too-large",
            "Payload Too Large",
            f"the request body exceeds {limit} bytes",
            max_bytes=limit,
        )
