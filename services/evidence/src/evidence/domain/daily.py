"""Daily reports and the production grid (§C.2.2, §C.2.5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from evidence.domain.eligibility import normalize_annex
from evidence.domain.errors import DomainError
from evidence.domain.grid import format_volume
from evidence.domain.periods import days_in_month, validate_month
from evidence.domain.production import estatus_volumen, normalize_code
from evidence.domain.vocab import TipoTiempo

SITE_COLUMN_BY_FRENTE: Mapping[int, str] = {
    1: "id_patio",
    3: "id_patio",
    2: "id_embarcacion",
    6: "id_embarcacion",
    4: "id_plataforma",
    7: "id_plataforma",
    5: "id_intercom",
}
"""Which site column of an OT its frente selects (§C.2.2; the full map, not GP-D20's)."""


def ot_period(
    inicio_real: dt.date | None,
    inicio_programado: dt.date | None,
    termino_real: dt.date | None,
    termino_programado: dt.date | None,
    reprogramaciones: Iterable[tuple[dt.date | None, dt.date | None]] = (),
) -> tuple[dt.date | None, dt.date | None]:
    """(inicio, fin) of an OT: real over programmed; ``fin`` is extended by the latest end
    (real over programmed) of its active reprogramaciones."""
    inicio = inicio_real or inicio_programado
    ends = [termino_real or termino_programado, *(r or p for r, p in reprogramaciones)]
    known = [e for e in ends if e is not None]
    return inicio, max(known) if known else None


def ot_valid_in_month(inicio: dt.date | None, fin: dt.date | None, mes: int, anio: int) -> bool:
    """Shown in a month's grid when inicio ≤ last day and fin ≥ first day. An OT without a
    start cannot be placed (not shown); one without an end is still running."""
    if inicio is None:
        return False
    first = dt.date(anio, mes, 1)
    last = dt.date(anio, mes, days_in_month(mes, anio))
    return inicio <= last and (fin is None or fin >= first)


@dataclass(frozen=True)
class DailyStatus:
    codigo: str
    descripcion: str
    cierra_dia: bool


def resolve_daily_status(
    value: str | None, catalogue: Iterable[DailyStatus], *, field: str
) -> DailyStatus | None:
    """A day's value of the mass save: its description (or code), case- and accent-exact but
    trimmed and case-insensitive; empty or null clears the day (``None``). Only the daily
    catalogue is searched, never GPU statuses (GP-D02)."""
    if value is None or not value.strip():
        return None
    wanted = value.strip().casefold()
    for status in catalogue:
        if wanted in (status.descripcion.casefold(), status.codigo.casefold()):
            return status
    raise DomainError(
        "ESTATUS_DIARIO_INVALIDO", f"{value!r} no es un estatus operativo", field=field
    )


@dataclass(frozen=True)
class DayChange:
    fecha: dt.date
    estatus: DailyStatus | None
    """``None`` deletes the day (GP-D14: clearing a day removes its row)."""


def plan_daily_statuses(
    existing: Mapping[dt.date, str],
    requested: Mapping[dt.date, DailyStatus | None],
    catalogue: Mapping[str, DailyStatus],
    *,
    may_close: bool,
    field: str,
) -> list[DayChange]:
    """Changes for one OT's month: unchanged days are skipped, a cleared day that has no row is
    a no-op. Setting, changing away from or clearing a closed day (a status with
    ``cierra_dia``) needs ``may_close`` (the same role as closing a day directly)."""
    changes: list[DayChange] = []
    for fecha, status in sorted(requested.items()):
        current = existing.get(fecha)
        if (status.codigo if status else None) == current:
            continue
        if status is None and current is None:
            continue
        was_closed = current is not None and catalogue[current].cierra_dia
        if (was_closed or (status is not None and status.cierra_dia)) and not may_close:
            raise DomainError(
                "ROL_NO_AUTORIZADO",
                f"abrir o cerrar el día {fecha.isoformat()} requiere supervisor",
                field=field,
            )
        changes.append(DayChange(fecha, status))
    return changes


@dataclass(frozen=True)
class PlanLine:
    """A budget line of the family (active import), the unit of consolidation."""

    id: int
    anexo: str | None
    codigo: str
    concepto: str
    unidad: str
    volumen_proyectado: Decimal


def line_key(line: PlanLine) -> tuple[str, str, str]:
    """(anexo, code, description), normalised: the same line re-imported for a reprogramación
    is one row of the production grid."""
    return (normalize_annex(line.anexo), normalize_code(line.codigo), line.concepto.strip())


@dataclass
class _DayAcc:
    te: Decimal = Decimal(0)
    cma: Decimal = Decimal(0)
    programado: Decimal = Decimal(0)
    excedente: bool = False
    has_production: bool = False
    has_plan: bool = False


def production_grid(
    lines: Sequence[PlanLine],
    productions: Iterable[tuple[int, dt.date, str, Decimal, bool]],
    plan: Iterable[tuple[int, dt.date, Decimal]],
    *,
    mes: int,
    anio: int,
    tipo_tiempo: str,
    archivo: str | None,
) -> list[dict[str, Any]]:
    """Rows of ``obtener_partidas_produccion``: lines consolidated by :func:`line_key` (the row
    id is the lowest line id of the group), one cell per day with the requested time type's
    ``valor`` (summed over sites and lines), both types' totals, the plan and the over-volume
    flag. ``productions`` are (line id, date, tipo, volume, es_excedente); ``plan`` (line id,
    date, volume). Always ``dia1``…``dia31`` (days past the month's end are null)."""
    validate_month(mes, anio)
    groups: dict[tuple[str, str, str], list[PlanLine]] = {}
    for line in sorted(lines, key=lambda ln: ln.id):
        groups.setdefault(line_key(line), []).append(line)
    group_of = {ln.id: key for key, members in groups.items() for ln in members}
    acc: dict[tuple[str, str, str], dict[int, _DayAcc]] = {k: {} for k in groups}
    for pid, fecha, tipo, volume, excedente in productions:
        key = group_of.get(pid)
        if key is None or fecha.month != mes or fecha.year != anio:
            continue
        cell = acc[key].setdefault(fecha.day, _DayAcc())
        cell.has_production = True
        if tipo == TipoTiempo.TE:
            cell.te += volume
        else:
            cell.cma += volume
        if tipo == tipo_tiempo and excedente:
            cell.excedente = True
    for pid, fecha, volume in plan:
        key = group_of.get(pid)
        if key is None or fecha.month != mes or fecha.year != anio:
            continue
        cell = acc[key].setdefault(fecha.day, _DayAcc())
        cell.has_plan = True
        cell.programado += volume
    rows: list[dict[str, Any]] = []
    for key, members in groups.items():
        first = members[0]
        cells = acc[key]
        valor_of = (lambda c: c.te) if tipo_tiempo == TipoTiempo.TE else (lambda c: c.cma)
        row: dict[str, Any] = {
            "id_partida_imp": first.id,
            "ids_partida": [ln.id for ln in members],
            "codigo": first.codigo.strip(),
            "concepto": first.concepto,
            "unidad": first.unidad,
            "anexo": first.anexo.strip() if first.anexo else first.anexo,
            "vol_total_proyectado": format_volume(
                sum((m.volumen_proyectado for m in members), Decimal(0))
            ),
            "acumulado_mes": format_volume(sum((valor_of(c) for c in cells.values()), Decimal(0))),
            "acumulado_programado": format_volume(
                sum((c.programado for c in cells.values()), Decimal(0))
            ),
            "archivo": archivo,
        }
        for day in range(1, 32):
            c = cells.get(day)
            row[f"dia{day}"] = (
                None
                if c is None
                else {
                    "valor": format_volume(valor_of(c)) if c.has_production else None,
                    "programado": format_volume(c.programado) if c.has_plan else None,
                    "es_excedente": c.excedente,
                    "te_dia": format_volume(c.te),
                    "cma_dia": format_volume(c.cma),
                }
            )
        flag = estatus_volumen(c.excedente for c in cells.values())
        row["estatus_gpu"] = flag  # seed name
        row["estatus_volumen"] = flag  # §C.4.4 name
        rows.append(row)
    return rows
