"""Picking corrections (§B.4.7 picking rule, HO-D32, §B.4.3), while a proposal is being picked
(REVISADA or EN_SURTIMIENTO; the legacy picking screens' states):

* change a RESERVADA line's quantity within ``0 ≤ nueva ≤ libre + actual`` (libre = the stock
  row's quantity not reserved by any line; 0 releases the line) and Σ lines ≤ approved;
* move a RESERVADA line to another (lot, location) of the item's product: the target obeys the
  eligibility of a manual line (§B.4.4(1), HO-D32: the legacy correction had no expiry check)
  and the same bound (``cantidad ≤ libre(target) + what this item already holds there``);
* undo a pick (RECOGIDA → RESERVADA; the line still reserves, so nothing moves in stock).

A RECOGIDA line is not corrected (409 ``LINEA_RECOGIDA``: undo the pick first). Every change
keeps ``lote_ubicaciones.cantidad_reservada`` = Σ active lines (conditional atomic updates on
rows locked in ascending id order, as the manual edit), the item's ``cantidad_propuesta`` /
``cantidad_pendiente`` / ``estado`` and the proposal's totals; it is audited in
``historial_estados`` (never in the kardex, HO-D14) and bumps the proposal's version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.snapshots import snap_query, snapshots_locked, to_snap
from orders.application.clock import now
from orders.application.common import (
    Actor,
    OrdersConfig,
    audit,
    get_propuesta,
    get_solicitud,
    lineas_activas,
    recalcular_totales,
    reservar,
    transicion_solicitud,
)
from orders.models import LoteAsignado, LoteUbicacion, Propuesta, PropuestaItem, Solicitud

R = d.EstadoLinea.RESERVADA.value
ACTIVAS = [e.value for e in d.ACTIVE_LINE_STATES]


@dataclass(frozen=True)
class LineaEnPicking:
    prop: Propuesta
    item: PropuestaItem
    linea: LoteAsignado
    sol: Solicitud


async def _linea_en_picking(
    session: AsyncSession, propuesta_id: uuid.UUID, linea_id: uuid.UUID
) -> LineaEnPicking:
    prop = await get_propuesta(session, propuesta_id)
    if prop.estado in d.PROPUESTA_DESPACHADA:
        raise d.Conflict("YA_SURTIDA", "Una propuesta surtida no se corrige (HO-D28).")
    if prop.estado not in d.PROPUESTA_EN_PICKING:
        raise d.Conflict(
            "ESTADO_INVALIDO",
            f"La propuesta está {prop.estado}; las correcciones de picking se hacen en "
            "propuestas REVISADA o EN_SURTIMIENTO (antes de revisarla, edite las líneas del item).",
            estado_actual=prop.estado,
        )
    linea = await session.get(LoteAsignado, linea_id)
    ip = await session.get(PropuestaItem, linea.propuesta_item_id) if linea else None
    if linea is None or ip is None or ip.propuesta_id != prop.id:
        raise d.NotFound("LINEA_NO_ENCONTRADA", f"No existe la línea {linea_id}.")
    return LineaEnPicking(prop, ip, linea, await get_solicitud(session, prop.solicitud_id))


def _exigir_reservada(linea: LoteAsignado, field: str = "id_linea") -> None:
    if linea.estado_linea == d.EstadoLinea.RECOGIDA:
        raise d.Conflict(
            "LINEA_RECOGIDA",
            "La línea ya fue recogida; deshaga la recogida antes de corregirla.",
            field=field,
            estado_linea=linea.estado_linea,
        )
    if linea.estado_linea != R:
        raise d.Conflict(
            "LINEA_NO_ACTIVA",
            f"La línea está {linea.estado_linea}; solo se corrigen líneas reservadas.",
            field=field,
            estado_linea=linea.estado_linea,
        )


async def _otros_del_item(session: AsyncSession, ip: PropuestaItem, *excluir: int) -> int:
    """Σ active lines of the item on stock rows other than `excluir`."""
    q = select(func.coalesce(func.sum(LoteAsignado.cantidad_asignada), 0)).where(
        LoteAsignado.propuesta_item_id == ip.id,
        LoteAsignado.estado_linea.in_(ACTIVAS),
        LoteAsignado.lote_ubicacion_id.not_in(excluir),
    )
    return int((await session.execute(q)).scalar_one())


def _con_campo(exc: d.DomainError, field: str) -> d.DomainError:
    exc.extensions["field"] = field
    return exc


async def _actualizar_linea(
    session: AsyncSession, linea: LoteAsignado, actual: int, **valores: Any
) -> None:
    """Conditional update of a RESERVADA line still holding `actual` (a concurrent correction
    of the same line makes it fail: 409)."""
    res = await session.execute(
        update(LoteAsignado)
        .where(
            LoteAsignado.id == linea.id,
            LoteAsignado.estado_linea == R,
            LoteAsignado.cantidad_asignada == actual,
        )
        .values(**valores)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict(
            "CONFLICTO_CONCURRENTE",
            "La línea cambió mientras se procesaba; vuelva a consultarla.",
        )
    await session.refresh(linea)


async def _sincronizar_item(session: AsyncSession, ip: PropuestaItem) -> None:
    """The item's figures from its active lines (§B.4.4(4); the shortfall as DECIDE-B5)."""
    total = await _otros_del_item(session, ip)
    ip.cantidad_propuesta = total
    ip.cantidad_pendiente = ip.cantidad_aprobada - total
    ip.estado = d.estado_item_por_asignado(total, ip.cantidad_aprobada).value
    if ip.estado == d.EstadoItemPropuesta.DISPONIBLE:
        ip.observaciones = ""
    elif total:
        ip.observaciones = d.MSG_PARCIAL.format(asignado=total, requerido=ip.cantidad_aprobada)
    await session.flush()


