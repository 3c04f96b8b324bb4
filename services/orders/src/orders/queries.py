"""Read side of the orders service: reports, and the read models the API answers with."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.application.clock import (
    now,
)
from orders.application.common import items_de, propuesta_activa
from orders.models import (
    Institucion,
    Lote,
    LoteAsignado,
    LoteUbicacion,
    Producto,
    Propuesta,
    PropuestaItem,
    Solicitud,
    Ubicacion,
)


async def lote_totales(session: AsyncSession, lote_id: int) -> tuple[int, int]:
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(LoteUbicacion.cantidad), 0),
                func.coalesce(func.sum(LoteUbicacion.cantidad_reservada), 0),
            ).where(LoteUbicacion.lote_id == lote_id)
        )
    ).one()
    return int(row[0]), int(row[1])


async def reporte_pendientes(session: AsyncSession) -> list[dict[str, Any]]:
    today = d.business_date(now())
    rows = (
        await session.execute(
            select(Solicitud, Institucion)
            .join(Institucion, Institucion.id == Solicitud.institucion_id)
            .where(Solicitud.estado.in_(["PENDIENTE", "VALIDADA", "EN_PREPARACION", "PREPARADA"]))
            .order_by(Solicitud.fecha_entrega_programada, Solicitud.folio)
        )
    ).all()
    return [
        {
            "folio": s.folio,
            "folio_pedido": s.folio_pedido,
            "estado": s.estado,
            "clue": i.clue,
            "institucion": i.denominacion,
            "fecha_entrega_programada": s.fecha_entrega_programada.isoformat(),
            "dias_atraso": max(0, (today - s.fecha_entrega_programada).days),
        }
        for s, i in rows
    ]


async def reporte_fill_rate(
    session: AsyncSession, desde: date | None = None, hasta: date | None = None
) -> dict[str, Any]:
    q = (
        select(
            Producto.clave_cnis,
            func.sum(PropuestaItem.cantidad_aprobada),
            func.sum(PropuestaItem.cantidad_surtida),
        )
        .join(Propuesta, Propuesta.id == PropuestaItem.propuesta_id)
        .join(Producto, Producto.id == PropuestaItem.producto_id)
        .where(Propuesta.estado.in_(["SURTIDA", "PARCIAL"]))
        .group_by(Producto.clave_cnis)
        .order_by(Producto.clave_cnis)
    )
    conds = []
    if desde is not None:
        conds.append(
            Propuesta.fecha_surtimiento
            >= datetime.combine(desde, datetime.min.time(), d.BUSINESS_TZ)
        )
    if hasta is not None:
        conds.append(
            Propuesta.fecha_surtimiento
            < datetime.combine(hasta, datetime.min.time(), d.BUSINESS_TZ) + timedelta(days=1)
        )
    if conds:
        q = q.where(and_(*conds))
    rows = (await session.execute(q)).all()
    productos: list[dict[str, Any]] = [
        {
            "clave_cnis": r[0],
            "cantidad_aprobada": int(r[1] or 0),
            "cantidad_surtida": int(r[2] or 0),
            "fill_rate": str(d.porcentaje(int(r[2] or 0), int(r[1] or 0))),
        }
        for r in rows
    ]
    ap = sum(int(r[1] or 0) for r in rows)
    su = sum(int(r[2] or 0) for r in rows)
    return {
        "cantidad_aprobada": ap,
        "cantidad_surtida": su,
        "fill_rate": str(d.porcentaje(su, ap)),
        "productos": productos,
    }


async def reporte_lotes_por_caducar(session: AsyncSession, dias: int) -> list[dict[str, Any]]:
    today = d.business_date(now())
    limite = today + timedelta(days=dias)
    rows = (
        await session.execute(
            select(
                Lote.id,
                Lote.numero_lote,
                Producto.clave_cnis,
                Lote.fecha_caducidad,
                Lote.estado,
                func.coalesce(func.sum(LoteUbicacion.cantidad), 0),
                func.coalesce(func.sum(LoteUbicacion.cantidad_reservada), 0),
            )
            .join(Producto, Producto.id == Lote.producto_id)
            .outerjoin(LoteUbicacion, LoteUbicacion.lote_id == Lote.id)
            .where(
                Lote.fecha_caducidad.is_not(None),
                Lote.fecha_caducidad <= limite,
                Lote.fecha_caducidad >= today,
            )
            .group_by(
                Lote.id, Lote.numero_lote, Producto.clave_cnis, Lote.fecha_caducidad, Lote.estado
            )
            .order_by(Lote.fecha_caducidad, Lote.numero_lote)
        )
    ).all()
    return [
        {
            "id_lote": r[0],
            "numero_lote": r[1],
            "clave_cnis": r[2],
            "fecha_caducidad": str(r[3]),
            "dias_para_caducidad": (r[3] - today).days if r[3] is not None else None,
            "estado": r[4],
            "cantidad_disponible": int(r[5]),
            "cantidad_reservada": int(r[6]),
        }
        for r in rows
    ]


# ------------------------------------------------------------------ read models of the API


def iso(v: datetime | date | None) -> str | None:
    return None if v is None else v.isoformat()


async def solicitud_out(session: AsyncSession, sol: Solicitud) -> dict[str, Any]:
    items = await items_de(session, sol.id)
    claves = {
        p.id: p.clave_cnis
        for p in (
            await session.execute(
                select(Producto).where(Producto.id.in_([i.producto_id for i in items]))
            )
        ).scalars()
    }
    prop = await propuesta_activa(session, sol.id)
    return {
        "id": str(sol.id),
        "folio": sol.folio,
        "folio_pedido": sol.folio_pedido,
        "estado": sol.estado,
        "id_institucion": sol.institucion_id,
        "id_almacen_destino": sol.almacen_destino_id,
        "usuario_solicitante": sol.usuario_solicitante,
        "usuario_validacion": sol.usuario_validacion,
        "fecha_solicitud": iso(sol.fecha_solicitud),
        "fecha_validacion": iso(sol.fecha_validacion),
        "fecha_entrega_programada": iso(sol.fecha_entrega_programada),
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
                "fecha_caducidad": iso(lote.fecha_caducidad),
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
        "fecha_generacion": iso(prop.fecha_generacion),
        "fecha_revision": iso(prop.fecha_revision),
        "fecha_surtimiento": iso(prop.fecha_surtimiento),
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
        "fecha_caducidad": iso(lote.fecha_caducidad),
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
