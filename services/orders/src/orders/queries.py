"""Read side of the orders service: reports, and the read models the API answers with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.eligibility import elegible_linea_manual_where, fefo_order_by
from orders.adapters.snapshots import snap_query, to_snap
from orders.application.clock import now
from orders.application.common import (
    OrdersConfig,
    get_propuesta,
    get_solicitud,
    propuesta_activa,
)
from orders.models import (
    Institucion,
    Lote,
    LoteAsignado,
    LoteUbicacion,
    MovimientoInventario,
    Producto,
    Propuesta,
    PropuestaItem,
    Solicitud,
    SolicitudItem,
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


async def reporte_faltantes(
    session: AsyncSession, f: FiltroPedidos, id_producto: int | None
) -> list[dict[str, Any]]:
    """The open shortfalls (DECIDE-B5): every proposal item with `cantidad_pendiente` > 0 of a
    proposal that is not cancelled, oldest request first; `f` filters on the request."""
    q = (
        select(PropuestaItem, Propuesta, Solicitud, Institucion, Producto)
        .join(Propuesta, Propuesta.id == PropuestaItem.propuesta_id)
        .join(Solicitud, Solicitud.id == Propuesta.solicitud_id)
        .join(Institucion, Institucion.id == Solicitud.institucion_id)
        .join(Producto, Producto.id == PropuestaItem.producto_id)
        .where(PropuestaItem.cantidad_pendiente > 0, Propuesta.estado != "CANCELADA")
        .order_by(Solicitud.fecha_solicitud, Solicitud.folio, Producto.clave_cnis)
    )
    if id_producto is not None:
        q = q.where(PropuestaItem.producto_id == id_producto)
    rows = (await session.execute(f.aplicar(q))).all()
    return [
        {
            "folio": s.folio,
            "folio_pedido": s.folio_pedido,
            "fecha_solicitud": iso(s.fecha_solicitud),
            "id_institucion": i.id,
            "clue": i.clue,
            "institucion": i.denominacion,
            "id_propuesta": str(prop.id),
            "estado_propuesta": prop.estado,
            "id_producto": p.id,
            "clave_cnis": p.clave_cnis,
            "descripcion": p.descripcion,
            "cantidad_aprobada": ip.cantidad_aprobada,
            "cantidad_propuesta": ip.cantidad_propuesta,
            "cantidad_surtida": ip.cantidad_surtida,
            "cantidad_pendiente": ip.cantidad_pendiente,
        }
        for ip, prop, s, i, p in rows
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


# The read models select columns, not entities: a row answers an attribute as an entity would,
# without building a table-model instance per row (SQLModel's __new__/__setattr__ would add
# ~8 % calls to a 200-item proposal answer).


def con_clave(items: type[SolicitudItem] | type[PropuestaItem]) -> Select[Any]:
    """The rows of an item table with their product's `clave_cnis`."""
    return select(*items.__table__.c, Producto.clave_cnis).join(
        Producto, Producto.id == items.producto_id
    )


async def solicitud_out(session: AsyncSession, sol: Solicitud) -> dict[str, Any]:
    de_la_solicitud = SolicitudItem.solicitud_id == sol.id
    q = con_clave(SolicitudItem).where(de_la_solicitud).order_by(SolicitudItem.producto_id)
    items = (await session.execute(q)).all()
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
        "fallo_propuesta_codigo": sol.fallo_propuesta_codigo,
        "fallo_propuesta": sol.fallo_propuesta,
        "id_propuesta_activa": str(prop.id) if prop else None,
        "items": [
            {
                "id": str(i.id),
                "id_producto": i.producto_id,
                "clave_cnis": i.clave_cnis,
                "cantidad_solicitada": i.cantidad_solicitada,
                "cantidad_aprobada": i.cantidad_aprobada,
                "justificacion_codigo": i.justificacion_codigo,
                "justificacion": i.justificacion,
            }
            for i in items
        ],
    }


