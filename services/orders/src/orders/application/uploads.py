"""Use cases of the CSV upload of request items (§B.4.7): upload (parsed, judged and held for
its user), save (creates the request through `requests.crear_solicitud` and writes the error
log, HO-D25) and discard. Reads of a held upload and of a request's error log are here too, so
the ownership rule (an upload is its uploader's alone) has one place. Never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.application import requests
from orders.application.clock import now
from orders.application.common import Actor, OrdersConfig, get_solicitud
from orders.domain import csv_upload as csvu
from orders.models import CargaCsv, LogErrorPedido, Producto

RETENCION = timedelta(days=1)
"""A held upload not saved or discarded within this time is dropped (at the next upload)."""

_CHUNK = 500
"""Claves looked up per query (far below every driver's bound-parameter limit)."""


async def _productos(session: AsyncSession, claves: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Active products by clave: clave → (id, descripcion)."""
    pending = sorted(set(claves))
    out: dict[str, tuple[int, str]] = {}
    for i in range(0, len(pending), _CHUNK):
        rows = await session.execute(
            select(Producto.clave_cnis, Producto.id, Producto.descripcion).where(
                Producto.clave_cnis.in_(pending[i : i + _CHUNK]), Producto.activo.is_(True)
            )
        )
        out.update({c: (pid, desc) for c, pid, desc in rows.all()})
    return out


async def cargar_csv(session: AsyncSession, data: bytes, actor: Actor) -> CargaCsv:
    """Parse and judge the file, hold the outcome for the actor (nothing is logged yet)."""
    d.exigir(actor.roles, d.Accion.CREAR_SOLICITUD)
    archivo = csvu.leer(data)
    at = now()
    await session.execute(delete(CargaCsv).where(CargaCsv.creado_en < at - RETENCION))
    productos = await _productos(session, (f.clave for f in archivo.filas if f.clave))
    res = csvu.evaluar(archivo.filas, {c: pid for c, (pid, _) in productos.items()})
    carga = CargaCsv(
        id=uuid.uuid4(),
        usuario=actor.sub,
        creado_en=at,
        codificacion=archivo.codificacion,
        folio=archivo.folio,
        total_lineas=len(res.lineas),
        omitidas=sum(1 for ln in res.lineas if ln.estado is csvu.EstadoLinea.OMITIDA),
        items=[
            {
                "id_producto": it.producto_id,
                "clave": it.clave,
                "descripcion": productos[it.clave][1],
                "cantidad_solicitada": it.cantidad,
            }
            for it in res.items
        ],
        errores=[
            {
                "linea": ln.linea,
                "clave": ln.clave,
                "cantidad": ln.cantidad,
                "tipo_error": ln.estado.value,
                "mensaje": ln.mensaje,
            }
            for ln in res.errores
        ],
    )
    session.add(carga)
    await session.flush()
    return carga


async def obtener_carga(session: AsyncSession, carga_id: uuid.UUID, actor: Actor) -> CargaCsv:
    """The actor's held upload (another user's is not found: uploads are private)."""
    carga = await session.get(CargaCsv, carga_id)
    if carga is None or carga.usuario != actor.sub:
        raise d.NotFound("CARGA_NO_ENCONTRADA", f"No existe la carga {carga_id}.")
    return carga


def vista_previa(carga: CargaCsv, vista: str, limit: int, offset: int) -> dict[str, Any]:
    """One page of the held upload: its summed items (``vista=items``) or its error lines."""
    filas = carga.items if vista == "items" else carga.errores
    return {
        "id": carga.id,
        "codificacion": carga.codificacion,
        "folio": carga.folio,
        "total_lineas": carga.total_lineas,
        "omitidas": carga.omitidas,
        "total_items": len(carga.items),
        "total_errores": len(carga.errores),
        "vista": vista,
        "limit": limit,
        "offset": offset,
        "filas": filas[offset : offset + limit],
    }


async def guardar_carga(
    session: AsyncSession,
    carga_id: uuid.UUID,
    *,
    institucion_id: int,
    almacen_destino_id: int,
    fecha_entrega_programada: date,
    folio_pedido: str | None,
    observaciones: str,
    actor: Actor,
    config: OrdersConfig,
) -> requests.Creada:
    """Create the request from the held items (the file's ``FOLIO`` when no folio is given),
    write the upload's error lines to the request's log, and drop the held upload."""
    carga = await obtener_carga(session, carga_id, actor)
    if not carga.items:
        raise d.DomainError(
            "CARGA_SIN_ITEMS", "La carga no tiene ninguna línea válida.", field="id_carga"
        )
    creada = await requests.crear_solicitud(
        session,
        requests.NuevaSolicitud(
            institucion_id=institucion_id,
            almacen_destino_id=almacen_destino_id,
            fecha_entrega_programada=fecha_entrega_programada,
            items=[
                d.ItemCaptura(int(it["id_producto"]), int(it["cantidad_solicitada"]))
                for it in carga.items
            ],
            folio_pedido=(folio_pedido or "").strip() or carga.folio,
            observaciones=observaciones,
        ),
        actor,
        config,
    )
    at = now()
    session.add_all(
        LogErrorPedido(
            id=uuid.uuid4(),
            solicitud_id=creada.solicitud.id,
            usuario=actor.sub,
            fecha_error=at,
            tipo_error=e["tipo_error"],
            linea=e["linea"],
            clave_solicitada=str(e["clave"])[:150],
            cantidad_solicitada=str(e["cantidad"])[:50],
            descripcion_error=e["mensaje"],
        )
        for e in carga.errores
    )
    await session.execute(delete(CargaCsv).where(CargaCsv.id == carga.id))
    await session.flush()
    return creada


async def descartar_carga(session: AsyncSession, carga_id: uuid.UUID, actor: Actor) -> None:
    carga = await obtener_carga(session, carga_id, actor)
    await session.execute(delete(CargaCsv).where(CargaCsv.id == carga.id))


async def errores_de_solicitud(
    session: AsyncSession, solicitud_id: uuid.UUID, limit: int, offset: int
) -> dict[str, Any]:
    """A page of a request's CSV error log, by line, and its total."""
    await get_solicitud(session, solicitud_id)
    where = LogErrorPedido.solicitud_id == solicitud_id
    total = (
        await session.execute(select(func.count()).select_from(LogErrorPedido).where(where))
    ).scalar_one()
    rows = (
        await session.execute(
            select(LogErrorPedido)
            .where(where)
            .order_by(LogErrorPedido.linea)
            .limit(limit)
            .offset(offset)
        )
    ).scalars()
    return {
        "items": [
            {
                "linea": r.linea,
                "tipo_error": r.tipo_error,
                "clave_solicitada": r.clave_solicitada,
                "cantidad_solicitada": r.cantidad_solicitada,
                "descripcion_error": r.descripcion_error,
                "usuario": r.usuario,
                "fecha_error": r.fecha_error.isoformat(),
            }
            for r in rows
        ],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
