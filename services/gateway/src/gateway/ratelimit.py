"""Per-client token buckets (``rate`` tokens/s, ``burst`` capacity) and the gateway's set of
them: per principal, per client address for anonymous / failed-auth requests, health and
metrics, and the development login."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope


@dataclass(frozen=True, slots=True)
class Quota:
    """One token taken (or refused): what the ``RateLimit-*`` headers of the IETF
    ratelimit-headers draft tell the client."""

    wait: float
    """0 when allowed, else the seconds until a token is available (``Retry-After``)."""
    limit: int
    remaining: int
    reset: int
    """Seconds until the bucket is full again."""

    @property
    def allowed(self) -> bool:
        return self.wait <= 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]

    def header_dict(self) -> dict[str, str]:
        out = {k.decode(): v.decode() for k, v in self.headers()}
        if not self.allowed:
            out["Retry-After"] = RateLimiter.retry_after(self.wait)
        return out


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_clients: int = 50_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        quota = self.acquire(client, now)
        return 0.0 if quota is None else quota.wait

    def acquire(self, client: str, now: float | None = None) -> Quota | None:
        """Take one token for `client`; None when the limiter is off."""
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return Quota(
            wait=wait,
            limit=self.burst,
            remaining=int(tokens),
            reset=math.ceil((self.burst - tokens) / self.rate),
        )

    def describe(self) -> str:
        return f"{self.rate:g}/s (burst {self.burst})"

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


@dataclass
class EdgeLimits:
    """Every limiter of the gateway (``rate`` 0 turns one off)."""

    principal: RateLimiter
    """Per token ``sub``: authenticated requests on every route."""
    anonymous: RateLimiter
    """Per client address: requests without a valid token (401s included)."""
    public: RateLimiter
    """Per client address: ``/health/*`` and ``/metrics`` (generous: probes and scrapers)."""
    dev_login: RateLimiter
    """Per client address: ``POST /ops/dev-login``."""

    @classmethod
    def from_settings(cls, settings: Any, principal: RateLimiter | None = None) -> EdgeLimits:
        return cls(
            principal=principal
            or RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            anonymous=RateLimiter(
                settings.anonymous_rate_limit_per_second, settings.anonymous_rate_limit_burst
            ),
            public=RateLimiter(
                settings.public_rate_limit_per_second, settings.public_rate_limit_burst
            ),
            dev_login=RateLimiter(
                settings.dev_login_rate_limit_per_minute / 60.0,
                settings.dev_login_rate_limit_burst,
            ),
        )


def client_address(scope: Scope) -> str:
    """The peer address (``X-Forwarded-For`` is not trusted: anyone can set it)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
