"""Consumed records to domain events: ``EventMeta`` and the decoders the consumer runner uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.envelope import CloudEvent
from contracts.events.base import DomainEvent
from nexo_messaging.transport import Record


@dataclass(frozen=True)
class EventMeta:
    event_id: str
    type: str
    source: str
    subject: str | None
    time: datetime
    correlationid: str | None
    causationid: str | None
    traceparent: str | None
    topic: str
    partition: int
    offset: int


def event_meta(ce: CloudEvent, rec: Record) -> EventMeta:
    return EventMeta(
        event_id=ce.id,
        type=ce.type,
        source=ce.source,
        subject=ce.subject,
        time=ce.time,
        correlationid=ce.correlationid,
        causationid=ce.causationid,
        traceparent=ce.traceparent,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
    )


def fast_decode(
    rec: Record, types: Mapping[str, type[DomainEvent]]
) -> tuple[type[DomainEvent], DomainEvent, EventMeta] | None:
    """The common case without building a ``CloudEvent``: well-formed headers, a known type and
    a payload the event model accepts (parsed straight from the JSON bytes). Anything unusual
    returns None and goes through ``contracts.codec.decode`` + ``model_validate``, which give
    the same result for what this accepts and classify what it does not (DLQ reasons)."""
    found: dict[str, str] = {}
    try:
        for raw_name, raw_value in rec.headers:
            name = raw_name.lower()
            if name in found:
                continue
            if name.startswith("ce_") or name in ("content-type", "traceparent"):
                if type(raw_value) is not bytes:
                    return None
                found[name] = raw_value.decode()
    except (UnicodeDecodeError, AttributeError):
        return None
    event_id = found.get("ce_id")
    source = found.get("ce_source")
    ce_type = found.get("ce_type")
    when = found.get("ce_time")
    if (
        found.get("ce_specversion") != "1.0"
        or found.get("content-type") != "application/json"
        or not event_id
        or not source
        or not ce_type
        or not when
        or rec.value is None
    ):
        return None
    cls = types.get(ce_type)
    if cls is None:
        return None
    try:
        time_value = datetime.fromisoformat(when)
        if time_value.tzinfo is None or time_value.utcoffset() is None:
            return None
        subject = found.get("ce_subject")
        if subject is None and rec.key is not None:
            subject = rec.key.decode()
        event = cls.model_validate_json(rec.value)
    except (ValueError, UnicodeDecodeError):  # ValidationError is a ValueError
        return None
    traceparent = found.get("ce_traceparent")
    if traceparent is None:
        traceparent = found.get("traceparent")
    meta = EventMeta(
        event_id=event_id,
        type=ce_type,
        source=source,
        subject=subject,
        time=time_value.astimezone(UTC),
        correlationid=found.get("ce_correlationid"),
        causationid=found.get("ce_causationid"),
        traceparent=traceparent,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
    )
    return cls, event, meta
