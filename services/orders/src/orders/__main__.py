"""`python -m orders`: run the orders service alone (port from `ORDERS_PORT`, default 8003)."""

from __future__ import annotations

from orders.settings import OrdersSettings
from service_defaults.runner import run_service
from service_defaults.settings import load_settings


def main() -> None:
    settings = load_settings(OrdersSettings)
    run_service(settings, "orders.main:app_from_env", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
