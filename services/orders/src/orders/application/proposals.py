"""Use cases of proposals: review, manual line edits (§B.4.4), picking, release."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.snapshots import snapshots_locked
from orders.application.clock import (
    now,
)
from orders.application.common import (
    Actor,
    OrdersConfig,
    audit,
    get_propuesta,
    get_solicitud,
    liberar_lineas,
    lineas_activas,
    recalcular_totales,
    reservar,
    transicion_propuesta,
    transicion_solicitud,
)
from orders.models import (
    LoteAsignado,
    Propuesta,
    PropuestaItem,
)


async def liberar_propuesta(
    session: AsyncSession, propuesta_id: uuid.UUID, actor: Actor, motivo: str | None = None
) -> Propuesta:
    """Release: reservations gone (lines → LIBERADA), proposal archived (CANCELADA), request
    back to PENDIENTE for re-validation (HO-L05, HO-D05)."""
    d.exigir(actor.roles, d.Accion.LIBERAR_PROPUESTA)
    prop = await get_propuesta(session, propuesta_id)
    d.transicion_propuesta(prop.estado, d.EstadoPropuesta.CANCELADA)
    sol = await get_solicitud(session, prop.solicitud_id)
    await liberar_lineas(session, prop, actor)
    await transicion_propuesta(
        session,
        prop,
        d.EstadoPropuesta.CANCELADA,
        actor,
        motivo=motivo,
        valores={"fecha_cancelacion": now(), "motivo_cancelacion": motivo},
    )
    if sol.estado in (
        d.EstadoSolicitud.VALIDADA,
        d.EstadoSolicitud.EN_PREPARACION,
        d.EstadoSolicitud.PREPARADA,
    ):
        await transicion_solicitud(
            session,
            sol,
            d.EstadoSolicitud.PENDIENTE,
            actor,
            motivo=motivo,
            valores={"usuario_validacion": None, "fecha_validacion": None},
        )
    return prop


async def revisar_propuesta(
    session: AsyncSession, propuesta_id: uuid.UUID, actor: Actor, observaciones: str = ""
) -> Propuesta:
    d.exigir(actor.roles, d.Accion.REVISAR_PROPUESTA)
    prop = await get_propuesta(session, propuesta_id)
    d.transicion_propuesta(prop.estado, d.EstadoPropuesta.REVISADA)
    lineas = await lineas_activas(session, prop.id)
    marcadas = [ln for ln, _ in lineas if ln.no_elegible_desde is not None]
    if marcadas:
        raise d.DomainError(
            "LOTE_NO_ELEGIBLE",
            "La propuesta tiene líneas en lotes que ya no son elegibles; reasígnelas antes.",
            lineas=[str(ln.id) for ln in marcadas],
        )
    # invariant §B.4.4(4): cantidad_propuesta = Σ cantidad_asignada per item
    suma: dict[uuid.UUID, int] = defaultdict(int)
    for ln, ip in lineas:
        suma[ip.id] += ln.cantidad_asignada
    for ip in (
        await session.execute(select(PropuestaItem).where(PropuestaItem.propuesta_id == prop.id))
    ).scalars():
        if ip.cantidad_propuesta != suma.get(ip.id, 0) or ip.cantidad_propuesta > (
            ip.cantidad_aprobada
        ):
            raise d.Conflict("INVARIANTE_PROPUESTA", f"El item {ip.id} no cuadra.")
    await transicion_propuesta(
        session,
        prop,
        d.EstadoPropuesta.REVISADA,
        actor,
        valores={
            "fecha_revision": now(),
            "usuario_revision": actor.sub,
            "observaciones_revision": observaciones,
            "requiere_replanificacion": False,
        },
    )
    sol = await get_solicitud(session, prop.solicitud_id)
    if sol.estado == d.EstadoSolicitud.VALIDADA:
        await transicion_solicitud(session, sol, d.EstadoSolicitud.EN_PREPARACION, actor)
    return prop


@dataclass(frozen=True)
class LineaDeseada:
    lote_ubicacion_id: int
    cantidad: int


async def editar_item_propuesta(
    session: AsyncSession,
    propuesta_id: uuid.UUID,
    propuesta_item_id: uuid.UUID,
    lineas: Sequence[LineaDeseada],
    actor: Actor,
    config: OrdersConfig,
    *,
    motivo_override: str | None = None,
    version: int | None = None,
) -> Propuesta:
    """Set the (lot, location, quantity) lines of one proposal item (§B.4.4).

    Same eligibility as automatic allocation; a shorter-dated lot only with a Supervisor
    override and reason; Σ lines ≤ approved; reservation deltas under row locks.
    """
    d.exigir(actor.roles, d.Accion.EDITAR_PROPUESTA)
    prop = await get_propuesta(session, propuesta_id)
    if prop.estado in d.PROPUESTA_DESPACHADA:
        raise d.Conflict("YA_SURTIDA", "Una propuesta surtida no se edita (HO-D28).")
    if prop.estado not in d.PROPUESTA_EDITABLE:
        raise d.Conflict(
            "ESTADO_INVALIDO",
            f"La propuesta está {prop.estado}; solo se editan propuestas GENERADA o NO_DISPONIBLE.",
            estado_actual=prop.estado,
        )
    if version is not None and prop.version != version:
        raise d.Conflict(
            "VERSION_CONFLICTO",
            "La propuesta fue modificada por otra persona.",
            version_actual=prop.version,
        )
    ip = await session.get(PropuestaItem, propuesta_item_id)
    if ip is None or ip.propuesta_id != prop.id:
        raise d.NotFound("ITEM_NO_ENCONTRADO", f"No existe el item {propuesta_item_id}.")
    sol = await get_solicitud(session, prop.solicitud_id)
    today = d.business_date(now())
    deseadas: dict[int, int] = {}
    for idx, ln in enumerate(lineas):
        if ln.cantidad < 0:
            raise d.DomainError(
                "CANTIDAD_INVALIDA", "cantidad debe ser ≥ 0.", field=f"lineas.{idx}.cantidad"
            )
        if ln.lote_ubicacion_id in deseadas:
            raise d.DomainError(
                "LINEA_DUPLICADA", "Ubicación repetida.", field=f"lineas.{idx}.id_lote_ubicacion"
            )
        deseadas[ln.lote_ubicacion_id] = ln.cantidad
    d.verificar_total_item(sum(deseadas.values()), ip.cantidad_aprobada)

    actuales = {
        ln.lote_ubicacion_id: ln
        for ln in (
            await session.execute(
                select(LoteAsignado).where(LoteAsignado.propuesta_item_id == ip.id)
            )
        ).scalars()
    }
    snaps = await snapshots_locked(session, set(deseadas) | set(actuales))
    override = d.Override(actor.roles, motivo_override)
    overrides: dict[int, bool] = {}
    for idx, (lu_id, cant) in enumerate(deseadas.items()):
        if cant == 0:
            continue
        snap = snaps.get(lu_id)
        if snap is None:
            raise d.DomainError(
                "LOTE_DESCONOCIDO",
                f"No existe la ubicación de lote {lu_id}.",
                field=f"lineas.{idx}.id_lote_ubicacion",
            )
        previa = actuales.get(lu_id)
        ya_autorizada = (
            previa is not None
            and previa.override_caducidad
            and previa.estado_linea in d.ACTIVE_LINE_STATES
        )
        try:
            overrides[lu_id] = d.verificar_linea_manual(
                producto_item_id=ip.producto_id,
                almacen_destino_id=sol.almacen_destino_id,
                snap=snap,
                today=today,
                min_shelf_life_days=config.min_shelf_life_days,
                override=override
                if not ya_autorizada
                else d.Override(
                    frozenset({d.ROLE_SUPERVISOR}), previa.motivo_override if previa else "x"
                ),
            )
        except d.DomainError as exc:
            exc.extensions["field"] = f"lineas.{idx}.id_lote_ubicacion"
            raise
        actual = (
            previa.cantidad_asignada
            if previa is not None and previa.estado_linea in d.ACTIVE_LINE_STATES
            else 0
        )
        d.verificar_reserva(snap, cant, actual)

    at = now()
    cambios: list[dict[str, Any]] = []
    for lu_id in sorted(set(deseadas) | set(actuales)):
        previa = actuales.get(lu_id)
        actual = (
            previa.cantidad_asignada
            if previa is not None and previa.estado_linea in d.ACTIVE_LINE_STATES
            else 0
        )
        nueva = deseadas.get(lu_id, 0)
        if nueva == actual and (previa is None or previa.no_elegible_desde is None):
            continue
        await reservar(session, lu_id, nueva - actual)
        cambios.append({"lote_ubicacion": lu_id, "antes": actual, "despues": nueva})
        if previa is None:
            session.add(
                LoteAsignado(
                    propuesta_item_id=ip.id,
                    lote_ubicacion_id=lu_id,
                    cantidad_asignada=nueva,
                    estado_linea="RESERVADA",
                    fecha_asignacion=at,
                    override_caducidad=overrides.get(lu_id, False),
                    motivo_override=motivo_override if overrides.get(lu_id) else None,
                    usuario_override=actor.sub if overrides.get(lu_id) else None,
                )
            )
        elif nueva == 0:
            previa.estado_linea = d.EstadoLinea.LIBERADA.value
        else:
            previa.cantidad_asignada = nueva
            previa.estado_linea = d.EstadoLinea.RESERVADA.value
            previa.no_elegible_desde = None
            if overrides.get(lu_id) and not previa.override_caducidad:
                previa.override_caducidad = True
                previa.motivo_override = motivo_override
                previa.usuario_override = actor.sub
            previa.fecha_asignacion = at
    total = sum(deseadas.values())
    ip.cantidad_propuesta = total
    ip.cantidad_pendiente = ip.cantidad_aprobada - total
    ip.estado = d.estado_item_por_asignado(total, ip.cantidad_aprobada).value
    ip.observaciones = (
        ""
        if ip.estado == "DISPONIBLE"
        else d.MSG_PARCIAL.format(asignado=total, requerido=ip.cantidad_aprobada)
        if total
        else ip.observaciones
    )
    await session.flush()
    await recalcular_totales(session, prop)
    await audit(
        session,
        "reserva",
        prop.id,
        "editar_item",
        actor,
        motivo=motivo_override,
        payload={"item": str(ip.id), "cambios": cambios},
    )
    if prop.estado == d.EstadoPropuesta.NO_DISPONIBLE and prop.total_propuesto > 0:
        await transicion_propuesta(session, prop, d.EstadoPropuesta.GENERADA, actor)
    else:
        await session.execute(
            update(Propuesta)
            .where(Propuesta.id == prop.id)
            .values(version=Propuesta.version + 1)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(prop)
    return prop


async def recoger_linea(
    session: AsyncSession, propuesta_id: uuid.UUID, linea_id: uuid.UUID, actor: Actor
) -> LoteAsignado:
    """Picking: RESERVADA → RECOGIDA (still reserved, HO-D04, HO-L06)."""
    d.exigir(actor.roles, d.Accion.RECOGER)
    prop = await get_propuesta(session, propuesta_id)
    if prop.estado not in (d.EstadoPropuesta.REVISADA, d.EstadoPropuesta.EN_SURTIMIENTO):
        raise d.Conflict(
            "ESTADO_INVALIDO",
            "Solo se recoge en propuestas REVISADA o EN_SURTIMIENTO.",
            estado_actual=prop.estado,
        )
    linea = await session.get(LoteAsignado, linea_id)
    ip = await session.get(PropuestaItem, linea.propuesta_item_id) if linea else None
    if linea is None or ip is None or ip.propuesta_id != prop.id:
        raise d.NotFound("LINEA_NO_ENCONTRADA", f"No existe la línea {linea_id}.")
    res = await session.execute(
        update(LoteAsignado)
        .where(LoteAsignado.id == linea_id, LoteAsignado.estado_linea == "RESERVADA")
        .values(estado_linea="RECOGIDA", fecha_recogida=now(), usuario_recogida=actor.sub)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict("YA_RECOGIDA", "La línea ya fue recogida o no está reservada.")
    await session.refresh(linea)
    await audit(session, "linea", linea.id, "recoger", actor, antes="RESERVADA", despues="RECOGIDA")
    if prop.estado == d.EstadoPropuesta.REVISADA:
        await transicion_propuesta(session, prop, d.EstadoPropuesta.EN_SURTIMIENTO, actor)
    pendientes = [
        ln for ln, _ in await lineas_activas(session, prop.id) if ln.estado_linea == "RESERVADA"
    ]
    sol = await get_solicitud(session, prop.solicitud_id)
    if not pendientes and sol.estado == d.EstadoSolicitud.EN_PREPARACION:
        await transicion_solicitud(session, sol, d.EstadoSolicitud.PREPARADA, actor)
    return linea
