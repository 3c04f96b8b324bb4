"""Codec: round-trip, SDK cross-check both ways, DecodeError cases, hypothesis round-trip."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import DecodeError, KafkaRecord, decode, encode, header
from contracts.envelope import CloudEvent
from contracts.events.sales import SaleConfirmed, SaleLine
from contracts.registry import parse, to_cloudevent

try:  # cloudevents < 2 exposes the Kafka binding as `cloudevents.kafka`
    from cloudevents.http import CloudEvent as SdkEvent  # type: ignore[import-not-found]
    from cloudevents.kafka import KafkaMessage, from_binary, to_binary  # type: ignore[import-not-found]
except ImportError:  # cloudevents >= 2 keeps it under `cloudevents.v1`
    from cloudevents.v1.http import CloudEvent as SdkEvent
    from cloudevents.v1.kafka import KafkaMessage, from_binary, to_binary

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
T0 = dt.datetime(2025, 3, 15, 12, 30, 5, 123456, tzinfo=dt.UTC)


def sale() -> SaleConfirmed:
    return SaleConfirmed(
        id_venta=42,
        folio="VTA-0042",
        id_cliente=7,
        lineas=[
            SaleLine(
                id_material=3,
                cantidad=2,
                id_producto=9,
                espesor_mm=4,
                ancho="20.00",
                alto="20.00",
                precio_unitario="116.90",
                subtotal="233.80",
            )
        ],
        total="233.80",
        confirmed_at=T0,
        confirmed_by="u-1",
    )


def envelope() -> CloudEvent:
    return to_cloudevent(
        sale(),
        id="0b9f5a4e-1",
        headers={"correlationid": "corr-1", "causationid": "req-9", "traceparent": TRACEPARENT},
        time=T0,
    )


def test_encode_binary_mode_headers_and_key() -> None:
    record = encode(envelope())
    names = [name for name, _ in record.headers]
    assert record.key == b"42"
    assert header(record.headers, "ce_specversion") == b"1.0"
    assert header(record.headers, "ce_id") == b"0b9f5a4e-1"
    assert header(record.headers, "ce_source") == b"/services/sales"
    assert header(record.headers, "ce_type") == b"nexo.sales.SaleConfirmed.v1"
    assert header(record.headers, "ce_subject") == b"42"
    assert header(record.headers, "content-type") == b"application/json"
    assert header(record.headers, "ce_correlationid") == b"corr-1"
    assert header(record.headers, "ce_causationid") == b"req-9"
    assert header(record.headers, "ce_traceparent") == TRACEPARENT.encode()
    assert header(record.headers, "traceparent") == TRACEPARENT.encode()
    assert "ce_datacontenttype" not in names
    assert "ce_data" not in names
    data = json.loads(record.value)
    assert data["total"] == "233.80"
    assert data["lineas"][0]["precio_unitario"] == "116.90"


def test_round_trip_envelope_and_event() -> None:
    ce = envelope()
    record = encode(ce)
    back = decode(record.key, record.value, record.headers)
    assert back == ce
    assert parse(back) == sale()


def test_from_domain_defaults() -> None:
    ce = CloudEvent.from_domain(sale(), id="e1")
    assert ce.subject == "42"
    assert ce.type == "nexo.sales.SaleConfirmed.v1"
    assert ce.correlationid == "e1"
    assert ce.causationid is None
    assert ce.traceparent is None
    assert ce.time.tzinfo is not None
    assert ce.time.utcoffset() == dt.timedelta(0)
    names = [n for n, _ in encode(ce).headers]
    assert "ce_causationid" not in names
    assert "traceparent" not in names


def test_time_is_normalised_to_utc_and_naive_rejected() -> None:
    mx = dt.timezone(dt.timedelta(hours=-6))
    ce = CloudEvent.from_domain(sale(), id="e1", time=T0.astimezone(mx))
    assert ce.time == T0
    assert ce.time.utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        CloudEvent.from_domain(sale(), id="e1", time=dt.datetime(2025, 1, 1))


# ----------------------------------------------------------------------------- SDK


def test_our_encode_is_read_by_the_sdk() -> None:
    ce = envelope()
    record = encode(ce)
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    sdk = from_binary(message)
    assert sdk["specversion"] == "1.0"
    assert sdk["id"] == ce.id
    assert sdk["source"] == ce.source
    assert sdk["type"] == ce.type
    assert sdk["subject"] == "42"
    assert sdk["datacontenttype"] == "application/json"
    assert sdk["correlationid"] == "corr-1"
    assert sdk["causationid"] == "req-9"
    assert sdk["traceparent"] == TRACEPARENT
    assert sdk["partitionkey"] == b"42"
    assert dt.datetime.fromisoformat(sdk["time"]) == ce.time
    assert sdk.get_data() == ce.data


def test_sdk_to_binary_is_read_by_our_decode() -> None:
    data: dict[str, Any] = sale().model_dump(mode="json")
    sdk = SdkEvent(
        {
            "id": "sdk-1",
            "source": "/services/sales",
            "type": "nexo.sales.SaleConfirmed.v1",
            "subject": "42",
            "time": "2025-03-15T12:30:05.123456Z",
            "datacontenttype": "application/json",
            "correlationid": "corr-1",
            "causationid": "req-9",
            "traceparent": TRACEPARENT,
            "partitionkey": "42",
        },
        data,
    )
    message = to_binary(sdk)
    assert message.key == "42"
    headers = [(k, v) for k, v in message.headers.items()]
    key = message.key.encode() if isinstance(message.key, str) else message.key
    ce = decode(key, message.value, headers)
    assert ce.id == "sdk-1"
    assert ce.type == "nexo.sales.SaleConfirmed.v1"
    assert ce.subject == "42"
    assert ce.time == T0
    assert (ce.correlationid, ce.causationid, ce.traceparent) == ("corr-1", "req-9", TRACEPARENT)
    assert parse(ce) == sale()
    # and our encoding of it equals the SDK's, header by header (plus the plain traceparent)
    ours = dict(encode(ce).headers)
    assert ours.pop("traceparent") == TRACEPARENT.encode()
    assert ours == message.headers
    assert json.loads(encode(ce).value) == json.loads(message.value)


# ----------------------------------------------------------------------------- errors


def _good() -> KafkaRecord:
    return encode(envelope())


def _without(name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in _good().headers if k != name]


def _replace(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in _good().headers]


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_missing_required_header(name: str) -> None:
    with pytest.raises(DecodeError, match=f"missing CloudEvents header.*{name}"):
        decode(b"42", _good().value, _without(name))


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        (_without("content-type"), None, "missing header 'content-type'"),
        (_replace("content-type", b"text/plain"), None, "unsupported content-type"),
        (_replace("ce_specversion", b"0.3"), None, "unsupported ce_specversion"),
        (_replace("ce_time", b"yesterday"), None, "ce_time is not RFC 3339"),
        (_replace("ce_time", b"2025-01-01T00:00:00"), None, "timezone-aware"),
        (_without("ce_time"), None, "ce_time"),
        (_replace("ce_id", b"\xff\xfe"), None, "not valid UTF-8"),
        (None, b"{not json", "not valid JSON"),
        (None, b"[1, 2]", "must be a JSON object"),
        (None, b"\xff", "not valid JSON"),
    ],
)
def test_decode_errors(
    headers: list[tuple[str, bytes]] | None, value: bytes | None, reason: str
) -> None:
    good = _good()
    with pytest.raises(DecodeError, match=reason):
        decode(good.key, value if value is not None else good.value, headers or good.headers)


def test_null_value_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="tombstone"):
        decode(b"42", None, _good().headers)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_header_names_case_insensitive_and_unknown_ignored() -> None:
    good = _good()
    headers = [(k.upper(), v) for k, v in good.headers] + [("x-error", b"boom")]
    assert decode(good.key, good.value, headers) == envelope()


def test_plain_traceparent_used_when_ce_traceparent_missing() -> None:
    good = _good()
    ce = decode(good.key, good.value, _without("ce_traceparent"))
    assert ce.traceparent == TRACEPARENT


def test_subject_falls_back_to_key() -> None:
    good = _good()
    assert decode(b"42", good.value, _without("ce_subject")).subject == "42"


# ----------------------------------------------------------------------------- property

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    id_=_text,
    source=_text,
    type_=_text,
    subject=st.none() | _text,
    time=st.datetimes(min_value=dt.datetime(1970, 1, 1), timezones=st.just(dt.UTC)),
    data=st.dictionaries(st.text(max_size=10), _json, max_size=5),
    correlationid=st.none() | _text,
    causationid=st.none() | _text,
    traceparent=st.none() | _text,
)
def test_property_round_trip(
    id_: str,
    source: str,
    type_: str,
    subject: str | None,
    time: dt.datetime,
    data: dict[str, Any],
    correlationid: str | None,
    causationid: str | None,
    traceparent: str | None,
) -> None:
    ce = CloudEvent(
        id=id_,
        source=source,
        type=type_,
        subject=subject,
        time=time,
        data=data,
        correlationid=correlationid,
        causationid=causationid,
        traceparent=traceparent,
    )
    record = encode(ce)
    assert decode(record.key, record.value, record.headers) == ce
