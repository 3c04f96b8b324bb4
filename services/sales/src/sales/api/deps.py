"""Roles, the role-checked user types, the session dependency and the route's commit."""

from __future__ import annotations

from typing import (
    Annotated,
)

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sales.application import common, pricing
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.deps import get_runtime, get_session

VENDEDOR = "sales.vendedor"


ADMINISTRADOR = "sales.admin"


ROLES = (VENDEDOR, ADMINISTRADOR)
"""Roles defined by the sales service (Operador, Administrador)."""


OPERADOR_ROLES = (VENDEDOR, ADMINISTRADOR)


ADMIN_ROLES = (ADMINISTRADOR,)


Operador = Annotated[CurrentUser, Depends(require_roles(*OPERADOR_ROLES))]


Admin = Annotated[CurrentUser, Depends(require_roles(*ADMIN_ROLES))]


Session = Annotated[AsyncSession, Depends(get_session)]


def actor(user: CurrentUser) -> common.Actor:
    return common.Actor(sub=user.sub, is_admin=user.has_any(ADMINISTRADOR))


async def commit(request: Request, session: AsyncSession, *, catalog: bool = False) -> None:
    """Commit the route's transaction and wake the relay. `catalog`: the route changed what the
    catalogue cache holds; drop it again after the commit (the use case dropped it before
    writing, but a concurrent request may have refilled it from the old rows meanwhile)."""
    after = [pricing.invalidate_pricing_cache] if catalog else []
    runtime = get_runtime(request)
    if runtime is not None:
        after.append(runtime.wake_relay)
    await idempotency.commit(session, *after)
