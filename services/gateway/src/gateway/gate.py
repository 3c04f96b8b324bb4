"""The edge in front of each service mount: authentication, per-route roles, per-client rate
limits (per principal; per address for anonymous and failed-auth requests), body size limit
and ``Idempotency-Key`` replay. Wraps the embedded service app or the
HTTP proxy alike (pure ASGI, so responses stay streamed)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.idempotency import (
    HEADER as IDEMPOTENCY_HEADER,
)
from gateway.idempotency import (
    MAX_KEY_LENGTH,
    MAX_STORED_BODY,
    IdempotencyStore,
    StoredResponse,
)
from gateway.policy import ServicePolicy, allowed
from gateway.ratelimit import EdgeLimits, Quota, RateLimiter, client_address
from service_defaults.auth import CurrentUser, Unauthorized, decode_token
from service_defaults.errors import problem_response
from service_defaults.settings import CommonSettings

# headers that belong to one request, not to a replayed answer
_PER_REQUEST = frozenset({b"x-request-id", b"x-correlation-id", b"traceparent", b"date"})


class BodyTooLarge(Exception):
    pass


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


async def read_body(receive: Receive, limit: int, expected: int | None = None) -> bytes:
    """The whole request body, at most `limit` bytes (else :class:`BodyTooLarge`).

    A body that is not complete — the client disconnected first, or it ended short of its
    declared Content-Length (`expected`) — raises starlette's ``ClientDisconnect``: a
    truncated body is never passed on as if it were whole. The request-context middleware
    records that as 499 at debug level (nobody is left to answer)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if expected is not None and size != expected:
        raise ClientDisconnect
    return b"".join(chunks)


def replay_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def inner() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner


def authenticate(settings: CommonSettings, scope: Scope) -> CurrentUser:
    value = header(scope, b"authorization")
    if not value:
        raise Unauthorized("missing bearer token", error=None)
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token", error=None)
    return decode_token(settings, token.strip())


Problem = Callable[..., Awaitable[None]]


async def too_many(problem: Problem, limiter: RateLimiter, quota: Quota) -> None:
    """429 problem+json with ``Retry-After`` and the ``RateLimit-*`` headers."""
    await problem(
        429,
        "rate-limited",
        "Too Many Requests",
        f"rate limit of {limiter.describe()} exceeded",
        quota.header_dict(),
    )


def with_headers(send: Send, quota: Quota | None) -> Send:
    """`send` adding the ``RateLimit-*`` headers of `quota` to the response."""
    if quota is None:
        return send
    extra = quota.headers()

    async def inner(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return inner


class ServiceGate:
    def __init__(
        self,
        service: str,
        inner: ASGIApp,
        settings: Any,
        policy: ServicePolicy,
        limiter: RateLimiter,
        store: IdempotencyStore,
        limits: EdgeLimits | None = None,
    ) -> None:
        self.service = service
        self.inner = inner
        self.settings = settings
        self.policy = policy
        self.limiter = limiter
        self.store = store
        self.limits = limits or EdgeLimits.from_settings(settings, principal=limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        subpath = path[len(root) :] if root and path.startswith(root) else path
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

        if method == "OPTIONS":
            await self.inner(scope, receive, send)
            return
        if self.policy.is_public(subpath):
            limiter = (
                self.limits.public
                if subpath.startswith("/health/") or subpath == "/metrics"
                else self.limits.anonymous
            )
            quota = limiter.acquire(client_address(scope))
            if quota is not None and not quota.allowed:
                await too_many(problem, limiter, quota)
                return
            await self.inner(scope, receive, with_headers(send, quota))
            return

        try:
            user = authenticate(self.settings, scope)
        except Unauthorized as exc:
            quota = self.limits.anonymous.acquire(client_address(scope))
            if quota is not None and not quota.allowed:
                await too_many(problem, self.limits.anonymous, quota)
                return
            await problem(401, exc.code, exc.title, exc.detail, exc.headers)
            return

        quota = self.limiter.acquire(user.sub)
        if quota is not None and not quota.allowed:
            await too_many(problem, self.limiter, quota)
            return
        send = with_headers(send, quota)

        unmet = allowed(user, self.policy.required(scope, subpath))
        if unmet is not None:
            needed = sorted(unmet)
            await problem(
                403,
                "forbidden",
                "Forbidden",
                f"requires one of the roles: {', '.join(needed)}",
                required_roles=needed,
                denied_by="gateway",
            )
            return

        limit: int = self.settings.max_body_bytes
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(problem, limit)
            return
        chunked = length is None and method not in ("GET", "HEAD", "DELETE")
        key = header(scope, IDEMPOTENCY_HEADER.encode()) if method == "POST" else None

        if key is None and not chunked:
            await self.inner(scope, receive, send)
            return
        try:
            body = await read_body(receive, limit, declared_length(scope))
        except BodyTooLarge:
            await self._too_large(problem, limit)
            return
        receive = replay_receive(body, receive)
        if key is None:
            await self.inner(scope, receive, send)
            return
        await self._idempotent(scope, receive, send, problem, user, key, path, body)

    async def _too_large(self, problem: Problem, limit: int) -> None:
        await problem(
            413,
            "payload-too-large",
            "Payload Too Large",
            f"the request body exceeds {limit} bytes",
            max_bytes=limit,
        )

    async def _idempotent(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        problem: Problem,
        user: CurrentUser,
        key: str,
        path: str,
        body: bytes,
    ) -> None:
        if not key or len(key) > MAX_KEY_LENGTH:
            await problem(
                400,
                "idempotency-key-invalid",
                "Invalid Idempotency-Key",
                f"the key must have 1 to {MAX_KEY_LENGTH} characters",
            )
            return
        store_key = "\x1f".join((user.sub, scope["method"], path, key))
        digest = hashlib.sha256(body).hexdigest()
        claim = await self.store.claim(store_key, digest, self.settings.idempotency_wait_seconds)
        if claim.kind == "mismatch":
            await problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different body",
                "this key was first used with another request body",
            )
            return
        if claim.kind == "busy":
            await problem(
                409,
                "idempotency-key-in-progress",
                "Request with this Idempotency-Key still running",
                "retry later",
                {"Retry-After": "1"},
            )
            return
        if claim.kind == "replay":
            assert claim.response is not None
            await self._replay(claim.response, send)
            return

        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in _PER_REQUEST
                ]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_STORED_BODY:
                    chunks.append(chunk)
            await send(message)

        try:
            await self.inner(scope, receive, capture)
        except BaseException:
            await self.store.release(store_key)
            raise
        if status >= 500 or size > MAX_STORED_BODY:
            await self.store.release(store_key)
        else:
            await self.store.complete(store_key, StoredResponse(status, headers, b"".join(chunks)))

    @staticmethod
    async def _replay(response: StoredResponse, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [*response.headers, (b"idempotent-replayed", b"true")],
            }
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
