"""HTTP routes of the sales service: thin pydantic-validated adapters over the use cases
(`sales.application`) and the read side (`sales.queries`), one router per resource group.

Every route requires a bearer token (AC-D01). Operador = ``sales.vendedor``; Administrador =
``sales.admin`` (the global ``admin`` role passes everywhere). Domain errors become RFC 9457
problem details whose `type` ends in the DOMAIN code (e.g. ``STOCK_INSUFICIENTE``).
`router` (all routes, in this order) is what `sales.main` mounts and the gateway reads.
"""

from fastapi import APIRouter

from sales.api import (
    clientes,
    configuracion,
    cotizaciones,
    documentos,
    materiales,
    precios,
    productos,
    reportes,
    ventas,
)
from sales.api.deps import ADMINISTRADOR, ROLES, VENDEDOR
from sales.api.routing import DomainRoute

ROUTERS: tuple[APIRouter, ...] = (
    precios.router,
    ventas.router,
    cotizaciones.router,
    documentos.router,
    clientes.router,
    productos.router,
    materiales.router,
    configuracion.router,
    reportes.router,
)

# One flat list of the routers' own route objects (not `include_router`, which FastAPI keeps
# as a nested router that every request walks): routing costs what it cost with one module.
router = APIRouter(route_class=DomainRoute)
for _sub in ROUTERS:
    router.routes.extend(_sub.routes)

__all__ = ["ADMINISTRADOR", "ROLES", "ROUTERS", "VENDEDOR", "router"]
