"""HTTP routes of the orders service: thin pydantic-validated adapters over `orders.service`.

Every route requires a bearer token; the permission matrix of DOMAIN §B.4.8 (deny by default)
is applied with `require_roles` here and again inside each use case. Domain errors become
RFC 9457 problem details whose `type` ends in the DOMAIN code (e.g. ``YA_SURTIDA``).
Proposal generation is asynchronous: after validation, poll
``GET /solicitudes/{id}/propuesta`` until it answers 200.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders import service
from orders.adapters.eligibility import existencia_elegible_where
from orders.models import (
    Almacen,
    Institucion,
    Lote,
    LoteAsignado,
    LoteUbicacion,
    MovimientoInventario,
    Producto,
    Propuesta,
    PropuestaItem,
    Solicitud,
    Ubicacion,
)
from service_defaults import idempotency
from service_defaults.auth import CurrentUser, require_roles
from service_defaults.bounds import DomainDate, Id32, Int32, SafeText, json_body_guard
from service_defaults.deps import get_runtime, get_session
from service_defaults.errors import ProblemError

SOLICITANTE = d.ROLE_SOLICITANTE
VALIDADOR = d.ROLE_VALIDADOR
ALMACENISTA = d.ROLE_ALMACENISTA
SUPERVISOR = d.ROLE_SUPERVISOR
ADMINISTRADOR_LOCAL = d.ADMINISTRADOR_LOCAL
ROLES = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, ADMINISTRADOR_LOCAL)
"""Roles defined by the orders service."""

LECTURA = (SOLICITANTE, VALIDADOR, ALMACENISTA, SUPERVISOR, "ops")

TITLES = {
    "FOLIO_DUPLICADO": "Folio de pedido duplicado",
    "YA_SURTIDA": "La propuesta ya fue surtida",
    "LOTE_NO_ELEGIBLE": "Lote no elegible",
    "CADUCIDAD_MINIMA": "Caducidad mínima no cumplida",
    "PRODUCTO_NO_COINCIDE": "El lote es de otro producto",
    "EXCEDE_APROBADO": "Excede la cantidad aprobada",
    "STOCK_INSUFICIENTE": "Existencia insuficiente",
    "APROBADA_EXCEDE_SOLICITADA": "Aprobada mayor que solicitada",
    "JUSTIFICACION_REQUERIDA": "Justificación requerida",
    "PROPUESTA_NO_REVISADA": "Propuesta no revisada",
}


def to_problem(exc: d.DomainError) -> ProblemError:
    ext = dict(exc.extensions)
    field = ext.get("field")
    if field and "errors" not in ext:
        ext["errors"] = [{"field": field, "reason": exc.detail}]
    title = TITLES.get(exc.code, exc.code.replace("_", " ").capitalize())
    return ProblemError(exc.status, exc.code, title, exc.detail, **ext)


class DomainRoute(APIRoute):
    """Maps domain exceptions raised by a route to problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = idempotency.idempotent(super().get_route_handler())

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except d.DomainError as exc:
                raise to_problem(exc) from exc
            except IntegrityError as exc:
                raise ProblemError(
                    409,
                    "CONFLICTO_DE_INTEGRIDAD",
                    "Conflicto con datos existentes",
                    "La operación viola una regla de integridad (duplicado o referencia).",
                ) from exc

        return json_body_guard(self, handler)


router = APIRouter(route_class=DomainRoute)
Session = Annotated[AsyncSession, Depends(get_session)]


Lector = Annotated[CurrentUser, Depends(require_roles(*LECTURA))]
Solicitante = Annotated[CurrentUser, Depends(require_roles(SOLICITANTE))]
Validador = Annotated[CurrentUser, Depends(require_roles(VALIDADOR))]
Almacen_ = Annotated[CurrentUser, Depends(require_roles(ALMACENISTA, SUPERVISOR))]
Picker = Annotated[CurrentUser, Depends(require_roles(ALMACENISTA))]
Supervisor = Annotated[CurrentUser, Depends(require_roles(SUPERVISOR))]
Cancelador = Annotated[CurrentUser, Depends(require_roles(SOLICITANTE, SUPERVISOR))]
Operaciones = Annotated[CurrentUser, Depends(require_roles(SUPERVISOR, "ops"))]


def actor(user: CurrentUser) -> service.Actor:
    return service.Actor(sub=user.sub, roles=frozenset(user.roles))


