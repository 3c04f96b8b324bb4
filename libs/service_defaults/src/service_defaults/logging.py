"""structlog set-up: JSON lines (console renderer in dev) with request/correlation/trace ids."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from nexo_messaging import tracing
from service_defaults import context

_configured: tuple[str, bool] | None = None


def add_context_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Bind request_id, correlation_id and traceparent from the current context."""
    for name, var in (
        ("request_id", context.request_id),
        ("correlation_id", context.correlation_id),
        ("traceparent", context.traceparent),
    ):
        value = var.get()
        if value is not None:
            event_dict.setdefault(name, value)
    return event_dict


def add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``trace_id``/``span_id`` of the active OpenTelemetry span (only when tracing is on)."""
    if tracing.enabled:
        ctx = tracing.trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event_dict.setdefault("trace_id", f"{ctx.trace_id:032x}")
            event_dict.setdefault("span_id", f"{ctx.span_id:016x}")
    return event_dict


def configure_logging(level: str = "INFO", *, json: bool = True, force: bool = False) -> None:
    """Configure structlog and route stdlib logging (uvicorn, alembic, ...) through it.

    Idempotent: several apps in one process (the embedded gateway) may call it.
    """
    global _configured
    if _configured == (level, json) and not force:
        return
    _configured = (level, json)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_context_ids,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs access lines
    for noisy in ("alembic.runtime.plugins", "httpx", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _identity(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger.bind(**initial) if initial else logger