async def _cerrar(session: AsyncSession, ctx: LineaEnPicking, actor: Actor) -> Propuesta:
    """After a correction: the request's picking state follows the lines (all picked →
    PREPARADA, a line to pick again → EN_PREPARACION), and the proposal's version is bumped
    on the condition that it is still being picked (a dispatch that won the race: 409)."""
    prop, sol = ctx.prop, ctx.sol
    lineas = [ln for ln, _ in await lineas_activas(session, prop.id)]
    por_recoger = any(ln.estado_linea == R for ln in lineas)
    if sol.estado == d.EstadoSolicitud.PREPARADA and por_recoger:
        await transicion_solicitud(session, sol, d.EstadoSolicitud.EN_PREPARACION, actor)
    elif (
        sol.estado == d.EstadoSolicitud.EN_PREPARACION
        and prop.estado == d.EstadoPropuesta.EN_SURTIMIENTO
        and lineas
        and not por_recoger
    ):
        await transicion_solicitud(session, sol, d.EstadoSolicitud.PREPARADA, actor)
    res = await session.execute(
        update(Propuesta)
        .where(Propuesta.id == prop.id, Propuesta.estado.in_(list(d.PROPUESTA_EN_PICKING)))
        .values(version=Propuesta.version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict(
            "CONFLICTO_CONCURRENTE",
            "La propuesta cambió mientras se procesaba; vuelva a consultarla.",
        )
    await session.refresh(prop)
    return prop


def _elegible(
    ctx: LineaEnPicking,
    snap: d.LoteUbicacionSnap,
    actor: Actor,
    config: OrdersConfig,
    *,
    motivo_override: str | None,
    autorizada: LoteAsignado | None,
) -> bool:
    """§B.4.4(1) on the (lot, location) a correction adds stock from; True if it needs (and
    has) the Supervisor override. A line already authorised keeps its authorisation."""
    ya = autorizada is not None and autorizada.override_caducidad
    override = (
        d.Override(frozenset({d.ROLE_SUPERVISOR}), autorizada.motivo_override or "x")
        if ya and autorizada is not None
        else d.Override(actor.roles, motivo_override)
    )
    return d.verificar_linea_manual(
        producto_item_id=ctx.item.producto_id,
        almacen_destino_id=ctx.sol.almacen_destino_id,
        snap=snap,
        today=d.business_date(now()),
        min_shelf_life_days=config.min_shelf_life_days,
        override=override,
    )


async def cambiar_cantidad(
    session: AsyncSession,
    propuesta_id: uuid.UUID,
    linea_id: uuid.UUID,
    nueva: int,
    actor: Actor,
    config: OrdersConfig,
) -> Propuesta:
    """``0 ≤ nueva ≤ libre + actual`` (§B.4.7), Σ item lines ≤ approved; 0 releases the line."""
    d.exigir(actor.roles, d.Accion.CORREGIR_PICKING)
    ctx = await _linea_en_picking(session, propuesta_id, linea_id)
    ln = ctx.linea
    _exigir_reservada(ln)
    actual, lu_id = ln.cantidad_asignada, ln.lote_ubicacion_id
    if nueva < 0:
        raise d.DomainError("CANTIDAD_INVALIDA", "cantidad debe ser ≥ 0.", field="cantidad")
    if nueva == actual:
        return ctx.prop
    snap = (await snapshots_locked(session, [lu_id]))[lu_id]
    if nueva > actual:
        otros = await _otros_del_item(session, ctx.item, lu_id)
        try:
            d.verificar_total_item(otros + nueva, ctx.item.cantidad_aprobada)
            d.verificar_reserva(snap, nueva, actual)
        except d.DomainError as exc:
            raise _con_campo(exc, "cantidad") from None
        try:
            _elegible(ctx, snap, actor, config, motivo_override=None, autorizada=ln)
        except d.DomainError as exc:
            raise _con_campo(exc, "id_linea") from None
    if nueva == 0:
        await _actualizar_linea(session, ln, actual, estado_linea=d.EstadoLinea.LIBERADA.value)
    else:
        await _actualizar_linea(session, ln, actual, cantidad_asignada=nueva)
    await reservar(session, lu_id, nueva - actual)
    await _sincronizar_item(session, ctx.item)
    await recalcular_totales(session, ctx.prop)
    await audit(
        session,
        "reserva",
        ctx.prop.id,
        "picking_cantidad",
        actor,
        payload={
            "item": str(ctx.item.id),
            "linea": str(ln.id),
            "lote_ubicacion": lu_id,
            "antes": actual,
            "despues": nueva,
        },
    )
    return await _cerrar(session, ctx, actor)


async def mover_linea(
    session: AsyncSession,
    propuesta_id: uuid.UUID,
    linea_id: uuid.UUID,
    destino_id: int,
    cantidad: int | None,
    actor: Actor,
    config: OrdersConfig,
    *,
    motivo_override: str | None = None,
) -> Propuesta:
    """Correct the lot/location of a RESERVADA line: the source line is released entirely and
    the target (lot, location) of the same product gets `cantidad` (default: the line's), added
    to what this item already holds there."""
    d.exigir(actor.roles, d.Accion.CORREGIR_PICKING)
    ctx = await _linea_en_picking(session, propuesta_id, linea_id)
    ln = ctx.linea
    _exigir_reservada(ln)
    actual, origen_id = ln.cantidad_asignada, ln.lote_ubicacion_id
    cant = actual if cantidad is None else cantidad
    if cant < 1:
        raise d.DomainError("CANTIDAD_INVALIDA", "cantidad debe ser ≥ 1.", field="cantidad")
    if destino_id == origen_id:
        raise d.DomainError(
            "MISMA_UBICACION",
            "La línea ya está en esa ubicación de lote; cambie su cantidad.",
            field="id_lote_ubicacion",
        )
    destino_linea = (
        await session.execute(
            select(LoteAsignado).where(
                LoteAsignado.propuesta_item_id == ctx.item.id,
                LoteAsignado.lote_ubicacion_id == destino_id,
            )
        )
    ).scalar_one_or_none()
    if destino_linea is not None and destino_linea.estado_linea == d.EstadoLinea.RECOGIDA:
        _exigir_reservada(destino_linea, "id_lote_ubicacion")
    en_destino = (
        destino_linea.cantidad_asignada
        if destino_linea is not None and destino_linea.estado_linea == R
        else 0
    )
    snaps = await snapshots_locked(session, [origen_id, destino_id])
    snap = snaps.get(destino_id)
    if snap is None:
        raise d.DomainError(
            "LOTE_DESCONOCIDO",
            f"No existe la ubicación de lote {destino_id}.",
            field="id_lote_ubicacion",
        )
    try:
        override = _elegible(
            ctx,
            snap,
            actor,
            config,
            motivo_override=motivo_override,
            autorizada=destino_linea if en_destino else None,
        )
    except d.DomainError as exc:
        raise _con_campo(exc, "id_lote_ubicacion") from None
    otros = await _otros_del_item(session, ctx.item, origen_id, destino_id)
    try:
        d.verificar_total_item(otros + en_destino + cant, ctx.item.cantidad_aprobada)
        d.verificar_reserva(snap, en_destino + cant, en_destino)
    except d.DomainError as exc:
        raise _con_campo(exc, "cantidad") from None

    at = now()
    await _actualizar_linea(session, ln, actual, estado_linea=d.EstadoLinea.LIBERADA.value)
    await reservar(session, origen_id, -actual)
    await reservar(session, destino_id, cant)
    if destino_linea is None:
        session.add(
            LoteAsignado(
                propuesta_item_id=ctx.item.id,
                lote_ubicacion_id=destino_id,
                cantidad_asignada=cant,
                estado_linea=R,
                fecha_asignacion=at,
                override_caducidad=override,
                motivo_override=motivo_override if override else None,
                usuario_override=actor.sub if override else None,
            )
        )
    elif en_destino:
        await _actualizar_linea(
            session, destino_linea, en_destino, cantidad_asignada=en_destino + cant
        )
        if override and not destino_linea.override_caducidad:
            destino_linea.override_caducidad = True
            destino_linea.motivo_override = motivo_override
            destino_linea.usuario_override = actor.sub
    else:  # a released line of this item on the target (one row per item and stock row)
        destino_linea.cantidad_asignada = cant
        destino_linea.estado_linea = R
        destino_linea.fecha_asignacion = at
        destino_linea.fecha_recogida = None
        destino_linea.usuario_recogida = None
        destino_linea.no_elegible_desde = None
        destino_linea.override_caducidad = bool(override)
        destino_linea.motivo_override = motivo_override if override else None
        destino_linea.usuario_override = actor.sub if override else None
    await session.flush()
    await _sincronizar_item(session, ctx.item)
    await recalcular_totales(session, ctx.prop)
    await audit(
        session,
        "reserva",
        ctx.prop.id,
        "picking_mover",
        actor,
        motivo=motivo_override if override else None,
        payload={
            "item": str(ctx.item.id),
            "linea": str(ln.id),
            "desde": {"lote_ubicacion": origen_id, "cantidad": actual},
            "hacia": {"lote_ubicacion": destino_id, "cantidad": cant},
        },
    )
    return await _cerrar(session, ctx, actor)


async def deshacer_recogida(
    session: AsyncSession, propuesta_id: uuid.UUID, linea_id: uuid.UUID, actor: Actor
) -> Propuesta:
    """RECOGIDA → RESERVADA (the reservation never left: a picked line still reserves, HO-D04);
    a PREPARADA request goes back to EN_PREPARACION."""
    d.exigir(actor.roles, d.Accion.CORREGIR_PICKING)
    ctx = await _linea_en_picking(session, propuesta_id, linea_id)
    res = await session.execute(
        update(LoteAsignado)
        .where(LoteAsignado.id == linea_id, LoteAsignado.estado_linea == "RECOGIDA")
        .values(estado_linea=R, fecha_recogida=None, usuario_recogida=None)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict(
            "LINEA_NO_RECOGIDA",
            "La línea no está recogida.",
            field="id_linea",
            estado_linea=ctx.linea.estado_linea,
        )
    await session.refresh(ctx.linea)
    await audit(session, "linea", linea_id, "deshacer_recogida", actor, antes="RECOGIDA", despues=R)
    return await _cerrar(session, ctx, actor)


async def limites_linea(
    session: AsyncSession, propuesta_id: uuid.UUID, linea_id: uuid.UUID
) -> dict[str, Any]:
    """The bounds of a quantity change (the legacy ``limites-cantidad``): ``minimo`` 0,
    ``maximo`` = min(libre + actual, aprobada − Σ the item's other lines)."""
    ctx = await _linea_en_picking(session, propuesta_id, linea_id)
    ln = ctx.linea
    row = (
        await session.execute(snap_query().where(LoteUbicacion.id == ln.lote_ubicacion_id))
    ).one()
    snap = to_snap(row)
    activa = ln.estado_linea in d.ACTIVE_LINE_STATES
    actual = ln.cantidad_asignada if activa else 0
    otros = await _otros_del_item(session, ctx.item, ln.lote_ubicacion_id)
    libre = max(0, snap.cantidad - snap.reservado)
    return {
        "id_linea": ln.id,
        "estado_linea": ln.estado_linea,
        "cantidad_actual": actual,
        "minimo": 0,
        "maximo": max(0, min(libre + actual, ctx.item.cantidad_aprobada - otros)),
        "libre_ubicacion": libre,
        "cantidad_aprobada": ctx.item.cantidad_aprobada,
        "total_otros": otros,
    }
