"""CloudEvents Kafka protocol binding, **binary content mode**.

Mapping (verified against the ``cloudevents`` SDK in ``test_contracts_codec.py``):

* every context attribute except ``datacontenttype`` and ``data`` → header ``ce_<name>``
  (UTF-8), including the extensions: ``ce_correlationid``, ``ce_causationid``, ``ce_traceparent``;
* ``datacontenttype`` → header ``content-type`` (always ``application/json``);
* ``time`` → ``ce_time`` as RFC 3339 UTC (``2025-01-31T12:00:00.123456Z``);
* ``data`` → the record value, compact UTF-8 JSON;
* Kafka key = ``subject`` (the aggregate id) UTF-8 encoded; no subject → null key.

Interoperability: the W3C trace context is **also** written as a plain ``traceparent`` header
(what OpenTelemetry's Kafka instrumentations read and write). On decode ``ce_traceparent`` wins;
a plain ``traceparent`` header is used when the ``ce_`` one is absent. Header names are matched
case-insensitively on decode; unknown headers (e.g. DLQ error headers) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.envelope import EXTENSIONS, CloudEvent

__all__ = [
    "CE_PREFIX",
    "CONTENT_TYPE",
    "CONTENT_TYPE_HEADER",
    "REQUIRED_HEADERS",
    "TRACEPARENT_HEADER",
    "DecodeError",
    "KafkaRecord",
    "decode",
    "encode",
    "format_time",
    "header",
]

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
CONTENT_TYPE = "application/json"
TRACEPARENT_HEADER = "traceparent"
REQUIRED_HEADERS: tuple[str, ...] = ("ce_specversion", "ce_id", "ce_source", "ce_type")
_OPTIONAL_ATTRIBUTES: tuple[str, ...] = ("subject", "time", *EXTENSIONS)


class DecodeError(ValueError):
    """A Kafka record is not a valid Nexo CloudEvent (binary mode). The message says why."""


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> bytes | None:
        return header(self.headers, name)


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    """First value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def encode(ce: CloudEvent) -> KafkaRecord:
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", ce.specversion.encode()),
        ("ce_id", ce.id.encode()),
        ("ce_source", ce.source.encode()),
        ("ce_type", ce.type.encode()),
        ("ce_time", format_time(ce.time).encode()),
    ]
    if ce.subject is not None:
        headers.append(("ce_subject", ce.subject.encode()))
    headers.append((CONTENT_TYPE_HEADER, ce.datacontenttype.encode()))
    for name, value in ce.extensions().items():
        headers.append((CE_PREFIX + name, value.encode()))
    if ce.traceparent is not None:
        headers.append((TRACEPARENT_HEADER, ce.traceparent.encode()))
    payload = json.dumps(ce.data, ensure_ascii=False, separators=(",", ":")).encode()
    key = ce.subject.encode() if ce.subject is not None else None
    return KafkaRecord(key=key, value=payload, headers=headers)


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"header {name!r} is not valid UTF-8") from None


def decode(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> CloudEvent:
    """Rebuild the CloudEvent of a binary-mode record; raise :class:`DecodeError` if it is not
    one (missing/invalid ``ce_*`` headers, wrong content type, missing or non-object JSON)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name in found:
            continue
        if name.startswith(CE_PREFIX) or name in (CONTENT_TYPE_HEADER, TRACEPARENT_HEADER):
            if not isinstance(raw_value, bytes | bytearray):
                raise DecodeError(f"header {raw_name!r} must be bytes")
            found[name] = _text(raw_name, bytes(raw_value))

    missing = [h for h in REQUIRED_HEADERS if not found.get(h)]
    if missing:
        raise DecodeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if found["ce_specversion"] != "1.0":
        raise DecodeError(f"unsupported ce_specversion {found['ce_specversion']!r} (want '1.0')")
    content_type = found.get(CONTENT_TYPE_HEADER)
    if content_type is None:
        raise DecodeError(f"missing header {CONTENT_TYPE_HEADER!r}")
    if content_type.split(";", 1)[0].strip().lower() != CONTENT_TYPE:
        raise DecodeError(f"unsupported content-type {content_type!r} (want {CONTENT_TYPE!r})")

    if value is None:
        raise DecodeError("record value is null (tombstone); a CloudEvent needs JSON data")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"record value is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError(f"record value must be a JSON object, got {type(data).__name__}")

    attributes: dict[str, Any] = {
        "specversion": found["ce_specversion"],
        "id": found["ce_id"],
        "source": found["ce_source"],
        "type": found["ce_type"],
        "datacontenttype": CONTENT_TYPE,
        "data": data,
    }
    for name in _OPTIONAL_ATTRIBUTES:
        if (CE_PREFIX + name) in found:
            attributes[name] = found[CE_PREFIX + name]
    if "traceparent" not in attributes and TRACEPARENT_HEADER in found:
        attributes["traceparent"] = found[TRACEPARENT_HEADER]
    if "time" in attributes:
        try:
            attributes["time"] = datetime.fromisoformat(attributes["time"])
        except ValueError:
            raise DecodeError(f"ce_time is not RFC 3339: {attributes['time']!r}") from None
    else:
        raise DecodeError("missing CloudEvents header: ce_time")
    if "subject" not in attributes and key is not None:
        attributes["subject"] = _text("key", key)
    try:
        return CloudEvent.model_validate(attributes)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise DecodeError(f"invalid CloudEvent attributes: {reasons}") from None
