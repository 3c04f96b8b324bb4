"""HTTP routes of the sales service: thin pydantic-validated adapters over `sales.service`.

Every route requires a bearer token (AC-D01). Operador = ``sales.vendedor``; Administrador =
``sales.admin`` (the global ``admin`` role passes everywhere). Domain errors become RFC 9457
problem details whose `type` ends in the DOMAIN code (e.g. ``STOCK_INSUFICIENTE``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from fastapi import APIRouter, Depends, Path, Query, Request, Response, params
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from sales import domain as d
from sales import queries
from sales.adapters import portable, postgres
from sales.application import catalogue, clients, common, pos, pricing, quotes, stock, ventas
from sales.domain import DomainError, EstadoCotizacion, EstatusVenta
from sales.models import Abono, Cliente, Cotizacion, DetalleVenta, Material, Producto, Venta
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, bearer_user, require_roles
from service_defaults.bounds import (
    INT32_MAX,
    LIKE_ESCAPE,
    DomainDate,
    Id32,
    Int32,
    SafeText,
    json_body_guard,
    like_contains,
)
from service_defaults.deps import get_runtime, get_session
from service_defaults.errors import ProblemError

VENDEDOR = "sales.vendedor"
ADMINISTRADOR = "sales.admin"
ROLES = (VENDEDOR, ADMINISTRADOR)
"""Roles defined by the sales service (Operador, Administrador)."""

OPERADOR_ROLES = (VENDEDOR, ADMINISTRADOR)
ADMIN_ROLES = (ADMINISTRADOR,)


def to_problem(exc: DomainError) -> ProblemError:
    ext = dict(exc.extensions)
    field = ext.get("field")
    if field and "errors" not in ext:
        ext["errors"] = [{"field": field, "reason": exc.detail or exc.title}]
    return ProblemError(exc.status, exc.code, exc.title, exc.detail, **ext)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _sqlite_write_lock(request: Request) -> asyncio.Lock | None:
    """Embedded mode (SQLite, one process): API write transactions take turns in FIFO order
    instead of racing for SQLite's single writer lock (which starves under load and ends in
    "database is locked"). PostgreSQL needs no such lock."""
    if request.method not in WRITE_METHODS:
        return None
    state = request.app.state
    engine = getattr(state, "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    lock: asyncio.Lock | None = getattr(state, "sales_sqlite_write_lock", None)
    if lock is None:
        lock = asyncio.Lock()
        state.sales_sqlite_write_lock = lock
    return lock


Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def hot_route(endpoint: Endpoint) -> Endpoint:
    """Marks a high-traffic endpoint whose parameters are exactly a pydantic body, the
    `Request` and a role-checked user (``Annotated[CurrentUser, Depends(require_roles(...))]``)
    and which returns a `Response`. :class:`DomainRoute` then serves its common case — a valid
    bearer token with the role, a JSON body that validates — by calling it directly, without
    FastAPI's dependency resolution; every other request takes the regular FastAPI path, so
    401/403/422 answers are exactly the usual ones."""
    _hot_signature(endpoint)  # fail at import time on an unsupported signature
    endpoint.__nexo_hot__ = True  # type: ignore[attr-defined]
    return endpoint


def _hot_signature(
    endpoint: Callable[..., Any],
) -> tuple[str, type[BaseModel], str, frozenset[str], str]:
    hints = get_type_hints(endpoint, include_extras=True)
    body = user = req = None
    model: type[BaseModel] | None = None
    roles: frozenset[str] = frozenset()
    for name in inspect.signature(endpoint).parameters:
        hint = hints[name]
        if hint is Request:
            req = name
        elif get_origin(hint) is Annotated:
            base, *meta = get_args(hint)
            dep = next((m for m in meta if isinstance(m, params.Depends)), None)
            wanted = getattr(dep.dependency, "roles", None) if dep is not None else None
            if base is not CurrentUser or not isinstance(wanted, frozenset):
                raise TypeError(f"{endpoint.__name__}: unsupported parameter {name}")
            user, roles = name, wanted
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            body, model = name, hint
        else:
            raise TypeError(f"{endpoint.__name__}: unsupported parameter {name}")
    if body is None or model is None or user is None or req is None:
        raise TypeError(f"{endpoint.__name__}: needs a body, the request and a user")
    return body, model, user, roles, req


def _hot_handler(
    endpoint: Callable[..., Awaitable[Response]],
    regular: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    body_name, model, user_name, roles, request_name = _hot_signature(endpoint)

    async def handler(request: Request) -> Response:
        user = bearer_user(request, roles)
        if user is None:
            return await regular(request)
        ctype = request.headers.get("content-type")
        if ctype is None or not (
            ctype == "application/json" or ctype.startswith("application/json;")
        ):
            return await regular(request)
        raw = await request.body()  # cached on the request: the regular path reads it again
        try:
            body = model.model_validate(json.loads(raw), from_attributes=True)
        except (ValueError, RecursionError):  # the regular path answers 400 / 422
            return await regular(request)
        return await endpoint(**{body_name: body, user_name: user, request_name: request})

    return handler


class DomainRoute(APIRoute):
    """Maps domain exceptions raised by a route to problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        if getattr(self.endpoint, "__nexo_hot__", False):
            original = _hot_handler(self.endpoint, original)
        # inside the SQLite write lock
        lookup_in_route = getattr(self.endpoint, "__nexo_key_lookup__", False)
        original = idempotency.idempotent(original, lookup_in_route=lookup_in_route)

        async def handler(request: Request) -> Response:
            try:
                lock = _sqlite_write_lock(request)
                if lock is None:
                    return await original(request)
                async with lock:
                    return await original(request)
            except DomainError as exc:
                raise to_problem(exc) from exc
            except OperationalError as exc:
                if "locked" not in str(exc.orig).lower():
                    raise
                problem = ProblemError(
                    503,
                    "BASE_DE_DATOS_OCUPADA",
                    "Base de datos ocupada",
                    "La base de datos está ocupada; reintenta en un momento.",
                )
                problem.headers = {"Retry-After": "1"}
                raise problem from exc
            except IntegrityError as exc:
                raise ProblemError(
                    409,
                    "CONFLICTO_DE_INTEGRIDAD",
                    "Conflicto con datos existentes",
                    "La operación viola una regla de integridad (duplicado o referencia).",
                ) from exc

        return json_body_guard(self, handler)


