"""What every use case shares: configuration, the acting user, the audit trail, conditional
state transitions (``… WHERE estado = <current>``: two concurrent callers can never both win),
single-row reservations and the reads of requests, proposals and their active lines.

Each use case runs inside ONE transaction of the caller's session: domain check, rows, audit and
`enqueue(...)` of its events. The caller commits (the API route, or the consumer runner).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.snapshots import snapshots_locked
from orders.application.clock import (
    now,
)
from orders.models import (
    HistorialEstado,
    LoteAsignado,
    LoteUbicacion,
    Propuesta,
    PropuestaItem,
    Solicitud,
    SolicitudItem,
)


@dataclass(frozen=True)
class OrdersConfig:
    min_shelf_life_days: int = d.DEFAULT_MIN_SHELF_LIFE_DAYS
    natural_sort: bool = False
    fecha_limite_atrasados: date | None = None


def config_from_settings(settings: Any) -> OrdersConfig:
    return OrdersConfig(
        min_shelf_life_days=int(
            getattr(settings, "min_shelf_life_days", d.DEFAULT_MIN_SHELF_LIFE_DAYS)
        ),
        natural_sort=bool(getattr(settings, "fefo_natural_sort", False)),
        fecha_limite_atrasados=getattr(settings, "fecha_limite_atrasados", None),
    )


DEFAULT_CONFIG = OrdersConfig()


@dataclass(frozen=True)
class Actor:
    sub: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def system(cls) -> Actor:
        return cls("system", frozenset({d.ROLE_ADMIN}))


async def audit(
    session: AsyncSession,
    entidad: str,
    entidad_id: Any,
    accion: str,
    actor: Actor,
    *,
    antes: str | None = None,
    despues: str | None = None,
    motivo: str | None = None,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        HistorialEstado(
            entidad=entidad,
            entidad_id=str(entidad_id),
            accion=accion,
            estado_anterior=antes,
            estado_nuevo=despues,
            usuario=actor.sub,
            motivo=motivo,
            payload=payload or {},
            fecha=at or now(),
        )
    )


async def transicion_solicitud(
    session: AsyncSession,
    sol: Solicitud,
    nuevo: d.EstadoSolicitud,
    actor: Actor,
    *,
    motivo: str | None = None,
    valores: dict[str, Any] | None = None,
    version: int | None = None,
) -> None:
    """Conditional update on the current state (and version); 409 if someone else won."""
    antes = sol.estado
    d.transicion_solicitud(antes, nuevo)
    conds = [Solicitud.id == sol.id, Solicitud.estado == antes]
    if version is not None:
        conds.append(Solicitud.version == version)
    res = await session.execute(
        update(Solicitud)
        .where(*conds)
        .values(estado=nuevo.value, version=Solicitud.version + 1, **(valores or {}))
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict(
            "CONFLICTO_CONCURRENTE",
            "La solicitud cambió mientras se procesaba; vuelva a consultarla.",
        )
    await session.refresh(sol)
    await audit(
        session,
        "solicitud",
        sol.id,
        nuevo.value.lower(),
        actor,
        antes=antes,
        despues=nuevo.value,
        motivo=motivo,
    )


async def transicion_propuesta(
    session: AsyncSession,
    prop: Propuesta,
    nuevo: d.EstadoPropuesta,
    actor: Actor,
    *,
    motivo: str | None = None,
    valores: dict[str, Any] | None = None,
    desde: Iterable[str] | None = None,
) -> None:
    antes = prop.estado
    d.transicion_propuesta(antes, nuevo)
    allowed = list(desde) if desde is not None else [antes]
    res = await session.execute(
        update(Propuesta)
        .where(Propuesta.id == prop.id, Propuesta.estado.in_(allowed))
        .values(estado=nuevo.value, version=Propuesta.version + 1, **(valores or {}))
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        await session.refresh(prop)
        if prop.estado in d.PROPUESTA_DESPACHADA:
            raise d.Conflict("YA_SURTIDA", "La propuesta ya fue surtida.")
        raise d.Conflict(
            "CONFLICTO_CONCURRENTE",
            "La propuesta cambió mientras se procesaba; vuelva a consultarla.",
        )
    await session.refresh(prop)
    await audit(
        session,
        "propuesta",
        prop.id,
        nuevo.value.lower(),
        actor,
        antes=antes,
        despues=nuevo.value,
        motivo=motivo,
    )


async def get_solicitud(session: AsyncSession, solicitud_id: uuid.UUID) -> Solicitud:
    sol = await session.get(Solicitud, solicitud_id)
    if sol is None:
        raise d.NotFound("SOLICITUD_NO_ENCONTRADA", f"No existe la solicitud {solicitud_id}.")
    return sol


async def get_propuesta(session: AsyncSession, propuesta_id: uuid.UUID) -> Propuesta:
    prop = await session.get(Propuesta, propuesta_id)
    if prop is None:
        raise d.NotFound("PROPUESTA_NO_ENCONTRADA", f"No existe la propuesta {propuesta_id}.")
    return prop


async def propuesta_activa(session: AsyncSession, solicitud_id: uuid.UUID) -> Propuesta | None:
    return (
        await session.execute(
            select(Propuesta).where(
                Propuesta.solicitud_id == solicitud_id, Propuesta.estado != "CANCELADA"
            )
        )
    ).scalar_one_or_none()


async def reservar(session: AsyncSession, lu_id: int, cantidad: int) -> None:
    """Atomically add a reservation; fails (409) if it would exceed physical stock."""
    if cantidad == 0:
        return
    if cantidad > 0:
        cond = LoteUbicacion.cantidad - LoteUbicacion.cantidad_reservada >= cantidad
    else:
        cond = LoteUbicacion.cantidad_reservada >= -cantidad
    res = await session.execute(
        update(LoteUbicacion)
        .where(LoteUbicacion.id == lu_id, cond)
        .values(cantidad_reservada=LoteUbicacion.cantidad_reservada + cantidad)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict(
            "STOCK_INSUFICIENTE",
            f"No hay existencia libre suficiente en la ubicación {lu_id} para reservar {cantidad}.",
            id_lote_ubicacion=lu_id,
            solicitado=cantidad,
        )


async def recalcular_totales(session: AsyncSession, prop: Propuesta) -> None:
    """The proposal's totals as Σ of its items (after an item's lines changed)."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(PropuestaItem.cantidad_disponible), 0),
                func.coalesce(func.sum(PropuestaItem.cantidad_propuesta), 0),
            ).where(PropuestaItem.propuesta_id == prop.id)
        )
    ).one()
    prop.total_disponible = int(row[0])
    prop.total_propuesto = int(row[1])
    await session.flush()


