"""Use cases of the catalogue: institutions, warehouses, locations, products, lots and their
stock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
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
    LoteAsignado,
    LoteUbicacion,
    MovimientoInventario,
    Producto,
    Propuesta,
    PropuestaItem,
    Solicitud,
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


# ------------------------------------------------------------------------------ maintenance

Fila = TypeVar("Fila", Institucion, Almacen, Ubicacion, Producto)

_NO_ENCONTRADO: dict[type[Any], tuple[str, str]] = {
    Institucion: ("INSTITUCION_NO_ENCONTRADA", "la institución"),
    Almacen: ("ALMACEN_NO_ENCONTRADO", "el almacén"),
    Ubicacion: ("UBICACION_NO_ENCONTRADA", "la ubicación"),
    Producto: ("PRODUCTO_NO_ENCONTRADO", "el producto"),
}


async def obtener(
    session: AsyncSession, model: type[Fila], id_: int, *, for_update: bool = False
) -> Fila:
    """The catalogue row `id_` of `model` (locked when `for_update`), else 404."""
    row = await session.get(model, id_, with_for_update=for_update)
    if row is None:
        code, nombre = _NO_ENCONTRADO[model]
        raise d.NotFound(code, f"No existe {nombre} {id_}.")
    return row


async def _reservas_en_existencias(
    session: AsyncSession, join: Any, on: Any, cond: ColumnElement[bool]
) -> int:
    """Active reservation lines (§B.4.3: RESERVADA or RECOGIDA) on the stock rows
    (`lote_ubicaciones` joined to `join` on `on`) that `cond` selects. The stock rows are locked
    first, in ascending id order as every reservation writer locks them: a generation that is
    reserving on them commits (and is counted) before this reads, and a later one waits for
    this transaction."""
    await session.execute(
        select(LoteUbicacion.id)
        .join(join, on)
        .where(cond)
        .order_by(LoteUbicacion.id)
        .with_for_update(of=LoteUbicacion)
    )
    n = await session.scalar(
        select(func.count(LoteAsignado.id))
        .join(LoteUbicacion, LoteUbicacion.id == LoteAsignado.lote_ubicacion_id)
        .join(join, on)
        .where(cond, LoteAsignado.estado_linea.in_(d.ACTIVE_LINE_STATES))
    )
    return int(n or 0)


async def _reservas_de_institucion(session: AsyncSession, institucion_id: int) -> int:
    """Active reservation lines held for the institution's requests."""
    n = await session.scalar(
        select(func.count(LoteAsignado.id))
        .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
        .join(Propuesta, Propuesta.id == PropuestaItem.propuesta_id)
        .join(Solicitud, Solicitud.id == Propuesta.solicitud_id)
        .where(
            Solicitud.institucion_id == institucion_id,
            LoteAsignado.estado_linea.in_(d.ACTIVE_LINE_STATES),
        )
    )
    return int(n or 0)


def _con_reservas(code: str, nombre: str, n: int, field: str) -> d.Conflict:
    return d.Conflict(
        code,
        f"{nombre} tiene {n} reserva(s) activa(s) en propuestas; libérelas o surta antes.",
        field=field,
        reservas=n,
    )


async def _unico(
    session: AsyncSession, model: type[Fila], row: Fila, field: str, *conds: Any
) -> None:
    """409 `<FIELD>_DUPLICADO` when another row of `model` matches `conds`."""
    otro = await session.scalar(select(model.id).where(*conds, model.id != row.id).limit(1))
    if otro is not None:
        raise d.Conflict(
            f"{field.upper()}_DUPLICADO",
            f"Ya existe otro registro con ese {field} (id {otro}).",
            field=field,
            id_existente=otro,
        )


def _cambios(
    row: Any, datos: Mapping[str, Any], anulables: frozenset[str] = frozenset()
) -> dict[str, tuple[Any, Any]]:
    """The fields of `datos` (the PATCH body, unset fields left out) whose value differs from
    the row's: {campo: (antes, despues)}. A null for a column that cannot be null is 422."""
    out: dict[str, tuple[Any, Any]] = {}
    for campo, valor in datos.items():
        if valor is None and campo not in anulables:
            raise d.DomainError("CAMPO_REQUERIDO", f"{campo} no puede ser nulo.", field=campo)
        antes = getattr(row, campo)
        if antes != valor:
            out[campo] = (antes, valor)
    return out


