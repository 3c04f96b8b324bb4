"""Use cases of requests (solicitudes): capture, edit, validation (publishes RequestValidated),
a proposal that could not be generated (PROPUESTA_FALLIDA, retried), rejection and
cancellation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.orders import (
    RequestRejected,
    RequestValidated,
    ValidatedItem,
)
from nexo_messaging.outbox import enqueue
from orders import domain as d
from orders.application import clock
from orders.application.clock import (
    now,
)
from orders.application.common import (
    Actor,
    OrdersConfig,
    audit,
    get_solicitud,
    items_de,
    liberar_lineas,
    propuesta_activa,
    transicion_propuesta,
    transicion_solicitud,
)
from orders.models import (
    Almacen,
    Institucion,
    Producto,
    Solicitud,
    SolicitudItem,
    outbox,
)


@dataclass
class NuevaSolicitud:
    institucion_id: int
    almacen_destino_id: int
    fecha_entrega_programada: date
    items: list[d.ItemCaptura]
    folio_pedido: str | None = None
    observaciones: str = ""


@dataclass
class Creada:
    solicitud: Solicitud
    advertencias: list[str] = field(default_factory=list)


async def _check_header(
    session: AsyncSession,
    institucion_id: int,
    almacen_id: int,
    fecha: date,
    config: OrdersConfig,
) -> None:
    inst = await session.get(Institucion, institucion_id)
    if inst is None:
        raise d.DomainError(
            "INSTITUCION_DESCONOCIDA",
            f"No existe la institución {institucion_id}.",
            field="id_institucion",
        )
    if not inst.activo:
        raise d.DomainError(
            "INSTITUCION_INACTIVA",
            f"La institución {inst.clue} está inactiva.",
            field="id_institucion",
        )
    alm = await session.get(Almacen, almacen_id)
    if alm is None:
        raise d.DomainError(
            "ALMACEN_DESCONOCIDO", f"No existe el almacén {almacen_id}.", field="id_almacen_destino"
        )
    if not alm.activo:
        raise d.DomainError(
            "ALMACEN_INACTIVO",
            f"El almacén {alm.codigo} está inactivo.",
            field="id_almacen_destino",
        )
    lo, hi = d.rango_fecha_entrega(
        d.business_date(now()), atrasados_hasta=config.fecha_limite_atrasados
    )
    if not lo <= fecha <= hi:
        raise d.DomainError(
            "FECHA_ENTREGA_FUERA_DE_RANGO",
            f"fecha_entrega_programada debe estar entre {lo} y {hi}.",
            field="fecha_entrega_programada",
            minimo=lo.isoformat(),
            maximo=hi.isoformat(),
        )


async def _check_productos(session: AsyncSession, items: Sequence[d.ItemCaptura]) -> None:
    d.validar_items_captura(items)
    ids = [i.producto_id for i in items]
    rows = await session.execute(select(Producto.id, Producto.activo).where(Producto.id.in_(ids)))
    found: dict[int, bool] = {row[0]: row[1] for row in rows}
    for idx, item in enumerate(items):
        if item.producto_id not in found:
            raise d.DomainError(
                "PRODUCTO_DESCONOCIDO",
                f"No existe el producto {item.producto_id}.",
                field=f"items.{idx}.id_producto",
            )
        if not found[item.producto_id]:
            raise d.DomainError(
                "PRODUCTO_INACTIVO",
                f"El producto {item.producto_id} está dado de baja.",
                field=f"items.{idx}.id_producto",
            )


async def _check_folio_pedido(
    session: AsyncSession, clave: str | None, actor: Actor, excluir: uuid.UUID | None = None
) -> tuple[bool, list[str]]:
    """(duplicado_autorizado, warnings); 422 FOLIO_DUPLICADO on an active duplicate."""
    if clave is None:
        return False, []
    q = select(Solicitud.estado).where(Solicitud.folio_pedido_clave == clave)
    if excluir is not None:
        q = q.where(Solicitud.id != excluir)
    estados = list((await session.execute(q)).scalars())
    activos = [e for e in estados if e != "CANCELADA"]
    if activos:
        if d.ADMINISTRADOR_LOCAL in actor.roles or d.ROLE_ADMIN in actor.roles:
            return True, [f"El folio de pedido {clave} ya existe en otra solicitud activa."]
        raise d.DomainError(
            "FOLIO_DUPLICADO",
            f"El folio de pedido {clave} ya existe en una solicitud no cancelada.",
            field="folio_pedido",
        )
    if estados:
        return False, [f"El folio de pedido {clave} existe en una solicitud CANCELADA."]
    return False, []


async def crear_solicitud(
    session: AsyncSession, datos: NuevaSolicitud, actor: Actor, config: OrdersConfig
) -> Creada:
    d.exigir(actor.roles, d.Accion.CREAR_SOLICITUD)
    await _check_header(
        session,
        datos.institucion_id,
        datos.almacen_destino_id,
        datos.fecha_entrega_programada,
        config,
    )
    await _check_productos(session, datos.items)
    clave = d.clave_folio_pedido(datos.folio_pedido)
    autorizado, avisos = await _check_folio_pedido(session, clave, actor)
    at = now()
    last_error: IntegrityError | None = None
    for _ in range(3):  # retry the random part on a folio collision (§B.4.6)
        folio = d.generar_folio(at, clock.folio_token)
        if (
            await session.execute(select(Solicitud.id).where(Solicitud.folio == folio))
        ).first() is not None:
            continue
        sol = Solicitud(
            id=uuid.uuid4(),
            folio=folio,
            folio_pedido=(datos.folio_pedido or "").strip() or None,
            folio_pedido_clave=clave,
            duplicado_autorizado=autorizado,
            institucion_id=datos.institucion_id,
            almacen_destino_id=datos.almacen_destino_id,
            usuario_solicitante=actor.sub,
            fecha_solicitud=at,
            fecha_entrega_programada=datos.fecha_entrega_programada,
            estado=d.EstadoSolicitud.PENDIENTE.value,
            observaciones=datos.observaciones,
            version=1,
        )
        try:
            async with session.begin_nested():
                session.add(sol)
                await session.flush()
        except IntegrityError as exc:
            last_error = exc
            if "folio_pedido" in str(exc.orig).lower():
                raise d.DomainError(
                    "FOLIO_DUPLICADO",
                    f"El folio de pedido {clave} ya existe en una solicitud no cancelada.",
                    field="folio_pedido",
                ) from exc
            continue
        for item in datos.items:
            session.add(
                SolicitudItem(
                    solicitud_id=sol.id,
                    producto_id=item.producto_id,
                    cantidad_solicitada=item.cantidad_solicitada,
                )
            )
        await session.flush()
        await audit(
            session,
            "solicitud",
            sol.id,
            "crear",
            actor,
            despues="PENDIENTE",
            payload={"folio": folio, "items": len(datos.items)},
        )
        return Creada(sol, avisos)
    raise d.Conflict(
        "FOLIO_COLISION", "No se pudo generar un folio único tras 3 intentos."
    ) from last_error


async def editar_solicitud(
    session: AsyncSession,
    solicitud_id: uuid.UUID,
    datos: NuevaSolicitud,
    actor: Actor,
    config: OrdersConfig,
    *,
    version: int | None = None,
) -> Creada:
    """Replace header and items of a PENDIENTE request (optimistic `version` check)."""
    d.exigir(actor.roles, d.Accion.EDITAR_SOLICITUD)
    sol = await get_solicitud(session, solicitud_id)
    d.puede_editar_solicitud(actor.roles, es_propietario=sol.usuario_solicitante == actor.sub)
    if sol.estado != d.EstadoSolicitud.PENDIENTE:
        raise d.Conflict(
            "ESTADO_INVALIDO", "Solo se edita una solicitud PENDIENTE.", estado_actual=sol.estado
        )
    if version is not None and sol.version != version:
        raise d.Conflict(
            "VERSION_CONFLICTO",
            "La solicitud fue modificada por otra persona.",
            version_actual=sol.version,
        )
    await _check_header(
        session,
        datos.institucion_id,
        datos.almacen_destino_id,
        datos.fecha_entrega_programada,
        config,
    )
    await _check_productos(session, datos.items)
    clave = d.clave_folio_pedido(datos.folio_pedido)
    autorizado, avisos = await _check_folio_pedido(session, clave, actor, excluir=sol.id)
    res = await session.execute(
        update(Solicitud)
        .where(
            Solicitud.id == sol.id,
            Solicitud.version == sol.version,
            Solicitud.estado == "PENDIENTE",
        )
        .values(
            institucion_id=datos.institucion_id,
            almacen_destino_id=datos.almacen_destino_id,
            fecha_entrega_programada=datos.fecha_entrega_programada,
            folio_pedido=(datos.folio_pedido or "").strip() or None,
            folio_pedido_clave=clave,
            duplicado_autorizado=autorizado,
            observaciones=datos.observaciones,
            version=Solicitud.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        raise d.Conflict("VERSION_CONFLICTO", "La solicitud fue modificada por otra persona.")
    existentes = {i.producto_id: i for i in await items_de(session, sol.id)}
    nuevos = {i.producto_id: i for i in datos.items}
    for pid, item in existentes.items():
        if pid not in nuevos:
            await session.delete(item)
        else:
            item.cantidad_solicitada = nuevos[pid].cantidad_solicitada
            item.cantidad_aprobada = None
    await session.flush()
    for pid, nuevo in nuevos.items():
        if pid not in existentes:
            session.add(
                SolicitudItem(
                    solicitud_id=sol.id,
                    producto_id=pid,
                    cantidad_solicitada=nuevo.cantidad_solicitada,
                )
            )
    await session.flush()
    await session.refresh(sol)
    await audit(
        session,
        "solicitud",
        sol.id,
        "editar",
        actor,
        antes="PENDIENTE",
        despues="PENDIENTE",
        payload={"items": len(datos.items)},
    )
    return Creada(sol, avisos)


async def validar_solicitud(
    session: AsyncSession,
    solicitud_id: uuid.UUID,
    aprobaciones: Mapping[uuid.UUID, d.Aprobacion],
    actor: Actor,
    *,
    observaciones: str = "",
    version: int | None = None,
) -> Solicitud:
    """PENDIENTE → VALIDADA (publishes RequestValidated) or, with all zero, → RECHAZADA.

    Proposal generation is asynchronous (consumer of RequestValidated, issue #6).
    """
    d.exigir(actor.roles, d.Accion.VALIDAR)
    sol = await get_solicitud(session, solicitud_id)
    if sol.estado != d.EstadoSolicitud.PENDIENTE:
        raise d.Conflict(
            "ESTADO_INVALIDO", "Solo se valida una solicitud PENDIENTE.", estado_actual=sol.estado
        )
    items = await items_de(session, sol.id)
    resultado = d.validar_aprobaciones(
        {i.id: i.cantidad_solicitada for i in items}, dict(aprobaciones)
    )
    for item in items:
        ap = resultado.aprobadas[item.id]
        item.cantidad_aprobada = ap.cantidad_aprobada
        item.justificacion_codigo = ap.justificacion_codigo
        item.justificacion = (ap.justificacion or "").strip()[:255] or None
    at = now()
    motivo = observaciones.strip() or "; ".join(
        f"{ap.justificacion_codigo}: {ap.justificacion}"
        for ap in resultado.aprobadas.values()
        if ap.justificacion
    )
    await session.flush()
    await transicion_solicitud(
        session,
        sol,
        resultado.estado,
        actor,
        motivo=motivo or None,
        version=version,
        valores={
            "usuario_validacion": actor.sub,
            "fecha_validacion": at,
            "observaciones_validacion": motivo,
        },
    )
    if resultado.estado == d.EstadoSolicitud.RECHAZADA:
        codigos = {ap.justificacion_codigo for ap in resultado.aprobadas.values()}
        codigo = codigos.pop() if len(codigos) == 1 else None
        await _publicar_rechazo(session, sol, codigo or d.RECHAZO_SIN_CANTIDAD, motivo, actor, at)
    if resultado.estado == d.EstadoSolicitud.VALIDADA:
        await _publicar_validada(session, sol, items, actor, at)
    return sol


async def _publicar_validada(
    session: AsyncSession,
    sol: Solicitud,
    items: Sequence[SolicitudItem],
    actor: Actor,
    at: datetime,
) -> None:
    """`RequestValidated`: the proposal consumer generates the FEFO proposal from it."""
    prods = {
        p.id: p.clave_cnis
        for p in (
            await session.execute(
                select(Producto).where(Producto.id.in_([i.producto_id for i in items]))
            )
        ).scalars()
    }
    await enqueue(
        session,
        outbox,
        RequestValidated(
            id_solicitud=sol.id,
            folio=sol.folio,
            folio_pedido=sol.folio_pedido,
            id_institucion=sol.institucion_id,
            id_almacen_destino=sol.almacen_destino_id,
            fecha_entrega_programada=sol.fecha_entrega_programada,
            items=[
                ValidatedItem(
                    id_item=i.id,
                    id_producto=i.producto_id,
                    clave_cnis=prods[i.producto_id],
                    cantidad_solicitada=i.cantidad_solicitada,
                    cantidad_aprobada=i.cantidad_aprobada or 0,
                )
                for i in items
            ],
            validated_by=actor.sub,
            validated_at=at,
        ),
    )


async def registrar_fallo_propuesta(
    session: AsyncSession, solicitud_id: uuid.UUID, codigo: str, motivo: str, actor: Actor
) -> Solicitud | None:
    """VALIDADA → PROPUESTA_FALLIDA with the reason, when its proposal cannot be generated (a
    permanent error, or the consumer's retries exhausted). No effect (None) if the request is
    gone, no longer VALIDADA or already has its proposal (a stale or replayed event)."""
    sol = (
        await session.execute(
            select(Solicitud).where(Solicitud.id == solicitud_id).with_for_update()
        )
    ).scalar_one_or_none()
    if sol is None or sol.estado != d.EstadoSolicitud.VALIDADA:
        return None
    if await propuesta_activa(session, sol.id) is not None:
        return None
    codigo, motivo = codigo[:40], motivo[:2000]
    await transicion_solicitud(
        session,
        sol,
        d.EstadoSolicitud.PROPUESTA_FALLIDA,
        actor,
        motivo=f"{codigo}: {motivo}",
        valores={
            "fallo_propuesta_codigo": codigo,
            "fallo_propuesta": motivo,
            "fecha_fallo_propuesta": now(),
        },
    )
    return sol


async def reintentar_propuesta(
    session: AsyncSession, solicitud_id: uuid.UUID, actor: Actor
) -> Solicitud:
    """PROPUESTA_FALLIDA → VALIDADA and `RequestValidated` again: the consumer generates the
    proposal anew (the failure's reason stays in the audit trail)."""
    d.exigir(actor.roles, d.Accion.REINTENTAR_PROPUESTA)
    sol = await get_solicitud(session, solicitud_id)
    if sol.estado != d.EstadoSolicitud.PROPUESTA_FALLIDA:
        raise d.Conflict(
            "ESTADO_INVALIDO",
            "Solo se reintenta la propuesta de una solicitud PROPUESTA_FALLIDA.",
            estado_actual=sol.estado,
        )
    await transicion_solicitud(
        session,
        sol,
        d.EstadoSolicitud.VALIDADA,
        actor,
        motivo=sol.fallo_propuesta_codigo,
        valores={
            "fallo_propuesta_codigo": None,
            "fallo_propuesta": None,
            "fecha_fallo_propuesta": None,
        },
    )
    await _publicar_validada(session, sol, await items_de(session, sol.id), actor, now())
    return sol


async def rechazar_solicitud(
    session: AsyncSession, solicitud_id: uuid.UUID, motivo: str, actor: Actor
) -> Solicitud:
    d.exigir(actor.roles, d.Accion.RECHAZAR)
    if not motivo.strip():
        raise d.DomainError("MOTIVO_REQUERIDO", "El rechazo requiere un motivo.", field="motivo")
    sol = await get_solicitud(session, solicitud_id)
    for item in await items_de(session, sol.id):
        item.cantidad_aprobada = 0
    await session.flush()
    at = now()
    await transicion_solicitud(
        session,
        sol,
        d.EstadoSolicitud.RECHAZADA,
        actor,
        motivo=motivo,
        valores={
            "usuario_validacion": actor.sub,
            "fecha_validacion": at,
            "observaciones_validacion": motivo,
        },
    )
    await _publicar_rechazo(session, sol, d.RECHAZO_VALIDADOR, motivo, actor, at)
    return sol


async def _publicar_rechazo(
    session: AsyncSession, sol: Solicitud, codigo: str, motivo: str, actor: Actor, at: datetime
) -> None:
    """RequestRejected for the requester's side, in the rejection's transaction (outbox)."""
    await enqueue(
        session,
        outbox,
        RequestRejected(
            id_solicitud=sol.id,
            folio=sol.folio,
            folio_pedido=sol.folio_pedido,
            id_institucion=sol.institucion_id,
            motivo_codigo=codigo,
            motivo=motivo,
            rejected_by=actor.sub,
            rejected_at=at,
        ),
    )


async def cancelar_solicitud(
    session: AsyncSession, solicitud_id: uuid.UUID, actor: Actor, motivo: str | None = None
) -> Solicitud:
    sol = await get_solicitud(session, solicitud_id)
    d.puede_cancelar_solicitud(
        sol.estado, actor.roles, es_propietario=sol.usuario_solicitante == actor.sub
    )
    prop = await propuesta_activa(session, sol.id)
    if prop is not None:
        if prop.estado in d.PROPUESTA_DESPACHADA:
            raise d.Conflict("YA_SURTIDA", "La solicitud ya fue surtida.")
        await liberar_lineas(session, prop, actor)
        await transicion_propuesta(
            session,
            prop,
            d.EstadoPropuesta.CANCELADA,
            actor,
            motivo=motivo or "Solicitud cancelada",
            valores={"fecha_cancelacion": now(), "motivo_cancelacion": motivo},
        )
    await transicion_solicitud(session, sol, d.EstadoSolicitud.CANCELADA, actor, motivo=motivo)
    return sol