async def propuesta_out(session: AsyncSession, prop: Propuesta) -> dict[str, Any]:
    de_la_propuesta = PropuestaItem.propuesta_id == prop.id
    q = con_clave(PropuestaItem).where(de_la_propuesta).order_by(Producto.clave_cnis)
    items = (await session.execute(q)).all()
    lineas = (
        await session.execute(
            select(
                *LoteAsignado.__table__.c,
                Lote.id.label("id_lote"),
                Lote.numero_lote,
                Lote.fecha_caducidad,
                Ubicacion.codigo,
            )
            .select_from(LoteAsignado)
            .join(LoteUbicacion, LoteUbicacion.id == LoteAsignado.lote_ubicacion_id)
            .join(Lote, Lote.id == LoteUbicacion.lote_id)
            .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
            .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
            .where(PropuestaItem.propuesta_id == prop.id)
            .order_by(*fefo_order_by())
        )
    ).all()
    por_item: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for ln in lineas:
        por_item.setdefault(ln.propuesta_item_id, []).append(
            {
                "id": str(ln.id),
                "id_lote_ubicacion": ln.lote_ubicacion_id,
                "id_lote": ln.id_lote,
                "numero_lote": ln.numero_lote,
                "fecha_caducidad": iso(ln.fecha_caducidad),
                "ubicacion": ln.codigo,
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
            d.cobertura((ip.cantidad_disponible, ip.cantidad_aprobada) for ip in items)
        ),
        "porcentaje_surtido": str(
            d.porcentaje(sum(ip.cantidad_surtida for ip in items), prop.total_solicitado)
        ),
        "items": [
            {
                "id": str(ip.id),
                "id_item_solicitud": str(ip.solicitud_item_id),
                "id_producto": ip.producto_id,
                "clave_cnis": ip.clave_cnis,
                "cantidad_aprobada": ip.cantidad_aprobada,
                "cantidad_disponible": ip.cantidad_disponible,
                "cantidad_propuesta": ip.cantidad_propuesta,
                "cantidad_surtida": ip.cantidad_surtida,
                "cantidad_pendiente": ip.cantidad_pendiente,
                "estado": ip.estado,
                "observaciones": ip.observaciones,
                "lotes": por_item.get(ip.id, []),
            }
            for ip in items
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


S = TypeVar("S", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class Paginado:
    """Which page of a list to read: at most `limit` rows after the first `offset`."""

    limit: int
    offset: int

    def leer(self, q: S) -> S:
        return q.limit(self.limit).offset(self.offset)

    def pagina(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The list answer (`api.schemas.Pagina`): the rows and the page they are."""
        return {"items": items, "limit": self.limit, "offset": self.offset}


@dataclass(frozen=True)
class FiltroPedidos:
    """The filters shared by the request and proposal lists: the request's business date of
    capture (`fecha_solicitud`, both ends inclusive), its institution and its folio (the internal
    folio or the external `folio_pedido`, normalised)."""

    desde: date | None = None
    hasta: date | None = None
    id_institucion: int | None = None
    folio: str | None = None

    def aplicar(self, q: S) -> S:
        if self.desde is not None:
            q = q.where(Solicitud.fecha_solicitud >= _inicio_del_dia(self.desde))
        if self.hasta is not None:
            q = q.where(Solicitud.fecha_solicitud < _inicio_del_dia(self.hasta + timedelta(days=1)))
        if self.id_institucion is not None:
            q = q.where(Solicitud.institucion_id == self.id_institucion)
        if self.folio:
            clave = d.clave_folio_pedido(self.folio)
            q = q.where((Solicitud.folio == self.folio) | (Solicitud.folio_pedido_clave == clave))
        return q


def _inicio_del_dia(dia: date) -> datetime:
    """The first instant of a business day (America/Mexico_City), in UTC: SQLite keeps the UTC
    wall time of an instant and compares text, so the bound must be UTC too."""
    return datetime.combine(dia, datetime.min.time(), d.BUSINESS_TZ).astimezone(UTC)


async def listar_solicitudes(
    session: AsyncSession, estado: d.EstadoSolicitud | None, f: FiltroPedidos, p: Paginado
) -> dict[str, Any]:
    """Requests, newest first, filtered by `f`."""
    q = select(Solicitud).order_by(Solicitud.fecha_solicitud.desc(), Solicitud.folio)
    if estado is not None:
        q = q.where(Solicitud.estado == estado.value)
    rows = list((await session.execute(p.leer(f.aplicar(q)))).scalars())
    return p.pagina(
        [
            {
                "id": str(s.id),
                "folio": s.folio,
                "folio_pedido": s.folio_pedido,
                "estado": s.estado,
                "id_institucion": s.institucion_id,
                "fecha_entrega_programada": iso(s.fecha_entrega_programada),
                "fecha_solicitud": iso(s.fecha_solicitud),
                "fallo_propuesta_codigo": s.fallo_propuesta_codigo,
                "fallo_propuesta": s.fallo_propuesta,
            }
            for s in rows
        ]
    )


async def verificar_folio(
    session: AsyncSession, folio: str, id_solicitud: uuid.UUID | None
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


async def listar_propuestas(
    session: AsyncSession, estado: d.EstadoPropuesta | None, f: FiltroPedidos, p: Paginado
) -> dict[str, Any]:
    """Proposals, newest first, with their request's folios and `porcentaje_surtido`; `f` filters
    on the request."""
    surtido = (
        select(func.coalesce(func.sum(PropuestaItem.cantidad_surtida), 0))
        .where(PropuestaItem.propuesta_id == Propuesta.id)
        .scalar_subquery()
    )
    q = select(
        Propuesta, Solicitud.folio, Solicitud.folio_pedido, Solicitud.institucion_id, surtido
    ).join(Solicitud, Solicitud.id == Propuesta.solicitud_id)
    if estado is not None:
        q = q.where(Propuesta.estado == estado.value)
    q = f.aplicar(q).order_by(Propuesta.fecha_generacion.desc(), Propuesta.id)
    rows = (await session.execute(p.leer(q))).all()
    return p.pagina(
        [
            {
                "id": str(prop.id),
                "id_solicitud": str(prop.solicitud_id),
                "folio": folio,
                "folio_pedido": folio_pedido,
                "id_institucion": id_institucion,
                "estado": prop.estado,
                "total_solicitado": prop.total_solicitado,
                "total_propuesto": prop.total_propuesto,
                "total_surtido": int(total_surtido),
                "porcentaje_surtido": str(d.porcentaje(int(total_surtido), prop.total_solicitado)),
            }
            for prop, folio, folio_pedido, id_institucion, total_surtido in rows
        ]
    )


async def movimientos(
    session: AsyncSession, id_lote: int | None, tipo: str | None, limit: int
) -> dict[str, Any]:
    """Kardex rows in id order, optionally of one lot and / or one movement type."""
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
                "fecha_movimiento": iso(m.fecha_movimiento),
            }
            for m, numero in rows
        ]
    }


async def candidatos(
    session: AsyncSession, id_propuesta: uuid.UUID, id_item: uuid.UUID, cfg: OrdersConfig
) -> dict[str, Any]:
    """Stock rows a line of this item may use (destination warehouse, same product, lot
    DISPONIBLE, not expired, eligible location), FEFO-ordered, with the free quantity and
    whether a Supervisor override is needed (caducidad ≤ today + min shelf life)."""
    prop = await get_propuesta(session, id_propuesta)
    ip = await session.get(PropuestaItem, id_item)
    if ip is None or ip.propuesta_id != prop.id:
        raise d.NotFound("ITEM_NO_ENCONTRADO", f"No existe el item {id_item}.")
    sol = await get_solicitud(session, prop.solicitud_id)
    today = d.business_date(now())
    rows = (
        await session.execute(
            snap_query().where(
                Lote.producto_id == ip.producto_id,
                *elegible_linea_manual_where(sol.almacen_destino_id, today),
            )
        )
    ).all()
    snaps = [to_snap(r) for r in rows]
    snaps.sort(key=lambda x: d.orden_fefo(x, natural=cfg.natural_sort))
    return {
        "umbral_caducidad": d.umbral_caducidad(today, cfg.min_shelf_life_days).isoformat(),
        "candidatos": [
            {
                "id_lote_ubicacion": x.lote_ubicacion_id,
                "id_lote": x.lote_id,
                "numero_lote": x.numero_lote,
                "ubicacion": x.ubicacion_codigo,
                "fecha_caducidad": iso(x.fecha_caducidad),
                "cantidad": x.cantidad,
                "disponible": x.neto,
                "requiere_override": not d.cumple_caducidad(
                    x.fecha_caducidad, today, cfg.min_shelf_life_days
                ),
            }
            for x in snaps
        ],
    }
