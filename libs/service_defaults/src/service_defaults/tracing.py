"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables and OFF unless they
ask for an exporter.

On when ``OTEL_SDK_DISABLED`` is not true, ``OTEL_TRACES_EXPORTER`` is not ``none`` and an
exporter is named: ``OTEL_TRACES_EXPORTER=otlp|console`` or an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, OTLP over HTTP/protobuf,
e.g. ``http://127.0.0.1:4318``). The SDK reads the rest itself: ``OTEL_TRACES_SAMPLER``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS`` ...

Each service gets its own ``TracerProvider`` (resource ``service.name`` = ``OTEL_SERVICE_NAME``
or the service's name), so the embedded gateway, which runs every service in one process, still
shows one service per hop. What is traced when on:

* HTTP server spans (``opentelemetry-instrumentation-fastapi``, health and metrics excluded);
* SQL spans per engine (``opentelemetry-instrumentation-sqlalchemy``);
* the gateway's proxy client spans (``gateway.upstream``), the messaging spans
  (``nexo_messaging.tracing``); the ``traceparent`` of requests, outbox rows and records is
  the active span's.

When off nothing is installed: no middleware, no engine hooks; the hot paths read one flag.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from nexo_messaging import tracing as messaging_tracing
from service_defaults.logging import get_logger

log = get_logger("service_defaults.tracing")

EXCLUDED_URLS = "/health/live,/health/ready,/metrics,/ops/api/.*,/ops/static/.*"
_providers: dict[str, Any] = {}
extra_span_processors: list[Any] = []
"""Span processors added to every provider created from now on (tests: an in-memory exporter)."""


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def tracing_configured() -> bool:
    """Whether the ``OTEL_*`` variables ask for trace export (see the module docstring)."""
    if extra_span_processors:
        return True
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return False
    exporter = _env("OTEL_TRACES_EXPORTER").lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or _env("OTEL_EXPORTER_OTLP_ENDPOINT")
        or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracer_provider(service: str) -> Any | None:
    """The provider of `service` (created on first use), or None when tracing is off."""
    if not tracing_configured():
        return None
    provider = _providers.get(service)
    if provider is not None:
        return provider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = _env("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in extra_span_processors:
        provider.add_span_processor(processor)
    _providers[service] = provider
    messaging_tracing.register(service, provider)
    _set_global(provider)
    if len(_providers) == 1:
        atexit.register(shutdown_tracing)
    log.info("tracing on", service=name, exporters=_env("OTEL_TRACES_EXPORTER") or "otlp")
    return provider


def _set_global(provider: Any) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import ProxyTracerProvider

    if isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def _exporters() -> list[Any]:
    if not (
        _env("OTEL_TRACES_EXPORTER")
        or _env("OTEL_EXPORTER_OTLP_ENDPOINT")
        or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return []  # only the test processors
    names = [n.strip().lower() for n in (_env("OTEL_TRACES_EXPORTER") or "otlp").split(",")]
    out: list[Any] = []
    for name in names:
        if name == "otlp":
            protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env(
                "OTEL_EXPORTER_OTLP_PROTOCOL"
            )
            if protocol and protocol != "http/protobuf":
                log.warning("only OTLP over http/protobuf is installed", protocol=protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append(ConsoleSpanExporter())
        elif name:
            log.warning("unknown OTEL_TRACES_EXPORTER entry ignored", exporter=name)
    return out


def force_flush(timeout_ms: int = 5000) -> None:
    for provider in _providers.values():
        provider.force_flush(timeout_ms)


def shutdown_tracing() -> None:
    """Flush and stop every provider (process exit; tests)."""
    for provider in _providers.values():
        provider.shutdown()
    _providers.clear()
    messaging_tracing.reset()


def instrument_app(app: Any, service: str) -> None:
    """Server spans for a FastAPI app (no-op when tracing is off)."""
    provider = tracer_provider(service)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


def instrument_engine(engine: Any, service: str) -> None:
    """SQL spans for an ``AsyncEngine`` (no-op when tracing is off)."""
    provider = tracer_provider(service)
    if provider is None:
        return
    # EngineTracer per engine: SQLAlchemyInstrumentor is a process-wide singleton (it would
    # instrument only the first engine, and patch create_engine globally)
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    usage = NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections")
    EngineTracer(
        provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine.sync_engine, usage
    )
