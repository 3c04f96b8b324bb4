"""Settings of the orders service (environment variables prefixed `ORDERS_`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_defaults.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    service_name: str = "orders"
    database_url: str = "sqlite+aiosqlite:///./var/orders.db"
    host: str = "127.0.0.1"
    port: int = 8003
    # orders domain (DOMAIN Part B)
    min_shelf_life_days: int = Field(default=60, ge=0, le=3650)
    """A lot is eligible only if caducidad > business today + this many days [DECIDE-B1]."""
    fefo_natural_sort: bool = False
    """Natural instead of byte-wise ordering of lot numbers and location codes [DECIDE-B7]."""
    fecha_limite_atrasados: date | None = None
    """While today ≤ this date, delivery dates from 1 January are accepted (HO-D17)."""
