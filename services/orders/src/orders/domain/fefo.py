"""FEFO allocation (§B.4.1 required, [DECIDE-B1], [DECIDE-B2], [DECIDE-B7]) and coverage."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orders.domain.stock import (
    DEFAULT_MIN_SHELF_LIFE_DAYS,
    LoteUbicacionSnap,
    existencia_elegible,
    natural_key,
    umbral_caducidad,
)
from orders.domain.vocab import (
    EstadoItemPropuesta,
    EstadoPropuesta,
)

MSG_PARCIAL = "Solo se encontraron {asignado} de {requerido} unidades."
MSG_SIN_LOTES = "No hay lotes en estado disponible para este producto."
MSG_CADUCIDAD = (
    "No hay lotes que cumplan la regla mínima de caducidad (fecha de caducidad más de "
    "{dias} días posterior a la fecha actual)."
)
MSG_SIN_NETO = (
    "No hay existencia neta disponible para asignar: el inventario visible puede estar "
    "totalmente reservado en otras propuestas pendientes de surtir, o las cantidades por "
    "ubicación no dejan saldo utilizable."
)


@dataclass(frozen=True)
class Asignacion:
    lote_ubicacion_id: int
    lote_id: int
    cantidad: int


@dataclass(frozen=True)
class ResultadoItem:
    producto_id: int
    cantidad_aprobada: int
    cantidad_disponible: int
    asignaciones: tuple[Asignacion, ...]
    estado: EstadoItemPropuesta
    observaciones: str

    @property
    def cantidad_propuesta(self) -> int:
        return sum(a.cantidad for a in self.asignaciones)

    @property
    def cantidad_pendiente(self) -> int:
        return self.cantidad_aprobada - self.cantidad_propuesta


def asignar_fefo(
    producto_id: int,
    almacen_destino_id: int,
    requerido: int,
    snapshots: Iterable[LoteUbicacionSnap],
    today: date,
    *,
    min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS,
    natural: bool = False,
) -> ResultadoItem:
    """Allocate `requerido` units of a product from the destination warehouse, FEFO.

    Scope: same product, locations of `almacen_destino_id` that are `disponible`/`ocupada`,
    active, in an active warehouse. Eligible: lot estado DISPONIBLE and caducidad strictly
    after today + min shelf life. Order: `FEFO_ORDER` (whole lots by caducidad, numero_lote, lot
    id; within a lot, locations by codigo; byte-wise).
    Availability is location-level net (physical − active reservations). Pure: the caller locks
    and persists. One product of `asignar_fefo_varios`.
    """
    return asignar_fefo_varios(
        {producto_id: requerido},
        almacen_destino_id,
        snapshots,
        today,
        min_shelf_life_days=min_shelf_life_days,
        natural=natural,
    )[producto_id]


def asignar_fefo_varios(
    requeridos: Mapping[int, int],
    almacen_destino_id: int,
    snapshots: Iterable[LoteUbicacionSnap],
    today: date,
    *,
    min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS,
    natural: bool = False,
) -> dict[int, ResultadoItem]:
    """`asignar_fefo` for many products at once: {producto_id: requerido} → results.

    One pass over `snapshots` groups the eligible rows by product as plain tuples whose first
    elements are the `FEFO_ORDER` key (built inline: this loop is the proposal's hot path); then
    each product's candidates are walked in key order only as far as its requirement needs (a
    heap: O(n) to build, O(log n) per row taken), so a small demand over a large scope never
    pays for a full sort. Strings compare by code point, which
    is exactly the byte-wise (UTF-8, C collation) order of [DECIDE-B7].
    """
    for req in requeridos.values():
        if req < 0:
            raise ValueError("requerido must be ≥ 0")
    umbral = umbral_caducidad(today, min_shelf_life_days)
    # per product: [hay_disponibles, hay_elegibles, cantidad_disponible, candidates]
    acc: dict[int, list[Any]] = {p: [False, False, 0, []] for p in requeridos}
    get = acc.get
    elegible = existencia_elegible
    for s in snapshots:
        st = get(s.producto_id)
        if st is None or s.almacen_id != almacen_destino_id or not elegible(s):
            continue
        st[0] = True
        cad = s.fecha_caducidad
        if cad is None or cad <= umbral:  # = not elegible_fefo(s, almacen_destino_id, umbral)
            continue
        st[1] = True
        neto = s.cantidad - s.reservado
        if neto > 0:
            st[2] += neto
            if natural:
                st[3].append(
                    (
                        cad,
                        natural_key(s.numero_lote),
                        s.lote_id,
                        natural_key(s.ubicacion_codigo),
                        s.lote_ubicacion_id,
                        neto,
                    )
                )
            else:
                st[3].append(
                    (cad, s.numero_lote, s.lote_id, s.ubicacion_codigo, s.lote_ubicacion_id, neto)
                )

    out: dict[int, ResultadoItem] = {}
    for producto_id, requerido in requeridos.items():
        hay_disponibles, hay_elegibles, cantidad_disponible, candidatos = acc[producto_id]
        asignaciones: list[Asignacion] = []
        pendiente = requerido
        if pendiente > 0 and candidatos:
            if cantidad_disponible <= pendiente:  # everything is taken: order it once
                candidatos.sort()
                asignaciones = [Asignacion(c[4], c[2], c[5]) for c in candidatos]
                pendiente -= cantidad_disponible
            else:
                heapq.heapify(candidatos)
                pop = heapq.heappop
                while pendiente > 0:
                    c = pop(candidatos)
                    take = c[5] if c[5] < pendiente else pendiente
                    asignaciones.append(Asignacion(c[4], c[2], take))
                    pendiente -= take
        asignado = requerido - pendiente
        if requerido == 0 or asignado == requerido:
            estado, obs = EstadoItemPropuesta.DISPONIBLE, ""
        elif asignado > 0:
            estado = EstadoItemPropuesta.PARCIAL
            obs = MSG_PARCIAL.format(asignado=asignado, requerido=requerido)
        else:
            estado = EstadoItemPropuesta.NO_DISPONIBLE
            if not hay_disponibles:
                obs = MSG_SIN_LOTES
            elif not hay_elegibles:
                obs = MSG_CADUCIDAD.format(dias=min_shelf_life_days)
            else:
                obs = MSG_SIN_NETO
        out[producto_id] = ResultadoItem(
            producto_id=producto_id,
            cantidad_aprobada=requerido,
            cantidad_disponible=cantidad_disponible,
            asignaciones=tuple(asignaciones),
            estado=estado,
            observaciones=obs,
        )
    return out


def estado_propuesta_generada(items: Sequence[ResultadoItem]) -> EstadoPropuesta:
    """GENERADA if anything was allocated, NO_DISPONIBLE if no line at all."""
    if any(i.asignaciones for i in items):
        return EstadoPropuesta.GENERADA
    return EstadoPropuesta.NO_DISPONIBLE


def cobertura(pares: Iterable[tuple[int, int]]) -> Decimal:
    """Coverage % = Σ min(disponible, requerido) / Σ requerido × 100, HALF_UP to 0.01 (HO-D24).

    `pares` = (cantidad_disponible, cantidad_requerida) per item. 0 when nothing is required.
    """
    num = 0
    den = 0
    for disp, req in pares:
        num += min(max(disp, 0), req)
        den += req
    if den == 0:
        return Decimal("0.00")
    return (Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def porcentaje(num: int, den: int) -> Decimal:
    if den == 0:
        return Decimal("0.00")
    return (Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass
class Totales:
    solicitado: int = 0
    disponible: int = 0
    propuesto: int = 0
    items: list[ResultadoItem] = field(default_factory=list)


def totales_propuesta(total_solicitado: int, items: Sequence[ResultadoItem]) -> Totales:
    return Totales(
        solicitado=total_solicitado,
        disponible=sum(i.cantidad_disponible for i in items),
        propuesto=sum(i.cantidad_propuesta for i in items),
        items=list(items),
    )
