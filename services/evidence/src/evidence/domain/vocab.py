"""Vocabularies of the evidence domain: the ONE definition of every state / type value set.

The database CHECK constraints and seeded catalogues (`evidence.models`) and the API's input
types (`evidence.api.schemas`) derive from these enums (:func:`values`);
`test_evidence_vocab.py` checks the MIGRATED database and the API types against them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from evidence.domain.errors import DomainError


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

#: Colour of each status in the seeded ``cat_estatus_gpu`` catalogue (legacy grid colours).
COLORS: dict[GpuStatus, str] = {
    GpuStatus.PENDIENTE: "red",
    GpuStatus.CARGADO: "yellow",
    GpuStatus.EN_REVISION: "blue",
    GpuStatus.VALIDADO: "green",
    GpuStatus.RECHAZADO: "black",
}
#: Targets of the bulk review route (take for review, validate, reject: G4-G6).
BULK_REVIEW_TARGETS: tuple[GpuStatus, ...] = (
    GpuStatus.VALIDADO,
    GpuStatus.RECHAZADO,
    GpuStatus.EN_REVISION,
)


class TipoTiempo(enum.StrEnum):
    """Time type of a production row: TE (tiempo efectivo) or CMA [DECIDE-C5]."""

    TE = "TE"
    CMA = "CMA"


#: Chronological order of the time types within a day (§C.4.4: TE before CMA).
TIPO_TIEMPO_ORDER: dict[str, int] = {TipoTiempo.TE.value: 0, TipoTiempo.CMA.value: 1}


class EstatusCobro(enum.StrEnum):
    """Billing status of an estimate header (its default is a code of its own)."""

    BORRADOR = "BORRADOR"  # lines may be added and removed
    ENVIADA = "ENVIADA"  # submitted to the client: lines frozen
    APROBADA = "APROBADA"  # approved by the client
    CANCELADA = "CANCELADA"  # its GPUs unlocked, its productions billable again


class EstatusOperativo(enum.StrEnum):
    """The daily operational statuses that carry a rule (more catalogue rows are data)."""

    OPERATIVO = "OPERATIVO"
    """The default of a day (legacy id 1)."""
    CERRADO = "CERRADO"
    """A closed day (legacy id 17, ``cierra_dia``): what ``POST /reportes-diarios/cierre`` sets."""


def values(vocabulary: type[enum.StrEnum] | Iterable[enum.StrEnum]) -> tuple[str, ...]:
    """The plain string values of a vocabulary (or a subset of one), in declaration order."""
    return tuple(member.value for member in vocabulary)
