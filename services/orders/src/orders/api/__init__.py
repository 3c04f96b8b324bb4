"""HTTP routes of the orders service: thin pydantic-validated adapters over the use cases
(`orders.application`) and the read side (`orders.queries`), one router module per resource
group; request bodies in `schemas`.

Every route requires a bearer token; the permission matrix of DOMAIN §B.4.8 (deny by default)
is applied with `require_roles` here and again inside each use case. Domain errors become
RFC 9457 problem details whose `type` ends in the DOMAIN code (e.g. ``YA_SURTIDA``).
Proposal generation is asynchronous: after validation, poll
``GET /solicitudes/{id}/propuesta`` until it answers 200.
"""

from __future__ import annotations

from fastapi import APIRouter

from orders.api import catalogue, documents, proposals, reports, requests, stock, uploads
from orders.api.common import ROLES
from service_defaults.routing import DomainRoute

router = APIRouter(route_class=DomainRoute)
"""Every route of the service, in the order the routers are listed (`orders.main` mounts it)."""
for _module in (requests, proposals, documents, stock, catalogue, reports, uploads):
    router.include_router(_module.router)

__all__ = ["ROLES", "router"]
