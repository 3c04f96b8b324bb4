"""Outbox rows to CloudEvents binary-mode Kafka records: what the relay sends.

Hot path: :class:`RowEncoder` builds exactly what ``contracts.codec.encode(CloudEvent(...))``
gives without re-validating the envelope (the event was validated when enqueued); a test keeps
both equal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row

from contracts.codec import (
    CE_PREFIX,
    CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    TRACEPARENT_HEADER,
    format_time,
)
from contracts.envelope import EXTENSIONS
from nexo_messaging.transport import OutMessage


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def row_to_message(row: Row[Any], default_source: str) -> OutMessage:
    """Outbox row → CloudEvents binary-mode Kafka record.

    Hot path: builds exactly what ``contracts.codec.encode(CloudEvent(...))`` gives without
    re-validating the envelope (the event was validated when enqueued); a test keeps both equal.
    Rows claimed by the relay carry ``payload_text``/``headers_text`` (the stored JSON text,
    emitted verbatim); plain outbox rows (``payload`` as a dict) are serialised here.
    """
    return RowEncoder(default_source).encode(row)


_SPECVERSION = ("ce_specversion", b"1.0")
_CONTENT_TYPE = (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())
_CORRELATION = CE_PREFIX + "correlationid"
assert EXTENSIONS[0] == "correlationid"  # the order of the ce_ extension headers


class RowEncoder:
    """Encodes outbox rows with small caches (source per type, ``ce_time`` per timestamp)."""

    def __init__(self, default_source: str) -> None:
        self.default_source = default_source
        self._types: dict[str, tuple[tuple[str, bytes], tuple[str, bytes]]] = {}
        self._times: dict[Any, tuple[str, bytes]] = {}

    def _type_headers(self, event_type: str) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
        cached = self._types.get(event_type)
        if cached is None:
            parts = event_type.split(".")
            source = (
                f"/services/{parts[1]}"
                if len(parts) >= 4 and parts[0] == "nexo"
                else self.default_source
            )
            cached = (("ce_source", source.encode()), ("ce_type", event_type.encode()))
            if len(self._types) > 1000:
                self._types.clear()
            self._types[event_type] = cached
        return cached

    def _time_header(self, created_at: datetime | None) -> tuple[str, bytes]:
        cached = self._times.get(created_at) if created_at is not None else None
        if cached is None:
            when = (utc(created_at) or datetime.now(UTC)).astimezone(UTC)
            cached = ("ce_time", format_time(when).encode())
            if created_at is not None:
                if len(self._times) > 1000:
                    self._times.clear()
                self._times[created_at] = cached
        return cached

    def encode(self, row: Any) -> OutMessage:
        """Any outbox row (``select(outbox)``, payload as a dict, or a claimed row)."""
        mapping = row._mapping
        if "payload_text" in mapping:
            return self.encode_claimed(tuple(row))
        return self._build(
            row.id,
            row.aggregateid,
            str(row.type),
            row.topic,
            json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")),
            row.headers or {},
            row.created_at,
        )

    def encode_claimed(self, row: Sequence[Any]) -> OutMessage:
        """A row read with ``relay_store.claimed_columns`` (JSON columns as their stored text)."""
        _seq, event_id, _atype, aggregateid, event_type, topic, payload, headers, created_at = row[
            :9
        ]
        extra: dict[str, Any] = json.loads(headers) if headers and headers != "{}" else {}
        return self._build(event_id, aggregateid, event_type, topic, payload, extra, created_at)

    def _build(
        self,
        event_id: str,
        subject: str | None,
        event_type: str,
        topic: str,
        payload: str,
        extra: dict[str, Any],
        created_at: datetime | None,
    ) -> OutMessage:
        source, ce_type = self._type_headers(event_type)
        headers: list[tuple[str, bytes]] = [
            _SPECVERSION,
            ("ce_id", event_id.encode()),
            source,
            ce_type,
            self._time_header(created_at),
        ]
        key = None
        if subject is not None:
            key = subject.encode()
            headers.append(("ce_subject", key))
        headers.append(_CONTENT_TYPE)
        if extra:
            values = {
                "correlationid": extra.get("correlationid") or event_id,
                "causationid": extra.get("causationid"),
                "traceparent": extra.get("traceparent"),
            }
            for name in EXTENSIONS:
                if (value := values.get(name)) is not None:
                    headers.append((CE_PREFIX + name, str(value).encode()))
            if values["traceparent"] is not None:
                headers.append((TRACEPARENT_HEADER, str(values["traceparent"]).encode()))
        else:  # the correlation id defaults to the event id; no other extension
            headers.append((_CORRELATION, event_id.encode()))
        return OutMessage(topic=topic, key=key, value=payload.encode(), headers=headers)
