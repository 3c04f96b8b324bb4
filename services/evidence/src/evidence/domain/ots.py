"""OT edit and reprogramming rules (§C.2.2) and the search predicates over OTs and GPUs.

An OT's period is :func:`evidence.domain.daily.ot_period` (real over programmed; a principal's
end extended by its active reprogramaciones). An edit may move the dates, never so that an end
comes before its start (422 ``PERIODO_INVALIDO``) nor so that production already captured for
the OT family falls outside an OT's new period (409 ``OT_PRODUCCION_FUERA_DE_PERIODO``): a
reprogramming does not silently orphan captured volume, GPUs or billing; the production is
moved or removed first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func

from evidence.domain.errors import DomainError

OT_ACTIVA = 1
"""``ot.estatus`` of an active OT (the legacy's 1); an inactive one is stored as -1."""
OT_INACTIVA = -1

EVIDENCE_MIN_LENGTH = 5
"""Legacy "Entregado": ``archivo IS NOT NULL AND length(trim(archivo)) > 5`` (global search)."""

DATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("fecha_inicio_programado", "fecha_termino_programado"),
    ("fecha_inicio_real", "fecha_termino_real"),
)
"""(start, end) fields of an OT that must be ordered."""

EDITABLE_FIELDS: tuple[str, ...] = (
    "descripcion_trabajo",
    *(name for pair in DATE_PAIRS for name in pair),
    "id_cliente",
    "estatus",
)


def evidence_loaded_sql(archivo: Any) -> ColumnElement[bool]:
    """SQL form of :func:`evidence.domain.gpu.has_evidence` (the legacy "Entregado")."""
    return and_(archivo.is_not(None), func.length(func.trim(archivo)) > EVIDENCE_MIN_LENGTH)


def validate_ot_dates(values: Mapping[str, dt.date | None]) -> None:
    """Each end on or after its start (both present); 422 naming the end field otherwise."""
    for start, end in DATE_PAIRS:
        a, b = values.get(start), values.get(end)
        if a is not None and b is not None and b < a:
            raise DomainError(
                "PERIODO_INVALIDO",
                f"{end} ({b.isoformat()}) es anterior a {start} ({a.isoformat()})",
                field=end,
            )


def diff_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose value changes (dates as ISO strings)."""

    def plain(v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.date) else v

    return {
        name: [plain(current.get(name)), plain(value)]
        for name, value in wanted.items()
        if current.get(name) != value
    }


@dataclass(frozen=True)
class ProductionSpan:
    """First and last production date (volume > 0) captured in an OT's monthly reports."""

    id_ot: int
    primera: dt.date
    ultima: dt.date


def check_production_in_period(
    span: ProductionSpan,
    inicio: dt.date | None,
    fin: dt.date | None,
    *,
    orden_trabajo: str,
    fields: tuple[str, str] = DATE_PAIRS[0],
) -> None:
    """409 when the OT's production starts before ``inicio`` or ends after ``fin`` (an open
    bound does not limit), naming the (start, end) field of ``fields`` the user must move."""
    if inicio is not None and span.primera < inicio:
        field, limit = fields[0], inicio
    elif fin is not None and span.ultima > fin:
        field, limit = fields[1], fin
    else:
        return
    raise DomainError(
        "OT_PRODUCCION_FUERA_DE_PERIODO",
        f"la OT {orden_trabajo} tiene producción del {span.primera.isoformat()} al "
        f"{span.ultima.isoformat()}, fuera del periodo nuevo (límite {limit.isoformat()})",
        field=field,
        id_ot=span.id_ot,
        primera_produccion=span.primera.isoformat(),
        ultima_produccion=span.ultima.isoformat(),
    )
