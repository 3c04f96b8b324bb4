"""Correlation context carried from an HTTP request or a consumed event into new events/logs."""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


def current_trace_headers() -> dict[str, str]:
    """Extension attributes for an event produced in the current context."""
    out: dict[str, str] = {}
    if (value := correlation_id.get()) is not None:
        out["correlationid"] = value
    if (value := causation_id.get()) is not None:
        out["causationid"] = value
    if (value := traceparent.get()) is not None:
        out["traceparent"] = value
    return out
