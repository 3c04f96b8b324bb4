"""Dispatch (§B.4.5 required): stock issued exactly once, kardex SALIDA rows,
`ProposalDispatched`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.orders import (
    AllocatedLot,
    DispatchedItem,
    ProposalDispatched,
)
from nexo_messaging.outbox import enqueue
from orders import domain as d
from orders.adapters.snapshots import snapshots_locked
from orders.application.clock import (
    now,
)
from orders.application.common import (
    Actor,
    OrdersConfig,
    get_propuesta,
    get_solicitud,
    lineas_activas,
    replanificar,
    transicion_propuesta,
    transicion_solicitud,
)
from orders.models import (
    Institucion,
    LoteUbicacion,
    MovimientoInventario,
    Propuesta,
    PropuestaItem,
    outbox,
)


@dataclass(frozen=True)
class ResultadoSurtido:
    """Outcome of a dispatch. `rechazo` set: nothing was issued, a lot had become ineligible and
    the proposal went back to GENERADA for re-planning — the caller commits that change, then
    answers the rejection (422 LOTE_NO_ELEGIBLE)."""

    propuesta: Propuesta
    rechazo: d.DomainError | None = None


async def surtir_propuesta(
    session: AsyncSession, propuesta_id: uuid.UUID, actor: Actor, config: OrdersConfig
) -> ResultadoSurtido:
    """Dispatch (§B.4.5 required): issue stock of every active line exactly once.

    A second dispatch → 409 YA_SURTIDA (the state claim is a conditional update, and the kardex
    has a unique SALIDA per (proposal, location)). A lot that became ineligible → the proposal
    returns to GENERADA and the outcome carries the 422 LOTE_NO_ELEGIBLE rejection; as in every
    use case, the caller commits.
    """
    d.exigir(actor.roles, d.Accion.SURTIR)
    prop = await get_propuesta(session, propuesta_id)
    d.verificar_estado_para_surtir(prop.estado)
    # Claim the proposal: a concurrent dispatch waits here (row lock) and then finds it
    # dispatched; on SQLite the writer lock serialises the same way.
    claimed = await session.execute(
        update(Propuesta)
        .where(Propuesta.id == prop.id, Propuesta.estado.in_(["REVISADA", "EN_SURTIMIENTO"]))
        .values(version=Propuesta.version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        await session.refresh(prop)
        d.verificar_estado_para_surtir(prop.estado)
        raise d.Conflict("CONFLICTO_CONCURRENTE", "La propuesta cambió; vuelva a consultarla.")
    await session.refresh(prop)
    lineas = await lineas_activas(session, prop.id)
    if any(ln.estado_linea == "RESERVADA" for ln, _ in lineas) and not d.puede(
        actor.roles, d.Accion.CONFIRMAR_SURTIDO_SIN_PICKING
    ):
        raise d.Forbidden(
            "CONFIRMACION_SUPERVISOR_REQUERIDA",
            "Hay líneas sin recoger: surtir sin picking electrónico requiere un Supervisor "
            "(DECIDE-B6).",
        )
    at = now()
    today = d.business_date(at)
    snaps = await snapshots_locked(session, [ln.lote_ubicacion_id for ln, _ in lineas])
    malos = d.lotes_no_elegibles_al_surtir(
        [
            d.LineaSurtido(snaps[ln.lote_ubicacion_id], ln.cantidad_asignada, ln.override_caducidad)
            for ln, _ in lineas
        ],
        today,
        config.min_shelf_life_days,
    )
    if malos:
        bad_lus = {
            ln.lote_ubicacion_id
            for ln, _ in lineas
            if snaps[ln.lote_ubicacion_id].numero_lote in malos
        }
        await replanificar(session, prop, bad_lus, actor, "Lote no elegible al surtir")
        return ResultadoSurtido(
            prop,
            d.DomainError(
                "LOTE_NO_ELEGIBLE",
                f"Lotes no elegibles para surtir: {', '.join(malos)}. La propuesta regresa a "
                "GENERADA para replanificar.",
                lotes=malos,
            ),
        )
    for ln, _ in lineas:
        d.verificar_existencia_fisica(snaps[ln.lote_ubicacion_id], ln.cantidad_asignada)
    sol = await get_solicitud(session, prop.solicitud_id)
    inst = await session.get(Institucion, sol.institucion_id)
    assert inst is not None
    lote_ids = sorted({snaps[ln.lote_ubicacion_id].lote_id for ln, _ in lineas})
    totales = (
        {
            r[0]: int(r[1])
            for r in (
                await session.execute(
                    select(LoteUbicacion.lote_id, func.sum(LoteUbicacion.cantidad))
                    .where(LoteUbicacion.lote_id.in_(lote_ids))
                    .group_by(LoteUbicacion.lote_id)
                )
            ).all()
        }
        if lote_ids
        else {}
    )
    movs = d.calcular_salidas(
        [
            (ln.lote_ubicacion_id, snaps[ln.lote_ubicacion_id].lote_id, ln.cantidad_asignada)
            for ln, _ in lineas
        ],
        totales,
    )
    folio_pedido = d.folio_pedido_kardex(sol.folio_pedido, sol.folio)
    motivo = d.motivo_salida(folio_pedido, inst.clue, inst.denominacion)
    for m in movs:
        res = await session.execute(
            update(LoteUbicacion)
            .where(
                LoteUbicacion.id == m.lote_ubicacion_id,
                LoteUbicacion.cantidad >= m.cantidad,
                LoteUbicacion.cantidad_reservada >= m.cantidad,
            )
            .values(
                cantidad=LoteUbicacion.cantidad - m.cantidad,
                cantidad_reservada=LoteUbicacion.cantidad_reservada - m.cantidad,
                fecha_actualizacion=at,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) != 1:
            raise d.Conflict(
                "STOCK_INSUFICIENTE",
                "Existencia insuficiente al surtir.",
                id_lote_ubicacion=m.lote_ubicacion_id,
            )
        session.add(
            MovimientoInventario(
                lote_id=m.lote_id,
                lote_ubicacion_id=m.lote_ubicacion_id,
                propuesta_id=prop.id,
                tipo_movimiento="SALIDA",
                cantidad=m.cantidad,
                cantidad_anterior=m.cantidad_anterior,
                cantidad_nueva=m.cantidad_nueva,
                motivo=motivo,
                documento_referencia=sol.folio,
                pedido=folio_pedido,
                folio=folio_pedido,
                institucion_destino_id=sol.institucion_id,
                usuario=actor.sub,
                fecha_movimiento=at,
            )
        )
    surtido_por_item: dict[uuid.UUID, int] = defaultdict(int)
    lotes_evento: dict[uuid.UUID, list[AllocatedLot]] = defaultdict(list)
    for ln, ip in lineas:
        ln.estado_linea = d.EstadoLinea.SURTIDA.value
        ln.fecha_surtimiento = at
        surtido_por_item[ip.id] += ln.cantidad_asignada
        s = snaps[ln.lote_ubicacion_id]
        assert s.fecha_caducidad is not None
        lotes_evento[ip.id].append(
            AllocatedLot(
                id_lote_asignado=ln.id,
                id_lote=s.lote_id,
                numero_lote=s.numero_lote,
                fecha_caducidad=s.fecha_caducidad,
                id_lote_ubicacion=s.lote_ubicacion_id,
                ubicacion=s.ubicacion_codigo,
                cantidad=ln.cantidad_asignada,
            )
        )
    items = list(
        (
            await session.execute(
                select(PropuestaItem)
                .where(PropuestaItem.propuesta_id == prop.id)
                .order_by(PropuestaItem.producto_id)
            )
        ).scalars()
    )
    for ip in items:
        ip.cantidad_surtida = surtido_por_item.get(ip.id, 0)
        ip.estado = d.estado_item_surtido(
            ip.cantidad_surtida, ip.cantidad_propuesta, ip.estado
        ).value
        ip.cantidad_pendiente = ip.cantidad_aprobada - ip.cantidad_surtida
    try:
        await session.flush()
    except IntegrityError as exc:  # unique SALIDA per (proposal, location): already issued
        raise d.Conflict("YA_SURTIDA", "La propuesta ya fue surtida.") from exc
    total_surtido = sum(ip.cantidad_surtida for ip in items)
    nuevo = d.estado_propuesta_surtida(total_surtido, prop.total_solicitado)
    await transicion_propuesta(
        session,
        prop,
        nuevo,
        actor,
        desde=["REVISADA", "EN_SURTIMIENTO"],
        valores={"fecha_surtimiento": at, "usuario_surtimiento": actor.sub},
    )
    await transicion_solicitud(session, sol, d.EstadoSolicitud.ENTREGADA, actor)
    await enqueue(
        session,
        outbox,
        ProposalDispatched(
            id_propuesta=prop.id,
            id_solicitud=sol.id,
            folio=sol.folio,
            estado_propuesta="SURTIDA" if nuevo == d.EstadoPropuesta.SURTIDA else "PARCIAL",
            estado_solicitud="ENTREGADA",
            items=[
                DispatchedItem(
                    id_item=ip.solicitud_item_id,
                    id_producto=ip.producto_id,
                    cantidad_aprobada=ip.cantidad_aprobada,
                    cantidad_surtida=ip.cantidad_surtida,
                    cantidad_pendiente=ip.cantidad_pendiente,
                    lotes=lotes_evento.get(ip.id, []),
                )
                for ip in items
            ],
            dispatched_by=actor.sub,
            dispatched_at=at,
        ),
    )
    return ResultadoSurtido(prop)
