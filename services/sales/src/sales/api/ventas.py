"""POS sale routes (§A.4.6, §A.3.2): confirm (hot route), list, detail, status, cancel, abonos."""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
)

from fastapi import APIRouter, Query, Request, Response

from sales import queries
from sales.api.deps import Admin, Operador, Session, actor, transaction
from sales.api.render import (
    abono_out,
    cliente_out,
    iso,
    linea_out,
    venta_creada_response,
    venta_summary,
)
from sales.api.routing import DomainRoute
from sales.api.schemas import (
    AbonoBody,
    CancelarBody,
    EstatusBody,
    ReembolsoBody,
    ReprogramarBody,
    VentaBody,
    VentaConAbono,
    VentaCreada,
    VentaDetallePublic,
    VentaPublic,
    VentasPublic,
)
from sales.application import pos, ventas
from sales.domain import EstatusVenta
from sales.models import Venta
from service_defaults import idempotency
from service_defaults.bounds import (
    DomainDate,
    Id32,
    Int32,
)
from service_defaults.deps import get_runtime
from service_defaults.routing import hot_route

router = APIRouter(route_class=DomainRoute)


@router.post("/ventas", status_code=201, response_model=VentaCreada, tags=["ventas"])
@idempotency.looks_up_itself
@hot_route
async def confirm_sale(body: VentaBody, request: Request, user: Operador) -> Response:
    """Confirm a POS cart (§A.4.6): server prices, stock check against stock − comprometido
    (available-to-promise: 409 unless `permitir_backorder`), the quantities held, sale + lines +
    abono + SaleConfirmed in one transaction (on PostgreSQL one statement, see
    `sales.adapters.postgres`)."""
    data = pos.VentaIn(
        carrito=[line.to_service() for line in body.carrito],
        cliente_id=body.cliente_id,
        cliente_nuevo=body.cliente_nuevo.to_service() if body.cliente_nuevo else None,
        monto_abonado=body.monto_abonado,
        metodo_pago=body.metodo_pago,
        referencia_pago=body.referencia_pago,
        fecha_entrega=body.fecha_entrega,
        permitir_backorder=body.permitir_backorder,
        total=body.total,
    )
    state = request.app.state
    writer: pos.SaleWriter = state.sale_writer
    runtime = get_runtime(request)
    wake = runtime.wake_relay if runtime is not None else None
    result = await writer.confirm_direct(
        state.engine, data, actor(user), venta_creada_response, wake
    )
    if result is None:  # the session path (a new client, an in-memory database)
        await idempotency.replay_if_stored()
        async with (
            idempotency.open_session(state.sessionmaker) as session,
            transaction(request, session),
        ):
            result = await pos.confirm_sale(session, data, actor(user), writer=writer)
    return venta_creada_response(result)


@router.get("/ventas", response_model=VentasPublic, tags=["ventas"])
async def list_sales(
    session: Session,
    user: Operador,
    estatus: EstatusVenta | None = None,
    desde: DomainDate | None = None,
    hasta: DomainDate | None = None,
    cliente_id: Int32 | None = None,
    limit: Annotated[Int32, Query(ge=1, le=500)] = 100,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> dict[str, Any]:
    filters: dict[str, Any] = {
        "estatus": estatus.value if estatus else None,
        "desde": desde,
        "hasta": hasta,
        "id_cliente": cliente_id,
    }
    rows = await queries.list_ventas(session, **filters, limit=limit, offset=offset)
    return {
        "items": [venta_summary(v) for v in rows],
        "resumen": await queries.resumen_ventas(session, **filters),
    }


@router.get("/ventas/{id_venta}", response_model=VentaDetallePublic, tags=["ventas"])
async def get_sale(id_venta: Id32, session: Session, user: Operador) -> dict[str, Any]:
    det = await queries.get_venta(session, id_venta)
    out = venta_summary(det.venta)
    out["cliente"] = cliente_out(det.cliente) if det.cliente else None
    out["lineas"] = [linea_out(x) for x in det.lineas]
    out["abonos"] = [abono_out(a) for a in det.abonos]
    out["auditoria"] = [
        {
            "accion": a.accion,
            "desde": a.desde,
            "hacia": a.hacia,
            "motivo": a.motivo,
            "usuario": a.usuario,
            "fecha": iso(a.fecha),
        }
        for a in det.auditoria
    ]
    return out


@router.post("/ventas/{id_venta}/estatus", response_model=VentaPublic, tags=["ventas"])
async def change_sale_status(
    id_venta: Id32, body: EstatusBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Fulfilment transition (§A.3.2). `entregada` with a balance needs Administrador + motivo;
    `cancelada` needs Administrador + motivo. `version` (optional) must match the sale's."""
    async with transaction(request, session):
        v = await ventas.change_status(
            session,
            id_venta,
            body.estatus,
            actor(user),
            motivo=body.motivo,
            fecha_entrega=body.fecha_entrega,
            expected_version=body.version,
        )
    return venta_summary(v)


@router.post("/ventas/{id_venta}/cancelar", response_model=VentaPublic, tags=["ventas"])
async def cancel_sale(
    id_venta: Id32, body: CancelarBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Cancel (Administrador, reason required): SaleCancelled returns the stock asynchronously;
    the sale's abonos are marked `por_reembolsar`."""
    async with transaction(request, session):
        v = await ventas.change_status(
            session,
            id_venta,
            EstatusVenta.CANCELADA,
            actor(user),
            motivo=body.motivo,
            expected_version=body.version,
        )
    return venta_summary(v)


@router.post(
    "/ventas/{id_venta}/abonos", status_code=201, response_model=VentaConAbono, tags=["ventas"]
)
async def add_payment(
    id_venta: Id32, body: AbonoBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Record an abono in the ledger; Σ abonos never exceeds the total (422 ABONO_EXCEDE_SALDO)."""
    async with transaction(request, session):
        ab = await ventas.add_abono(
            session,
            id_venta,
            body.monto,
            actor(user),
            metodo=body.metodo,
            referencia=body.referencia,
        )
        v = await session.get(Venta, id_venta)
        assert v is not None
        out = venta_summary(v)
        out["abono"] = abono_out(ab)
    return out


@router.post("/ventas/{id_venta}/fecha-entrega", response_model=VentaPublic, tags=["ventas"])
async def reschedule_sale(
    id_venta: Id32, body: ReprogramarBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Reschedule the promised delivery date of an open sale (pendiente or en_produccion; else
    409 VENTA_NO_REPROGRAMABLE), audited with the old and the new date."""
    async with transaction(request, session):
        v = await ventas.reschedule(
            session, id_venta, body.fecha_entrega, actor(user), motivo=body.motivo
        )
    return venta_summary(v)


@router.post(
    "/ventas/{id_venta}/abonos/{id_abono}/reembolso",
    response_model=VentaConAbono,
    tags=["ventas"],
)
async def refund_payment(
    id_venta: Id32,
    id_abono: Id32,
    body: ReembolsoBody,
    request: Request,
    session: Session,
    user: Admin,
) -> dict[str, Any]:
    """Record the refund of a cancelled sale's abono (`por_reembolsar → reembolsado`,
    Administrador; else 409 ABONO_NO_REEMBOLSABLE)."""
    async with transaction(request, session):
        ab = await ventas.refund_abono(
            session, id_venta, id_abono, actor(user), referencia=body.referencia
        )
        v = await session.get(Venta, id_venta)
        assert v is not None
        out = venta_summary(v)
        out["abono"] = abono_out(ab)
    return out
