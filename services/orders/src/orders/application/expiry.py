"""The nightly expiry job (§B.1, §B.4.3, [DECIDE-B8])."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.snapshots import snap_query, to_snap
from orders.application.clock import (
    now,
)
from orders.application.common import (
    Actor,
    audit,
    get_propuesta,
    replanificar,
)
from orders.models import (
    Lote,
    LoteAsignado,
    LoteUbicacion,
    PropuestaItem,
)


@dataclass
class ResultadoJob:
    lotes_caducados: list[str]
    lineas_marcadas: int
    propuestas_replanificar: list[str]


async def job_caducidad(session: AsyncSession, actor: Actor | None = None) -> ResultadoJob:
    """Nightly job (§B.1, §B.4.3, [DECIDE-B8]): lots past caducidad → estado 6 (CADUCADO);
    reservations on lots that became ineligible are flagged and their proposals return to
    GENERADA for re-planning."""
    actor = actor or Actor.system()
    at = now()
    today = d.business_date(at)
    vencidos = list(
        (
            await session.execute(
                select(Lote)
                .where(Lote.estado == d.LOTE_DISPONIBLE, Lote.fecha_caducidad < today)
                .order_by(Lote.id)
            )
        ).scalars()
    )
    for lote in vencidos:
        lote.estado = d.LOTE_CADUCADO
        lote.motivo_cambio_estado = "Caducado (job nocturno)"
        lote.fecha_cambio_estado = at
        lote.usuario_cambio_estado = actor.sub
        await audit(session, "lote", lote.id, "caducar", actor, antes="1", despues="6")
    await session.flush()
    rows = (
        await session.execute(
            snap_query()
            .add_columns(LoteAsignado.id, PropuestaItem.propuesta_id)
            .join(LoteAsignado, LoteAsignado.lote_ubicacion_id == LoteUbicacion.id)
            .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
            .where(
                LoteAsignado.estado_linea.in_(["RESERVADA", "RECOGIDA"]),
                LoteAsignado.no_elegible_desde.is_(None),
            )
        )
    ).all()
    por_prop: dict[uuid.UUID, set[int]] = defaultdict(set)
    for r in rows:
        if d.reserva_no_elegible(to_snap(r), today):
            por_prop[r[14]].add(r[0])
    marcadas = 0
    for pid, lus in sorted(por_prop.items(), key=lambda kv: str(kv[0])):
        prop = await get_propuesta(session, pid)
        marcadas += len(lus)
        await replanificar(session, prop, lus, actor, "Lote no elegible (job de caducidad)")
    return ResultadoJob([lt.numero_lote for lt in vencidos], marcadas, [str(p) for p in por_prop])
