"""Use cases of the catalogue: institutions, warehouses, locations, products, lots and their
stock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.application.clock import (
    now,
)
from orders.application.common import (
    Actor,
    audit,
)
from orders.models import (
    Almacen,
    Institucion,
    Lote,
    LoteUbicacion,
    MovimientoInventario,
    Producto,
    Ubicacion,
)


async def crear_institucion(
    session: AsyncSession, clue: str, denominacion: str, *, id: int | None = None
) -> Institucion:
    inst = Institucion(id=id, clue=clue, denominacion=denominacion)  # type: ignore[arg-type]  # id None: serial
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
        id=id,  # type: ignore[arg-type]  # None: serial
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
    prod = Producto(id=id, clave_cnis=clave_cnis, descripcion=descripcion)  # type: ignore[arg-type]  # id None: serial
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
    await audit(
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