def config(request: Request) -> service.OrdersConfig:
    return service.config_from_settings(request.app.state.settings)


async def commit(request: Request, session: AsyncSession) -> None:
    """Commit (deferred to the key row's transaction on a keyed request), then wake the relay."""
    runtime = get_runtime(request)
    await idempotency.commit(session, *([runtime.wake_relay] if runtime is not None else []))


# --------------------------------------------------------------------------- schemas


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Cantidad = Annotated[int, Field(ge=1, le=1_000_000)]
Texto = Annotated[str, Field(max_length=2000)]


class ItemIn(_In):
    id_producto: Id32 = Field(gt=0)
    cantidad_solicitada: Cantidad


class SolicitudIn(_In):
    id_institucion: Id32 = Field(gt=0)
    id_almacen_destino: Id32 = Field(gt=0)
    fecha_entrega_programada: DomainDate
    folio_pedido: SafeText | None = Field(default=None, max_length=100)
    observaciones: Texto = ""
    items: list[ItemIn] = Field(min_length=1, max_length=10_000)


class SolicitudEditIn(SolicitudIn):
    version: Int32 | None = Field(default=None, ge=1)


class AprobacionIn(_In):
    id_item: uuid.UUID
    cantidad_aprobada: int = Field(ge=0, le=1_000_000)
    justificacion_codigo: d.MotivoAjuste | None = None
    justificacion: SafeText | None = Field(default=None, max_length=255)


class ValidacionIn(_In):
    items: list[AprobacionIn] = Field(default_factory=list)
    observaciones: Texto = ""
    version: Int32 | None = Field(default=None, ge=1)


class MotivoIn(_In):
    motivo: SafeText = Field(min_length=1, max_length=2000)


class MotivoOpcionalIn(_In):
    motivo: SafeText | None = Field(default=None, max_length=2000)


class RevisionIn(_In):
    observaciones: Texto = ""


class LineaIn(_In):
    id_lote_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=1_000_000)


class LineasIn(_In):
    lineas: list[LineaIn] = Field(max_length=500)
    motivo_override: SafeText | None = Field(default=None, max_length=2000)
    version: Int32 | None = Field(default=None, ge=1)


# API literals generated from the domain's vocabularies (same OpenAPI `enum` as a written one)
if TYPE_CHECKING:
    EstadoLoteValor = int
    EstadoUbicacionValor = str
else:
    EstadoLoteValor = Literal[d.values(d.EstadoLote)]
    EstadoUbicacionValor = Literal[d.values(d.EstadoUbicacion)]


class EstadoLoteIn(_In):
    estado: EstadoLoteValor
    motivo: SafeText = Field(min_length=1, max_length=2000)


class InstitucionIn(_In):
    clue: SafeText = Field(min_length=1, max_length=20)
    denominacion: SafeText = Field(min_length=1, max_length=200)


class AlmacenIn(_In):
    id_institucion: Id32 = Field(gt=0)
    nombre: SafeText = Field(min_length=1, max_length=150)
    codigo: SafeText = Field(min_length=1, max_length=50)
    es_central: bool = False


class UbicacionIn(_In):
    id_almacen: Id32 = Field(gt=0)
    codigo: SafeText = Field(min_length=1, max_length=50)
    estado: EstadoUbicacionValor = d.EstadoUbicacion.DISPONIBLE.value


class ProductoIn(_In):
    clave_cnis: SafeText = Field(min_length=1, max_length=150)
    descripcion: SafeText = Field(default="", max_length=2000)


class StockIn(_In):
    id_ubicacion: Id32 = Field(gt=0)
    cantidad: int = Field(ge=0, le=100_000_000)


class LoteIn(_In):
    id_producto: Id32 = Field(gt=0)
    id_institucion: Id32 = Field(gt=0)
    numero_lote: SafeText = Field(min_length=1, max_length=50)
    fecha_caducidad: DomainDate | None
    estado: EstadoLoteValor = d.EstadoLote.DISPONIBLE.value
    ubicaciones: list[StockIn] = Field(min_length=1, max_length=200)


# --------------------------------------------------------------------------- serialisers


def _iso(v: datetime | date | None) -> str | None:
    return None if v is None else v.isoformat()


