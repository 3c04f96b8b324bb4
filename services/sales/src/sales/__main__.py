"""`python -m sales`: run the sales service alone (port from `SALES_PORT`, default 8002)."""

from __future__ import annotations

from sales.settings import SalesSettings
from service_defaults.runner import run_service
from service_defaults.settings import load_settings


def main() -> None:
    settings = load_settings(SalesSettings)
    run_service(settings, "sales.main:app_from_env", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
