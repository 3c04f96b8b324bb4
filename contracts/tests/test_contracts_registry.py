"""Registry completeness, topics table, DecimalStr and event rules."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from contracts.codec import encode
from contracts.envelope import CloudEvent
from contracts.events.evidence import (
    GPU_STATUS_IDS,
    MAX_PRODUCTIONS_PER_EVENT,
    GpuStatusChanged,
    ProductionSaved,
    ProductionSavedV2,
    SavedProduction,
)
from contracts.events.orders import RequestValidated, ValidatedItem
from contracts.events.sales import StockLow, StockShortage, StockShortageV2
from contracts.registry import (
    EVENTS,
    REGISTRY,
    SchemaViolation,
    UnknownEventType,
    event_class,
    events_for_topic,
    parse,
    to_cloudevent,
    upcast,
)
from contracts.topics import (
    DLQ_RETENTION_MS,
    OPS_GROUP,
    TOPICS,
    all_topics,
    consumer_groups,
    dlq_topic,
    topic_for_event,
)
from contracts.types import DecimalStr

T0 = dt.datetime(2025, 3, 15, 18, 0, tzinfo=dt.UTC)
EXPECTED = {
    "nexo.evidence.ProductionSaved.v1",
    "nexo.evidence.ProductionSaved.v2",
    "nexo.evidence.GpuStatusChanged.v1",
    "nexo.sales.SaleConfirmed.v1",
    "nexo.sales.SaleCancelled.v1",
    "nexo.sales.StockLow.v1",
    "nexo.sales.StockShortage.v1",
    "nexo.sales.StockShortage.v2",
    "nexo.orders.RequestValidated.v1",
    "nexo.orders.RequestRejected.v1",
    "nexo.orders.ProposalGenerated.v1",
    "nexo.orders.ProposalDispatched.v1",
}


def production() -> ProductionSaved:
    return ProductionSaved(
        id_produccion=10,
        id_ot=1,
        id_partida_anexo=5,
        anexo="C-2",
        importacion_activa=True,
        fecha=dt.date(2025, 3, 15),
        tipo_tiempo="TE",
        volumen="8.000000",
        es_excedente=False,
        id_reporte_mensual=3,
        mes=3,
        anio=2025,
        change="created",
        saved_by="u-1",
        saved_at=T0,
    )


def saved_batch(n: int = 2, **kw: object) -> ProductionSavedV2:
    return ProductionSavedV2(
        id_ot=1,
        id_reporte_mensual=3,
        mes=3,
        anio=2025,
        producciones=[
            SavedProduction(
                id_produccion=10 + i,
                id_partida_anexo=5,
                anexo="C-2",
                importacion_activa=True,
                fecha=dt.date(2025, 3, 1 + i % 31),
                tipo_tiempo="TE",
                volumen="8.000000",
                change="created",
            )
            for i in range(n)
        ],
        saved_by="u-1",
        saved_at=T0,
        **kw,
    )


# ----------------------------------------------------------------------------- registry


def test_registry_is_complete_and_keyed_by_ce_type() -> None:
    assert set(REGISTRY) == EXPECTED
    for ce_type, cls in REGISTRY.items():
        assert cls.ce_type() == ce_type
        assert cls.ce_source() == f"/services/{cls.service}"
    assert set(EVENTS) == set(REGISTRY.values())
    assert len(set(REGISTRY.values())) == len(REGISTRY)


def test_each_event_topic_exists_and_lists_it() -> None:
    for cls in REGISTRY.values():
        assert cls.topic in TOPICS, cls
        assert cls.event_name in TOPICS[cls.topic].events, cls
        assert TOPICS[cls.topic].producer == cls.service
        assert topic_for_event(cls.event_name).name == cls.topic
    for topic in TOPICS.values():
        assert {c.event_name for c in events_for_topic(topic.name)} == set(topic.events)


def test_event_class_and_unknown_type() -> None:
    assert event_class("nexo.evidence.ProductionSaved.v1") is ProductionSaved
    assert event_class("nexo.evidence.ProductionSaved.v2") is ProductionSavedV2
    with pytest.raises(UnknownEventType, match=r"nexo\.evidence\.Nope\.v1"):
        event_class("nexo.evidence.Nope.v1")


def test_parse_round_trip_and_schema_violation() -> None:
    ce = to_cloudevent(production(), id="e-1")
    assert ce.subject == "10"
    assert ce.data["volumen"] == "8.000000"
    assert parse(ce) == production()
    bad = CloudEvent(id="e-2", source=ce.source, type=ce.type, data={**ce.data, "volumen": 1.5})
    with pytest.raises(SchemaViolation, match="volumen") as info:
        parse(bad)
    assert isinstance(info.value, ValueError)
    assert info.value.event_id == "e-2"
    assert info.value.errors[0]["loc"] == ("volumen",)
    with pytest.raises(UnknownEventType):
        parse(CloudEvent(id="e", source="/x", type="nexo.x.Y.v1", data={}))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    # Within a version producers may add optional fields; older consumers must still accept.
    data = {**production().model_dump(mode="json"), "added_in_a_later_release": 1}
    parsed = parse(CloudEvent(id="e", source="/s", type=ProductionSaved.ce_type(), data=data))
    assert parsed == production()


# ----------------------------------------------------------------------------- topics


def test_topics_table() -> None:
    keys = {name: t.key for name, t in TOPICS.items()}
    assert keys == {
        "evidence.production": "id_ot",
        "evidence.gpu": "id_produccion",
        "sales.sales": "id_venta",
        "sales.stock": "id_material",
        "orders.requests": "id_solicitud",
        "orders.proposals": "id_solicitud",
    }
    for topic in TOPICS.values():
        assert topic.partitions == 3
        assert OPS_GROUP in topic.consumer_groups
        assert topic.description
        assert not topic.is_dlq
    groups = consumer_groups()
    assert groups["evidence.gpu-sync"] == ("evidence.production",)
    assert groups["sales.stock"] == ("sales.sales",)
    assert groups["orders.proposals"] == ("orders.requests",)
    assert set(groups[OPS_GROUP]) == set(TOPICS)


def test_dlq_topics() -> None:
    assert dlq_topic("sales.sales") == "sales.sales.dlq"
    topics = all_topics()
    assert len(topics) == 2 * len(TOPICS)
    dlqs = [t for t in topics if t.is_dlq]
    assert {t.name for t in dlqs} == {dlq_topic(n) for n in TOPICS}
    for dlq in dlqs:
        main = TOPICS[dlq.name.removesuffix(".dlq")]
        assert dlq.retention_ms == DLQ_RETENTION_MS > main.retention_ms
        assert dlq.partitions == main.partitions
    assert all_topics(include_dlq=False) == list(TOPICS.values())


def test_aggregate_id_is_the_topic_key() -> None:
    event = saved_batch()
    assert event.aggregate_id() == str(getattr(event, TOPICS[event.topic].key)) == "1"
    # the superseded v1 (still consumed) was keyed by the production, and its docs say so
    old = production()
    key = old.kafka_key(TOPICS[old.topic].key)
    assert key == "id_produccion"
    assert old.aggregate_id() == str(getattr(old, key)) == "10"
    assert type(event).kafka_key(TOPICS[event.topic].key) == "id_ot"
    rid = uuid.uuid4()
    req = RequestValidated(
        id_solicitud=rid,
        folio="SOL-20250315-ABC123",
        id_institucion=1,
        id_almacen_destino=2,
        items=[
            ValidatedItem(
                id_item=uuid.uuid4(),
                id_producto=3,
                clave_cnis="010.000.0104.00",
                cantidad_solicitada=5,
                cantidad_aprobada=4,
            )
        ],
        validated_by="v-1",
        validated_at=T0,
    )
    assert req.aggregate_id() == str(rid)
    assert to_cloudevent(req, id="x").data["id_solicitud"] == str(rid)


# ----------------------------------------------------------------------------- DecimalStr


class _M(BaseModel):
    x: DecimalStr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("8.000000", "8.000000"), ("-3.5", "-3.5"), (7, "7"), (Decimal("1E+2"), "100"), (" 2 ", "2")],
)
def test_decimal_str_accepts_and_serialises(raw: object, expected: str) -> None:
    m = _M(x=raw)
    assert isinstance(m.x, Decimal)
    assert m.model_dump(mode="json") == {"x": expected}
    assert _M.model_validate_json(m.model_dump_json()) == m


@pytest.mark.parametrize("raw", [1.5, "NaN", "inf", "-Infinity", "abc", "", True, None, [1]])
def test_decimal_str_rejects(raw: object) -> None:
    with pytest.raises(ValidationError):
        _M(x=raw)


def test_decimal_str_json_schema() -> None:
    schema = _M.model_json_schema()["properties"]["x"]
    assert schema["type"] == "string"
    assert "pattern" in schema


# ----------------------------------------------------------------------------- events


def test_gpu_status_codes_case_insensitive_and_change_rules() -> None:
    base = {
        "id_registro_gpu": 1,
        "id_produccion": 10,
        "id_ot": 1,
        "anexo": "C-2",
        "changed_by": "system",
        "changed_at": T0,
        "gpu_version": 1,
    }
    ev = GpuStatusChanged(**base, change="transition", from_status="pendiente", to_status="CARGADO")
    assert (ev.from_status, ev.to_status) == ("PENDIENTE", "CARGADO")
    assert ev.aggregate_id() == "10"
    assert GPU_STATUS_IDS["PENDIENTE"] == 19
    assert GPU_STATUS_IDS["RECHAZADO"] == 23
    with pytest.raises(ValidationError):
        GpuStatusChanged(**base, change="transition", to_status="CARGADO")
    with pytest.raises(ValidationError):
        GpuStatusChanged(**base, change="conflict", from_status="VALIDADO")
    with pytest.raises(ValidationError):
        GpuStatusChanged(**base, change="created", to_status="FACTURADO")


# ----------------------------------------------------------------------------- ProductionSaved.v2


def test_production_saved_v2_round_trip_keeps_every_item() -> None:
    event = saved_batch(3, parte=2, partes=2)
    ce = to_cloudevent(event, id="e-1")
    assert ce.type == "nexo.evidence.ProductionSaved.v2"
    assert ce.subject == "1"
    assert [p["volumen"] for p in ce.data["producciones"]] == ["8.000000"] * 3
    parsed = parse(ce)
    assert parsed == event
    assert isinstance(parsed, ProductionSavedV2)
    assert [p.id_produccion for p in parsed.producciones] == [10, 11, 12]


def test_production_saved_v2_rejects_empty_oversized_and_bad_parts() -> None:
    with pytest.raises(ValidationError):
        saved_batch(0)
    with pytest.raises(ValidationError):
        saved_batch(MAX_PRODUCTIONS_PER_EVENT + 1)
    with pytest.raises(ValidationError, match="parte"):
        saved_batch(1, parte=3, partes=2)


def test_largest_production_saved_v2_record_is_well_under_one_mib() -> None:
    widest = SavedProduction(
        id_produccion=2**31 - 1,
        id_partida_anexo=2**31 - 1,
        anexo="X" * 10,  # partida_anexo_importada.anexo is String(10)
        importacion_activa=False,
        fecha=dt.date(2025, 12, 31),
        tipo_tiempo="CMA",
        id_sitio=2**31 - 1,
        volumen=Decimal("999999999.999999"),  # Numeric(15, 6)
        volumen_anterior=Decimal("999999999.999999"),
        es_excedente=True,
        change="updated",
    )
    event = saved_batch(1).model_copy(
        update={"producciones": [widest] * MAX_PRODUCTIONS_PER_EVENT, "saved_by": "u" * 200}
    )
    record = encode(to_cloudevent(event, id=str(uuid.uuid4())))
    size = len(record.value or b"") + sum(len(k) + len(v) for k, v in record.headers)
    assert size < 512 * 1024  # half of Kafka's default message.max.bytes (1 MiB)


def test_stock_shortage_v1_upcasts_to_v2_with_origen_venta() -> None:
    v1 = StockShortage(
        id_material=7,
        nombre="Acrílico",
        stock_actual=-3,
        faltante=3,
        id_venta=42,
        source_event_id="ev-1",
    )
    ce = to_cloudevent(v1, id="ev-2")
    assert ce.type == "nexo.sales.StockShortage.v1"
    v2 = upcast(parse(ce))
    assert isinstance(v2, StockShortageV2)
    assert v2.model_dump() == {
        "id_material": 7,
        "nombre": "Acrílico",
        "stock_actual": -3,
        "faltante": 3,
        "origen": "venta",
        "id_venta": 42,
        "id_movimiento": None,
        "source_event_id": "ev-1",
    }


def test_stock_shortage_v2_names_a_manual_origen_and_is_not_upcast() -> None:
    v2 = StockShortageV2(
        id_material=7, nombre="A", stock_actual=-1, faltante=1, origen="conteo", id_movimiento=9
    )
    ce = to_cloudevent(v2, id="ev-3")
    assert (ce.type, ce.subject) == ("nexo.sales.StockShortage.v2", "7")
    assert upcast(parse(ce)) == v2
    assert upcast(StockLow(id_material=1, nombre="A", actual=1, minimo=2)).version == 1
    with pytest.raises(SchemaViolation, match="origen"):
        parse(ce.model_copy(update={"data": {**(ce.data or {}), "origen": "robo"}}))
