"""The reads a proposal document needs beyond `orders.queries.propuesta_out`: the request's
header (folios, institution, destination warehouse) and the products' names and units."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orders.documents.model import Cabecera, ProductoInfo
from orders.models import Almacen, Institucion, Producto, Propuesta, Solicitud


async def cabecera(session: AsyncSession, prop: Propuesta) -> Cabecera:
    row = (
        await session.execute(
            select(
                Solicitud.folio, Solicitud.folio_pedido, Institucion.denominacion, Almacen.nombre
            )
            .join(Institucion, Institucion.id == Solicitud.institucion_id)
            .join(Almacen, Almacen.id == Solicitud.almacen_destino_id)
            .where(Solicitud.id == prop.solicitud_id)
        )
    ).one()
    return Cabecera(folio=row[0], folio_pedido=row[1], institucion=row[2], almacen_destino=row[3])


async def productos(session: AsyncSession, ids: Iterable[int]) -> dict[int, ProductoInfo]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(Producto.id, Producto.descripcion, Producto.unidad_medida).where(
                Producto.id.in_(wanted)
            )
        )
    ).all()
    return {r[0]: ProductoInfo(r[1] or "", r[2] or "") for r in rows}
