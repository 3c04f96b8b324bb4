"""Routes of the catalogue: institutions, warehouses, locations, products, lots.

Each of institutions, warehouses, locations and products is created (`POST`), listed (`GET`,
paged, active rows unless `incluir_inactivos=true`, a text `q`), read by id and edited with a
partial `PATCH`, which also retires (`activo: false`) and brings back (`activo: true`) the row
and, for a location, changes its `estado`. FEFO reads these columns when it runs, so a change
applies to the next proposal (§B.4.1 b).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from orders import domain as d
from orders import queries
from orders import queries_catalogue as qc
from orders.api.common import (
    Lector,
    Paginado,
    Session,
    Supervisor,
    actor,
)
from orders.api.schemas import (
    AlmacenCreate,
    AlmacenPublic,
    AlmacenUpdate,
    EstadoUbicacionValor,
    InstitucionCreate,
    InstitucionPublic,
    InstitucionUpdate,
    LoteCreate,
    LotePublic,
    Pagina,
    ProductoCreate,
    ProductoEncontrado,
    ProductoPublic,
    ProductoUpdate,
    UbicacionCreate,
    UbicacionPublic,
    UbicacionUpdate,
)
from orders.application import catalogue
from orders.models import (
    Almacen,
    Institucion,
    Producto,
    Ubicacion,
)
from service_defaults.bounds import Id32, Int32, SafeText
from service_defaults.routing import DomainRoute
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute)


def filtro_catalogo(
    q: Annotated[
        SafeText | None, Query(max_length=100, description="Text in the code or the name")
    ] = None,
    incluir_inactivos: Annotated[bool, Query(description="Also list retired rows")] = False,
) -> qc.FiltroCatalogo:
    return qc.FiltroCatalogo(q, incluir_inactivos)


FiltroCatalogo = Annotated[qc.FiltroCatalogo, Depends(filtro_catalogo)]
Id = Annotated[Id32, Path(gt=0)]
IdFiltro = Annotated[Int32 | None, Query(gt=0)]


@router.post("/instituciones", status_code=201, tags=["catalogo"], response_model=InstitucionPublic)
async def crear_institucion(
    body: InstitucionCreate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        inst = await catalogue.crear_institucion(session, body.clue, body.denominacion)
    return qc.institucion_out(inst)


@router.post("/almacenes", status_code=201, tags=["catalogo"], response_model=AlmacenPublic)
async def crear_almacen(
    body: AlmacenCreate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if await session.get(Institucion, body.id_institucion) is None:
            raise d.DomainError(
                "INSTITUCION_DESCONOCIDA", "Institución inexistente.", field="id_institucion"
            )
        alm = await catalogue.crear_almacen(
            session, body.id_institucion, body.nombre, body.codigo, es_central=body.es_central
        )
    return qc.almacen_out(alm)


@router.post("/ubicaciones", status_code=201, tags=["catalogo"], response_model=UbicacionPublic)
async def crear_ubicacion(
    body: UbicacionCreate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        if await session.get(Almacen, body.id_almacen) is None:
            raise d.DomainError("ALMACEN_DESCONOCIDO", "Almacén inexistente.", field="id_almacen")
        ub = await catalogue.crear_ubicacion(
            session, body.id_almacen, body.codigo, estado=body.estado
        )
    return qc.ubicacion_out(ub)


@router.post("/productos", status_code=201, tags=["catalogo"], response_model=ProductoPublic)
async def crear_producto(
    body: ProductoCreate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        prod = await catalogue.crear_producto(session, body.clave_cnis, body.descripcion)
    return qc.producto_out(prod)


@router.post("/lotes", status_code=201, tags=["inventario"], response_model=LotePublic)
async def crear_lote(
    body: LoteCreate, request: Request, session: Session, user: Supervisor
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


# ------------------------------------------------------------------------------ maintenance


@router.get("/instituciones", tags=["catalogo"], response_model=Pagina[InstitucionPublic])
async def listar_instituciones(
    session: Session, user: Lector, pagina: Paginado, filtro: FiltroCatalogo
) -> dict[str, Any]:
    """Institutions by clue; `q` matches the clue or the denominación."""
    return await qc.listar_instituciones(session, filtro, pagina)


@router.get("/instituciones/{id_institucion}", tags=["catalogo"], response_model=InstitucionPublic)
async def obtener_institucion(id_institucion: Id, session: Session, user: Lector) -> dict[str, Any]:
    return qc.institucion_out(await catalogue.obtener(session, Institucion, id_institucion))


@router.patch(
    "/instituciones/{id_institucion}", tags=["catalogo"], response_model=InstitucionPublic
)
async def actualizar_institucion(
    id_institucion: Id,
    body: InstitucionUpdate,
    request: Request,
    session: Session,
    user: Supervisor,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        row = await catalogue.actualizar_institucion(
            session, id_institucion, body.model_dump(exclude_unset=True), actor(user)
        )
        out = qc.institucion_out(row)
    return out


@router.get("/almacenes", tags=["catalogo"], response_model=Pagina[AlmacenPublic])
async def listar_almacenes(
    session: Session,
    user: Lector,
    pagina: Paginado,
    filtro: FiltroCatalogo,
    id_institucion: IdFiltro = None,
) -> dict[str, Any]:
    """Warehouses by codigo; `q` matches the codigo or the nombre."""
    return await qc.listar_almacenes(session, filtro, pagina, institucion_id=id_institucion)


@router.get("/almacenes/{id_almacen}", tags=["catalogo"], response_model=AlmacenPublic)
async def obtener_almacen(id_almacen: Id, session: Session, user: Lector) -> dict[str, Any]:
    return qc.almacen_out(await catalogue.obtener(session, Almacen, id_almacen))


@router.patch("/almacenes/{id_almacen}", tags=["catalogo"], response_model=AlmacenPublic)
async def actualizar_almacen(
    id_almacen: Id, body: AlmacenUpdate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        row = await catalogue.actualizar_almacen(
            session, id_almacen, body.model_dump(exclude_unset=True), actor(user)
        )
        out = qc.almacen_out(row)
    return out


@router.get("/ubicaciones", tags=["catalogo"], response_model=Pagina[UbicacionPublic])
async def listar_ubicaciones(
    session: Session,
    user: Lector,
    pagina: Paginado,
    filtro: FiltroCatalogo,
    id_almacen: IdFiltro = None,
    estado: Annotated[EstadoUbicacionValor | None, Query()] = None,
) -> dict[str, Any]:
    """Locations by warehouse and codigo; `q` matches the codigo."""
    return await qc.listar_ubicaciones(
        session, filtro, pagina, almacen_id=id_almacen, estado=estado
    )


@router.get("/ubicaciones/{id_ubicacion}", tags=["catalogo"], response_model=UbicacionPublic)
async def obtener_ubicacion(id_ubicacion: Id, session: Session, user: Lector) -> dict[str, Any]:
    return qc.ubicacion_out(await catalogue.obtener(session, Ubicacion, id_ubicacion))


@router.patch("/ubicaciones/{id_ubicacion}", tags=["catalogo"], response_model=UbicacionPublic)
async def actualizar_ubicacion(
    id_ubicacion: Id,
    body: UbicacionUpdate,
    request: Request,
    session: Session,
    user: Supervisor,
) -> dict[str, Any]:
    """Edit a location, its `estado` and `activo` included; making it ineligible for FEFO
    (§B.4.1 b) while reservations hold stock there is 409 `UBICACION_CON_RESERVAS`."""
    async with unit_of_work_for(request, session):
        row = await catalogue.actualizar_ubicacion(
            session, id_ubicacion, body.model_dump(exclude_unset=True), actor(user)
        )
        out = qc.ubicacion_out(row)
    return out


@router.get("/productos", tags=["catalogo"], response_model=Pagina[ProductoEncontrado])
async def buscar_productos(
    session: Session,
    user: Lector,
    pagina: Paginado,
    filtro: FiltroCatalogo,
    clave: Annotated[SafeText | None, Query(max_length=150, description="Exact clave")] = None,
) -> dict[str, Any]:
    """Products by exact clave and/or a text `q` in the clave or the name (the lookup of the
    CSV upload and the catalogue list)."""
    return await qc.buscar_productos(session, clave, filtro, pagina)


@router.get("/productos/{id_producto}", tags=["catalogo"], response_model=ProductoPublic)
async def obtener_producto(id_producto: Id, session: Session, user: Lector) -> dict[str, Any]:
    return qc.producto_out(await catalogue.obtener(session, Producto, id_producto))


@router.patch("/productos/{id_producto}", tags=["catalogo"], response_model=ProductoPublic)
async def actualizar_producto(
    id_producto: Id, body: ProductoUpdate, request: Request, session: Session, user: Supervisor
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        row = await catalogue.actualizar_producto(
            session, id_producto, body.model_dump(exclude_unset=True), actor(user)
        )
        out = qc.producto_out(row)
    return out
