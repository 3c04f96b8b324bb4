"""Quote routes (DECIDE-A7): create, list, detail, state, conversion into a sale."""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
)

from fastapi import APIRouter, Query, Request, Response

from sales import queries
from sales.api.deps import Operador, Session, actor, transaction
from sales.api.render import cotizacion_out, venta_creada_response
from sales.api.routing import DomainRoute
from sales.api.schemas import (
    ConvertirBody,
    CotizacionCreate,
    CotizacionEstadoBody,
    CotizacionPublic,
    VentaCreada,
)
from sales.application import quotes
from sales.domain import EstadoCotizacion
from service_defaults.bounds import (
    Id32,
    Int32,
)

router = APIRouter(route_class=DomainRoute)


@router.post(
    "/cotizaciones", status_code=201, response_model=CotizacionPublic, tags=["cotizaciones"]
)
async def create_quote(
    body: CotizacionCreate, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Quote with the price frozen at creation (AC-D15) and a validity date (DECIDE-A7)."""
    async with transaction(request, session):
        c = await quotes.create_cotizacion(
            session,
            quotes.CotizacionIn(
                linea=body.linea.to_service(),
                cliente_id=body.cliente_id,
                vigencia_hasta=body.vigencia_hasta,
            ),
            actor(user),
        )
    return cotizacion_out(c)


@router.get("/cotizaciones", response_model=list[CotizacionPublic], tags=["cotizaciones"])
async def list_quotes(
    session: Session, user: Operador, limit: Annotated[Int32, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    return [cotizacion_out(c) for c in await queries.list_cotizaciones(session, limit)]


@router.get("/cotizaciones/{id_cotizacion}", response_model=CotizacionPublic, tags=["cotizaciones"])
async def get_quote(id_cotizacion: Id32, session: Session, user: Operador) -> dict[str, Any]:
    return cotizacion_out(await quotes.get_cotizacion(session, id_cotizacion))


@router.post(
    "/cotizaciones/{id_cotizacion}/estado", response_model=CotizacionPublic, tags=["cotizaciones"]
)
async def change_quote_state(
    id_cotizacion: Id32,
    body: CotizacionEstadoBody,
    request: Request,
    session: Session,
    user: Operador,
) -> dict[str, Any]:
    async with transaction(request, session):
        c = await quotes.transition_cotizacion(
            session, id_cotizacion, EstadoCotizacion(body.estado), actor(user)
        )
    return cotizacion_out(c)


@router.post(
    "/cotizaciones/{id_cotizacion}/venta",
    status_code=201,
    response_model=VentaCreada,
    tags=["cotizaciones"],
)
async def convert_quote(
    id_cotizacion: Id32,
    request: Request,
    session: Session,
    user: Operador,
    body: ConvertirBody | None = None,
) -> Response:
    """Accepted quote → sale (1:1, UNIQUE), at the frozen price; emits SaleConfirmed."""
    async with transaction(request, session):
        b = body or ConvertirBody()
        r = await quotes.convert_cotizacion(
            session,
            id_cotizacion,
            actor(user),
            writer=request.app.state.sale_writer,
            permitir_backorder=b.permitir_backorder,
            monto_abonado=b.monto_abonado,
            metodo_pago=b.metodo_pago,
            fecha_entrega=b.fecha_entrega,
        )
    return venta_creada_response(r)
