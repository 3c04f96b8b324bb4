"""Client routes (§A.4.5)."""

from __future__ import annotations

from typing import (
    Any,
)

from fastapi import APIRouter, Request

from sales import queries
from sales.api.deps import Operador, Session, actor, transaction
from sales.api.render import cliente_out
from sales.api.routing import DomainRoute
from sales.api.schemas import ClienteCreado, ClienteCreate, ClientePublic
from sales.application import clients
from service_defaults.bounds import (
    Id32,
    SafeText,
)

router = APIRouter(route_class=DomainRoute)


@router.post("/clientes", status_code=201, response_model=ClienteCreado, tags=["clientes"])
async def create_client(
    body: ClienteCreate, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Create a client (also used inline by the POS, §A.4.5); phone stored as E.164."""
    async with transaction(request, session):
        c = await clients.create_cliente(session, body.to_service(), actor(user))
    return {"ok": True, **cliente_out(c)}


@router.get("/clientes", response_model=list[ClientePublic], tags=["clientes"])
async def list_clients(
    session: Session, user: Operador, q: SafeText | None = None, incluir_eventuales: bool = False
) -> list[dict[str, Any]]:
    return [cliente_out(c) for c in await queries.list_clientes(session, q, incluir_eventuales)]


@router.get("/clientes/{id_cliente}", response_model=ClientePublic, tags=["clientes"])
async def get_client(id_cliente: Id32, session: Session, user: Operador) -> dict[str, Any]:
    return cliente_out(await clients.get_cliente(session, id_cliente))
