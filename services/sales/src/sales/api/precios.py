"""Price preview route (§A.4.1), a hot route served from the catalogue cache."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sales.api.deps import Operador
from sales.api.render import price_out
from sales.api.routing import DomainRoute
from sales.api.schemas import PreviewBody, PriceOut
from sales.application import pricing
from service_defaults.routing import hot_route

router = APIRouter(route_class=DomainRoute)


@router.post("/precios/preview", response_model=PriceOut, tags=["precios"])
@hot_route
async def price_preview(body: PreviewBody, request: Request, user: Operador) -> Response:
    """Canonical price breakdown (§A.4.1). Nothing is written. The breakdown components are
    rounded for display; `precio_unitario` is the single authoritative rounding. Served from
    the in-process catalogue cache (see `sales.application.pricing.preview`)."""
    price = await pricing.preview(request.app.state.engine, body.to_service())
    return Response(price_out(price).model_dump_json(), media_type="application/json")