async def _aplicar_y_auditar(
    session: AsyncSession,
    entidad: str,
    row: Any,
    cambios: Mapping[str, tuple[Any, Any]],
    actor: Actor,
) -> None:
    """Write the changes and audit them (§0.3-8): `baja` / `reactivacion` for the flag,
    `cambiar_estado` for a location's estado, `actualizar` (old and new values) for the rest;
    a PATCH that changes nothing writes nothing."""
    for campo, (_, nuevo) in cambios.items():
        setattr(row, campo, nuevo)
    if "activo" in cambios:
        antes, nuevo = cambios["activo"]
        await audit(
            session,
            entidad,
            row.id,
            "reactivacion" if nuevo else "baja",
            actor,
            antes="activo" if antes else "inactivo",
            despues="activo" if nuevo else "inactivo",
        )
    if "estado" in cambios:
        antes, nuevo = cambios["estado"]
        await audit(session, entidad, row.id, "cambiar_estado", actor, antes=antes, despues=nuevo)
    resto = {k: v for k, v in cambios.items() if k not in ("activo", "estado")}
    if resto:
        await audit(
            session,
            entidad,
            row.id,
            "actualizar",
            actor,
            payload={k: {"antes": a, "despues": n} for k, (a, n) in resto.items()},
        )
    await session.flush()


def _se_retira(cambios: Mapping[str, tuple[Any, Any]]) -> bool:
    return "activo" in cambios and not cambios["activo"][1]


async def actualizar_institucion(
    session: AsyncSession, id_: int, datos: Mapping[str, Any], actor: Actor
) -> Institucion:
    row = await obtener(session, Institucion, id_, for_update=True)
    cambios = _cambios(row, datos)
    if "clue" in cambios:
        await _unico(session, Institucion, row, "clue", Institucion.clue == cambios["clue"][1])
    if _se_retira(cambios) and (n := await _reservas_de_institucion(session, row.id)):
        raise _con_reservas("INSTITUCION_CON_RESERVAS", "La institución", n, "activo")
    await _aplicar_y_auditar(session, "institucion", row, cambios, actor)
    return row


async def actualizar_almacen(
    session: AsyncSession, id_: int, datos: Mapping[str, Any], actor: Actor
) -> Almacen:
    row = await obtener(session, Almacen, id_, for_update=True)
    cambios = _cambios(row, datos)
    if "codigo" in cambios:
        await _unico(session, Almacen, row, "codigo", Almacen.codigo == cambios["codigo"][1])
    if _se_retira(cambios) and (
        n := await _reservas_en_existencias(
            session,
            Ubicacion,
            Ubicacion.id == LoteUbicacion.ubicacion_id,
            Ubicacion.almacen_id == row.id,
        )
    ):
        raise _con_reservas("ALMACEN_CON_RESERVAS", "El almacén", n, "activo")
    await _aplicar_y_auditar(session, "almacen", row, cambios, actor)
    return row


async def actualizar_ubicacion(
    session: AsyncSession, id_: int, datos: Mapping[str, Any], actor: Actor
) -> Ubicacion:
    """Edit a location. A change that makes its stock ineligible (§B.4.1 b: estado outside
    `ELIGIBLE_LOCATION_STATES`, or inactive) is refused with 409 while reservations hold
    stock there: they could be neither dispatched nor re-planned silently."""
    row = await obtener(session, Ubicacion, id_, for_update=True)
    cambios = _cambios(row, datos, anulables=frozenset({"descripcion"}))
    if "estado" in cambios and (estado_nuevo := cambios["estado"][1]) not in d.UBICACION_ESTADOS:
        raise d.DomainError(
            "ESTADO_UBICACION_INVALIDO", f"Estado {estado_nuevo!r} no válido.", field="estado"
        )
    if "codigo" in cambios:
        await _unico(
            session,
            Ubicacion,
            row,
            "codigo",
            Ubicacion.almacen_id == row.almacen_id,
            Ubicacion.codigo == cambios["codigo"][1],
        )
    estado = cambios.get("estado", (None, row.estado))[1]
    activo = cambios.get("activo", (None, row.activo))[1]
    pierde = d.ubicacion_elegible(row.estado, row.activo, True) and not d.ubicacion_elegible(
        estado, activo, True
    )
    if pierde and (
        n := await _reservas_en_existencias(
            session, Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id, Ubicacion.id == row.id
        )
    ):
        campo = "activo" if not activo else "estado"
        raise _con_reservas("UBICACION_CON_RESERVAS", "La ubicación", n, campo)
    await _aplicar_y_auditar(session, "ubicacion", row, cambios, actor)
    return row


async def actualizar_producto(
    session: AsyncSession, id_: int, datos: Mapping[str, Any], actor: Actor
) -> Producto:
    row = await obtener(session, Producto, id_, for_update=True)
    cambios = _cambios(row, datos)
    if "clave_cnis" in cambios:
        await _unico(
            session, Producto, row, "clave_cnis", Producto.clave_cnis == cambios["clave_cnis"][1]
        )
    if _se_retira(cambios) and (
        n := await _reservas_en_existencias(
            session, Lote, Lote.id == LoteUbicacion.lote_id, Lote.producto_id == row.id
        )
    ):
        raise _con_reservas("PRODUCTO_CON_RESERVAS", "El producto", n, "activo")
    await _aplicar_y_auditar(session, "producto", row, cambios, actor)
    return row
