"""Dead letters: publishing poison records to ``<topic>.dlq``, listing, replaying, discarding.

A dead letter keeps the original key, value and headers and adds ``x-dlq-*`` error headers.
Replay re-publishes the original record (without the ``x-dlq-*`` headers) to the original topic;
replays and discards are recorded in the audit topic ``nexo.dlq.audit``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from nexo_messaging.errors import MessagingError
from nexo_messaging.transport import OutMessage, Record, Transport

DLQ_SUFFIX = ".dlq"
AUDIT_TOPIC = "nexo.dlq.audit"
H_REASON = "x-dlq-reason"
H_ERROR = "x-dlq-error"
H_TOPIC = "x-dlq-original-topic"
H_PARTITION = "x-dlq-original-partition"
H_OFFSET = "x-dlq-original-offset"
H_GROUP = "x-dlq-consumer-group"
H_FAILED_AT = "x-dlq-failed-at"


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def dead_letter_message(
    record: Record, *, reason: str, error: str, consumer_group: str
) -> OutMessage:
    extra = [
        (H_REASON, reason.encode()),
        (H_ERROR, error[:4000].encode("utf-8", "replace")),
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_GROUP, consumer_group.encode()),
        (H_FAILED_AT, datetime.now(UTC).isoformat().encode()),
    ]
    original = [(k, v) for k, v in record.headers if not k.lower().startswith("x-dlq-")]
    return OutMessage(
        topic=dlq_topic(record.topic), key=record.key, value=record.value, headers=original + extra
    )


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    partition: int
    offset: int
    id: str | None
    type: str | None
    reason: str | None
    error: str | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    consumer_group: str | None
    failed_at: str | None
    key: str | None
    status: str = "pending"  # pending | replayed | discarded


def _text(record: Record, name: str) -> str | None:
    value = record.header(name)
    return value.decode("utf-8", "replace") if value is not None else None


def _int(record: Record, name: str) -> int | None:
    value = _text(record, name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def to_dead_letter(record: Record, status: str = "pending") -> DeadLetter:
    return DeadLetter(
        dlq_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        id=_text(record, "ce_id"),
        type=_text(record, "ce_type"),
        reason=_text(record, H_REASON),
        error=_text(record, H_ERROR),
        original_topic=_text(record, H_TOPIC),
        original_partition=_int(record, H_PARTITION),
        original_offset=_int(record, H_OFFSET),
        consumer_group=_text(record, H_GROUP),
        failed_at=_text(record, H_FAILED_AT),
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        status=status,
    )


async def _audit_status(transport: Transport) -> dict[tuple[str, int, int], str]:
    if AUDIT_TOPIC not in await transport.list_topics():
        return {}
    out: dict[tuple[str, int, int], str] = {}
    for rec in await transport.read_records(AUDIT_TOPIC, limit=100_000):
        try:
            entry = json.loads(rec.value or b"{}")
            out[(entry["dlq_topic"], int(entry["partition"]), int(entry["offset"]))] = entry[
                "action"
            ]
        except (ValueError, KeyError, TypeError):
            continue
    return out


async def list_dead_letters(
    transport: Transport, topic: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Dead letters of ``topic`` (a main topic or its DLQ name), or of every DLQ topic."""
    topics = await transport.list_topics()
    if topic is None:
        names = sorted(t for t in topics if t.endswith(DLQ_SUFFIX))
    else:
        name = topic if topic.endswith(DLQ_SUFFIX) else dlq_topic(topic)
        names = [name] if name in topics else []
    status = await _audit_status(transport)
    out: list[DeadLetter] = []
    for name in names:
        for rec in await transport.read_records(name, limit=limit - len(out)):
            out.append(
                to_dead_letter(rec, status.get((rec.topic, rec.partition, rec.offset), "pending"))
            )
        if len(out) >= limit:
            break
    return out


async def _publish(transport: Transport, messages: list[OutMessage]) -> None:
    producer = transport.producer()
    await producer.start()
    try:
        results = await producer.send_many(messages)
    finally:
        await producer.stop()
    errors = [r for r in results if r is not None]
    if errors:
        raise MessagingError(f"publish failed: {errors[0]!r}")


async def _audit(
    transport: Transport, action: str, dlq: str, partition: int, offset: int, note: str | None
) -> OutMessage:
    entry = {
        "action": action,
        "dlq_topic": dlq,
        "partition": partition,
        "offset": offset,
        "note": note,
        "at": time.time(),
    }
    return OutMessage(topic=AUDIT_TOPIC, key=dlq.encode(), value=json.dumps(entry).encode())


async def _read_one(transport: Transport, dlq: str, partition: int, offset: int) -> Record:
    records = await transport.read_records(dlq, partition=partition, offset=offset, limit=1)
    if not records or records[0].offset != offset:
        raise MessagingError(f"no dead letter at {dlq}[{partition}]@{offset}")
    return records[0]


async def replay(
    transport: Transport, dlq: str, partition: int, offset: int, *, note: str | None = None
) -> DeadLetter:
    """Re-publish the original record of a dead letter to its original topic."""
    record = await _read_one(transport, dlq, partition, offset)
    letter = to_dead_letter(record, "replayed")
    original_topic = letter.original_topic or dlq.removesuffix(DLQ_SUFFIX)
    headers = [(k, v) for k, v in record.headers if not k.lower().startswith("x-dlq-")]
    await _publish(
        transport,
        [
            OutMessage(topic=original_topic, key=record.key, value=record.value, headers=headers),
            await _audit(transport, "replayed", dlq, partition, offset, note),
        ],
    )
    return letter


async def discard(
    transport: Transport, dlq: str, partition: int, offset: int, *, note: str | None = None
) -> DeadLetter:
    """Record that a dead letter was looked at and deliberately not replayed."""
    record = await _read_one(transport, dlq, partition, offset)
    await _publish(transport, [await _audit(transport, "discarded", dlq, partition, offset, note)])
    return to_dead_letter(record, "discarded")
