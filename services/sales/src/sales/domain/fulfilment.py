"""The fulfilment state machine of a sale (§A.3.2)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sales.domain.errors import Conflict, DomainError, Invalid
from sales.domain.vocab import EstadoPago, EstatusVenta

SALE_TRANSITIONS: dict[EstatusVenta, frozenset[EstatusVenta]] = {
    EstatusVenta.PENDIENTE: frozenset({EstatusVenta.EN_PRODUCCION, EstatusVenta.CANCELADA}),
    EstatusVenta.EN_PRODUCCION: frozenset({EstatusVenta.ENTREGADA, EstatusVenta.CANCELADA}),
    EstatusVenta.ENTREGADA: frozenset(),
    EstatusVenta.CANCELADA: frozenset(),
}


RESCHEDULABLE: frozenset[EstatusVenta] = frozenset(
    {EstatusVenta.PENDIENTE, EstatusVenta.EN_PRODUCCION}
)
"""States whose `fecha_entrega` may still move: `entregada` and `cancelada` are terminal."""


def check_reschedule(current: EstatusVenta, fecha_venta: date, fecha_entrega: date) -> None:
    """A delivery date moves only while the sale is open, and never before the sale's date."""
    if current not in RESCHEDULABLE:
        raise Conflict(
            f"No se puede reprogramar la entrega de una venta {current.value}",
            code="VENTA_NO_REPROGRAMABLE",
            title="Venta no reprogramable",
            field="estatus",
            estatus_actual=current.value,
        )
    if fecha_entrega < fecha_venta:
        raise Invalid(
            f"fecha_entrega {fecha_entrega} es anterior a la fecha de la venta {fecha_venta}",
            code="FECHA_ENTREGA_INVALIDA",
            field="fecha_entrega",
        )


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
