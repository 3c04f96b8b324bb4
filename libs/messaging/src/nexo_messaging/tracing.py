"""OpenTelemetry spans of the messaging path, following the messaging semantic conventions.

* ``create <topic>`` (PRODUCER) when an event is written to the outbox, child of the current
  span (the HTTP request or the consumer's ``process`` span); its context is the row's
  ``traceparent``;
* ``send <topic>`` (PRODUCER) when the relay publishes the row, child of the row's
  ``traceparent``; the record carries the send span's context (``ce_traceparent`` and the plain
  ``traceparent`` header);
* ``process <topic>`` (CONSUMER) around a handler, child of the record's ``traceparent``.

So one HTTP request and every event it causes form ONE trace.

Off unless a tracer provider was registered (``service_defaults.tracing`` does it when the
``OTEL_*`` variables configure an exporter): every entry point first reads the module flag
:data:`enabled` and returns at once, so the hot paths pay one attribute read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from nexo_messaging import context
from nexo_messaging.transport import OutMessage

enabled = False
"""True once a tracer provider is registered: the only thing the hot paths read when off."""

_tracers: dict[str, Tracer] = {}
_default: Tracer | None = None
_propagator = TraceContextTextMapPropagator()
_TP = "traceparent"
_CE_TP = "ce_traceparent"
SCOPE = "nexo_messaging"


def register(service: str, provider: Any) -> None:
    """Use `provider` (a ``TracerProvider``) for the spans of `service` (several services may
    share a process: the embedded gateway)."""
    global enabled, _default
    tracer = provider.get_tracer(SCOPE)
    _tracers[service] = tracer
    if _default is None:
        _default = tracer
    enabled = True


def reset() -> None:
    """Forget every registered provider (tests)."""
    global enabled, _default
    _tracers.clear()
    _default = None
    enabled = False


def tracer_for(service: str) -> Tracer:
    found = _tracers.get(service) or _default
    return found if found is not None else trace.get_tracer(SCOPE)


def traceparent_of(span: Span) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span (None when there is none)."""
    return traceparent_of(trace.get_current_span())


def _parent(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return _propagator.extract({_TP: traceparent})


def create_span(service: str, topic: str, event_type: str, count: int = 1) -> str | None:
    """Record the ``create`` span of outbox row(s) and return its traceparent (None when
    tracing is off, the row then keeps the request's traceparent)."""
    if not enabled:
        return None
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "create",
        "messaging.operation.name": "outbox insert",
        "messaging.destination.name": topic,
        "nexo.event.type": event_type,
    }
    if count > 1:
        attributes["messaging.batch.message_count"] = count
    parent = (
        _parent(context.traceparent.get()) if not trace.get_current_span().is_recording() else None
    )
    span = tracer_for(service).start_span(
        f"create {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    )
    span.end()
    return traceparent_of(span)


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def start_send_spans(service: str, messages: list[OutMessage]) -> list[Span] | None:
    """Start a ``send`` span per message (child of its traceparent) and replace each message
    (in the list) by one whose headers carry the span's context (end: :func:`end_send_spans`)."""
    if not enabled:
        return None
    tracer = tracer_for(service)
    spans: list[Span] = []
    for i, message in enumerate(messages):
        headers = message.headers
        incoming = _header(headers, _CE_TP) or _header(headers, _TP)
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": message.topic,
        }
        event_id = _header(headers, "ce_id")
        if event_id is not None:
            attributes["messaging.message.id"] = event_id
        if message.key is not None:
            attributes["messaging.kafka.message.key"] = message.key.decode("utf-8", "replace")
        event_type = _header(headers, "ce_type")
        if event_type is not None:
            attributes["nexo.event.type"] = event_type
        span = tracer.start_span(
            f"send {message.topic}",
            context=_parent(incoming),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        spans.append(span)
        tp = traceparent_of(span)
        if tp is not None:
            value = tp.encode()
            kept = [(k, v) for k, v in headers if k not in (_TP, _CE_TP)]
            messages[i] = replace(message, headers=[*kept, (_CE_TP, value), (_TP, value)])
    return spans


def end_send_spans(spans: list[Span] | None, results: Sequence[BaseException | None]) -> None:
    if spans is None:
        return
    for span, result in zip(spans, results, strict=False):
        if result is not None:
            span.record_exception(result)
            span.set_status(Status(StatusCode.ERROR, type(result).__name__))
        span.end()


@contextmanager
def process_span(
    service: str,
    *,
    topic: str,
    group: str,
    event_id: str,
    event_type: str,
    traceparent: str | None,
    partition: int | None = None,
    offset: int | None = None,
) -> Iterator[None]:
    """The ``process`` span of one consumed event, active inside the block; the event context's
    traceparent becomes the span's, so the events the handler writes continue the trace."""
    if not enabled:
        yield
        return
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.message.id": event_id,
        "nexo.event.type": event_type,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    with tracer_for(service).start_as_current_span(
        f"process {topic}",
        context=_parent(traceparent),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        token = context.traceparent.set(traceparent_of(span) or traceparent)
        try:
            yield
        finally:
            context.traceparent.reset(token)
