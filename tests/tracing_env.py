"""What the deployments' ``OTEL_*`` settings do (tests/test_compose.py, tests/test_helm_chart.py).

:func:`check_tracing_env` installs tracing the way a service process does
(``service_defaults.tracing.tracer_provider``) under exactly the given ``OTEL_*`` variables and
checks the effect of each one. A variable without a check here fails: nothing would show that
the services read it (a misspelt or unsupported variable is silently ignored by everyone).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from nexo_messaging import tracing as messaging_tracing
from service_defaults import tracing

EXPORTERS: dict[str, type[Any]] = {"otlp": OTLPSpanExporter, "console": ConsoleSpanExporter}
SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "parentbased_traceidratio": ParentBasedTraceIdRatio,
    "traceidratio": TraceIdRatioBased,
    "parentbased_always_on": lambda _ratio: ParentBased(ALWAYS_ON),
}
RATIO_SAMPLERS = {"parentbased_traceidratio", "traceidratio"}


def otel_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("OTEL_")}


def _check_exporter(env: Mapping[str, str], provider: TracerProvider) -> None:
    names = [n.strip().lower() for n in env["OTEL_TRACES_EXPORTER"].split(",")]
    assert all(n in EXPORTERS for n in names), f"OTEL_TRACES_EXPORTER: unknown entry in {names}"
    assert [type(e) for e in tracing._exporters()] == [EXPORTERS[n] for n in names]


def _check_endpoint(env: Mapping[str, str], provider: TracerProvider) -> None:
    otlp = [e for e in tracing._exporters() if isinstance(e, OTLPSpanExporter)]
    assert otlp, "OTEL_EXPORTER_OTLP_ENDPOINT set, but no OTLP exporter installed"
    expected = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    assert [e._endpoint for e in otlp] == [expected]


def _check_service_name(env: Mapping[str, str], provider: TracerProvider) -> None:
    assert provider.resource.attributes["service.name"] == env["OTEL_SERVICE_NAME"]


def _expected_sampler(env: Mapping[str, str]) -> Sampler:
    name = env["OTEL_TRACES_SAMPLER"]
    assert name in SAMPLERS, f"OTEL_TRACES_SAMPLER={name!r}: no check for this sampler"
    return SAMPLERS[name](float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")))


def _check_sampler(env: Mapping[str, str], provider: TracerProvider) -> None:
    assert provider.sampler.get_description() == _expected_sampler(env).get_description()


def _check_sampler_arg(env: Mapping[str, str], provider: TracerProvider) -> None:
    sampler = env.get("OTEL_TRACES_SAMPLER")
    assert sampler in RATIO_SAMPLERS, (
        f"OTEL_TRACES_SAMPLER_ARG is read only by {sorted(RATIO_SAMPLERS)}, not {sampler!r}"
    )
    ratio = float(env["OTEL_TRACES_SAMPLER_ARG"])
    assert 0.0 <= ratio <= 1.0
    assert f"TraceIdRatioBased{{{ratio}}}" in provider.sampler.get_description()


CHECKS: dict[str, Callable[[Mapping[str, str], TracerProvider], None]] = {
    "OTEL_TRACES_EXPORTER": _check_exporter,
    "OTEL_EXPORTER_OTLP_ENDPOINT": _check_endpoint,
    "OTEL_SERVICE_NAME": _check_service_name,
    "OTEL_TRACES_SAMPLER": _check_sampler,
    "OTEL_TRACES_SAMPLER_ARG": _check_sampler_arg,
}


def check_tracing_env(env: Mapping[str, str], service: str) -> None:
    """The ``OTEL_*`` variables of `env` switch tracing on for `service` and each one has the
    effect it names. Process state (providers, the messaging module's tracers) is restored."""
    otel = otel_env(env)
    unchecked = sorted(set(otel) - set(CHECKS))
    assert not unchecked, f"{service}: OTEL_* variables nothing is shown to read: {unchecked}"
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("OTEL_"):
                mp.delenv(key)
        for key, value in otel.items():
            mp.setenv(key, value)
        mp.setattr(tracing, "_providers", {})
        mp.setattr(tracing, "extra_span_processors", [])
        mp.setattr(tracing, "_set_global", lambda provider: None)
        for name in ("_tracers", "_default", "enabled"):
            mp.setattr(messaging_tracing, name, getattr(messaging_tracing, name))
        mp.setattr(messaging_tracing, "_tracers", {})
        assert tracing.tracing_configured(), f"{service}: these OTEL_* leave tracing off: {otel}"
        provider = tracing.tracer_provider(service)
        assert isinstance(provider, TracerProvider)
        try:
            for key in otel:
                CHECKS[key](otel, provider)
        finally:
            provider.shutdown()
