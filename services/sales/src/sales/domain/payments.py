"""The payment ledger (DECIDE-A1): abonos, balance and payment state."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sales.domain.errors import Conflict, Invalid
from sales.domain.money import ZERO, money
from sales.domain.vocab import EstadoAbono, EstadoPago, MetodoPago, values

METODOS_PAGO = values(MetodoPago)


def total_pagado(abonos: Iterable[Decimal]) -> Decimal:
    return sum(abonos, ZERO)


def saldo_restante(total: Decimal, pagado: Decimal) -> Decimal:
    return money(total - pagado)


def estado_pago(total: Decimal, pagado: Decimal) -> EstadoPago:
    if pagado <= 0:
        return EstadoPago.SIN_PAGO
    if pagado < total:
        return EstadoPago.PARCIAL
    return EstadoPago.PAGADA


def check_abono(total: Decimal, pagado: Decimal, monto: Decimal, field: str = "monto") -> None:
    """An abono is > 0, has cents at most, and never takes Σ abonos above the total."""
    if not monto.is_finite() or monto <= 0:
        raise Invalid("El abono debe ser mayor que 0", code="ABONO_INVALIDO", field=field)
    if monto != money(monto):
        raise Invalid("El abono admite a lo más 2 decimales", code="ABONO_INVALIDO", field=field)
    saldo = total - pagado
    if monto > saldo:
        raise Invalid(
            f"El abono {monto} excede el saldo restante {money(saldo)}",
            code="ABONO_EXCEDE_SALDO",
            title="El abono excede el saldo",
            field=field,
            saldo_restante=str(money(saldo)),
            monto=str(monto),
        )


def check_refund(estado: EstadoAbono) -> None:
    """Only an abono waiting for its refund (a cancelled sale's, `por_reembolsar`) is refunded,
    once."""
    if estado is not EstadoAbono.POR_REEMBOLSAR:
        raise Conflict(
            f"El abono está {estado.value}; sólo un abono por_reembolsar se reembolsa",
            code="ABONO_NO_REEMBOLSABLE",
            title="Abono no reembolsable",
            field="estado",
            estado_actual=estado.value,
        )
