"""Roles of the evidence service (CONTRIBUTING "Roles")."""

from __future__ import annotations

from collections.abc import Iterable

ROLE_RESIDENTE = "evidence.residente"  # Supervisor de sitio / capturista: production, links
ROLE_REVISOR = "evidence.revisor"  # Personal de oficina: review, validate, reject
ROLE_SUPERVISOR = "evidence.supervisor"  # reopen, authorise excedente, close months, OTs
ROLE_FACTURACION = "evidence.facturacion"  # estimates
ROLE_ADMIN = "admin"
ROLE_OPS = "ops"
SYSTEM_USER = "system"

ROLES: tuple[str, ...] = (
    ROLE_RESIDENTE,
    ROLE_REVISOR,
    ROLE_SUPERVISOR,
    ROLE_FACTURACION,
)


def has_any_role(roles: Iterable[str], allowed: Iterable[str]) -> bool:
    owned = set(roles)
    return ROLE_ADMIN in owned or bool(owned & set(allowed))
