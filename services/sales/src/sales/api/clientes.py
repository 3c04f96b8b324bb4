"""Client routes (§A.4.5)."""

from __future__ import annotations

from typing import (
    Any,
)

from fastapi import APIRouter, Request

from sales import queries
from sales.api.deps import Admin, Operador, Session, actor, transaction
from sales.api.render import cliente_out
from sales.api.routing import DomainRoute
from sales.api.schemas import (
    ClienteCreado,
    ClienteCreate,
    ClienteFusionado,
    ClientePublic,
    ClienteUpdate,
    FusionBody,
)
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


@router.patch("/clientes/{id_cliente}", response_model=ClientePublic, tags=["clientes"])
async def update_client(
    id_cliente: Id32, body: ClienteUpdate, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Edit a client (normalised as at creation; audited with the changed values)."""
    async with transaction(request, session):
        c = await clients.update_cliente(
            session, id_cliente, body.model_dump(exclude_unset=True), actor(user)
        )
    return cliente_out(c)


@router.post("/clientes/{id_cliente}/fusion", response_model=ClienteFusionado, tags=["clientes"])
async def merge_clients(
    id_cliente: Id32, body: FusionBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Merge the duplicate `id_duplicado` into this client (Administrador): its quotes and
    sales move here, the duplicate is removed, both audit trails record it. Merging a client
    into itself is 422 FUSION_MISMO_CLIENTE."""
    async with transaction(request, session):
        f = await clients.merge_clientes(session, id_cliente, body.id_duplicado, actor(user))
        out = {
            "cliente": cliente_out(f.cliente),
            "cotizaciones_movidas": f.cotizaciones_movidas,
            "ventas_movidas": f.ventas_movidas,
        }
    return out
