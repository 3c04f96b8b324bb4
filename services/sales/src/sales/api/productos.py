"""Product catalogue routes (Administrador writes; soft delete, AC-D16)."""

from __future__ import annotations

from typing import (
    Any,
)

from fastapi import APIRouter, Request, Response

from sales import queries
from sales.api.deps import Admin, Operador, Session, actor, transaction
from sales.api.render import producto_out
from sales.api.routing import DomainRoute
from sales.api.schemas import ProductoCreate, ProductoPublic, ProductoUpdate
from sales.application import catalogue
from service_defaults.bounds import (
    Id32,
    SafeText,
)

router = APIRouter(route_class=DomainRoute)


@router.get("/productos", response_model=list[ProductoPublic], tags=["catalogo"])
async def list_products(
    session: Session, user: Operador, q: SafeText | None = None, incluir_inactivos: bool = False
) -> list[dict[str, Any]]:
    return [producto_out(p) for p in await queries.list_productos(session, q, incluir_inactivos)]


@router.post("/productos", status_code=201, response_model=ProductoPublic, tags=["catalogo"])
async def create_product(
    body: ProductoCreate, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    async with transaction(request, session, catalog=True):
        p = await catalogue.create_producto(session, actor(user), **body.model_dump())
    return producto_out(p)


@router.patch("/productos/{id_producto}", response_model=ProductoPublic, tags=["catalogo"])
async def update_product(
    id_producto: Id32, body: ProductoUpdate, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    async with transaction(request, session, catalog=True):
        p = await catalogue.update_producto(
            session, actor(user), id_producto, body.model_dump(exclude_unset=True)
        )
    return producto_out(p)


@router.delete("/productos/{id_producto}", status_code=204, tags=["catalogo"])
async def delete_product(
    id_producto: Id32, request: Request, session: Session, user: Admin
) -> Response:
    """Soft delete (`activo = false`): sale history keeps its product (AC-D16)."""
    async with transaction(request, session, catalog=True):
        await catalogue.delete_producto(session, actor(user), id_producto)
    return Response(status_code=204)
