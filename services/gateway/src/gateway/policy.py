"""Per-route authorization at the edge, from the services' own role declarations.

Each service lists its roles in ``ROLES`` (``<svc>.api`` or ``<svc>.roles``) and guards its
routes with ``require_roles(...)``. The gateway reads the routes of ``<svc>.api.router``
(importing the module does no I/O) and, for every route, the roles of its ``require_roles``
dependencies, so the check at the edge is the same one the service makes (the service still
verifies the token and the roles itself).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from service_defaults.auth import ADMIN_ROLE, CurrentUser

PUBLIC_SUBPATHS = frozenset(
    {"/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs", "/redoc"}
)
REQUIRED_CACHE_SIZE = 4096
"""Answers of :meth:`ServicePolicy.required` kept per (method, path): matching a path against
every route of a service is a regex per route, on every request."""


def service_roles(service: str) -> tuple[str, ...] | None:
    """The ``ROLES`` constant of ``<service>.api`` or ``<service>.roles`` (None if absent)."""
    for module_name in (f"{service}.roles", f"{service}.api"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        roles = getattr(module, "ROLES", None)
        if roles:
            return tuple(str(r).lower() for r in roles)
    return None


def _roles_of_call(call: Any) -> frozenset[str] | None:
    """The role set a ``require_roles(...)`` dependency declares (its ``.roles``), else None."""
    roles = getattr(call, "roles", None)
    if isinstance(roles, frozenset) and "require_roles" in getattr(call, "__qualname__", ""):
        return frozenset(str(r) for r in roles)
    return None


def _requirements(dependant: Dependant) -> list[frozenset[str]]:
    out: list[frozenset[str]] = []
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = _roles_of_call(dep.call)
        if roles is not None:
            out.append(roles)
        stack.extend(dep.dependencies)
    return out


@dataclass
class RouteRule:
    route: BaseRoute
    requirements: list[frozenset[str]]
    authenticated: bool
    prefix: str = ""


def flatten_routes(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, BaseRoute]]:
    """``(prefix, route)`` for every route, descending into included routers (FastAPI keeps
    ``include_router`` results as nested router objects)."""
    out: list[tuple[str, BaseRoute]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            extra = str(getattr(context, "prefix", "") or "")
            out.extend(flatten_routes(inner.routes, prefix + extra))
        else:
            out.append((prefix, route))
    return out


@dataclass
class ServicePolicy:
    """Who may call what below ``/api/<service>``."""

    service: str
    roles: tuple[str, ...] | None
    rules: list[RouteRule] = field(default_factory=list)
    _cache: dict[tuple[str, str], list[frozenset[str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def load(cls, service: str, routes: Sequence[BaseRoute] | None = None) -> ServicePolicy:
        if routes is None:
            try:
                routes = list(importlib.import_module(f"{service}.api").router.routes)
            except (ImportError, AttributeError):
                routes = []
        rules: list[RouteRule] = []
        for prefix, route in flatten_routes(routes):
            if isinstance(route, APIRoute):
                reqs = _requirements(route.dependant)
                authenticated = bool(reqs) or any(
                    getattr(d.call, "__name__", "") == "current_user"
                    for d in route.dependant.dependencies
                )
                rules.append(RouteRule(route, reqs, authenticated, prefix))
        return cls(service, service_roles(service), rules)

    def is_public(self, subpath: str) -> bool:
        return subpath in PUBLIC_SUBPATHS or subpath.startswith("/docs/")

    def required(self, scope: Scope, subpath: str) -> list[frozenset[str]]:
        """The role sets the caller must satisfy (each: one of), for the route `subpath`
        matches; a route the gateway does not know needs one of the service's ``ROLES``."""
        key = (scope.get("method", ""), subpath)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._match(scope, subpath)
            if len(self._cache) >= REQUIRED_CACHE_SIZE:
                self._cache.clear()  # paths with ids are unbounded; the hot ones come back
            self._cache[key] = cached
        return cached

    def _match(self, scope: Scope, subpath: str) -> list[frozenset[str]]:
        partial: RouteRule | None = None
        for rule in self.rules:
            if rule.prefix and not subpath.startswith(rule.prefix):
                continue
            probe = {**scope, "path": subpath[len(rule.prefix) :], "root_path": ""}
            match, _ = rule.route.matches(probe)
            if match == Match.FULL:
                return rule.requirements
            if match == Match.PARTIAL and partial is None:
                partial = rule
        if partial is not None:  # path known, method not allowed: the service answers 405
            return partial.requirements
        return [frozenset(self.roles)] if self.roles else []


def allowed(user: CurrentUser, requirements: Iterable[frozenset[str]]) -> frozenset[str] | None:
    """None when `user` satisfies every requirement, else the first unmet role set."""
    if ADMIN_ROLE in user.roles:
        return None
    for wanted in requirements:
        if wanted and not (wanted & user.roles):
            return wanted
    return None
