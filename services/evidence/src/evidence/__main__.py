"""`python -m evidence`: run the evidence service alone (port `EVIDENCE_PORT`, default 8001)."""

from __future__ import annotations

from evidence.settings import EvidenceSettings
from service_defaults.runner import run_service
from service_defaults.settings import load_settings


def main() -> None:
    settings = load_settings(EvidenceSettings)
    run_service(settings, "evidence.main:app_from_env", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
