"""The vocabularies of the orders domain: the ONE definition of every state / type value set.

Database CHECK constraints (`orders.models`) and API types (`orders.api.schemas`) derive from
these enums (`values(...)`); `test_orders_vocab.py` checks the migrated constraints against them.
"""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum
from typing import Any


class EstadoSolicitud(StrEnum):
    PENDIENTE = "PENDIENTE"
    VALIDADA = "VALIDADA"
    RECHAZADA = "RECHAZADA"
    EN_PREPARACION = "EN_PREPARACION"
    PREPARADA = "PREPARADA"
    ENTREGADA = "ENTREGADA"
    CANCELADA = "CANCELADA"
    PROPUESTA_FALLIDA = "PROPUESTA_FALLIDA"
    """VALIDADA whose proposal could not be generated (a permanent error): the reason is on
    the request; it is retried (→ VALIDADA) or cancelled."""


class EstadoPropuesta(StrEnum):
    GENERADA = "GENERADA"
    REVISADA = "REVISADA"
    EN_SURTIMIENTO = "EN_SURTIMIENTO"
    SURTIDA = "SURTIDA"
    PARCIAL = "PARCIAL"
    NO_DISPONIBLE = "NO_DISPONIBLE"
    CANCELADA = "CANCELADA"


class EstadoItemPropuesta(StrEnum):
    DISPONIBLE = "DISPONIBLE"
    PARCIAL = "PARCIAL"
    NO_DISPONIBLE = "NO_DISPONIBLE"
    SURTIDO = "SURTIDO"


class EstadoLinea(StrEnum):
    RESERVADA = "RESERVADA"
    RECOGIDA = "RECOGIDA"
    SURTIDA = "SURTIDA"
    LIBERADA = "LIBERADA"


class EstadoLote(IntEnum):
    """Lot estado codes (§B.2.1)."""

    DISPONIBLE = 1
    SUSPENDIDO = 4
    DETERIORADO = 5
    CADUCADO = 6


class EstadoUbicacion(StrEnum):
    """State of a storage location (§B.2.1)."""

    DISPONIBLE = "disponible"
    OCUPADA = "ocupada"
    BLOQUEADA = "bloqueada"
    CUARENTENA = "cuarentena"
    CADUCADOS = "caducados"
    DEVOLUCIONES = "devoluciones"


class TipoMovimiento(StrEnum):
    """Kardex movement types (§B.2.1)."""

    ENTRADA = "ENTRADA"
    SALIDA = "SALIDA"
    AJUSTE_POSITIVO = "AJUSTE_POSITIVO"
    AJUSTE_NEGATIVO = "AJUSTE_NEGATIVO"
    TRANSFERENCIA_ENTRADA = "TRANSFERENCIA_ENTRADA"
    TRANSFERENCIA_SALIDA = "TRANSFERENCIA_SALIDA"
    CADUCIDAD = "CADUCIDAD"
    DETERIORO = "DETERIORO"
    AJUSTE_DATOS_LOTE = "AJUSTE_DATOS_LOTE"


class MotivoAjuste(StrEnum):
    """Reason catalogue for approved ≠ requested and for rejections (Part D.2)."""

    SIN_EXISTENCIA = "SIN_EXISTENCIA"
    CONSUMO_HISTORICO = "CONSUMO_HISTORICO"
    PRESUPUESTO = "PRESUPUESTO"
    DUPLICADO = "DUPLICADO"
    CLAVE_NO_AUTORIZADA = "CLAVE_NO_AUTORIZADA"
    OTRO = "OTRO"


def values(vocabulary: type[Enum]) -> tuple[Any, ...]:
    """The plain values of a vocabulary, in declaration order (CHECKs, Literals): `str` for a
    StrEnum, `int` for an IntEnum."""
    return tuple(int(m.value) if isinstance(m, IntEnum) else str(m.value) for m in vocabulary)
