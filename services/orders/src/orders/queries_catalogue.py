"""Read side of the catalogue: institutions, warehouses, locations and products — the lists
(paged, active rows unless `incluir_inactivos`), one row by id, and the answers the catalogue
routes give (`api.schemas.<Thing>Public`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from orders.models import Almacen, Institucion, Producto, Ubicacion
from orders.queries import Paginado
from service_defaults.text_search import any_contains_ci


def institucion_out(r: Institucion) -> dict[str, Any]:
    return {"id": r.id, "clue": r.clue, "denominacion": r.denominacion, "activo": r.activo}


def almacen_out(r: Almacen) -> dict[str, Any]:
    return {
        "id": r.id,
        "id_institucion": r.institucion_id,
        "codigo": r.codigo,
        "nombre": r.nombre,
        "es_central": r.es_central,
        "activo": r.activo,
    }


def ubicacion_out(r: Ubicacion) -> dict[str, Any]:
    return {
        "id": r.id,
        "id_almacen": r.almacen_id,
        "codigo": r.codigo,
        "descripcion": r.descripcion,
        "estado": r.estado,
        "activo": r.activo,
    }


def producto_out(r: Producto) -> dict[str, Any]:
    return {
        "id": r.id,
        "clave_cnis": r.clave_cnis,
        "descripcion": r.descripcion,
        "unidad_medida": r.unidad_medida,
        "activo": r.activo,
    }


@dataclass(frozen=True)
class FiltroCatalogo:
    """The filters every catalogue list shares: inactive rows only with `incluir_inactivos`, and
    a text `q` contained (case-insensitive) in the row's code or name."""

    q: str | None = None
    incluir_inactivos: bool = False


def _filtrar(sel: Select[Any], f: FiltroCatalogo, activo: Any, *textos: Any) -> Select[Any]:
    if not f.incluir_inactivos:
        sel = sel.where(activo.is_(True))
    if f.q and f.q.strip():
        sel = sel.where(any_contains_ci(f.q.strip(), *textos))
    return sel


async def listar_instituciones(
    session: AsyncSession, f: FiltroCatalogo, p: Paginado
) -> dict[str, Any]:
    sel = _filtrar(
        select(Institucion), f, Institucion.activo, Institucion.clue, Institucion.denominacion
    )
    rows = (await session.execute(p.leer(sel.order_by(Institucion.clue, Institucion.id)))).scalars()
    return p.pagina([institucion_out(r) for r in rows])


async def listar_almacenes(
    session: AsyncSession, f: FiltroCatalogo, p: Paginado, *, institucion_id: int | None
) -> dict[str, Any]:
    sel = _filtrar(select(Almacen), f, Almacen.activo, Almacen.codigo, Almacen.nombre)
    if institucion_id is not None:
        sel = sel.where(Almacen.institucion_id == institucion_id)
    rows = (await session.execute(p.leer(sel.order_by(Almacen.codigo, Almacen.id)))).scalars()
    return p.pagina([almacen_out(r) for r in rows])


async def listar_ubicaciones(
    session: AsyncSession,
    f: FiltroCatalogo,
    p: Paginado,
    *,
    almacen_id: int | None,
    estado: str | None,
) -> dict[str, Any]:
    sel = _filtrar(select(Ubicacion), f, Ubicacion.activo, Ubicacion.codigo)
    if almacen_id is not None:
        sel = sel.where(Ubicacion.almacen_id == almacen_id)
    if estado is not None:
        sel = sel.where(Ubicacion.estado == estado)
    order = (Ubicacion.almacen_id, Ubicacion.codigo, Ubicacion.id)
    rows = (await session.execute(p.leer(sel.order_by(*order)))).scalars()
    return p.pagina([ubicacion_out(r) for r in rows])


async def buscar_productos(
    session: AsyncSession, clave: str | None, f: FiltroCatalogo, p: Paginado
) -> dict[str, Any]:
    """Products by exact clave and/or by a text contained in the clave or the name
    (case-insensitive), by clave; inactive products only with `incluir_inactivos`."""
    sel = _filtrar(select(Producto), f, Producto.activo, Producto.clave_cnis, Producto.descripcion)
    if clave:
        sel = sel.where(Producto.clave_cnis == clave.strip())
    rows = (await session.execute(p.leer(sel.order_by(Producto.clave_cnis, Producto.id)))).scalars()
    return p.pagina([producto_out(r) for r in rows])
