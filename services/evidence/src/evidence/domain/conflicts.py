"""Resolving a G10 conflict: a production change that could not retire its protected GPU
(§C.3.2 G10, GP-D05). A supervisor keeps the GPU with a justification or annuls it; the GPU
sync closes the conflict by itself when the production needs its GPU again or the GPU is
retired (G9)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evidence.domain.errors import DomainError

MAX_JUSTIFICACION = 2000


class ConflictDecision(enum.StrEnum):
    CONSERVAR = "CONSERVAR"  # the GPU stays as it is (its production no longer needs it)
    ANULAR = "ANULAR"  # the GPU is removed, like G9, with a history row
    AUTOMATICA = "AUTOMATICA"  # closed by the GPU sync (never requested through the API)


@dataclass(frozen=True)
class ConflictState:
    resuelto: bool
    gpu_exists: bool
    facturado: bool
    mes_cerrado: bool


def decide_conflict_resolution(
    state: ConflictState, decision: ConflictDecision, justificacion: str | None
) -> str:
    """Check a requested resolution; return the trimmed justification.

    Order: already resolved (409 CONFLICTO_RESUELTO), justification (422 NOTA_REQUERIDA), then
    for ANULAR the billing lock (409 GPU_FACTURADO: cancel the estimate line first) and the
    closed month (409 MES_CERRADO, as for G9)."""
    if state.resuelto or not state.gpu_exists:
        raise DomainError("CONFLICTO_RESUELTO", "el conflicto ya está resuelto", field="id")
    if decision is ConflictDecision.AUTOMATICA:
        raise DomainError("DECISION_INVALIDA", "decisión CONSERVAR o ANULAR", field="decision")
    text = (justificacion or "").strip()
    if not text:
        raise DomainError(
            "NOTA_REQUERIDA", "resolver un conflicto requiere una justificación",
            field="justificacion",
        )  # fmt: skip
    if len(text) > MAX_JUSTIFICACION:
        raise DomainError(
            "NOTA_REQUERIDA", f"más de {MAX_JUSTIFICACION} caracteres", field="justificacion"
        )
    if decision is ConflictDecision.ANULAR:
        if state.facturado:
            raise DomainError(
                "GPU_FACTURADO",
                "el GPU está en una estimación: cancele su línea antes de anularlo",
                field="decision",
            )
        if state.mes_cerrado:
            raise DomainError("MES_CERRADO", field="decision")
    return text
