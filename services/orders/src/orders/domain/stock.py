"""Stock rows and the stock eligibility rule (§B.4.1, §B.4.3): the ONE definition.

`existencia_elegible` (lot DISPONIBLE, location state eligible and active, warehouse active)
and `elegible_fefo` (+ destination warehouse, caducidad after the shelf-life threshold); their
SQL forms are rendered from the same constants in `orders.adapters.eligibility`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from orders.domain.vocab import (
    EstadoLote,
    EstadoUbicacion,
)

DEFAULT_MIN_SHELF_LIFE_DAYS = 60

# Lot estado codes (§B.2.1), as plain ints
LOTE_DISPONIBLE = int(EstadoLote.DISPONIBLE)
LOTE_SUSPENDIDO = int(EstadoLote.SUSPENDIDO)
LOTE_DETERIORADO = int(EstadoLote.DETERIORADO)
LOTE_CADUCADO = int(EstadoLote.CADUCADO)
LOTE_ESTADOS = frozenset(int(e) for e in EstadoLote)
UBICACION_ESTADOS = frozenset(e.value for e in EstadoUbicacion)

ELIGIBLE_LOT_STATE = EstadoLote.DISPONIBLE
"""The only lot estado whose stock may be allocated or dispatched (§B.4.1)."""
ELIGIBLE_LOCATION_STATES: tuple[EstadoUbicacion, ...] = (
    EstadoUbicacion.DISPONIBLE,
    EstadoUbicacion.OCUPADA,
)
"""Location states whose stock may be allocated or dispatched (§B.4.1)."""
UBICACION_ESTADOS_ELEGIBLES = frozenset(e.value for e in ELIGIBLE_LOCATION_STATES)
_LOTE_ELEGIBLE = int(ELIGIBLE_LOT_STATE)


@dataclass(frozen=True, slots=True)
class LoteUbicacionSnap:
    """One (lot, location) stock row with everything eligibility and ordering need."""

    lote_ubicacion_id: int
    lote_id: int
    numero_lote: str
    producto_id: int
    almacen_id: int
    fecha_caducidad: date | None
    lote_estado: int
    ubicacion_codigo: str
    cantidad: int
    reservado: int = 0
    ubicacion_estado: str = "disponible"
    ubicacion_activa: bool = True
    almacen_activo: bool = True

    @property
    def neto(self) -> int:
        """disponible(lu) = physical − active reservations, never negative (§B.4.3)."""
        return max(0, self.cantidad - self.reservado)

    @property
    def ubicacion_elegible(self) -> bool:
        return ubicacion_elegible(self.ubicacion_estado, self.ubicacion_activa, self.almacen_activo)

    @property
    def lote_disponible(self) -> bool:
        return self.lote_estado == ELIGIBLE_LOT_STATE

    @property
    def existencia_elegible(self) -> bool:
        """Stock eligibility (§B.4.1): see `existencia_elegible`."""
        return existencia_elegible(self)


def ubicacion_elegible(estado: str, activa: bool, almacen_activo: bool) -> bool:
    """A location whose stock may be used: state in `ELIGIBLE_LOCATION_STATES`, active, in an
    active warehouse."""
    return estado in UBICACION_ESTADOS_ELEGIBLES and activa and almacen_activo


def existencia_elegible(snap: LoteUbicacionSnap) -> bool:
    """Stock of this (lot, location) may be allocated or dispatched, expiry aside: lot estado
    `ELIGIBLE_LOT_STATE` (DISPONIBLE) in an eligible location (`ubicacion_elegible`).

    Written flat, not as a call of `ubicacion_elegible`: FEFO evaluates it once per stock row
    (`test_orders_eligibility` checks both spellings agree on every combination)."""
    return (
        snap.lote_estado == _LOTE_ELEGIBLE
        and snap.ubicacion_estado in UBICACION_ESTADOS_ELEGIBLES
        and snap.ubicacion_activa
        and snap.almacen_activo
    )


def vigente(fecha_caducidad: date | None, today: date) -> bool:
    """Not expired: a caducidad on or after `today` (a lot without one is never usable)."""
    return fecha_caducidad is not None and fecha_caducidad >= today


def elegible_fefo(snap: LoteUbicacionSnap, almacen_destino_id: int, umbral: date) -> bool:
    """Automatic allocation (§B.4.1): eligible stock of the destination warehouse whose
    caducidad is strictly after `umbral` (= `umbral_caducidad(today, min days)`)."""
    return (
        snap.almacen_id == almacen_destino_id
        and existencia_elegible(snap)
        and snap.fecha_caducidad is not None
        and snap.fecha_caducidad > umbral
    )


def umbral_caducidad(today: date, min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS) -> date:
    """A lot is eligible only if its caducidad is strictly after this date [DECIDE-B1]."""
    return today + timedelta(days=min_shelf_life_days)


def cumple_caducidad(fecha_caducidad: date | None, today: date, min_shelf_life_days: int) -> bool:
    return fecha_caducidad is not None and fecha_caducidad > umbral_caducidad(
        today, min_shelf_life_days
    )


NATURAL_RE = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | bytes], ...]:
    parts = NATURAL_RE.split(text)
    return tuple(
        (0, int(p)) if i % 2 == 1 else (1, p.encode()) for i, p in enumerate(parts) if p != ""
    )


FEFO_ORDER = ("fecha_caducidad", "numero_lote", "lote_id", "ubicacion_codigo", "lote_ubicacion_id")
"""The FEFO walk (§B.4.1 step 4), the one definition every read and sort follows: whole lots in
(caducidad, numero_lote, lot id) order and, within a lot, its locations by codigo; the location
row id last. The lot id keeps two lots that share caducidad and numero_lote (possible across
institutions) from interleaving. Text keys compare byte-wise [DECIDE-B7]."""

FEFO_TEXT_KEYS = frozenset({"numero_lote", "ubicacion_codigo"})
"""The `FEFO_ORDER` keys that are text (byte-wise, or natural with `fefo_natural_sort`)."""


def orden_fefo(
    snap: LoteUbicacionSnap, *, natural: bool = False
) -> tuple[date, Any, int, Any, int]:
    """`FEFO_ORDER` of a stock row: byte-wise text keys [DECIDE-B7], or natural ones."""
    assert snap.fecha_caducidad is not None
    if natural:
        return (
            snap.fecha_caducidad,
            natural_key(snap.numero_lote),
            snap.lote_id,
            natural_key(snap.ubicacion_codigo),
            snap.lote_ubicacion_id,
        )
    return (
        snap.fecha_caducidad,
        snap.numero_lote.encode(),
        snap.lote_id,
        snap.ubicacion_codigo.encode(),
        snap.lote_ubicacion_id,
    )


def reserva_no_elegible(snap: LoteUbicacionSnap, today: date) -> bool:
    """A reservation that must be flagged: lot estado ≠ DISPONIBLE or caducidad < today."""
    return not (existencia_elegible(snap) and vigente(snap.fecha_caducidad, today))
