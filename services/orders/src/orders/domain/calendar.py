"""Business date and folios (§0.3-3, §B.4.6)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from service_defaults import clock
from service_defaults.clock import utcnow as utcnow

BUSINESS_TZ = ZoneInfo("America/Mexico_City")


def business_date(now: datetime) -> date:
    """`now` (timezone-aware) as a date in America/Mexico_City: the platform's business date in
    the orders time zone."""
    return clock.business_date(now, BUSINESS_TZ)


FOLIO_RE = re.compile(r"^SOL-\d{8}-[0-9A-F]{6}$")


def generar_folio(now: datetime, token: Callable[[], str] | None = None) -> str:
    """``SOL-{YYYYMMDD}-{6 upper-case hex}`` on the business date of `now`."""
    suffix = (token or (lambda: secrets.token_hex(3)))().upper()
    if not re.fullmatch(r"[0-9A-F]{6}", suffix):
        raise ValueError(f"folio suffix must be 6 hex characters: {suffix!r}")
    return f"SOL-{business_date(now):%Y%m%d}-{suffix}"


def clave_folio_pedido(folio_pedido: str | None) -> str | None:
    """Case- and blank-insensitive key of the external order folio (duplicate detection)."""
    if folio_pedido is None:
        return None
    key = " ".join(folio_pedido.split()).upper()
    return key or None


def rango_fecha_entrega(today: date, *, atrasados_hasta: date | None = None) -> tuple[date, date]:
    """Allowed `fecha_entrega_programada` at creation (§B.4.7, HO-D17 fixed).

    ``[today−30, today+7]``; while `today ≤ atrasados_hasta` (an explicit configured date, not an
    import-time value) the lower bound is 1 January of the current year.
    """
    lower = today - timedelta(days=30)
    if atrasados_hasta is not None and today <= atrasados_hasta:
        lower = date(today.year, 1, 1)
    return lower, today + timedelta(days=7)
