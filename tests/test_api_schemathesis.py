"""Schemathesis over every operation of the OpenAPI documents, in process (ASGI):

- the embedded gateway (the merged document, three services on SQLite),
- each service on PostgreSQL (the ``pg_database`` fixture).

Checks: no 5xx, every status / content type documented, every body valid against its
documented schema. Positive and negative examples, a few per operation (bounded, derandomised:
the same cases every run, a few minutes in CI). Any finding fails the test with schemathesis'
reproduction (a curl command) per operation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service_defaults.auth import issue_token
from service_defaults.settings import CommonSettings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = int(os.environ.get("NEXO_FUZZ_EXAMPLES", "6"))
"""Examples per operation and generation mode (raise locally for a deeper run)."""

EXCLUDED: dict[str, str] = {
    "GET /ops/api/events/stream": "server-sent events: an endless stream, not a request/answer",
    # dev-login answers 404 outside dev mode, undocumented: the gateway-edge part of issue 14
    # (dev-login, rate limits, body limits) reworks this route; include it again after that.
    "GET /ops/dev-login": "reworked by the gateway-edge part of issue 14",
    "POST /ops/dev-login": "reworked by the gateway-edge part of issue 14",
}
"""Operations not fuzzed, each with why."""


def fuzz(app: Any, app_settings: CommonSettings, *, prefix: str = "") -> list[str]:
    """Run every operation of `app`'s OpenAPI document; the findings, one line block each."""
    spec = app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = app
    headers = {"Authorization": f"Bearer {issue_token(app_settings, 'fuzz', ['admin', 'ops'])}"}
    findings: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            findings.append(f"invalid operation in the OpenAPI document: {result.err()}")
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in EXCLUDED or label.startswith(prefix + "/health"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing can be invalid (no inputs)
            except (Exception, BaseExceptionGroup) as exc:  # one finding per operation and mode
                findings.append(f"{label} [{mode.value}]: {exc}")
    return findings


@contextlib.contextmanager
def lifespans() -> Iterator[None]:
    """Schemathesis starts each app's lifespan on first use; stop them with the test."""
    try:
        yield
    finally:
        shutdown_lifespans()


def test_embedded_gateway_conforms(tmp_path: Path) -> None:
    from gateway.main import create_app
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(
        data_dir=tmp_path / "var",
        env="test",
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
    )
    with lifespans():
        findings = fuzz(create_app(settings), settings)
    assert not findings, "\n\n".join(findings)


@pytest.mark.integration
@pytest.mark.parametrize("service", ["evidence", "sales", "orders"])
def test_service_on_postgres_conforms(service: str, pg_database: str) -> None:
    from evidence.main import create_app as evidence_app
    from evidence.settings import EvidenceSettings
    from orders.main import create_app as orders_app
    from orders.settings import OrdersSettings
    from sales.main import create_app as sales_app
    from sales.settings import SalesSettings

    factories: dict[str, tuple[Any, Any]] = {
        "evidence": (evidence_app, EvidenceSettings),
        "sales": (sales_app, SalesSettings),
        "orders": (orders_app, OrdersSettings),
    }
    create_app, settings_cls = factories[service]
    settings = settings_cls(env="test", database_url=pg_database, transport="memory")
    with lifespans():
        findings = fuzz(create_app(settings), settings)
    assert not findings, "\n\n".join(findings)
