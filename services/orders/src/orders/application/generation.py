"""Proposal generation (§B.4.1/§B.4.3): FEFO allocation over the locked eligible stock,
reservations, proposal rows and `ProposalGenerated`, through the app's `StockStore`.

Concurrency (DOMAIN §0.3-5): stock rows are locked ``FOR UPDATE`` in ascending id order before
availability is computed; every reservation is a conditional atomic UPDATE whose row count is
checked, backed by the CHECK ``0 ≤ cantidad_reservada ≤ cantidad``.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.orders import (
    ProposalGenerated,
)
from nexo_messaging.outbox import enqueue
from orders import domain as d
from orders.adapters.snapshots import candidatos_todos, snap_query, to_snap
from orders.adapters.store import LecturaFefo, StockStore
from orders.application.clock import (
    now,
)
from orders.application.common import (
    DEFAULT_CONFIG,
    Actor,
    OrdersConfig,
    audit,
    items_de,
    propuesta_activa,
)
from orders.models import (
    Lote,
    Producto,
    Propuesta,
    Solicitud,
    SolicitudItem,
    Ubicacion,
    outbox,
)


def _estado_evento(estado: str) -> Any:
    return {"DISPONIBLE": "COMPLETO", "PARCIAL": "PARCIAL"}.get(estado, "SIN_EXISTENCIA")


def _uuids(n: int) -> list[uuid.UUID]:
    """n random (version 4) UUIDs from one `os.urandom` call (one syscall, not n)."""
    raw = os.urandom(16 * n)
    return [uuid.UUID(bytes=raw[i * 16 : i * 16 + 16], version=4) for i in range(n)]


async def generar_propuesta(
    session: AsyncSession,
    solicitud_id: uuid.UUID,
    *,
    store: StockStore,
    config: OrdersConfig | None = None,
    evento_id: str | None = None,
    actor: Actor | None = None,
) -> Propuesta | None:
    """FEFO proposal for a VALIDADA request, reserving stock under row locks (§B.4.1/§B.4.3).

    `store` is the database's `StockStore` (chosen once by `create_app`). Idempotent: returns
    the active proposal if there is one; returns None (no effect) if the request is no longer
    VALIDADA (a stale or redelivered event).
    """
    cfg = config or DEFAULT_CONFIG
    actor = actor or Actor.system()
    sol = (
        await session.execute(
            select(Solicitud).where(Solicitud.id == solicitud_id).with_for_update()
        )
    ).scalar_one_or_none()
    if sol is None:
        raise d.NotFound("SOLICITUD_NO_ENCONTRADA", f"No existe la solicitud {solicitud_id}.")
    if sol.estado != d.EstadoSolicitud.VALIDADA:
        return None
    existente = await propuesta_activa(session, sol.id)
    if existente is not None:
        return existente

    at = now()
    today = d.business_date(at)
    items = await items_de(session, sol.id)
    aprobados = [i for i in items if (i.cantidad_aprobada or 0) > 0]
    total_solicitado = sum(i.cantidad_aprobada or 0 for i in items)
    productos = sorted({i.producto_id for i in aprobados})
    umbral = d.umbral_caducidad(today, cfg.min_shelf_life_days)

    requeridos = {i.producto_id: i.cantidad_aprobada or 0 for i in aprobados}
    disponibles_total: dict[int, int] | None = None
    lectura: LecturaFefo | None = None
    if cfg.natural_sort:  # natural order is not SQL's: read the whole eligible scope
        snaps_leidos = [
            to_snap(r)
            for r in await candidatos_todos(session, productos, sol.almacen_destino_id, umbral)
        ]
    else:
        lectura = await store.leer_fefo(session, requeridos, sol.almacen_destino_id, umbral)
        snaps_leidos = lectura.snaps
    try:
        asignados = d.asignar_fefo_varios(
            requeridos,
            sol.almacen_destino_id,
            snaps_leidos,
            today,
            min_shelf_life_days=cfg.min_shelf_life_days,
            natural=cfg.natural_sort,
        )
        resultados: list[tuple[SolicitudItem, d.ResultadoItem]] = []
        for item in aprobados:
            res = asignados[item.producto_id]
            if not res.asignaciones:
                res = await _con_razon(session, item, sol.almacen_destino_id, today, cfg)
            resultados.append((item, res))
        await store.reservar_varios(
            session,
            [(a.lote_ubicacion_id, a.cantidad) for _, r in resultados for a in r.asignaciones],
        )
        if lectura is not None:
            disponibles_total = await lectura.totales()
    except BaseException:
        if lectura is not None:
            await lectura.cancelar()
        raise
    if disponibles_total:
        # the item's usable stock is the scope-wide total (the prefix read is part of it)
        resultados = [
            (
                item,
                dataclasses.replace(
                    res,
                    cantidad_disponible=max(
                        res.cantidad_disponible, disponibles_total.get(item.producto_id, 0)
                    ),
                )
                if res.asignaciones
                else res,
            )
            for item, res in resultados
        ]

    prop = Propuesta(
        id=uuid.uuid4(),
        solicitud_id=sol.id,
        estado=d.estado_propuesta_generada([r for _, r in resultados]).value,
        fecha_generacion=at,
        usuario_generacion=actor.sub,
        evento_origen=evento_id,
        total_solicitado=total_solicitado,
        total_disponible=sum(r.cantidad_disponible for _, r in resultados),
        total_propuesto=sum(r.cantidad_propuesta for _, r in resultados),
        version=1,
    )
    session.add(prop)
    await session.flush()

    snaps = {s.lote_ubicacion_id: s for s in snaps_leidos}
    lotes_evento: dict[uuid.UUID, list[dict[str, Any]]] = {}
    items_prop: dict[uuid.UUID, uuid.UUID] = {}
    ids_nuevos = iter(_uuids(len(resultados) + sum(len(r.asignaciones) for _, r in resultados)))
    filas_items: list[dict[str, Any]] = []
    lineas: list[tuple[uuid.UUID, uuid.UUID, int, int]] = []
    reservas: list[dict[str, Any]] = []
    for item, res in resultados:
        item_id = item.id
        ip_id = next(ids_nuevos)
        items_prop[item_id] = ip_id
        filas_items.append(
            {
                "id": ip_id,
                "propuesta_id": prop.id,
                "solicitud_item_id": item_id,
                "producto_id": item.producto_id,
                "cantidad_aprobada": res.cantidad_aprobada,
                "cantidad_disponible": res.cantidad_disponible,
                "cantidad_propuesta": res.cantidad_propuesta,
                "cantidad_surtida": 0,
                "cantidad_pendiente": res.cantidad_pendiente,
                "estado": res.estado.value,
                "observaciones": res.observaciones,
            }
        )
        item_txt = str(item_id)
        evento = lotes_evento[item_id] = []
        for a in res.asignaciones:
            linea_id = next(ids_nuevos)
            lu_id, cantidad = a.lote_ubicacion_id, a.cantidad
            lineas.append((linea_id, ip_id, lu_id, cantidad))
            reservas.append({"item": item_txt, "lote_ubicacion": lu_id, "cantidad": cantidad})
            s = snaps[lu_id]
            evento.append(
                {
                    "id_lote_asignado": linea_id,
                    "id_lote": s.lote_id,
                    "numero_lote": s.numero_lote,
                    "fecha_caducidad": s.fecha_caducidad,
                    "id_lote_ubicacion": lu_id,
                    "ubicacion": s.ubicacion_codigo,
                    "cantidad": cantidad,
                }
            )
    # set-based inserts (items before their lines): no ORM unit-of-work for ~1,000 rows
    await store.insertar_propuesta(session, filas_items, lineas, at)
    await audit(
        session,
        "propuesta",
        prop.id,
        "generar",
        actor,
        despues=prop.estado,
        payload={"solicitud": str(sol.id), "evento": evento_id, "reservas": reservas},
        at=at,
    )
    claves = (
        {
            p.id: p.clave_cnis
            for p in (
                await session.execute(select(Producto).where(Producto.id.in_(productos)))
            ).scalars()
        }
        if productos
        else {}
    )
    await enqueue(
        session,
        outbox,
        # one validation of the whole payload (≈1,000 lots) instead of one per nested object
        ProposalGenerated.model_validate(
            {
                "id_propuesta": prop.id,
                "id_solicitud": sol.id,
                "folio": sol.folio,
                "id_almacen_destino": sol.almacen_destino_id,
                "estado_propuesta": "GENERADA" if prop.estado == "GENERADA" else "NO_DISPONIBLE",
                "items": [
                    {
                        "id_item": item.id,
                        "id_item_propuesta": items_prop[item.id],
                        "id_producto": item.producto_id,
                        "clave_cnis": claves.get(item.producto_id),
                        "cantidad_aprobada": res.cantidad_aprobada,
                        "cantidad_asignada": res.cantidad_propuesta,
                        "cantidad_pendiente": res.cantidad_pendiente,
                        "estado": _estado_evento(res.estado.value),
                        "lotes": lotes_evento[item.id],
                    }
                    for item, res in resultados
                ],
                "total_solicitado": total_solicitado,
                "total_propuesto": prop.total_propuesto,
                "generated_by": actor.sub,
                "generated_at": at,
                "source_event_id": evento_id,
            }
        ),
    )
    return prop


async def _con_razon(
    session: AsyncSession, item: SolicitudItem, almacen_id: int, today: date, cfg: OrdersConfig
) -> d.ResultadoItem:
    """Nothing eligible: re-run the pure allocation over the whole scope for the reason text."""
    rows = (
        await session.execute(
            snap_query().where(
                Lote.producto_id == item.producto_id, Ubicacion.almacen_id == almacen_id
            )
        )
    ).all()
    res = d.asignar_fefo(
        item.producto_id,
        almacen_id,
        item.cantidad_aprobada or 0,
        [to_snap(r) for r in rows],
        today,
        min_shelf_life_days=cfg.min_shelf_life_days,
        natural=cfg.natural_sort,
    )
    if res.asignaciones:  # unlocked read saw stock the locked read did not: all taken
        res = dataclasses.replace(
            res,
            asignaciones=(),
            cantidad_disponible=0,
            estado=d.EstadoItemPropuesta.NO_DISPONIBLE,
            observaciones=d.MSG_SIN_NETO,
        )
    return res
