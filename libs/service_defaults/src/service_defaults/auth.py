"""JWT bearer authentication (PyJWT; HS256 shared secret or RS256 public key) and role checks."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service_defaults.errors import ProblemError
from service_defaults.settings import CommonSettings

ADMIN_ROLE = "admin"
OPS_ROLE = "ops"
BEARER_SCHEME_NAME = "bearerAuth"

bearer_scheme = HTTPBearer(auto_error=False, scheme_name=BEARER_SCHEME_NAME)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    sub: str
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: str) -> bool:
        return ADMIN_ROLE in self.roles or any(role in self.roles for role in roles)


class Unauthorized(ProblemError):
    def __init__(self, detail: str, error: str | None = "invalid_token") -> None:
        super().__init__(401, "unauthorized", "Authentication required", detail)
        self.headers = {
            "WWW-Authenticate": f'Bearer error="{error}"' if error else "Bearer",
        }


class Forbidden(ProblemError):
    def __init__(self, required: Iterable[str]) -> None:
        needed = sorted(required)
        super().__init__(
            403,
            "forbidden",
            "Forbidden",
            f"requires one of the roles: {', '.join(needed)}",
            required_roles=needed,
        )


def _verification_key(settings: CommonSettings) -> str:
    if settings.jwt_algorithm == "RS256":
        if not settings.jwt_public_key:
            raise RuntimeError("RS256 configured without a public key")
        return settings.jwt_public_key
    return settings.jwt_secret


JWT_LEEWAY_SECONDS = 10
TOKEN_CACHE_SIZE = 4096
"""Verified tokens kept per process (LRU): a bearer token is usually sent many times in a row,
and verifying it (HMAC/RSA + claim checks) is the most expensive part of an authenticated
request. An entry lives until the token's ``exp`` (plus the leeway), like the token itself."""

_CacheKey = tuple[str, str, str, str | None, str | None, float]
_token_cache: OrderedDict[_CacheKey, tuple[CurrentUser, float]] = OrderedDict()
_token_cache_lock = threading.Lock()


def clear_token_cache() -> None:
    with _token_cache_lock:
        _token_cache.clear()


def _verify(settings: CommonSettings, token: str, key: str) -> tuple[CurrentUser, float]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require": ["exp", "sub"],
                "verify_aud": settings.jwt_audience is not None,
            },
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    _check_lifetime(settings, claims)
    roles_claim = claims.get("roles", [])
    if isinstance(roles_claim, str):
        roles_claim = roles_claim.split()
    if not isinstance(roles_claim, list):
        raise Unauthorized("invalid token: roles must be a list")
    sub = str(claims["sub"])
    user = CurrentUser(
        sub=sub,
        name=str(claims.get("name") or sub),
        roles=frozenset(str(r).lower() for r in roles_claim),
    )
    # PyJWT rejects the token once ``exp <= now - leeway``
    return user, int(claims["exp"]) + JWT_LEEWAY_SECONDS


def _check_lifetime(settings: CommonSettings, claims: dict[str, Any]) -> None:
    """In production a token living longer than ``jwt_max_lifetime_seconds`` is refused (a
    leaked token stays usable for its whole lifetime)."""
    if settings.env != "prod":
        return
    exp = float(claims["exp"])
    iat = claims.get("iat")
    start = float(iat) if isinstance(iat, int | float) else time.time()
    if exp - start > settings.jwt_max_lifetime_seconds + JWT_LEEWAY_SECONDS:
        raise Unauthorized(
            f"invalid token: lifetime exceeds {settings.jwt_max_lifetime_seconds:g} s"
        )


def decode_token(settings: CommonSettings, token: str) -> CurrentUser:
    """Verify `token` and return its user; raises :class:`Unauthorized`.

    A token verified before (same key, algorithm, issuer and audience) and not yet expired is
    answered from a bounded in-process cache; failures are never cached."""
    key = _verification_key(settings)
    cache_key: _CacheKey = (
        token,
        settings.jwt_algorithm,
        key,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_max_lifetime_seconds if settings.env == "prod" else 0.0,
    )
    hit = _token_cache.get(cache_key)
    if hit is not None:
        with _token_cache_lock:
            if time.time() < hit[1]:
                if cache_key in _token_cache:
                    _token_cache.move_to_end(cache_key)
                return hit[0]
            _token_cache.pop(cache_key, None)
    user, expires = _verify(settings, token, key)
    with _token_cache_lock:
        _token_cache[cache_key] = (user, expires)
        while len(_token_cache) > TOKEN_CACHE_SIZE:
            _token_cache.popitem(last=False)
    return user


def _settings_of(request: Request) -> CommonSettings:
    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, CommonSettings):
        raise RuntimeError("app.state.settings is not set (use build_service_app)")
    return settings


async def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> CurrentUser:
    """Dependency: the authenticated user, or 401 problem+json with ``WWW-Authenticate``."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token", error=None)
    user = decode_token(_settings_of(request), credentials.credentials)
    request.state.user = user
    return user


def require_roles(*roles: str) -> Callable[..., Awaitable[CurrentUser]]:
    """Dependency factory: the user must hold one of `roles` (``admin`` passes everywhere).
    With no roles, any authenticated user passes. The dependency exposes them as ``.roles``."""
    wanted = frozenset(r.lower() for r in roles)

    async def dependency(user: CurrentUser = Depends(current_user)) -> CurrentUser:
        if wanted and not user.has_any(*wanted):
            raise Forbidden(wanted)
        return user

    dependency.roles = wanted  # type: ignore[attr-defined]
    return dependency


def bearer_user(request: Request, roles: frozenset[str] = frozenset()) -> CurrentUser | None:
    """The user of a valid bearer token holding one of `roles` (any user when empty), else
    ``None`` — never raises. For hot routes that serve the common case without dependency
    resolution and hand every other request to the regular path (which answers 401/403)."""
    # decoded once per request (the idempotency wrapper asks first); kept in the scope, which
    # is per request (``request.state`` may be shared lifespan state under some servers)
    user: CurrentUser | None = request.scope.get("nexo.bearer")
    if user is None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            user = decode_token(_settings_of(request), token)
        except Unauthorized:
            return None
        request.scope["nexo.bearer"] = user
    if roles and not user.has_any(*roles):
        return None
    request.state.user = user
    return user


def issue_token(
    settings: CommonSettings,
    sub: str,
    roles: Iterable[str],
    name: str | None = None,
    ttl: timedelta = timedelta(hours=1),
) -> str:
    """An HS256 token for development and tests (never used to log real users in)."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("issue_token only signs HS256 tokens (RS256 keys live elsewhere)")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "name": name or sub,
        "roles": sorted(roles),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
