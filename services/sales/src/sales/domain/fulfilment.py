"""The fulfilment state machine of a sale (§A.3.2)."""

from __future__ import annotations

from decimal import Decimal

from sales.domain.errors import Conflict, DomainError, Invalid
from sales.domain.vocab import EstadoPago, EstatusVenta

SALE_TRANSITIONS: dict[EstatusVenta, frozenset[EstatusVenta]] = {
    EstatusVenta.PENDIENTE: frozenset({EstatusVenta.EN_PRODUCCION, EstatusVenta.CANCELADA}),
    EstatusVenta.EN_PRODUCCION: frozenset({EstatusVenta.ENTREGADA, EstatusVenta.CANCELADA}),
    EstatusVenta.ENTREGADA: frozenset(),
    EstatusVenta.CANCELADA: frozenset(),
}


def check_sale_transition(
    current: EstatusVenta,
    target: EstatusVenta,
    *,
    saldo: Decimal,
    is_admin: bool,
    motivo: str | None,
) -> None:
    """Guards of the fulfilment machine. Cancellation's admin-only rule is checked too."""
    if target not in SALE_TRANSITIONS[current]:
        raise Conflict(
            f"Transición no permitida: {current.value} → {target.value}",
            code="TRANSICION_INVALIDA",
            title="Transición de estado no permitida",
            field="estatus",
            estatus_actual=current.value,
            estatus_solicitado=target.value,
        )
    motivo_ok = bool(motivo and motivo.strip())
    if target is EstatusVenta.CANCELADA:
        if not is_admin:
            raise DomainError(
                "Sólo un Administrador puede cancelar una venta",
                code="SOLO_ADMINISTRADOR",
                status=403,
                title="Prohibido",
            )
        if not motivo_ok:
            raise Invalid(
                "La cancelación requiere un motivo", code="MOTIVO_REQUERIDO", field="motivo"
            )
    if target is EstatusVenta.ENTREGADA and saldo != 0:
        if not is_admin:
            raise Conflict(
                f"La venta tiene saldo pendiente de {saldo}",
                code="SALDO_PENDIENTE",
                title="Saldo pendiente",
                saldo_restante=str(saldo),
            )
        if not motivo_ok:
            raise Invalid(
                "Entregar con saldo pendiente requiere un motivo",
                code="MOTIVO_REQUERIDO",
                field="motivo",
            )


def legacy_estatus(estatus: EstatusVenta, pago: EstadoPago) -> str:
    """Legacy-compatible 4-value projection for reports (§A.3.2)."""
    if pago is EstadoPago.PAGADA and estatus in (
        EstatusVenta.PENDIENTE,
        EstatusVenta.EN_PRODUCCION,
    ):
        return "pagada"
    return estatus.value
