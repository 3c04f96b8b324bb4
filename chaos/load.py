"""Load generator: writes at a set rate, each with its own ``Idempotency-Key``; every failure
(connection error, 502/503/504, 409 with ``Retry-After``, 429) is retried with the SAME key and
the same body until a final answer or a deadline."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from service_defaults.auth import issue_token
from service_defaults.settings import CommonSettings

RETRY_STATUSES = frozenset({502, 503, 504, 429})
REQUEST_DEADLINE_S = 90.0
ATTEMPT_TIMEOUT_S = 10.0


def token(sub: str, *roles: str) -> str:
    """A dev HS256 token as the services verify it (their default secret, no iss/aud)."""
    return issue_token(CommonSettings(), sub, list(roles), ttl=timedelta(hours=2))


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


@dataclass
class Outcome:
    """What the client saw for one logical request (one idempotency key)."""

    key: str
    method: str
    path: str
    statuses: list[int | str] = field(default_factory=list)  # every attempt; str = exception
    final: int | None = None  # None: no final answer before the deadline
    body: Any = None

    @property
    def attempts(self) -> int:
        return len(self.statuses)

    @property
    def ok(self) -> bool:
        return self.final is not None and 200 <= self.final < 300

    @property
    def saw_500(self) -> bool:
        return 500 in self.statuses

    @property
    def final_5xx(self) -> bool:
        return self.final is not None and self.final >= 500


def _retryable(r: httpx.Response) -> bool:
    if r.status_code in RETRY_STATUSES:
        return True
    # 409 "in flight" (the first request with this key still runs) carries Retry-After;
    # a domain 409 (e.g. not enough stock) does not and is a final answer.
    return r.status_code == 409 and "retry-after" in r.headers


def _retry_after(r: httpx.Response | None, attempt: int) -> float:
    backoff = min(1.0, 0.1 * 2 ** min(attempt, 4))
    if r is not None and "retry-after" in r.headers:
        try:
            return min(2.0, max(0.05, float(r.headers["retry-after"])))
        except ValueError:
            return backoff
    return backoff


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    json: Any,
    headers: dict[str, str],
    key: str | None = None,
    deadline_s: float = REQUEST_DEADLINE_S,
    base_urls: Sequence[str] | None = None,
) -> Outcome:
    """One logical write, retried with the same key and body until a final answer.
    `base_urls`: several instances to rotate over on failures (else the client's base URL)."""
    key = key or str(uuid.uuid4())
    out = Outcome(key=key, method=method, path=path)
    deadline = time.monotonic() + deadline_s
    hdrs = {**headers, "Idempotency-Key": key}
    attempt = 0
    while time.monotonic() < deadline:
        url = path if not base_urls else base_urls[attempt % len(base_urls)] + path
        response: httpx.Response | None = None
        try:
            response = await client.request(
                method, url, json=json, headers=hdrs, timeout=ATTEMPT_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            out.statuses.append(type(exc).__name__)
        else:
            out.statuses.append(response.status_code)
            if not _retryable(response):
                out.final = response.status_code
                try:
                    out.body = response.json()
                except ValueError:
                    out.body = response.text
                return out
        attempt += 1
        await asyncio.sleep(_retry_after(response, attempt))
    return out


async def stream(
    make: Callable[[int], Coroutine[Any, Any, Outcome]],
    *,
    rate: float,
    duration: float,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> list[Outcome]:
    """Start `make(i)` every 1/`rate` s for `duration` s (open loop: a slow answer does not slow
    the stream), run `during` (the fault) alongside, and wait for every request's outcome."""
    tasks: list[asyncio.Task[Outcome]] = []
    fault: asyncio.Task[None] | None = asyncio.create_task(during()) if during else None
    start = time.monotonic()
    i = 0
    while True:
        due = start + i / rate
        if due - start >= duration:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(make(i)))
        i += 1
    if fault is not None:
        await fault
    return list(await asyncio.gather(*tasks))
