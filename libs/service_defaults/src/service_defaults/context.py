"""Per-request context variables (request id here; correlation/trace ids from nexo_messaging)."""

from __future__ import annotations

from contextvars import ContextVar

from nexo_messaging.context import causation_id, correlation_id, traceparent

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

__all__ = ["causation_id", "correlation_id", "request_id", "traceparent"]