async def solicitud_out(session: AsyncSession, sol: Solicitud) -> dict[str, Any]:
    items = await service.items_de(session, sol.id)
    claves = {
        p.id: p.clave_cnis
        for p in (
            await session.execute(
                select(Producto).where(Producto.id.in_([i.producto_id for i in items]))
            )
        ).scalars()
    }
    prop = await service.propuesta_activa(session, sol.id)
    return {
        "id": str(sol.id),
        "folio": sol.folio,
        "folio_pedido": sol.folio_pedido,
        "estado": sol.estado,
        "id_institucion": sol.institucion_id,
        "id_almacen_destino": sol.almacen_destino_id,
        "usuario_solicitante": sol.usuario_solicitante,
        "usuario_validacion": sol.usuario_validacion,
        "fecha_solicitud": _iso(sol.fecha_solicitud),
        "fecha_validacion": _iso(sol.fecha_validacion),
        "fecha_entrega_programada": _iso(sol.fecha_entrega_programada),
        "observaciones": sol.observaciones,
        "observaciones_validacion": sol.observaciones_validacion,
        "version": sol.version,
        "id_propuesta_activa": str(prop.id) if prop else None,
        "items": [
            {
                "id": str(i.id),
                "id_producto": i.producto_id,
                "clave_cnis": claves.get(i.producto_id),
                "cantidad_solicitada": i.cantidad_solicitada,
                "cantidad_aprobada": i.cantidad_aprobada,
                "justificacion_codigo": i.justificacion_codigo,
                "justificacion": i.justificacion,
            }
            for i in items
        ],
    }


async def propuesta_out(session: AsyncSession, prop: Propuesta) -> dict[str, Any]:
    items = list(
        (
            await session.execute(
                select(PropuestaItem, Producto.clave_cnis)
                .join(Producto, Producto.id == PropuestaItem.producto_id)
                .where(PropuestaItem.propuesta_id == prop.id)
                .order_by(Producto.clave_cnis)
            )
        ).all()
    )
    lineas = (
        await session.execute(
            select(LoteAsignado, Lote, Ubicacion)
            .join(LoteUbicacion, LoteUbicacion.id == LoteAsignado.lote_ubicacion_id)
            .join(Lote, Lote.id == LoteUbicacion.lote_id)
            .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
            .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
            .where(PropuestaItem.propuesta_id == prop.id)
            .order_by(Lote.fecha_caducidad, Lote.numero_lote, Ubicacion.codigo)
        )
    ).all()
    por_item: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for ln, lote, ub in lineas:
        por_item.setdefault(ln.propuesta_item_id, []).append(
            {
                "id": str(ln.id),
                "id_lote_ubicacion": ln.lote_ubicacion_id,
                "id_lote": lote.id,
                "numero_lote": lote.numero_lote,
                "fecha_caducidad": _iso(lote.fecha_caducidad),
                "ubicacion": ub.codigo,
                "cantidad_asignada": ln.cantidad_asignada,
                "estado_linea": ln.estado_linea,
                "override_caducidad": ln.override_caducidad,
                "motivo_override": ln.motivo_override,
                "no_elegible": ln.no_elegible_desde is not None,
            }
        )
    return {
        "id": str(prop.id),
        "id_solicitud": str(prop.solicitud_id),
        "estado": prop.estado,
        "version": prop.version,
        "fecha_generacion": _iso(prop.fecha_generacion),
        "fecha_revision": _iso(prop.fecha_revision),
        "fecha_surtimiento": _iso(prop.fecha_surtimiento),
        "requiere_replanificacion": prop.requiere_replanificacion,
        "total_solicitado": prop.total_solicitado,
        "total_disponible": prop.total_disponible,
        "total_propuesto": prop.total_propuesto,
        "cobertura": str(
            d.cobertura((ip.cantidad_disponible, ip.cantidad_aprobada) for ip, _ in items)
        ),
        "items": [
            {
                "id": str(ip.id),
                "id_item_solicitud": str(ip.solicitud_item_id),
                "id_producto": ip.producto_id,
                "clave_cnis": clave,
                "cantidad_aprobada": ip.cantidad_aprobada,
                "cantidad_disponible": ip.cantidad_disponible,
                "cantidad_propuesta": ip.cantidad_propuesta,
                "cantidad_surtida": ip.cantidad_surtida,
                "cantidad_pendiente": ip.cantidad_pendiente,
                "estado": ip.estado,
                "observaciones": ip.observaciones,
                "lotes": por_item.get(ip.id, []),
            }
            for ip, clave in items
        ],
    }