router = APIRouter(route_class=DomainRoute)

Operador = Annotated[CurrentUser, Depends(require_roles(*OPERADOR_ROLES))]
Admin = Annotated[CurrentUser, Depends(require_roles(*ADMIN_ROLES))]
Session = Annotated[AsyncSession, Depends(get_session)]


def actor(user: CurrentUser) -> common.Actor:
    return common.Actor(sub=user.sub, is_admin=user.has_any(ADMINISTRADOR))


async def commit(request: Request, session: AsyncSession, *, catalog: bool = False) -> None:
    """Commit the route's transaction and wake the relay. `catalog`: the route changed what the
    catalogue cache holds; drop it again after the commit (the use case dropped it before
    writing, but a concurrent request may have refilled it from the old rows meanwhile)."""
    after = [pricing.invalidate_pricing_cache] if catalog else []
    runtime = get_runtime(request)
    if runtime is not None:
        after.append(runtime.wake_relay)
    await idempotency.commit(session, *after)


def dec(value: Decimal | None) -> str | None:
    return None if value is None else d.format_money(value)


# --------------------------------------------------------------------------- schemas

Dim = Annotated[Decimal, Field(ge=0, le=d.MAX_DIMENSION_CM, max_digits=12, decimal_places=2)]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
Utilidad = Annotated[int, Field(ge=0, le=d.MAX_UTILIDAD)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LineaBody(BaseModel):
    """A cart line. Legacy display-only keys (`producto_nombre`, `material_nombre`) are ignored."""

    model_config = ConfigDict(extra="ignore")

    producto_id: Id32 = Field(gt=0)
    material_id: Id32 = Field(gt=0)
    largo: Dim
    ancho: Dim
    espesor_mm: Int32 = Field(gt=0, validation_alias=AliasChoices("espesor_mm", "espesor"))
    minutos_laser: int = Field(
        default=0,
        ge=0,
        le=d.MAX_MINUTOS_LASER,
        validation_alias=AliasChoices("minutos_laser", "minutos_lazer"),
    )
    cantidad: int = Field(default=1, ge=1, le=d.MAX_CANTIDAD)
    porcentaje_utilidad: Utilidad | None = None
    subtotal: Money | None = Field(
        default=None, description="The client's figure; must equal the server's exactly."
    )

    def to_service(self) -> pricing.LineaIn:
        return pricing.LineaIn(
            producto_id=self.producto_id,
            material_id=self.material_id,
            largo=self.largo,
            ancho=self.ancho,
            espesor_mm=self.espesor_mm,
            minutos_laser=self.minutos_laser,
            cantidad=self.cantidad,
            porcentaje_utilidad=self.porcentaje_utilidad,
            subtotal=self.subtotal,
        )


class PreviewBody(LineaBody):
    material_id: int = Field(default=0, ge=0, le=INT32_MAX)  # optional for a preview


class ClienteBody(_In):
    nombre: SafeText = Field(max_length=100)
    telefono: SafeText | None = Field(default=None, max_length=40)
    email: SafeText | None = Field(default=None, max_length=100)
    direccion: SafeText | None = Field(default=None, max_length=1000)
    es_eventual: bool = False

    def to_service(self) -> clients.ClienteIn:
        return clients.ClienteIn(**self.model_dump())


# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    MetodoPago = str
    EstadoCotizacionPedido = str
else:
    MetodoPago = Literal[d.values(d.MetodoPago)]
    EstadoCotizacionPedido = Literal[tuple(e.value for e in d.REQUESTABLE_QUOTE_STATES)]


class VentaBody(_In):
    cliente_id: Int32 | None = Field(default=None, gt=0)
    cliente_nuevo: ClienteBody | None = None
    carrito: list[LineaBody] = Field(min_length=1, max_length=200)
    monto_abonado: Money = Field(default=Decimal("0"), ge=0)
    metodo_pago: MetodoPago = "efectivo"
    referencia_pago: SafeText | None = Field(default=None, max_length=100)
    fecha_entrega: DomainDate | None = None
    permitir_backorder: bool = False
    total: Money | None = None


class EstatusBody(_In):
    estatus: EstatusVenta
    motivo: SafeText | None = Field(default=None, max_length=2000)
    fecha_entrega: DomainDate | None = None
    version: Int32 | None = Field(default=None, ge=1, description="Optimistic concurrency check.")


class CancelarBody(_In):
    motivo: SafeText = Field(min_length=1, max_length=2000)
    version: Int32 | None = Field(default=None, ge=1)


class AbonoBody(_In):
    monto: Money = Field(gt=0)
    metodo: MetodoPago = "efectivo"
    referencia: SafeText | None = Field(default=None, max_length=100)


class ProductoBody(_In):
    nombre: SafeText = Field(min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad = 40
    foto: SafeText | None = Field(default=None, max_length=255)


class ProductoPatch(_In):
    nombre: SafeText | None = Field(default=None, min_length=1, max_length=100)
    detalle: SafeText | None = Field(default=None, max_length=100)
    precio_fijo: Money | None = Field(default=None, gt=0)
    porcentaje_utilidad: Utilidad | None = None
    foto: SafeText | None = Field(default=None, max_length=255)


class MaterialBody(_In):
    descripcion: SafeText = Field(min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)
    stock_actual: int = Field(default=0, ge=0, le=10_000_000)
    stock_minimo: int = Field(default=0, ge=0, le=10_000_000)


class MaterialPatch(_In):
    descripcion: SafeText | None = Field(default=None, min_length=1, max_length=100)
    largo: Dim | None = Field(default=None, gt=0)
    ancho: Dim | None = Field(default=None, gt=0)
    stock_minimo: Int32 | None = Field(default=None, ge=0, le=10_000_000)


class MovimientoBody(_In):
    cantidad: int = Field(ge=-10_000_000, le=10_000_000)
    nota: SafeText | None = Field(default=None, max_length=2000)


class ConteoBody(_In):
    contado: int = Field(ge=-10_000_000, le=10_000_000)
    nota: SafeText | None = Field(default=None, max_length=2000)


class TarifaBody(_In):
    tarifa_laser_minuto: Annotated[Decimal, Field(ge=0, max_digits=8, decimal_places=2)]
    version: Int32 | None = Field(default=None, ge=1)


class FactorBody(_In):
    factor_costo: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=4)]


