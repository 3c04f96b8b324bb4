"""Client use cases (§A.4.5): create (phone as E.164, DECIDE-A6) and look up."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from sales import domain as d
from sales.application.common import Actor, audit, utcnow
from sales.domain import (
    NotFound,
)
from sales.models import (
    Cliente,
)


@dataclass
class ClienteIn:
    nombre: str
    telefono: str | None = None
    email: str | None = None
    direccion: str | None = None
    es_eventual: bool = False


async def create_cliente(
    s: AsyncSession, data: ClienteIn, actor: Actor, field_prefix: str = ""
) -> Cliente:
    c = Cliente(
        nombre=d.normalize_nombre(data.nombre, f"{field_prefix}nombre"),
        telefono=d.normalize_phone(data.telefono, f"{field_prefix}telefono"),
        email=d.normalize_email(data.email, f"{field_prefix}email"),
        direccion=(data.direccion or "").strip() or None,
        es_eventual=data.es_eventual,
        creado_en=utcnow(),
    )
    s.add(c)
    await s.flush()
    await audit(s, actor, "cliente", c.id_cliente, "alta")
    return c


async def get_cliente(s: AsyncSession, id_cliente: int) -> Cliente:
    c = await s.get(Cliente, id_cliente)
    if c is None:
        raise NotFound(
            f"Cliente {id_cliente} no existe", code="CLIENTE_NO_EXISTE", field="cliente_id"
        )
    return c
