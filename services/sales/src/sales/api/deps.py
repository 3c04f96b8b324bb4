"""Roles, the role-checked user types, the session dependency and the route's unit of work."""

from __future__ import annotations

from typing import (
    Annotated,
)

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sales.application import common, pricing
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.deps import get_session
from service_defaults.uow import UnitOfWork, unit_of_work_for

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


def transaction(request: Request, session: AsyncSession, *, catalog: bool = False) -> UnitOfWork:
    """The route's unit of work: commit at the end of the ``async with`` block, then wake the
    relay. `catalog`: the route changed what the catalogue cache holds; drop it again after the
    commit (the use case dropped it before writing, but a concurrent request may have refilled
    it from the old rows meanwhile)."""
    if catalog:
        return unit_of_work_for(request, session, pricing.invalidate_pricing_cache)
    return unit_of_work_for(request, session)