class CotizacionBody(_In):
    cliente_id: Int32 | None = Field(default=None, gt=0)
    linea: LineaBody
    vigencia_hasta: DomainDate | None = None


class CotizacionEstadoBody(_In):
    estado: EstadoCotizacionPedido


class ConvertirBody(_In):
    permitir_backorder: bool = False
    monto_abonado: Money = Field(default=Decimal("0"), ge=0)
    metodo_pago: MetodoPago = "efectivo"
    fecha_entrega: DomainDate | None = None


class PriceOut(BaseModel):
    precio_fijo: str | None
    area_cm2: str
    area_m2: str
    factor_costo: str | None
    costo_material: str
    utilidad: str
    costo_laser: str
    porcentaje_utilidad: int
    tarifa_laser_minuto: str
    precio_unitario: str
    cantidad: int
    subtotal: str


class AlertaStock(BaseModel):
    nombre: str
    actual: int
    minimo: int


class VentaCreada(BaseModel):
    ok: bool = True
    venta_id: int
    folio: str
    total: str
    saldo_restante: str
    estado_pago: str
    alertas_stock: list[AlertaStock]


# --------------------------------------------------------------------------- serializers


def price_out(p: d.PriceBreakdown) -> PriceOut:
    return PriceOut(
        precio_fijo=dec(p.precio_fijo),
        area_cm2=d.format_plain(p.area_cm2),
        area_m2=d.format_plain(p.area_m2),
        factor_costo=None if p.factor_costo is None else d.format_plain(p.factor_costo),
        costo_material=d.format_money(p.costo_material_display),
        utilidad=d.format_money(p.utilidad_display),
        costo_laser=d.format_money(p.costo_laser_display),
        porcentaje_utilidad=p.porcentaje_utilidad,
        tarifa_laser_minuto=d.format_money(p.tarifa_laser_minuto),
        precio_unitario=d.format_money(p.precio_unitario),
        cantidad=p.cantidad,
        subtotal=d.format_money(p.subtotal),
    )


