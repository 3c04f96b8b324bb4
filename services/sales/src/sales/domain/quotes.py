"""Quotes (DECIDE-A7): validity, transitions and conversion into a sale."""

from __future__ import annotations

from datetime import date

from sales.domain.errors import Conflict
from sales.domain.vocab import EstadoCotizacion

QUOTE_TRANSITIONS: dict[EstadoCotizacion, frozenset[EstadoCotizacion]] = {
    EstadoCotizacion.BORRADOR: frozenset(
        {EstadoCotizacion.ENVIADA, EstadoCotizacion.RECHAZADA, EstadoCotizacion.VENCIDA}
    ),
    EstadoCotizacion.ENVIADA: frozenset(
        {EstadoCotizacion.ACEPTADA, EstadoCotizacion.RECHAZADA, EstadoCotizacion.VENCIDA}
    ),
    EstadoCotizacion.ACEPTADA: frozenset(),
    EstadoCotizacion.VENCIDA: frozenset(),
    EstadoCotizacion.RECHAZADA: frozenset(),
}

DEFAULT_VIGENCIA_DIAS = 15

REQUESTABLE_QUOTE_STATES = (
    EstadoCotizacion.ENVIADA,
    EstadoCotizacion.ACEPTADA,
    EstadoCotizacion.RECHAZADA,
)
"""The states a user may ask a quote to move to; `vencida` comes with time, `borrador` first."""


def effective_quote_state(
    estado: EstadoCotizacion, vigencia_hasta: date, today: date
) -> EstadoCotizacion:
    """An open quote (borrador/enviada) past its `vigencia_hasta` is `vencida`."""
    if estado in (EstadoCotizacion.BORRADOR, EstadoCotizacion.ENVIADA) and today > vigencia_hasta:
        return EstadoCotizacion.VENCIDA
    return estado


def check_quote_transition(
    estado: EstadoCotizacion, target: EstadoCotizacion, vigencia_hasta: date, today: date
) -> None:
    current = effective_quote_state(estado, vigencia_hasta, today)
    if current is EstadoCotizacion.VENCIDA and target is not EstadoCotizacion.VENCIDA:
        raise Conflict(
            f"La cotización venció el {vigencia_hasta.isoformat()}",
            code="COTIZACION_VENCIDA",
            title="Cotización vencida",
            vigencia_hasta=vigencia_hasta.isoformat(),
        )
    if target not in QUOTE_TRANSITIONS[current]:
        raise Conflict(
            f"Transición no permitida: {current.value} → {target.value}",
            code="TRANSICION_INVALIDA",
            title="Transición de estado no permitida",
            field="estado",
            estado_actual=current.value,
            estado_solicitado=target.value,
        )


def check_quote_convertible(
    estado: EstadoCotizacion, vigencia_hasta: date, today: date, already_converted: bool
) -> None:
    if already_converted:
        raise Conflict("La cotización ya fue convertida en venta", code="COTIZACION_YA_CONVERTIDA")
    current = effective_quote_state(estado, vigencia_hasta, today)
    if current is not EstadoCotizacion.ACEPTADA:
        raise Conflict(
            f"Sólo una cotización aceptada se convierte en venta (estado: {current.value})",
            code="COTIZACION_NO_ACEPTADA",
            estado_actual=current.value,
        )
