"""Routes of the catalogue: institutions, warehouses, locations, products, lots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from orders import domain as d
from orders import queries
from orders.api.common import (
    Session,
    Supervisor,
    actor,
)
from orders.api.schemas import (
    AlmacenIn,
    AlmacenPublic,
    InstitucionIn,
    InstitucionPublic,
    LoteIn,
    LotePublic,
    ProductoIn,
    ProductoPublic,
    UbicacionIn,
    UbicacionPublic,
)
from orders.application import catalogue
from orders.models import (
    Almacen,
    Institucion,
    Producto,
    Ubicacion,
)
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)


@router.post("/instituciones", status_code=201, tags=["catalogo"], response_model=InstitucionPublic)
async def crear_institucion(
    body: InstitucionIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        inst = await catalogue.crear_institucion(session, body.clue, body.denominacion)
    return {"id": inst.id, "clue": inst.clue, "denominacion": inst.denominacion}


@router.post("/almacenes", status_code=201, tags=["catalogo"], response_model=AlmacenPublic)
async def crear_almacen(
    body: AlmacenIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if await session.get(Institucion, body.id_institucion) is None:
            raise d.DomainError(
                "INSTITUCION_DESCONOCIDA", "Institución inexistente.", field="id_institucion"
            )
        alm = await catalogue.crear_almacen(
            session, body.id_institucion, body.nombre, body.codigo, es_central=body.es_central
        )
    return {"id": alm.id, "codigo": alm.codigo, "nombre": alm.nombre, "es_central": alm.es_central}


@router.post("/ubicaciones", status_code=201, tags=["catalogo"], response_model=UbicacionPublic)
async def crear_ubicacion(
    body: UbicacionIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if await session.get(Almacen, body.id_almacen) is None:
            raise d.DomainError("ALMACEN_DESCONOCIDO", "Almacén inexistente.", field="id_almacen")
        ub = await catalogue.crear_ubicacion(
            session, body.id_almacen, body.codigo, estado=body.estado
        )
    return {"id": ub.id, "codigo": ub.codigo, "id_almacen": ub.almacen_id, "estado": ub.estado}


@router.post("/productos", status_code=201, tags=["catalogo"], response_model=ProductoPublic)
async def crear_producto(
    body: ProductoIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        prod = await catalogue.crear_producto(session, body.clave_cnis, body.descripcion)
    return {"id": prod.id, "clave_cnis": prod.clave_cnis, "descripcion": prod.descripcion}


@router.post("/lotes", status_code=201, tags=["inventario"], response_model=LotePublic)
async def crear_lote(
    body: LoteIn, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if await session.get(Producto, body.id_producto) is None:
            raise d.DomainError(
                "PRODUCTO_DESCONOCIDO", "Producto inexistente.", field="id_producto"
            )
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
        lote = await catalogue.crear_lote(
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
        out = await queries.lote_out(session, lote)
    return out