def cliente_out(c: Cliente) -> dict[str, Any]:
    return {
        "id_cliente": c.id_cliente,
        "nombre": c.nombre,
        "telefono": c.telefono,
        "email": c.email,
        "direccion": c.direccion,
        "es_eventual": c.es_eventual,
        "whatsapp": d.whatsapp_link(c.telefono) if c.telefono else None,
    }


def producto_out(p: Producto) -> dict[str, Any]:
    return {
        "id_producto": p.id_producto,
        "nombre": p.nombre,
        "detalle": p.detalle,
        "precio_fijo": dec(p.precio_fijo),
        "porcentaje_utilidad": p.porcentaje_utilidad,
        "foto": p.foto,
        "activo": p.activo,
    }


def material_out(m: Material) -> dict[str, Any]:
    return {
        "id_material": m.id_material,
        "descripcion": m.descripcion,
        "largo": dec(m.largo),
        "ancho": dec(m.ancho),
        "stock_actual": m.stock_actual,
        "stock_minimo": m.stock_minimo,
        "bajo_stock": d.is_low_stock(m.stock_actual, m.stock_minimo),
        "activo": m.activo,
    }


def venta_summary(v: Venta) -> dict[str, Any]:
    pago = d.estado_pago(v.total, v.total_pagado)
    return {
        "id_venta": v.id_venta,
        "folio": d.folio_venta(v.id_venta),
        "id_cliente": v.id_cliente,
        "id_cotizacion": v.id_cotizacion,
        "estatus": v.estatus,
        "estado_pago": pago.value,
        "estatus_legacy": d.legacy_estatus(EstatusVenta(v.estatus), pago),
        "total": dec(v.total),
        "total_pagado": dec(v.total_pagado),
        "saldo_restante": dec(d.saldo_restante(v.total, v.total_pagado)),
        "fecha_venta": v.fecha_venta.isoformat(),
        "fecha_entrega": v.fecha_entrega.isoformat() if v.fecha_entrega else None,
        "permitir_backorder": v.permitir_backorder,
        "version": v.version,
    }


def linea_out(x: DetalleVenta) -> dict[str, Any]:
    return {
        "id_detalle": x.id_detalle,
        "producto_id": x.id_producto,
        "material_id": x.id_material,
        "cantidad": x.cantidad,
        "largo": dec(x.largo_pza),
        "ancho": dec(x.ancho_pza),
        "espesor_mm": x.espesor_mm,
        "porcentaje_utilidad": x.porcentaje_utilidad,
        "minutos_laser": x.minutos_laser,
        "precio_unitario": dec(x.precio_unitario),
        "subtotal": dec(x.subtotal),
        "parametros_precio": x.parametros_precio,
    }


