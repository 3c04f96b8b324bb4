"""Request items and validation (approved ≤ requested, coded justification)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orders.domain.errors import (
    DomainError,
)
from orders.domain.states import (
    S,
)
from orders.domain.vocab import (
    MotivoAjuste,
)


@dataclass(frozen=True)
class ItemCaptura:
    producto_id: int
    cantidad_solicitada: int


RECHAZO_VALIDADOR = "RECHAZO_VALIDADOR"
"""The `RequestRejected` reason code of a request the validator rejected."""

RECHAZO_SIN_CANTIDAD = "SIN_CANTIDAD_APROBADA"
"""The reason code of a validation that approves nothing, when its items' justification codes
differ (one shared code is published as it is)."""


def validar_items_captura(items: Sequence[ItemCaptura]) -> None:
    """≥ 1 item, quantities ≥ 1 (HO-D25), one line per product."""
    if not items:
        raise DomainError("SIN_ITEMS", "La solicitud debe tener al menos un item.", field="items")
    seen: set[int] = set()
    for idx, item in enumerate(items):
        if item.cantidad_solicitada < 1:
            raise DomainError(
                "CANTIDAD_INVALIDA",
                "cantidad_solicitada debe ser ≥ 1.",
                field=f"items.{idx}.cantidad_solicitada",
            )
        if item.producto_id in seen:
            raise DomainError(
                "PRODUCTO_DUPLICADO",
                f"El producto {item.producto_id} aparece más de una vez.",
                field=f"items.{idx}.id_producto",
                id_producto=item.producto_id,
            )
        seen.add(item.producto_id)


@dataclass(frozen=True)
class Aprobacion:
    cantidad_aprobada: int
    justificacion_codigo: str | None = None
    justificacion: str | None = None


@dataclass(frozen=True)
class ResultadoValidacion:
    estado: S
    aprobadas: dict[Any, Aprobacion]


def validar_aprobaciones(
    solicitadas: Mapping[Any, int], aprobaciones: Mapping[Any, Aprobacion]
) -> ResultadoValidacion:
    """Per item `0 ≤ aprobada ≤ solicitada`; a coded justification + text whenever they differ.

    Items without an explicit approval are approved in full (the form's initial value).
    Σ aprobada = 0 → RECHAZADA, otherwise VALIDADA.
    """
    unknown = [k for k in aprobaciones if k not in solicitadas]
    if unknown:
        raise DomainError(
            "ITEM_DESCONOCIDO",
            f"Item(s) que no pertenecen a la solicitud: {', '.join(map(str, unknown))}.",
            field="items",
            items=[str(k) for k in unknown],
        )
    result: dict[Any, Aprobacion] = {}
    for key, solicitada in solicitadas.items():
        ap = aprobaciones.get(key, Aprobacion(solicitada))
        if ap.cantidad_aprobada < 0:
            raise DomainError(
                "CANTIDAD_INVALIDA",
                "cantidad_aprobada no puede ser negativa.",
                field=f"items.{key}.cantidad_aprobada",
            )
        if ap.cantidad_aprobada > solicitada:
            raise DomainError(
                "APROBADA_EXCEDE_SOLICITADA",
                f"cantidad_aprobada debe ser ≤ {solicitada}.",
                field=f"items.{key}.cantidad_aprobada",
                solicitado=solicitada,
                aprobado=ap.cantidad_aprobada,
            )
        if ap.cantidad_aprobada != solicitada:
            if not ap.justificacion_codigo or ap.justificacion_codigo not in set(MotivoAjuste):
                raise DomainError(
                    "JUSTIFICACION_REQUERIDA",
                    "Se requiere un motivo codificado cuando la cantidad aprobada difiere "
                    "de la solicitada.",
                    field=f"items.{key}.justificacion_codigo",
                    motivos=[m.value for m in MotivoAjuste],
                )
            if not (ap.justificacion or "").strip():
                raise DomainError(
                    "JUSTIFICACION_REQUERIDA",
                    "Se requiere el texto de la justificación cuando la cantidad aprobada "
                    "difiere de la solicitada.",
                    field=f"items.{key}.justificacion",
                )
        result[key] = ap
    total = sum(a.cantidad_aprobada for a in result.values())
    return ResultadoValidacion(S.VALIDADA if total > 0 else S.RECHAZADA, result)
