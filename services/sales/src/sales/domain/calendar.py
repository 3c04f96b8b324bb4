"""Folios (§A.4.3), the business date (§0.3-3) and report periods."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sales.domain.money import ZERO
from sales.domain.vocab import Periodo
from service_defaults import clock

BUSINESS_TZ = ZoneInfo("America/Mexico_City")


def folio_venta(id_venta: int) -> str:
    return f"VTA-{id_venta:04d}"


def folio_cotizacion(id_cotizacion: int) -> str:
    return f"COT-{id_cotizacion:04d}"


def business_date(now: datetime) -> date:
    """'Today' in America/Mexico_City (§0.3-3, AC-D23): the platform's business date in the
    sales time zone. `now` must be timezone-aware."""
    return clock.business_date(now, BUSINESS_TZ)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day as aware datetimes."""
    start = datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)
    return start, start + timedelta(days=1)


def period_key(day: date, periodo: Periodo) -> str:
    """Group key; weeks use the ISO year (AC-D20: 29–31 Dec may belong to next year's W01)."""
    if periodo is Periodo.DIA:
        return day.isoformat()
    if periodo is Periodo.SEMANA:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if periodo is Periodo.MES:
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}"


@dataclass
class Bucket:
    ventas: int = 0
    total_vendido: Decimal = ZERO
    ingresos: Decimal = ZERO
    extra: dict[str, Any] = field(default_factory=dict)