def abono_out(a: Abono) -> dict[str, Any]:
    return {
        "id_abono": a.id_abono,
        "monto": dec(a.monto),
        "metodo": a.metodo,
        "referencia": a.referencia,
        "estado": a.estado,
        "fecha": _iso(a.fecha),
        "fecha_negocio": a.fecha_negocio.isoformat(),
        "usuario": a.usuario,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def cotizacion_out(c: Cotizacion) -> dict[str, Any]:
    estado = d.effective_quote_state(EstadoCotizacion(c.estado), c.vigencia_hasta, common.today())
    return {
        "id_cotizacion": c.id_cotizacion,
        "folio": d.folio_cotizacion(c.id_cotizacion),
        "cliente_id": c.id_cliente,
        "producto_id": c.id_producto,
        "material_id": c.id_material,
        "largo": dec(c.largo_pza),
        "ancho": dec(c.ancho_pza),
        "espesor_mm": c.espesor_mm,
        "porcentaje_utilidad": c.porcentaje_utilidad,
        "minutos_laser": c.minutos_laser,
        "cantidad": c.cantidad,
        "precio_unitario": dec(c.precio_unitario),
        "monto_total": dec(c.monto_total),
        "parametros_precio": c.parametros_precio,
        "estado": estado.value,
        "fecha": c.fecha.isoformat(),
        "vigencia_hasta": c.vigencia_hasta.isoformat(),
    }


def venta_creada_dict(r: pos.VentaResult) -> dict[str, Any]:
    return {
        "ok": True,
        "venta_id": r.venta.id_venta,
        "folio": r.folio,
        "total": d.format_money(r.total),
        "saldo_restante": d.format_money(r.saldo_restante),
        "estado_pago": d.estado_pago(r.total, r.total - r.saldo_restante).value,
        "alertas_stock": [
            {"nombre": a["nombre"], "actual": a["actual"], "minimo": a["minimo"]}
            for a in r.alertas_stock
        ],
    }


def venta_creada(r: pos.VentaResult) -> VentaCreada:
    return VentaCreada(
        venta_id=r.venta.id_venta,
        folio=r.folio,
        total=d.format_money(r.total),
        saldo_restante=d.format_money(r.saldo_restante),
        estado_pago=d.estado_pago(r.total, r.total - r.saldo_restante).value,
        alertas_stock=[AlertaStock(**a) for a in r.alertas_stock],
    )


# --------------------------------------------------------------------------- pricing


@router.post("/precios/preview", response_model=PriceOut, tags=["precios"])
@hot_route
async def price_preview(body: PreviewBody, request: Request, user: Operador) -> Response:
    """Canonical price breakdown (§A.4.1). Nothing is written. The breakdown components are
    rounded for display; `precio_unitario` is the single authoritative rounding. Served from
    the in-process catalogue cache (see `service.preview`)."""
    price = await pricing.preview(request.app.state.engine, body.to_service())
    return Response(price_out(price).model_dump_json(), media_type="application/json")


# --------------------------------------------------------------------------- sales


@router.post("/ventas", status_code=201, response_model=VentaCreada, tags=["ventas"])
@idempotency.looks_up_itself
@hot_route
async def confirm_sale(body: VentaBody, request: Request, user: Operador) -> Response:
    """Confirm a POS cart (§A.4.6): server prices, stock pre-check (409 unless
    `permitir_backorder`), sale + lines + abono + SaleConfirmed in one transaction (on
    PostgreSQL one statement, see `sales.adapters.postgres`)."""
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
    engine = request.app.state.engine
    if engine.dialect.name == "postgresql" and data.cliente_nuevo is None:
        # one statement with the key row; its NOTIFY wakes the relay
        result = await postgres.confirm_sale(engine, data, actor(user), venta_creada_response)
    elif data.cliente_nuevo is None and (writer := portable.writer_for(engine)) is not None:
        result = await writer.confirm_sale(engine, data, actor(user), venta_creada_response)
        if (runtime := get_runtime(request)) is not None:
            writer.wake_relay_soon(runtime.wake_relay)
    else:
        await idempotency.replay_if_stored()
        async with idempotency.open_session(request.app.state.sessionmaker) as session:
            result = await pos.confirm_sale(session, data, actor(user))
            await commit(request, session)
    return venta_creada_response(result)


def venta_creada_response(result: pos.VentaResult) -> Response:
    """Rendered directly (the hot path): same body as `VentaCreada`, no response-model pass."""
    return Response(
        json.dumps(venta_creada_dict(result), separators=(",", ":"), ensure_ascii=False),
        status_code=201,
        media_type="application/json",
    )


@router.get("/ventas", tags=["ventas"])
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
    rows = await queries.list_ventas(
        session,
        estatus=estatus.value if estatus else None,
        desde=desde,
        hasta=hasta,
        id_cliente=cliente_id,
        limit=limit,
        offset=offset,
    )
    items = [venta_summary(v) for v in rows]
    return {
        "items": items,
        "resumen": {
            "total_ventas": d.format_money(
                sum((v.total for v in rows if v.estatus != "cancelada"), Decimal(0))
            ),
            "total_cobrado": d.format_money(sum((v.total_pagado for v in rows), Decimal(0))),
            "pendientes": sum(v.estatus == "pendiente" for v in rows),
            "en_produccion": sum(v.estatus == "en_produccion" for v in rows),
            "entregadas": sum(v.estatus == "entregada" for v in rows),
            "canceladas": sum(v.estatus == "cancelada" for v in rows),
        },
    }


@router.get("/ventas/{id_venta}", tags=["ventas"])
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
            "fecha": _iso(a.fecha),
        }
        for a in det.auditoria
    ]
    return out