def csv_response(rows: Sequence[dict[str, Any]], name: str) -> Response:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


Formato = Annotated[Literal["json", "csv"], Query()]


# --------------------------------------------------------------------------- requests


@router.post("/solicitudes", status_code=201, tags=["solicitudes"])
async def crear_solicitud(
    body: SolicitudIn, request: Request, session: Session, user: Solicitante
) -> dict[str, Any]:
    creada = await service.crear_solicitud(
        session,
        service.NuevaSolicitud(
            institucion_id=body.id_institucion,
            almacen_destino_id=body.id_almacen_destino,
            fecha_entrega_programada=body.fecha_entrega_programada,
            items=[d.ItemCaptura(i.id_producto, i.cantidad_solicitada) for i in body.items],
            folio_pedido=body.folio_pedido,
            observaciones=body.observaciones,
        ),
        actor(user),
        config(request),
    )
    out = await solicitud_out(session, creada.solicitud)
    await commit(request, session)
    out["advertencias"] = creada.advertencias
    return out


@router.get("/solicitudes", tags=["solicitudes"])
async def listar_solicitudes(
    session: Session,
    user: Lector,
    estado: Annotated[d.EstadoSolicitud | None, Query()] = None,
    folio: Annotated[SafeText | None, Query(max_length=100)] = None,
    limit: Annotated[Int32, Query(ge=1, le=500)] = 50,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> dict[str, Any]:
    q = select(Solicitud).order_by(Solicitud.fecha_solicitud.desc(), Solicitud.folio)
    if estado is not None:
        q = q.where(Solicitud.estado == estado.value)
    if folio:
        clave = d.clave_folio_pedido(folio)
        q = q.where((Solicitud.folio == folio) | (Solicitud.folio_pedido_clave == clave))
    rows = list((await session.execute(q.limit(limit).offset(offset))).scalars())
    return {
        "items": [
            {
                "id": str(s.id),
                "folio": s.folio,
                "folio_pedido": s.folio_pedido,
                "estado": s.estado,
                "fecha_entrega_programada": _iso(s.fecha_entrega_programada),
                "fecha_solicitud": _iso(s.fecha_solicitud),
            }
            for s in rows
        ],
        "limit": limit,
        "offset": offset,
    }


@router.get("/solicitudes/verificar-folio", tags=["solicitudes"])
async def verificar_folio(
    session: Session,
    user: Lector,
    folio: Annotated[SafeText, Query(min_length=1, max_length=100)],
    id_solicitud: Annotated[uuid.UUID | None, Query()] = None,
) -> dict[str, bool]:
    """Whether an external order folio already exists (case-insensitive), active or cancelled."""
    q = select(Solicitud.estado).where(Solicitud.folio_pedido_clave == d.clave_folio_pedido(folio))
    if id_solicitud is not None:
        q = q.where(Solicitud.id != id_solicitud)
    estados = list((await session.execute(q)).scalars())
    return {
        "existe_activo": any(e != "CANCELADA" for e in estados),
        "existe_cancelado": any(e == "CANCELADA" for e in estados),
    }


@router.get("/solicitudes/{id_solicitud}", tags=["solicitudes"])
async def detalle_solicitud(
    id_solicitud: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    return await solicitud_out(session, await service.get_solicitud(session, id_solicitud))


@router.put("/solicitudes/{id_solicitud}", tags=["solicitudes"])
async def editar_solicitud(
    id_solicitud: uuid.UUID,
    body: SolicitudEditIn,
    request: Request,
    session: Session,
    user: Solicitante,
) -> dict[str, Any]:
    editada = await service.editar_solicitud(
        session,
        id_solicitud,
        service.NuevaSolicitud(
            institucion_id=body.id_institucion,
            almacen_destino_id=body.id_almacen_destino,
            fecha_entrega_programada=body.fecha_entrega_programada,
            items=[d.ItemCaptura(i.id_producto, i.cantidad_solicitada) for i in body.items],
            folio_pedido=body.folio_pedido,
            observaciones=body.observaciones,
        ),
        actor(user),
        config(request),
        version=body.version,
    )
    out = await solicitud_out(session, editada.solicitud)
    await commit(request, session)
    out["advertencias"] = editada.advertencias
    return out


@router.post("/solicitudes/{id_solicitud}/validar", tags=["solicitudes"])
async def validar_solicitud(
    id_solicitud: uuid.UUID,
    body: ValidacionIn,
    request: Request,
    session: Session,
    user: Validador,
) -> dict[str, Any]:
    seen: set[uuid.UUID] = set()
    for idx, it in enumerate(body.items):
        if it.id_item in seen:
            raise d.DomainError(
                "ITEM_DUPLICADO", "Item repetido en la validación.", field=f"items.{idx}.id_item"
            )
        seen.add(it.id_item)
    sol = await service.validar_solicitud(
        session,
        id_solicitud,
        {
            it.id_item: d.Aprobacion(
                it.cantidad_aprobada,
                it.justificacion_codigo.value if it.justificacion_codigo else None,
                it.justificacion,
            )
            for it in body.items
        },
        actor(user),
        observaciones=body.observaciones,
        version=body.version,
    )
    out = await solicitud_out(session, sol)
    await commit(request, session)
    return out


@router.post("/solicitudes/{id_solicitud}/rechazar", tags=["solicitudes"])
async def rechazar_solicitud(
    id_solicitud: uuid.UUID, body: MotivoIn, request: Request, session: Session, user: Validador
) -> dict[str, Any]:
    sol = await service.rechazar_solicitud(session, id_solicitud, body.motivo, actor(user))
    out = await solicitud_out(session, sol)
    await commit(request, session)
    return out


@router.post("/solicitudes/{id_solicitud}/cancelar", tags=["solicitudes"])
async def cancelar_solicitud(
    id_solicitud: uuid.UUID,
    request: Request,
    session: Session,
    user: Cancelador,
    body: MotivoOpcionalIn | None = None,
) -> dict[str, Any]:
    sol = await service.cancelar_solicitud(
        session, id_solicitud, actor(user), body.motivo if body else None
    )
    out = await solicitud_out(session, sol)
    await commit(request, session)
    return out


@router.get("/solicitudes/{id_solicitud}/propuesta", tags=["propuestas"])
async def propuesta_de_solicitud(
    id_solicitud: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    await service.get_solicitud(session, id_solicitud)
    prop = await service.propuesta_activa(session, id_solicitud)
    if prop is None:
        raise d.NotFound(
            "PROPUESTA_NO_ENCONTRADA",
            "La solicitud no tiene propuesta activa (aún no generada, o liberada).",
        )
    return await propuesta_out(session, prop)


# --------------------------------------------------------------------------- proposals


@router.get("/propuestas", tags=["propuestas"])
async def listar_propuestas(
    session: Session,
    user: Lector,
    estado: Annotated[d.EstadoPropuesta | None, Query()] = None,
    limit: Annotated[Int32, Query(ge=1, le=500)] = 50,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> dict[str, Any]:
    q = select(Propuesta, Solicitud.folio).join(Solicitud, Solicitud.id == Propuesta.solicitud_id)
    if estado is not None:
        q = q.where(Propuesta.estado == estado.value)
    rows = (
        await session.execute(
            q.order_by(Propuesta.fecha_generacion.desc()).limit(limit).offset(offset)
        )
    ).all()
    return {
        "items": [
            {
                "id": str(p.id),
                "id_solicitud": str(p.solicitud_id),
                "folio": folio,
                "estado": p.estado,
                "total_solicitado": p.total_solicitado,
                "total_propuesto": p.total_propuesto,
            }
            for p, folio in rows
        ],
        "limit": limit,
        "offset": offset,
    }


@router.get("/propuestas/{id_propuesta}", tags=["propuestas"])
async def detalle_propuesta(
    id_propuesta: uuid.UUID, session: Session, user: Lector
) -> dict[str, Any]:
    """A pure read (HO-D16): nothing is resynchronised on GET."""
    return await propuesta_out(session, await service.get_propuesta(session, id_propuesta))


@router.put("/propuestas/{id_propuesta}/items/{id_item}/lineas", tags=["propuestas"])
async def editar_lineas(
    id_propuesta: uuid.UUID,
    id_item: uuid.UUID,
    body: LineasIn,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    prop = await service.editar_item_propuesta(
        session,
        id_propuesta,
        id_item,
        [service.LineaDeseada(ln.id_lote_ubicacion, ln.cantidad) for ln in body.lineas],
        actor(user),
        config(request),
        motivo_override=body.motivo_override,
        version=body.version,
    )
    out = await propuesta_out(session, prop)
    await commit(request, session)
    return out


@router.get("/propuestas/{id_propuesta}/items/{id_item}/candidatos", tags=["propuestas"])
async def candidatos(
    id_propuesta: uuid.UUID,
    id_item: uuid.UUID,
    request: Request,
    session: Session,
    user: Almacen_,
) -> dict[str, Any]:
    """Stock rows a line of this item may use (destination warehouse, same product, lot
    DISPONIBLE, not expired, eligible location), FEFO-ordered, with the free quantity and
    whether a Supervisor override is needed (caducidad ≤ today + min shelf life)."""
    cfg = config(request)
    prop = await service.get_propuesta(session, id_propuesta)
    ip = await session.get(PropuestaItem, id_item)
    if ip is None or ip.propuesta_id != prop.id:
        raise d.NotFound("ITEM_NO_ENCONTRADO", f"No existe el item {id_item}.")
    sol = await service.get_solicitud(session, prop.solicitud_id)
    today = d.business_date(service.now())
    rows = (
        await session.execute(
            service.snap_query().where(
                Lote.producto_id == ip.producto_id,
                Ubicacion.almacen_id == sol.almacen_destino_id,
                *existencia_elegible_where(),
                Lote.fecha_caducidad >= today,  # domain.vigente
            )
        )
    ).all()
    snaps = [service.to_snap(r) for r in rows]
    snaps.sort(key=lambda x: d.orden_fefo(x, natural=cfg.natural_sort))
    return {
        "umbral_caducidad": d.umbral_caducidad(today, cfg.min_shelf_life_days).isoformat(),
        "candidatos": [
            {
                "id_lote_ubicacion": x.lote_ubicacion_id,
                "id_lote": x.lote_id,
                "numero_lote": x.numero_lote,
                "ubicacion": x.ubicacion_codigo,
                "fecha_caducidad": _iso(x.fecha_caducidad),
                "cantidad": x.cantidad,
                "disponible": x.neto,
                "requiere_override": not d.cumple_caducidad(
                    x.fecha_caducidad, today, cfg.min_shelf_life_days
                ),
            }
            for x in snaps
        ],
    }


@router.post("/propuestas/{id_propuesta}/revisar", tags=["propuestas"])
async def revisar_propuesta(
    id_propuesta: uuid.UUID,
    request: Request,
    session: Session,
    user: Almacen_,
    body: RevisionIn | None = None,
) -> dict[str, Any]:
    prop = await service.revisar_propuesta(
        session, id_propuesta, actor(user), body.observaciones if body else ""
    )
    out = await propuesta_out(session, prop)
    await commit(request, session)
    return out


@router.post("/propuestas/{id_propuesta}/lineas/{id_linea}/recoger", tags=["propuestas"])
async def recoger_linea(
    id_propuesta: uuid.UUID,
    id_linea: uuid.UUID,
    request: Request,
    session: Session,
    user: Picker,
) -> dict[str, Any]:
    await service.recoger_linea(session, id_propuesta, id_linea, actor(user))
    out = await propuesta_out(session, await service.get_propuesta(session, id_propuesta))
    await commit(request, session)
    return out


@router.post("/propuestas/{id_propuesta}/surtir", tags=["propuestas"])
async def surtir_propuesta(
    id_propuesta: uuid.UUID, request: Request, session: Session, user: Almacen_
) -> dict[str, Any]:
    """Dispatch. A repeated call answers 409 YA_SURTIDA and moves nothing (HO-L03)."""
    res = await service.surtir_propuesta(session, id_propuesta, actor(user), config(request))
    if res.rechazo is not None:
        # the proposal went back to GENERADA: commit that now (not deferred to a keyed request's
        # key row: an error answer records no key), then answer the rejection
        await session.commit()
        raise res.rechazo
    out = await propuesta_out(session, res.propuesta)
    await commit(request, session)
    return out


@router.post("/propuestas/{id_propuesta}/liberar", tags=["propuestas"])
async def liberar_propuesta(
    id_propuesta: uuid.UUID,
    request: Request,
    session: Session,
    user: Supervisor,
    body: MotivoOpcionalIn | None = None,
) -> dict[str, Any]:
    prop = await service.liberar_propuesta(
        session, id_propuesta, actor(user), body.motivo if body else None
    )
    out = await propuesta_out(session, prop)
    await commit(request, session)
    return out


# --------------------------------------------------------------------------- stock


async def lote_out(session: AsyncSession, lote: Lote) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(LoteUbicacion, Ubicacion)
            .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
            .where(LoteUbicacion.lote_id == lote.id)
            .order_by(Ubicacion.codigo)
        )
    ).all()
    return {
        "id": lote.id,
        "numero_lote": lote.numero_lote,
        "id_producto": lote.producto_id,
        "fecha_caducidad": _iso(lote.fecha_caducidad),
        "estado": lote.estado,
        # derived as Σ locations (HO-D21): never a separately stored figure
        "cantidad_disponible": sum(lu.cantidad for lu, _ in rows),
        "cantidad_reservada": sum(lu.cantidad_reservada for lu, _ in rows),
        "ubicaciones": [
            {
                "id_lote_ubicacion": lu.id,
                "id_ubicacion": ub.id,
                "codigo": ub.codigo,
                "id_almacen": ub.almacen_id,
                "estado_ubicacion": ub.estado,
                "cantidad": lu.cantidad,
                "cantidad_reservada": lu.cantidad_reservada,
                "disponible": lu.cantidad - lu.cantidad_reservada,
            }
            for lu, ub in rows
        ],
    }


@router.get("/lotes/{id_lote}", tags=["inventario"])
async def detalle_lote(id_lote: Id32, session: Session, user: Lector) -> dict[str, Any]:
    lote = await session.get(Lote, id_lote)
    if lote is None:
        raise d.NotFound("LOTE_NO_ENCONTRADO", f"No existe el lote {id_lote}.")
    return await lote_out(session, lote)


@router.post("/lotes/{id_lote}/estado", tags=["inventario"])
async def estado_lote(
    id_lote: Id32, body: EstadoLoteIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    lote = await service.cambiar_estado_lote(
        session, id_lote, body.estado, actor(user), body.motivo
    )
    out = await lote_out(session, lote)
    await commit(request, session)
    return out


@router.get("/movimientos", tags=["inventario"])
async def movimientos(
    session: Session,
    user: Lector,
    id_lote: Annotated[Int32 | None, Query(gt=0)] = None,
    tipo: Annotated[SafeText | None, Query(max_length=30)] = None,
    limit: Annotated[Int32, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    q = select(MovimientoInventario, Lote.numero_lote).join(
        Lote, Lote.id == MovimientoInventario.lote_id
    )
    if id_lote is not None:
        q = q.where(MovimientoInventario.lote_id == id_lote)
    if tipo is not None:
        q = q.where(MovimientoInventario.tipo_movimiento == tipo)
    rows = (await session.execute(q.order_by(MovimientoInventario.id).limit(limit))).all()
    return {
        "items": [
            {
                "id": m.id,
                "id_lote": m.lote_id,
                "numero_lote": numero,
                "id_lote_ubicacion": m.lote_ubicacion_id,
                "tipo_movimiento": m.tipo_movimiento,
                "cantidad": m.cantidad,
                "cantidad_anterior": m.cantidad_anterior,
                "cantidad_nueva": m.cantidad_nueva,
                "motivo": m.motivo,
                "documento_referencia": m.documento_referencia,
                "pedido": m.pedido,
                "folio": m.folio,
                "id_institucion_destino": m.institucion_destino_id,
                "usuario": m.usuario,
                "fecha_movimiento": _iso(m.fecha_movimiento),
            }
            for m, numero in rows
        ]
    }


@router.post("/jobs/caducidad", tags=["inventario"])
async def job_caducidad(request: Request, session: Session, user: Operaciones) -> dict[str, Any]:
    res = await service.job_caducidad(session, actor(user))
    await commit(request, session)
    return {
        "lotes_caducados": res.lotes_caducados,
        "lineas_marcadas": res.lineas_marcadas,
        "propuestas_replanificar": res.propuestas_replanificar,
    }


# --------------------------------------------------------------------------- catalogue


@router.post("/instituciones", status_code=201, tags=["catalogo"])
async def crear_institucion(
    body: InstitucionIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    inst = await service.crear_institucion(session, body.clue, body.denominacion)
    await commit(request, session)
    return {"id": inst.id, "clue": inst.clue, "denominacion": inst.denominacion}


@router.post("/almacenes", status_code=201, tags=["catalogo"])
async def crear_almacen(
    body: AlmacenIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    if await session.get(Institucion, body.id_institucion) is None:
        raise d.DomainError(
            "INSTITUCION_DESCONOCIDA", "Institución inexistente.", field="id_institucion"
        )
    alm = await service.crear_almacen(
        session, body.id_institucion, body.nombre, body.codigo, es_central=body.es_central
    )
    await commit(request, session)
    return {"id": alm.id, "codigo": alm.codigo, "nombre": alm.nombre, "es_central": alm.es_central}


@router.post("/ubicaciones", status_code=201, tags=["catalogo"])
async def crear_ubicacion(
    body: UbicacionIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    if await session.get(Almacen, body.id_almacen) is None:
        raise d.DomainError("ALMACEN_DESCONOCIDO", "Almacén inexistente.", field="id_almacen")
    ub = await service.crear_ubicacion(session, body.id_almacen, body.codigo, estado=body.estado)
    await commit(request, session)
    return {"id": ub.id, "codigo": ub.codigo, "id_almacen": ub.almacen_id, "estado": ub.estado}


@router.post("/productos", status_code=201, tags=["catalogo"])
async def crear_producto(
    body: ProductoIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    prod = await service.crear_producto(session, body.clave_cnis, body.descripcion)
    await commit(request, session)
    return {"id": prod.id, "clave_cnis": prod.clave_cnis, "descripcion": prod.descripcion}


@router.post("/lotes", status_code=201, tags=["inventario"])
async def crear_lote(
    body: LoteIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    if await session.get(Producto, body.id_producto) is None:
        raise d.DomainError("PRODUCTO_DESCONOCIDO", "Producto inexistente.", field="id_producto")
    if await session.get(Institucion, body.id_institucion) is None:
        raise d.DomainError(
            "INSTITUCION_DESCONOCIDA", "Institución inexistente.", field="id_institucion"
        )
    ubic: dict[int, int] = {}
    almacen: int | None = None
    for idx, st in enumerate(body.ubicaciones):
        ub = await session.get(Ubicacion, st.id_ubicacion)
        if ub is None:
            raise d.DomainError(
                "UBICACION_DESCONOCIDA",
                "Ubicación inexistente.",
                field=f"ubicaciones.{idx}.id_ubicacion",
            )
        if st.id_ubicacion in ubic:
            raise d.DomainError(
                "UBICACION_DUPLICADA",
                "Ubicación repetida.",
                field=f"ubicaciones.{idx}.id_ubicacion",
            )
        ubic[st.id_ubicacion] = st.cantidad
        almacen = almacen or ub.almacen_id
    lote = await service.crear_lote(
        session,
        producto_id=body.id_producto,
        institucion_id=body.id_institucion,
        numero_lote=body.numero_lote,
        fecha_caducidad=body.fecha_caducidad,
        ubicaciones=ubic,
        estado=body.estado,
        almacen_id=almacen,
        actor=actor(user),
    )
    out = await lote_out(session, lote)
    await commit(request, session)
    return out


# --------------------------------------------------------------------------- reports


@router.get("/reportes/pendientes", tags=["reportes"])
async def reporte_pendientes(session: Session, user: Lector, formato: Formato = "json") -> Any:
    rows = await service.reporte_pendientes(session)
    return csv_response(rows, "pendientes") if formato == "csv" else {"items": rows}


@router.get("/reportes/fill-rate", tags=["reportes"])
async def reporte_fill_rate(
    session: Session,
    user: Lector,
    desde: Annotated[DomainDate | None, Query()] = None,
    hasta: Annotated[DomainDate | None, Query()] = None,
    formato: Formato = "json",
) -> Any:
    if desde and hasta and desde > hasta:
        raise d.DomainError("RANGO_INVALIDO", "desde debe ser ≤ hasta.", field="desde")
    data = await service.reporte_fill_rate(session, desde, hasta)
    return csv_response(data["productos"], "fill-rate") if formato == "csv" else data


@router.get("/reportes/lotes-por-caducar", tags=["reportes"])
async def reporte_lotes_por_caducar(
    session: Session,
    user: Lector,
    dias: Annotated[Int32, Query(ge=0, le=3650)] = 90,
    formato: Formato = "json",
) -> Any:
    rows = await service.reporte_lotes_por_caducar(session, dias)
    return csv_response(rows, "lotes-por-caducar") if formato == "csv" else {"items": rows}
