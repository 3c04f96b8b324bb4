"""Dispatch rules (§B.4.5 required): eligibility at dispatch, kardex movements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from orders.domain.errors import (
    Conflict,
)
from orders.domain.states import (
    PROPUESTA_DESPACHADA,
    P,
)
from orders.domain.stock import (
    LoteUbicacionSnap,
    cumple_caducidad,
    existencia_elegible,
    vigente,
)
from orders.domain.vocab import (
    EstadoItemPropuesta,
)


def verificar_estado_para_surtir(estado: P | str) -> None:
    estado = P(estado)
    if estado in PROPUESTA_DESPACHADA:
        raise Conflict("YA_SURTIDA", "La propuesta ya fue surtida.", estado_actual=estado.value)
    if estado not in (P.REVISADA, P.EN_SURTIMIENTO):
        raise Conflict(
            "PROPUESTA_NO_REVISADA",
            f"Solo se surte una propuesta REVISADA o EN_SURTIMIENTO (estado {estado.value}).",
            estado_actual=estado.value,
        )


@dataclass(frozen=True)
class LineaSurtido:
    snap: LoteUbicacionSnap
    cantidad: int
    override_caducidad: bool = False


def lotes_no_elegibles_al_surtir(
    lineas: Iterable[LineaSurtido], today: date, min_shelf_life_days: int
) -> list[str]:
    """Lot numbers that may not be dispatched any more (§B.4.5 b, [DECIDE-B8]).

    Lot estado must still be DISPONIBLE, the location eligible, caducidad ≥ today, and a lot at
    or inside the shelf-life threshold only if it was assigned with a Supervisor override.
    """
    bad: list[str] = []
    for ln in lineas:
        s = ln.snap
        ok = (
            existencia_elegible(s)
            and vigente(s.fecha_caducidad, today)
            and (
                ln.override_caducidad
                or cumple_caducidad(s.fecha_caducidad, today, min_shelf_life_days)
            )
        )
        if not ok and s.numero_lote not in bad:
            bad.append(s.numero_lote)
    return sorted(bad, key=str.encode)


def verificar_existencia_fisica(snap: LoteUbicacionSnap, cantidad: int) -> None:
    """Physical check; never clamp (§B.4.5 c)."""
    if snap.cantidad < cantidad:
        raise Conflict(
            "STOCK_INSUFICIENTE",
            f"Cantidad insuficiente en lote {snap.numero_lote} ubicación "
            f"{snap.ubicacion_codigo}. Disponible: {snap.cantidad}, Solicitado: {cantidad}",
            disponible=snap.cantidad,
            solicitado=cantidad,
        )


def estado_item_surtido(
    surtida: int, propuesta: int, actual: EstadoItemPropuesta | str
) -> EstadoItemPropuesta:
    """§B.3.3: SURTIDO if Σ ≥ propuesta, PARCIAL if 0 < Σ < propuesta, unchanged if 0."""
    if surtida <= 0:
        return EstadoItemPropuesta(actual)
    if surtida >= propuesta:
        return EstadoItemPropuesta.SURTIDO
    return EstadoItemPropuesta.PARCIAL


def estado_propuesta_surtida(total_surtido: int, total_aprobado: int) -> P:
    return P.PARCIAL if total_surtido < total_aprobado else P.SURTIDA


def motivo_salida(folio_pedido: str, clue: str, denominacion: str) -> str:
    return f"Suministro de Pedido — Pedido: {folio_pedido}. Destino: {clue} — {denominacion}."


def folio_pedido_kardex(folio_pedido: str | None, folio: str) -> str:
    """The external folio (first line, ≤ 255 chars), else the internal SOL folio."""
    first = (folio_pedido or "").strip().splitlines()
    return first[0][:255] if first and first[0].strip() else folio


@dataclass(frozen=True)
class Movimiento:
    lote_id: int
    lote_ubicacion_id: int
    cantidad: int
    cantidad_anterior: int
    cantidad_nueva: int


def calcular_salidas(
    lineas: Sequence[tuple[int, int, int]], totales_lote: Mapping[int, int]
) -> list[Movimiento]:
    """SALIDA movements for lines (lote_ubicacion_id, lote_id, cantidad), in ascending lu id.

    `anterior` / `nueva` are lot totals (Σ locations) before and after each movement.
    """
    totals = dict(totales_lote)
    out: list[Movimiento] = []
    for lu_id, lote_id, cant in sorted(lineas):
        antes = totals[lote_id]
        despues = antes - cant
        if despues < 0:
            raise Conflict(
                "STOCK_INSUFICIENTE",
                f"El lote {lote_id} quedaría negativo ({despues}).",
                disponible=antes,
                solicitado=cant,
            )
        totals[lote_id] = despues
        out.append(Movimiento(lote_id, lu_id, cant, antes, despues))
    return out