@router.post("/ventas/{id_venta}/estatus", tags=["ventas"])
async def change_sale_status(
    id_venta: Id32, body: EstatusBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Fulfilment transition (§A.3.2). `entregada` with a balance needs Administrador + motivo;
    `cancelada` needs Administrador + motivo. `version` (optional) must match the sale's."""
    v = await ventas.change_status(
        session,
        id_venta,
        body.estatus,
        actor(user),
        motivo=body.motivo,
        fecha_entrega=body.fecha_entrega,
        expected_version=body.version,
    )
    await commit(request, session)
    return venta_summary(v)


@router.post("/ventas/{id_venta}/cancelar", tags=["ventas"])
async def cancel_sale(
    id_venta: Id32, body: CancelarBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Cancel (Administrador, reason required): SaleCancelled returns the stock asynchronously;
    the sale's abonos are marked `por_reembolsar`."""
    v = await ventas.change_status(
        session,
        id_venta,
        EstatusVenta.CANCELADA,
        actor(user),
        motivo=body.motivo,
        expected_version=body.version,
    )
    await commit(request, session)
    return venta_summary(v)


@router.post("/ventas/{id_venta}/abonos", status_code=201, tags=["ventas"])
async def add_payment(
    id_venta: Id32, body: AbonoBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Record an abono in the ledger; Σ abonos never exceeds the total (422 ABONO_EXCEDE_SALDO)."""
    ab = await ventas.add_abono(
        session, id_venta, body.monto, actor(user), metodo=body.metodo, referencia=body.referencia
    )
    v = await session.get(Venta, id_venta)
    assert v is not None
    out = venta_summary(v)
    out["abono"] = abono_out(ab)
    await commit(request, session)
    return out


# --------------------------------------------------------------------------- quotes


@router.post("/cotizaciones", status_code=201, tags=["cotizaciones"])
async def create_quote(
    body: CotizacionBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Quote with the price frozen at creation (AC-D15) and a validity date (DECIDE-A7)."""
    c = await quotes.create_cotizacion(
        session,
        quotes.CotizacionIn(
            linea=body.linea.to_service(),
            cliente_id=body.cliente_id,
            vigencia_hasta=body.vigencia_hasta,
        ),
        actor(user),
    )
    await commit(request, session)
    return cotizacion_out(c)


@router.get("/cotizaciones", tags=["cotizaciones"])
async def list_quotes(
    session: Session, user: Operador, limit: Annotated[Int32, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    rows = (
        await session.scalars(
            select(Cotizacion).order_by(Cotizacion.id_cotizacion.desc()).limit(limit)
        )
    ).all()
    return [cotizacion_out(c) for c in rows]


@router.get("/cotizaciones/{id_cotizacion}", tags=["cotizaciones"])
async def get_quote(id_cotizacion: Id32, session: Session, user: Operador) -> dict[str, Any]:
    return cotizacion_out(await quotes.get_cotizacion(session, id_cotizacion))


@router.post("/cotizaciones/{id_cotizacion}/estado", tags=["cotizaciones"])
async def change_quote_state(
    id_cotizacion: Id32,
    body: CotizacionEstadoBody,
    request: Request,
    session: Session,
    user: Operador,
) -> dict[str, Any]:
    c = await quotes.transition_cotizacion(
        session, id_cotizacion, EstadoCotizacion(body.estado), actor(user)
    )
    await commit(request, session)
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
) -> VentaCreada:
    """Accepted quote → sale (1:1, UNIQUE), at the frozen price; emits SaleConfirmed."""
    b = body or ConvertirBody()
    r = await quotes.convert_cotizacion(
        session,
        id_cotizacion,
        actor(user),
        permitir_backorder=b.permitir_backorder,
        monto_abonado=b.monto_abonado,
        metodo_pago=b.metodo_pago,
        fecha_entrega=b.fecha_entrega,
    )
    await commit(request, session)
    return venta_creada(r)


# --------------------------------------------------------------------------- clients


@router.post("/clientes", status_code=201, tags=["clientes"])
async def create_client(
    body: ClienteBody, request: Request, session: Session, user: Operador
) -> dict[str, Any]:
    """Create a client (also used inline by the POS, §A.4.5); phone stored as E.164."""
    c = await clients.create_cliente(session, body.to_service(), actor(user))
    await commit(request, session)
    return {"ok": True, **cliente_out(c)}


@router.get("/clientes", tags=["clientes"])
async def list_clients(
    session: Session, user: Operador, q: SafeText | None = None, incluir_eventuales: bool = False
) -> list[dict[str, Any]]:
    return [cliente_out(c) for c in await queries.list_clientes(session, q, incluir_eventuales)]


@router.get("/clientes/{id_cliente}", tags=["clientes"])
async def get_client(id_cliente: Id32, session: Session, user: Operador) -> dict[str, Any]:
    return cliente_out(await clients.get_cliente(session, id_cliente))


# --------------------------------------------------------------------------- catalog


@router.get("/productos", tags=["catalogo"])
async def list_products(
    session: Session, user: Operador, q: SafeText | None = None, incluir_inactivos: bool = False
) -> list[dict[str, Any]]:
    stmt = select(Producto).order_by(Producto.nombre, Producto.id_producto)
    if not incluir_inactivos:
        stmt = stmt.where(Producto.activo.is_(True))
    if q:
        like = like_contains(q)
        stmt = stmt.where(
            func.lower(Producto.nombre).like(like, escape=LIKE_ESCAPE)
            | func.lower(func.coalesce(Producto.detalle, "")).like(like, escape=LIKE_ESCAPE)
        )
    return [producto_out(p) for p in (await session.scalars(stmt)).all()]


@router.post("/productos", status_code=201, tags=["catalogo"])
async def create_product(
    body: ProductoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    p = await catalogue.create_producto(session, actor(user), **body.model_dump())
    await commit(request, session, catalog=True)
    return producto_out(p)


@router.patch("/productos/{id_producto}", tags=["catalogo"])
async def update_product(
    id_producto: Id32, body: ProductoPatch, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    p = await catalogue.update_producto(
        session, actor(user), id_producto, body.model_dump(exclude_unset=True)
    )
    await commit(request, session, catalog=True)
    return producto_out(p)


@router.delete("/productos/{id_producto}", status_code=204, tags=["catalogo"])
async def delete_product(
    id_producto: Id32, request: Request, session: Session, user: Admin
) -> Response:
    """Soft delete (`activo = false`): sale history keeps its product (AC-D16)."""
    await catalogue.delete_producto(session, actor(user), id_producto)
    await commit(request, session, catalog=True)
    return Response(status_code=204)


@router.get("/materiales", tags=["materiales"])
async def list_materials(
    session: Session, user: Operador, q: SafeText | None = None, incluir_inactivos: bool = False
) -> dict[str, Any]:
    stmt = select(Material).order_by(Material.descripcion, Material.id_material)
    if not incluir_inactivos:
        stmt = stmt.where(Material.activo.is_(True))
    if q:
        stmt = stmt.where(
            func.lower(Material.descripcion).like(like_contains(q), escape=LIKE_ESCAPE)
        )
    items = [material_out(m) for m in (await session.scalars(stmt)).all()]
    return {"items": items, "materiales_bajos": sum(1 for m in items if m["bajo_stock"])}


@router.post("/materiales", status_code=201, tags=["materiales"])
async def create_material(
    body: MaterialBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    m = await catalogue.create_material(session, actor(user), **body.model_dump())
    await commit(request, session, catalog=True)
    return material_out(m)


@router.get("/materiales/{id_material}", tags=["materiales"])
async def get_material(id_material: Id32, session: Session, user: Operador) -> dict[str, Any]:
    m = await session.get(Material, id_material)
    if m is None:
        raise d.NotFound(f"Material {id_material} no existe", code="MATERIAL_NO_EXISTE")
    return material_out(m)


@router.patch("/materiales/{id_material}", tags=["materiales"])
async def update_material(
    id_material: Id32, body: MaterialPatch, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    m = await catalogue.update_material(
        session, actor(user), id_material, body.model_dump(exclude_unset=True)
    )
    await commit(request, session, catalog=True)
    return material_out(m)


@router.delete("/materiales/{id_material}", status_code=204, tags=["materiales"])
async def delete_material(
    id_material: Id32, request: Request, session: Session, user: Admin
) -> Response:
    """Refused with 409 MATERIAL_REFERENCIADO while quotes or sales reference it."""
    await catalogue.delete_material(session, actor(user), id_material)
    await commit(request, session, catalog=True)
    return Response(status_code=204)


def _movement_out(eff: d.StockEffect | None, id_material: int) -> dict[str, Any]:
    if eff is None:
        return {"id_material": id_material, "sin_cambios": True}
    return {
        "id_material": id_material,
        "saldo_anterior": eff.before,
        "stock_actual": eff.after,
        "cruce_minimo": eff.low,
    }


@router.post("/materiales/{id_material}/reabasto", tags=["materiales"])
async def restock_material(
    id_material: Id32, body: MovimientoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Restock (+cantidad): atomic increment and a `reabasto` ledger row."""
    eff = await stock.restock(session, id_material, body.cantidad, actor(user), nota=body.nota)
    await commit(request, session)
    return _movement_out(eff, id_material)


@router.post("/materiales/{id_material}/ajuste", tags=["materiales"])
async def adjust_material(
    id_material: Id32, body: MovimientoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Adjustment (±cantidad, `nota` required): atomic update, ledger row, StockLow on crossing."""
    eff = await stock.restock(
        session, id_material, body.cantidad, actor(user), motivo="ajuste", nota=body.nota
    )
    await commit(request, session)
    return _movement_out(eff, id_material)


@router.post("/materiales/{id_material}/conteo", tags=["materiales"])
async def count_material(
    id_material: Id32, body: ConteoBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Physical count: the difference is recorded as a `conteo` movement."""
    eff = await stock.conteo(session, id_material, body.contado, actor(user), body.nota)
    await commit(request, session)
    return _movement_out(eff, id_material)


@router.get("/materiales/{id_material}/movimientos", tags=["materiales"])
async def material_ledger(
    id_material: Id32,
    session: Session,
    user: Operador,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "cantidad": m.cantidad,
            "saldo_anterior": m.saldo_anterior,
            "saldo_resultante": m.saldo_resultante,
            "motivo": m.motivo,
            "id_venta": m.id_venta,
            "event_id": m.event_id,
            "nota": m.nota,
            "usuario": m.usuario,
            "fecha": _iso(m.fecha),
        }
        for m in await queries.list_movimientos(session, id_material, limit)
    ]


# --------------------------------------------------------------------------- configuration


@router.get("/configuracion", tags=["configuracion"])
async def get_configuration(session: Session, user: Admin) -> dict[str, Any]:
    cfg = await catalogue.get_config(session)
    tab = await pricing.get_tabulador(session)
    await session.commit()
    return {
        "tarifa_laser_minuto": d.format_money(cfg.tarifa_laser_minuto),
        "version": cfg.version,
        "actualizado": _iso(cfg.actualizado),
        "tabulador": [
            {"espesor_mm": e, "factor_costo": d.format_plain(f)} for e, f in sorted(tab.items())
        ],
    }


@router.put("/configuracion/tarifa", tags=["configuracion"])
async def set_laser_rate(
    body: TarifaBody, request: Request, session: Session, user: Admin
) -> dict[str, Any]:
    """Change the laser rate (history recorded; `version` enables optimistic concurrency)."""
    cfg = await catalogue.set_tarifa(session, actor(user), body.tarifa_laser_minuto, body.version)
    out = {"tarifa_laser_minuto": d.format_money(cfg.tarifa_laser_minuto), "version": cfg.version}
    await commit(request, session, catalog=True)
    return out


@router.put("/configuracion/tabulador/{espesor_mm}", tags=["configuracion"])
async def set_cost_factor(
    espesor_mm: Annotated[Int32, Path(gt=0)],
    body: FactorBody,
    request: Request,
    session: Session,
    user: Admin,
) -> dict[str, Any]:
    """Create or update the factor of one thickness (UNIQUE per thickness, AC-D14)."""
    row = await catalogue.set_tabulador(session, actor(user), espesor_mm, body.factor_costo)
    out = {"espesor_mm": row.espesor_mm, "factor_costo": d.format_plain(row.factor_costo)}
    await commit(request, session, catalog=True)
    return out


@router.delete("/configuracion/tabulador/{espesor_mm}", status_code=204, tags=["configuracion"])
async def delete_cost_factor(
    espesor_mm: Int32, request: Request, session: Session, user: Admin
) -> Response:
    await catalogue.delete_tabulador(session, actor(user), espesor_mm)
    await commit(request, session, catalog=True)
    return Response(status_code=204)


# --------------------------------------------------------------------------- reports


Formato = Literal["json", "csv"]


def _report(rows: list[dict[str, Any]], formato: Formato, name: str, columns: list[str]) -> Any:
    if formato == "csv":
        return Response(
            queries.to_csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return [
        {k: (d.format_money(v) if isinstance(v, Decimal) else v) for k, v in r.items()}
        for r in rows
    ]


@router.get("/reportes/ventas", tags=["reportes"])
async def report_sales(
    session: Session,
    user: Admin,
    desde: DomainDate,
    hasta: DomainDate,
    periodo: d.Periodo = d.Periodo.MES,
    formato: Formato = "json",
) -> Any:
    """Sales (non-cancelled, by sale date) and income (cash basis: Σ abonos) per period."""
    if hasta < desde:
        raise d.Invalid("hasta debe ser >= desde", field="hasta")
    rows = await queries.report_ventas(session, desde, hasta, periodo)
    return _report(rows, formato, "ventas", ["periodo", "ventas", "total_vendido", "ingresos"])


@router.get("/reportes/cuentas-por-cobrar", tags=["reportes"])
async def report_receivables(session: Session, user: Admin, formato: Formato = "json") -> Any:
    rows = await queries.report_cuentas_por_cobrar(session)
    return _report(
        rows,
        formato,
        "cuentas_por_cobrar",
        ["id_cliente", "cliente", "ventas", "total", "pagado", "saldo"],
    )


@router.get("/reportes/bajo-stock", tags=["reportes"])
async def report_low_stock(session: Session, user: Operador, formato: Formato = "json") -> Any:
    rows = await queries.report_bajo_stock(session)
    return _report(
        rows, formato, "bajo_stock", ["id_material", "nombre", "actual", "minimo", "faltante"]
    )


@router.get("/dashboard", tags=["reportes"])
async def dashboard(session: Session, user: Admin) -> dict[str, Any]:
    """Admin KPIs for the current month (cash-basis income, Decimal sums; AC-D17, AC-D20)."""
    hoy = common.today()
    inicio = hoy.replace(day=1)
    rows = await queries.report_ventas(session, inicio, hoy, d.Periodo.MES)
    total: dict[str, Any] = (
        rows[0] if rows else {"ventas": 0, "total_vendido": Decimal(0), "ingresos": Decimal(0)}
    )
    cxc = await queries.report_cuentas_por_cobrar(session)
    low = await queries.report_bajo_stock(session)
    return {
        "fecha": hoy.isoformat(),
        "ventas_mes": total["ventas"],
        "vendido_mes": d.format_money(total["total_vendido"]),
        "ingresos_mes": d.format_money(total["ingresos"]),
        "por_cobrar": d.format_money(sum((r["saldo"] for r in cxc), Decimal(0))),
        "materiales_bajos": len(low),
    }
