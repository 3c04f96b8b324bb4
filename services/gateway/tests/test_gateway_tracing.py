"""OpenTelemetry on the embedded gateway (in-memory transport, spans kept in memory): one POS
sale is ONE trace from the gateway's server span to the stock consumer's StockLow/Shortage
publication, and nothing is traced (or installed) when the ``OTEL_*`` variables are unset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_messaging import tracing as messaging_tracing
from nexo_testing import app_client
from sales.api import VENDEDOR
from service_defaults import tracing
from service_defaults.logging import add_trace_ids

from .gateway_testkit import bearer, wait_for

SALE = {  # the demo's "Acrílico negro 5mm" (stock 4, minimum 3): a whole sheet crosses it
    "carrito": [
        {"producto_id": 1, "material_id": 2, "largo": "120", "ancho": "60", "espesor_mm": 5}
    ],
    "permitir_backorder": True,
}


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    memory = InMemorySpanExporter()
    tracing.extra_span_processors.append(SimpleSpanProcessor(memory))
    try:
        yield memory
    finally:
        tracing.extra_span_processors.clear()
        tracing.shutdown_tracing()


def _trace_of(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _parent(span: ReadableSpan) -> int:
    assert span.parent is not None, span.name
    return span.parent.span_id


def _names(spans: list[ReadableSpan]) -> list[str]:
    return [f"{s.resource.attributes['service.name']!s}:{s.name}" for s in spans]


async def test_one_sale_is_one_trace(tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", env="dev"))
    assert messaging_tracing.enabled
    assert getattr(app, "_is_instrumented_by_opentelemetry", False)
    async with app_client(app, "http://gw", timeout=20) as client:
        r = await client.post("/api/sales/ventas", json=SALE, headers=bearer([VENDEDOR]))
        assert r.status_code == 201, r.text
        trace_id = int(r.headers["traceparent"].split("-")[1], 16)

        async def stock_published() -> list[ReadableSpan]:
            found = _trace_of(exporter.get_finished_spans(), trace_id)
            sends = [s for s in found if s.name.startswith("send ")]
            stock = [
                s for s in sends if "Stock" in str((s.attributes or {}).get("nexo.event.type"))
            ]
            return found if stock else []

        spans = await wait_for(stock_published, "the StockLow/StockShortage send span", 30)

    names = _names(spans)
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    assert [s.name for s in spans if s.kind == SpanKind.SERVER] == ["POST /api/sales"]
    assert any(n.startswith("gateway:POST") for n in names), names
    assert any(n.startswith("sales:POST") for n in names), names
    create_sale = next(s for s in spans if s.name == "create sales.sales")
    send_sale = next(s for s in spans if s.name == "send sales.sales")
    process = next(s for s in spans if s.name == "process sales.sales")
    stock_send = next(
        s
        for s in spans
        if s.name.startswith("send ") and "Stock" in str(s.attributes["nexo.event.type"])
    )
    # the chain: server → create → send → process → create → send
    # the chain: the service's request span (INTERNAL: mounted under the gateway's SERVER
    # span) → create → send → process → create → send
    assert by_id[_parent(create_sale)].name == "POST /ventas"
    assert _parent(send_sale) == _id(create_sale)
    assert _parent(process) == _id(send_sale)
    assert process.kind == SpanKind.CONSUMER
    assert process.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == "sales.stock"
    stock_create = by_id[_parent(stock_send)]
    assert stock_create.name.startswith("create ")
    assert _parent(stock_create) == _id(process)
    assert send_sale.kind == stock_send.kind == SpanKind.PRODUCER
    # save → GPU sync (the evidence demo seed saved productions at start-up): the same chain
    every = list(exporter.get_finished_spans())
    gpu_process = next(s for s in every if s.name == "process evidence.production")
    gpu_send = next(
        s
        for s in every
        if s.name == "send evidence.gpu" and s.context.trace_id == gpu_process.context.trace_id
    )
    assert {s.resource.attributes["service.name"] for s in (gpu_process, gpu_send)} == {"evidence"}
    all_by_id = {_id(s): s for s in every}
    assert all_by_id[_parent(gpu_process)].name == "send evidence.production"
    assert _parent(all_by_id[_parent(gpu_send)]) == _id(gpu_process)
    # SQL spans of the services' engines in the same trace (the consumer's inbox insert)
    assert any(
        s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in spans
    ), names


def test_log_lines_carry_trace_and_span_ids(exporter: InMemorySpanExporter) -> None:
    provider = tracing.tracer_provider("sales")
    assert provider is not None
    with provider.get_tracer("t").start_as_current_span("work") as span:
        event = add_trace_ids(None, "info", {"event": "x"})
    ctx = span.get_span_context()
    assert event["trace_id"] == f"{ctx.trace_id:032x}"
    assert event["span_id"] == f"{ctx.span_id:016x}"
    assert "trace_id" not in add_trace_ids(None, "info", {"event": "outside"})
    structlog.contextvars.clear_contextvars()


async def test_tracing_off_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.tracing_configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.tracing_configured()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.tracing_configured()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    assert tracing.tracing_configured()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", env="test"))
    assert not messaging_tracing.enabled
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert not any(
        getattr(a, "_is_instrumented_by_opentelemetry", False) for a in app.state.services.values()
    )