async def items_de(session: AsyncSession, solicitud_id: uuid.UUID) -> list[SolicitudItem]:
    return list(
        (
            await session.execute(
                select(SolicitudItem)
                .where(SolicitudItem.solicitud_id == solicitud_id)
                .order_by(SolicitudItem.producto_id)
            )
        ).scalars()
    )


async def lineas_activas(
    session: AsyncSession, propuesta_id: uuid.UUID
) -> list[tuple[LoteAsignado, PropuestaItem]]:
    rows = (
        await session.execute(
            select(LoteAsignado, PropuestaItem)
            .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
            .where(
                PropuestaItem.propuesta_id == propuesta_id,
                LoteAsignado.estado_linea.in_([e.value for e in d.ACTIVE_LINE_STATES]),
            )
            .order_by(LoteAsignado.lote_ubicacion_id)
        )
    ).all()
    return [(r[0], r[1]) for r in rows]


async def liberar_lineas(session: AsyncSession, prop: Propuesta, actor: Actor) -> int:
    """Release every active reservation of the proposal (lines → LIBERADA). No kardex."""
    lineas = await lineas_activas(session, prop.id)
    await snapshots_locked(session, [ln.lote_ubicacion_id for ln, _ in lineas])
    for ln, _ in lineas:
        await reservar(session, ln.lote_ubicacion_id, -ln.cantidad_asignada)
        ln.estado_linea = d.EstadoLinea.LIBERADA.value
    await session.flush()
    if lineas:
        await audit(
            session,
            "reserva",
            prop.id,
            "liberar",
            actor,
            payload={
                "lineas": [
                    {"lote_ubicacion": ln.lote_ubicacion_id, "cantidad": ln.cantidad_asignada}
                    for ln, _ in lineas
                ]
            },
        )
    return len(lineas)


async def replanificar(
    session: AsyncSession, prop: Propuesta, lu_ids: set[int], actor: Actor, motivo: str
) -> None:
    """[DECIDE-B8]: flag lines on ineligible lots, proposal → GENERADA, request → VALIDADA."""
    at = now()
    for ln, _ in await lineas_activas(session, prop.id):
        if ln.lote_ubicacion_id in lu_ids and ln.no_elegible_desde is None:
            ln.no_elegible_desde = at
    await session.flush()
    if prop.estado in (d.EstadoPropuesta.REVISADA, d.EstadoPropuesta.EN_SURTIMIENTO):
        await transicion_propuesta(
            session,
            prop,
            d.EstadoPropuesta.GENERADA,
            actor,
            motivo=motivo,
            valores={"requiere_replanificacion": True},
        )
    elif not prop.requiere_replanificacion:
        prop.requiere_replanificacion = True
        await session.flush()
    sol = await get_solicitud(session, prop.solicitud_id)
    if sol.estado in (d.EstadoSolicitud.EN_PREPARACION, d.EstadoSolicitud.PREPARADA):
        await transicion_solicitud(session, sol, d.EstadoSolicitud.VALIDADA, actor, motivo=motivo)
