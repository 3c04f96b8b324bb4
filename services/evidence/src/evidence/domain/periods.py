"""Business time and periods (DOMAIN §0.3: America/Mexico_City)."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from evidence.domain.errors import DomainError
from service_defaults import clock

BUSINESS_TZ = ZoneInfo("America/Mexico_City")


def business_date(now: dt.datetime) -> dt.date:
    """The business date of an aware instant (DOMAIN §0.3.3): the platform's business date in
    the evidence time zone."""
    return clock.business_date(now, BUSINESS_TZ)


def validate_month(mes: int, anio: int) -> None:
    if not 1 <= mes <= 12:
        raise DomainError("MES_INVALIDO", f"mes={mes} fuera de 1..12", field="mes")
    if not 2000 <= anio <= 2100:
        raise DomainError("PERIODO_INVALIDO", f"anio={anio} fuera de 2000..2100", field="anio")


def days_in_month(mes: int, anio: int) -> int:
    validate_month(mes, anio)
    return calendar.monthrange(anio, mes)[1]


def month_bounds(mes: int, anio: int) -> tuple[dt.date, dt.date]:
    """First and last day of the month."""
    return dt.date(anio, mes, 1), dt.date(anio, mes, days_in_month(mes, anio))
