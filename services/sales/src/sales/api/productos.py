"""Product catalogue routes (Administrador writes; soft delete, AC-D16)."""

from __future__ import annotations

from typing import (
    Any,
)

from fastapi import APIRouter, Request

from sales import queries
from sales.api.catalog import add_row_routes
from sales.api.deps import Admin, Operador, Session, actor, transaction
from sales.api.render import producto_out
from sales.api.routing import DomainRoute
from sales.api.schemas import ProductoCreate, ProductoPublic, ProductoUpdate
from sales.application import catalogue
from service_defaults.bounds import (
    SafeText,
)

router = APIRouter(route_class=DomainRoute, tags=["catalogo"])


@router.get("/productos", response_model=list[ProductoPublic])
async def list_products(
    session: Session, user: Operador, q: SafeText | None = None, incluir_inactivos: bool = False
) -> list[dict[str, Any]]:
    return [producto_out(p) for p in await queries.list_productos(session, q, incluir_inactivos)]


@router.post("/productos", status_code=201, response_model=ProductoPublic)
async def create_product(
    body: ProductoCreate, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    async with transaction(request, session, catalog=True):
        p = await catalogue.create_producto(session, actor(user), **body.model_dump())
    return producto_out(p)


add_row_routes(
    router,
    "/productos/{id_producto}",
    key="id_producto",
    names=("update_product", "delete_product"),
    body=ProductoUpdate,
    public=ProductoPublic,
    render=producto_out,
    update=catalogue.update_producto,
    delete=catalogue.delete_producto,
    delete_doc="Soft delete (`activo = false`): sale history keeps its product (AC-D16).",
)
