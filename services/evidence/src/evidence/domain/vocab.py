"""Vocabularies of the evidence domain: the ONE definition of every state/type."""

from __future__ import annotations

import enum

from evidence.domain.errors import DomainError

# --------------------------------------------------------------------------------------------
# GPU status catalogue (§C.2.1)
# --------------------------------------------------------------------------------------------


class GpuStatus(enum.StrEnum):
    PENDIENTE = "PENDIENTE"
    CARGADO = "CARGADO"
    EN_REVISION = "EN_REVISION"
    VALIDADO = "VALIDADO"
    RECHAZADO = "RECHAZADO"

    @property
    def legacy_id(self) -> int:
        return LEGACY_IDS[self]

    @property
    def descripcion(self) -> str:
        return DESCRIPCIONES[self]

    @classmethod
    def from_legacy_id(cls, legacy_id: int) -> GpuStatus:
        for status, value in LEGACY_IDS.items():
            if value == legacy_id:
                return status
        raise DomainError(
            "ESTATUS_NO_GPU",
            f"estatus_id={legacy_id} no es un estatus GPU (19-23)",
            field="estatus_id",
        )

    @classmethod
    def parse(cls, value: str, *, field: str = "a") -> GpuStatus:
        code = value.strip().upper().replace(" ", "_") if isinstance(value, str) else ""
        try:
            return cls(code)
        except ValueError:
            raise DomainError(
                "ESTATUS_NO_GPU", f"{value!r} no es un estatus GPU", field=field
            ) from None


LEGACY_IDS: dict[GpuStatus, int] = {
    GpuStatus.PENDIENTE: 19,
    GpuStatus.CARGADO: 20,
    GpuStatus.EN_REVISION: 21,
    GpuStatus.VALIDADO: 22,
    GpuStatus.RECHAZADO: 23,
}
DESCRIPCIONES: dict[GpuStatus, str] = {
    GpuStatus.PENDIENTE: "Pendiente",
    GpuStatus.CARGADO: "Cargado",
    GpuStatus.EN_REVISION: "En Revisión",
    GpuStatus.VALIDADO: "Validado",
    GpuStatus.RECHAZADO: "Rechazado",
}

#: Statuses in which the GPU may be deleted by the system (G9) if not billed.
DELETABLE_STATUSES: frozenset[GpuStatus] = frozenset(
    {GpuStatus.PENDIENTE, GpuStatus.CARGADO, GpuStatus.RECHAZADO}
)
#: Statuses that block production edits (G10, DECIDE-C2).
LOCKING_STATUSES: frozenset[GpuStatus] = frozenset({GpuStatus.EN_REVISION, GpuStatus.VALIDADO})
#: Statuses whose evidence is missing (completeness report).
MISSING_EVIDENCE_STATUSES: frozenset[GpuStatus] = frozenset(
    {GpuStatus.PENDIENTE, GpuStatus.RECHAZADO}
)
