"""Shared pieces of the use cases: the acting user, the clock and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sales.models import (
    Auditoria,
)
from service_defaults.clock import utcnow as utcnow


@dataclass(frozen=True)
class Actor:
    sub: str
    is_admin: bool = False


async def audit(
    s: AsyncSession,
    actor: Actor,
    entidad: str,
    entidad_id: int,
    accion: str,
    desde: str | None = None,
    hacia: str | None = None,
    motivo: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    s.add(
        Auditoria(
            entidad=entidad,
            entidad_id=entidad_id,
            accion=accion,
            desde=desde,
            hacia=hacia,
            motivo=motivo,
            usuario=actor.sub,
            fecha=utcnow(),
            payload=payload,
        )
    )


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in data.items()}
