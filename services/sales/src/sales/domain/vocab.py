"""The vocabularies of the sales domain: the ONE definition of every state / type value set.

Database CHECK constraints (`sales.models`) and API types (`sales.api.schemas`) derive from
these enums (`values(...)`); `test_sales_vocab.py` checks the migrated constraints against them.
"""

from __future__ import annotations

from enum import StrEnum


# Fulfilment state of a sale (§A.3.2). (No class docstrings on the enums the API exposes:
# pydantic would add them to the OpenAPI schemas.)
class EstatusVenta(StrEnum):
    PENDIENTE = "pendiente"
    EN_PRODUCCION = "en_produccion"
    ENTREGADA = "entregada"
    CANCELADA = "cancelada"


class EstadoPago(StrEnum):
    """Payment state of a sale, derived from Σ abonos (DECIDE-A1); not stored."""

    SIN_PAGO = "sin_pago"
    PARCIAL = "parcial"
    PAGADA = "pagada"


class EstadoCotizacion(StrEnum):
    """State of a quote (DECIDE-A7)."""

    BORRADOR = "borrador"
    ENVIADA = "enviada"
    ACEPTADA = "aceptada"
    VENCIDA = "vencida"
    RECHAZADA = "rechazada"


class MetodoPago(StrEnum):
    EFECTIVO = "efectivo"
    TRANSFERENCIA = "transferencia"
    TARJETA = "tarjeta"


class EstadoAbono(StrEnum):
    """An abono is applied; a cancelled sale's abonos wait for (then record) their refund."""

    APLICADO = "aplicado"
    POR_REEMBOLSAR = "por_reembolsar"
    REEMBOLSADO = "reembolsado"


class MotivoMovimiento(StrEnum):
    """Reason of a stock ledger movement (kardex)."""

    VENTA = "venta"
    CANCELACION = "cancelacion"
    REABASTO = "reabasto"
    AJUSTE = "ajuste"
    CONTEO = "conteo"
    ALTA = "alta"


# Grouping period of the reports.
class Periodo(StrEnum):
    DIA = "dia"
    SEMANA = "semana"
    MES = "mes"
    ANIO = "anio"


def values(vocabulary: type[StrEnum]) -> tuple[str, ...]:
    """The plain string values of a vocabulary, in declaration order (CHECKs, Literals)."""
    return tuple(member.value for member in vocabulary)
