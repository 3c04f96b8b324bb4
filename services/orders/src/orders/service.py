"""Use cases of the orders service. Each runs inside ONE transaction of the caller's session:
domain check, rows, audit and `enqueue(...)` of its events. The caller commits (the API route,
or the consumer runner for handlers).

Concurrency (DOMAIN §0.3-5): stock rows (`lote_ubicaciones`) are locked with
``SELECT … FOR UPDATE`` in ascending id order before availability is computed, and every
reservation or stock change is a conditional atomic UPDATE whose row count is checked; a CHECK
constraint (``0 ≤ cantidad_reservada ≤ cantidad``) backs it. State transitions are conditional
updates on the current state (``… WHERE estado IN (…)``), so two concurrent callers can never
both win (a retried dispatch → 409 ``YA_SURTIDA``).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.orders import (
    AllocatedLot,
    DispatchedItem,
    ProposalDispatched,
    ProposalGenerated,
    RequestValidated,
    ValidatedItem,
)
from nexo_messaging.outbox import enqueue
from orders import domain as d
from orders.adapters.snapshots import candidatos_todos, snap_query, snapshots_locked, to_snap
from orders.adapters.store import LecturaFefo, StockStore
from orders.models import (
    Almacen,
    HistorialEstado,
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
    outbox,
)

# ------------------------------------------------------------------------------ configuration


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


def _utcnow() -> datetime:
    return datetime.now(UTC)


now_fn: Callable[[], datetime] = _utcnow
"""The clock (timezone-aware). Tests replace it to pin the business date."""


def now() -> datetime:
    return now_fn()


folio_token: Callable[[], str] | None = None
"""Random part of internal folios; None = secrets. Tests replace it to force collisions."""


@dataclass(frozen=True)
class Actor:
    sub: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def system(cls) -> Actor:
        return cls("system", frozenset({d.ROLE_ADMIN}))


# ------------------------------------------------------------------------------ helpers


async def _audit(
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


async def _transicion_solicitud(
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
    await _audit(
        session,
        "solicitud",
        sol.id,
        nuevo.value.lower(),
        actor,
        antes=antes,
        despues=nuevo.value,
        motivo=motivo,
    )


async def _transicion_propuesta(
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
    await _audit(
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


async def _reservar(session: AsyncSession, lu_id: int, cantidad: int) -> None:
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


# ------------------------------------------------------------------------------ catalogue


async def crear_institucion(
    session: AsyncSession, clue: str, denominacion: str, *, id: int | None = None
) -> Institucion:
    inst = Institucion(id=id, clue=clue, denominacion=denominacion)
    session.add(inst)
    await session.flush()
    return inst


async def crear_almacen(
    session: AsyncSession,
    institucion_id: int,
    nombre: str,
    codigo: str,
    *,
    es_central: bool = False,
    activo: bool = True,
    id: int | None = None,
) -> Almacen:
    alm = Almacen(
        id=id,
        institucion_id=institucion_id,
        nombre=nombre,
        codigo=codigo,
        es_central=es_central,
        activo=activo,
    )
    session.add(alm)
    await session.flush()
    return alm


async def crear_ubicacion(
    session: AsyncSession,
    almacen_id: int,
    codigo: str,
    *,
    estado: str = "disponible",
    activo: bool = True,
) -> Ubicacion:
    if estado not in d.UBICACION_ESTADOS:
        raise d.DomainError(
            "ESTADO_UBICACION_INVALIDO", f"Estado {estado!r} no válido.", field="estado"
        )
    ub = Ubicacion(almacen_id=almacen_id, codigo=codigo, estado=estado, activo=activo)
    session.add(ub)
    await session.flush()
    return ub


async def crear_producto(
    session: AsyncSession, clave_cnis: str, descripcion: str = "", *, id: int | None = None
) -> Producto:
    prod = Producto(id=id, clave_cnis=clave_cnis, descripcion=descripcion)
    session.add(prod)
    await session.flush()
    return prod


async def crear_lote(
    session: AsyncSession,
    *,
    producto_id: int,
    institucion_id: int,
    numero_lote: str,
    fecha_caducidad: date | None,
    ubicaciones: Mapping[int, int],
    estado: int = d.LOTE_DISPONIBLE,
    almacen_id: int | None = None,
    fecha_recepcion: date | None = None,
    actor: Actor | None = None,
) -> Lote:
    """A received lot with its stock per location (ubicacion_id → cantidad), plus ENTRADA
    kardex rows."""
    total = sum(ubicaciones.values())
    lote = Lote(
        producto_id=producto_id,
        institucion_id=institucion_id,
        numero_lote=numero_lote,
        fecha_caducidad=fecha_caducidad,
        estado=estado,
        almacen_id=almacen_id,
        cantidad_inicial=total,
        fecha_recepcion=fecha_recepcion or d.business_date(now()),
    )
    session.add(lote)
    await session.flush()
    acumulado = 0
    for ub_id, cant in ubicaciones.items():
        lu = LoteUbicacion(lote_id=lote.id, ubicacion_id=ub_id, cantidad=cant, cantidad_reservada=0)
        session.add(lu)
        await session.flush()
        session.add(
            MovimientoInventario(
                lote_id=lote.id,
                lote_ubicacion_id=lu.id,
                tipo_movimiento="ENTRADA",
                cantidad=cant,
                cantidad_anterior=acumulado,
                cantidad_nueva=acumulado + cant,
                motivo="Recepción de lote",
                usuario=(actor or Actor.system()).sub,
                fecha_movimiento=now(),
            )
        )
        acumulado += cant
    await session.flush()
    return lote


async def cambiar_estado_lote(
    session: AsyncSession, lote_id: int, estado: int, actor: Actor, motivo: str | None = None
) -> Lote:
    if estado not in d.LOTE_ESTADOS:
        raise d.DomainError("ESTADO_LOTE_INVALIDO", f"Estado {estado} no válido.", field="estado")
    lote = await session.get(Lote, lote_id)
    if lote is None:
        raise d.NotFound("LOTE_NO_ENCONTRADO", f"No existe el lote {lote_id}.")
    antes = lote.estado
    lote.estado = estado
    lote.motivo_cambio_estado = motivo
    lote.fecha_cambio_estado = now()
    lote.usuario_cambio_estado = actor.sub
    await _audit(
        session,
        "lote",
        lote_id,
        "cambiar_estado",
        actor,
        antes=str(antes),
        despues=str(estado),
        motivo=motivo,
    )
    await session.flush()
    return lote


# ------------------------------------------------------------------------------ requests


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
    if await session.get(Institucion, institucion_id) is None:
        raise d.DomainError(
            "INSTITUCION_DESCONOCIDA",
            f"No existe la institución {institucion_id}.",
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
    found = set((await session.execute(select(Producto.id).where(Producto.id.in_(ids)))).scalars())
    for idx, item in enumerate(items):
        if item.producto_id not in found:
            raise d.DomainError(
                "PRODUCTO_DESCONOCIDO",
                f"No existe el producto {item.producto_id}.",
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
        folio = d.generar_folio(at, folio_token)
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
        await _audit(
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
    await _audit(
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
    await _transicion_solicitud(
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
    if resultado.estado == d.EstadoSolicitud.VALIDADA:
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
    await _transicion_solicitud(
        session,
        sol,
        d.EstadoSolicitud.RECHAZADA,
        actor,
        motivo=motivo,
        valores={
            "usuario_validacion": actor.sub,
            "fecha_validacion": now(),
            "observaciones_validacion": motivo,
        },
    )
    return sol


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
        await _liberar_lineas(session, prop, actor)
        await _transicion_propuesta(
            session,
            prop,
            d.EstadoPropuesta.CANCELADA,
            actor,
            motivo=motivo or "Solicitud cancelada",
            valores={"fecha_cancelacion": now(), "motivo_cancelacion": motivo},
        )
    await _transicion_solicitud(session, sol, d.EstadoSolicitud.CANCELADA, actor, motivo=motivo)
    return sol


# ------------------------------------------------------------------------------ proposals


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
    await _audit(
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


async def _lineas_activas(
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


async def _liberar_lineas(session: AsyncSession, prop: Propuesta, actor: Actor) -> int:
    """Release every active reservation of the proposal (lines → LIBERADA). No kardex."""
    lineas = await _lineas_activas(session, prop.id)
    await snapshots_locked(session, [ln.lote_ubicacion_id for ln, _ in lineas])
    for ln, _ in lineas:
        await _reservar(session, ln.lote_ubicacion_id, -ln.cantidad_asignada)
        ln.estado_linea = d.EstadoLinea.LIBERADA.value
    await session.flush()
    if lineas:
        await _audit(
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


async def liberar_propuesta(
    session: AsyncSession, propuesta_id: uuid.UUID, actor: Actor, motivo: str | None = None
) -> Propuesta:
    """Release: reservations gone (lines → LIBERADA), proposal archived (CANCELADA), request
    back to PENDIENTE for re-validation (HO-L05, HO-D05)."""
    d.exigir(actor.roles, d.Accion.LIBERAR_PROPUESTA)
    prop = await get_propuesta(session, propuesta_id)
    d.transicion_propuesta(prop.estado, d.EstadoPropuesta.CANCELADA)
    sol = await get_solicitud(session, prop.solicitud_id)
    await _liberar_lineas(session, prop, actor)
    await _transicion_propuesta(
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
        await _transicion_solicitud(
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
    lineas = await _lineas_activas(session, prop.id)
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
    await _transicion_propuesta(
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
        await _transicion_solicitud(session, sol, d.EstadoSolicitud.EN_PREPARACION, actor)
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
        await _reservar(session, lu_id, nueva - actual)
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
    await _recalcular_totales(session, prop)
    await _audit(
        session,
        "reserva",
        prop.id,
        "editar_item",
        actor,
        motivo=motivo_override,
        payload={"item": str(ip.id), "cambios": cambios},
    )
    if prop.estado == d.EstadoPropuesta.NO_DISPONIBLE and prop.total_propuesto > 0:
        await _transicion_propuesta(session, prop, d.EstadoPropuesta.GENERADA, actor)
    else:
        await session.execute(
            update(Propuesta)
            .where(Propuesta.id == prop.id)
            .values(version=Propuesta.version + 1)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(prop)
    return prop


async def _recalcular_totales(session: AsyncSession, prop: Propuesta) -> None:
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
    await _audit(
        session, "linea", linea.id, "recoger", actor, antes="RESERVADA", despues="RECOGIDA"
    )
    if prop.estado == d.EstadoPropuesta.REVISADA:
        await _transicion_propuesta(session, prop, d.EstadoPropuesta.EN_SURTIMIENTO, actor)
    pendientes = [
        ln for ln, _ in await _lineas_activas(session, prop.id) if ln.estado_linea == "RESERVADA"
    ]
    sol = await get_solicitud(session, prop.solicitud_id)
    if not pendientes and sol.estado == d.EstadoSolicitud.EN_PREPARACION:
        await _transicion_solicitud(session, sol, d.EstadoSolicitud.PREPARADA, actor)
    return linea


async def _replanificar(
    session: AsyncSession, prop: Propuesta, lu_ids: set[int], actor: Actor, motivo: str
) -> None:
    """[DECIDE-B8]: flag lines on ineligible lots, proposal → GENERADA, request → VALIDADA."""
    at = now()
    for ln, _ in await _lineas_activas(session, prop.id):
        if ln.lote_ubicacion_id in lu_ids and ln.no_elegible_desde is None:
            ln.no_elegible_desde = at
    await session.flush()
    if prop.estado in (d.EstadoPropuesta.REVISADA, d.EstadoPropuesta.EN_SURTIMIENTO):
        await _transicion_propuesta(
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
        await _transicion_solicitud(session, sol, d.EstadoSolicitud.VALIDADA, actor, motivo=motivo)


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
    lineas = await _lineas_activas(session, prop.id)
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
        await _replanificar(session, prop, bad_lus, actor, "Lote no elegible al surtir")
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
    await _transicion_propuesta(
        session,
        prop,
        nuevo,
        actor,
        desde=["REVISADA", "EN_SURTIMIENTO"],
        valores={"fecha_surtimiento": at, "usuario_surtimiento": actor.sub},
    )
    await _transicion_solicitud(session, sol, d.EstadoSolicitud.ENTREGADA, actor)
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


# ------------------------------------------------------------------------------ expiry job


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
        await _audit(session, "lote", lote.id, "caducar", actor, antes="1", despues="6")
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
        await _replanificar(session, prop, lus, actor, "Lote no elegible (job de caducidad)")
    return ResultadoJob([lt.numero_lote for lt in vencidos], marcadas, [str(p) for p in por_prop])


# ------------------------------------------------------------------------------ reads, reports


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
