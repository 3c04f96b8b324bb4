"""Response models of the gateway's own routes (index, ops API and board), documented in the
merged OpenAPI document. They describe the dictionaries the ops context builds; routes whose
answers carry keys only in some cases (a proxy circuit, a lag error) answer with
``response_model_exclude_unset`` so those keys stay absent rather than ``null``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from nexo_messaging.dlq import DeadLetter


class GatewayIndex(BaseModel):
    name: str
    mode: str
    docs: str
    openapi: str
    health: dict[str, str]
    services: dict[str, str]
    ops: dict[str, str]


class DevLoginAvailability(BaseModel):
    available: bool


class DevToken(BaseModel):
    access_token: str
    token_type: str
    roles: list[str]
    expires_in: int


class OpsUserInfo(BaseModel):
    sub: str
    name: str
    roles: list[str]


class DashboardConfig(BaseModel):
    mode: str
    env: str
    services: list[str]
    grid_url: str | None
    user: OpsUserInfo


# -- health ---------------------------------------------------------------------------------
class ServiceHealth(BaseModel):
    status: Literal["up", "down"]
    detail: dict[str, Any]
    proxy: dict[str, Any] | None = None  # proxy mode: the circuit of the service's upstream


class BrokerHealth(BaseModel):
    kind: str
    status: Literal["ok", "failing"]
    topics: int | None = None
    error: str | None = None


class DatabaseHealth(BaseModel):
    kind: str
    status: Literal["ok", "unknown", "failing"]


class PostgresqlHealth(BaseModel):
    status: str
    databases: dict[str, DatabaseHealth]


class FeedHealth(BaseModel):
    running: bool
    buffered: int
    last_poll_age_s: float | None
    last_error: str | None


class OpsHealth(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, ServiceHealth]
    kafka: BrokerHealth
    postgresql: PostgresqlHealth
    ops_feed: FeedHealth


# -- topics and lag -------------------------------------------------------------------------
class PartitionEnd(BaseModel):
    partition: int
    end_offset: int


class GroupLag(BaseModel):
    lag: int | None
    partitions: dict[int, int]
    error: str | None = None  # when the lag is unknown


class TopicEntry(BaseModel):
    topic: str
    partitions: list[PartitionEnd]
    end_offset_total: int
    groups: dict[str, GroupLag]


class TopicsReport(BaseModel):
    topics: list[TopicEntry]
    lag_age_s: float | None
    lag_error: str | None


# -- outbox ---------------------------------------------------------------------------------
class OutboxEntry(BaseModel):
    status: Literal["ok", "unknown"]
    backlog: int | None = None
    oldest_age_s: float | None = None
    error: str | None = None


class OutboxReport(BaseModel):
    services: dict[str, OutboxEntry]


# -- dead letters and audit -----------------------------------------------------------------
class DeadLetters(BaseModel):
    dead_letters: list[DeadLetter]


class AuditEntry(BaseModel):
    """Who did what to which dead letter, when (what the action names: further fields)."""

    model_config = ConfigDict(extra="allow")

    at: str | None = None
    sub: str | None = None
    name: str | None = None
    action: str | None = None


class AuditEntries(BaseModel):
    entries: list[AuditEntry]


class DlqActionResult(BaseModel):
    dead_letter: DeadLetter
    audit: AuditEntry


# -- events ---------------------------------------------------------------------------------
class StockShortageView(BaseModel):
    """A StockShortage of any version, read as v2 (a v1 record: origen ``venta``)."""

    id_material: int
    nombre: str
    stock_actual: int
    faltante: int
    origen: str | None
    id_venta: int | None
    id_movimiento: int | None
    source_event_id: str | None


class OpsEvent(BaseModel):
    """One consumed record as the board shows it."""

    seq: int
    topic: str
    partition: int
    offset: int
    key: str | None
    type: str
    id: str | None
    subject: str | None
    source: str | None
    time: str
    correlation_id: str | None
    trace_id: str | None
    dlq: bool
    dlq_error: str | None
    payload: Any
    shortage: StockShortageView | None = None


class EventRate(BaseModel):
    per_minute: float
    per_second: float
    total: float


class RecentEvents(BaseModel):
    events: list[OpsEvent]
    rates: dict[str, EventRate]


class OpsSummary(BaseModel):
    """Everything the dashboard shows."""

    at: str
    health: OpsHealth
    topics: list[TopicEntry]
    lag_age_s: float | None
    lag_error: str | None
    outbox: dict[str, OutboxEntry]
    dead_letters: list[DeadLetter]
    rates: dict[str, EventRate]
    audit: list[AuditEntry]


# -- board history and traces ---------------------------------------------------------------
class HistorySample(BaseModel):
    t: float
    events: dict[str, float]
    lag: dict[str, int]
    outbox: dict[str, dict[str, Any]]
    http: dict[str, dict[str, float | None]]


class HistoryReport(BaseModel):
    interval_s: float
    samples: list[HistorySample]


class TimelineSpan(BaseModel):
    trace_id: str
    span_id: str
    service: str
    name: str
    kind: str | None
    start_us: int
    duration_us: int
    depth: int
    error: bool


class TraceTimeline(BaseModel):
    q: str
    trace_ids: list[str]
    source: Literal["jaeger", "board"]
    backend_error: str | None
    spans: list[TimelineSpan]
    events: list[OpsEvent]


SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events (`event: nexo`, `data:` one event as JSON)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
"""The OpenAPI answer of a server-sent-event stream."""
