"""Ops API: authorization, aggregated health, topics/lag, outbox, event feed + SSE, DLQ replay
with audit (embedded mode: real services on the shared memory broker, demo data seeded)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.codec import encode
from contracts.events.sales import StockShortage, StockShortageV2
from contracts.registry import to_cloudevent
from gateway.main import create_app
from gateway.ops_feed import shortage_view
from gateway.settings import GatewaySettings
from nexo_messaging.memory import MemoryBroker
from nexo_messaging.transport import OutMessage
from sales.api import VENDEDOR
from service_defaults.messaging import new_memory_broker

from .gateway_testkit import bearer, free_port, serve, wait_for

OPS = bearer(["ops"], sub="op-1")
SALE = {
    "carrito": [{"producto_id": 2, "material_id": 1, "largo": "10", "ancho": "5", "espesor_mm": 3}],
    "monto_abonado": "0",
    "permitir_backorder": True,
}


@pytest.fixture(scope="module")
async def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryBroker, FastAPI]]:
    tmp = tmp_path_factory.mktemp("ops")
    broker = new_memory_broker()
    app = create_app(
        GatewaySettings(data_dir=tmp / "var", env="dev", ops_audit_file=tmp / "audit.jsonl"),
        memory_broker=broker,
    )
    port = free_port()  # a real server: SSE needs a streaming transport
    async with (
        serve(app, port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client,
    ):
        yield client, broker, app


async def test_ops_api_needs_the_ops_role(env: Any) -> None:
    client, _, _ = env
    r = await client.get("/ops/api/summary")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/ops/api/summary", headers=bearer([VENDEDOR]))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/ops/api/health", headers=bearer(["admin"]))).status_code == 200


async def test_health_aggregates_services_and_infra(env: Any) -> None:
    client, _, _ = env
    body = (await client.get("/ops/api/health", headers=OPS)).json()
    assert {s: v["status"] for s, v in body["services"].items()} == {
        "evidence": "up",
        "sales": "up",
        "orders": "up",
    }
    assert body["kafka"] == {"kind": "memory", "status": "ok"}
    assert body["postgresql"]["databases"]["sales"] == {"kind": "sqlite", "status": "ok"}
    assert body["ops_feed"]["running"] is True


async def test_sale_shows_up_in_events_topics_and_stream(env: Any) -> None:
    client, _, app = env

    async def stream_one() -> dict[str, Any]:
        async with client.stream("GET", "/ops/api/events/stream", headers=OPS) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind == "nexo":
                    event: dict[str, Any] = json.loads(line[5:])
                    if event["type"].endswith("SaleConfirmed.v1"):
                        return event
        raise AssertionError("stream ended")

    async def sales_end() -> int:
        topics = (await client.get("/ops/api/topics", headers=OPS)).json()["topics"]
        entry = next(t for t in topics if t["topic"] == "sales.sales")
        assert set(entry["groups"]) >= {"sales.stock", "gateway.ops"}
        return int(entry["end_offset_total"])

    before = await sales_end()
    listener = asyncio.create_task(stream_one())
    await wait_for(lambda: _subscribed(app), "the SSE subscription")
    r = await client.post("/api/sales/ventas", json=SALE, headers=bearer([VENDEDOR]))
    assert r.status_code == 201, r.text
    event = await asyncio.wait_for(listener, 15)
    assert event["topic"] == "sales.sales"

    async def grew() -> bool:
        return await sales_end() > before

    await wait_for(grew, "the end offset of sales.sales to grow")

    async def in_recent() -> bool:
        body = (await client.get("/ops/api/events", headers=OPS)).json()
        return any(e["type"].endswith("SaleConfirmed.v1") for e in body["events"]) and any(
            k.endswith("SaleConfirmed.v1") for k in body["rates"]
        )

    await wait_for(in_recent, "the sale in the recent events and rates")

    async def drained() -> bool:
        topics = (await client.get("/ops/api/topics", headers=OPS)).json()["topics"]
        entry = next(t for t in topics if t["topic"] == "sales.sales")
        return bool(entry["groups"]["sales.stock"]["lag"] == 0)

    await wait_for(drained, "the sales.stock group to catch up")
    outbox = (await client.get("/ops/api/outbox", headers=OPS)).json()["services"]
    assert set(outbox) == {"evidence", "sales", "orders"}
    assert outbox["sales"]["status"] == "ok"
    assert outbox["sales"]["backlog"] >= 0


async def _subscribed(app: FastAPI) -> bool:
    return bool(app.state.ops.feed._subscribers)


async def test_poison_event_dead_letter_replay_is_audited(env: Any) -> None:
    client, broker, _ = env
    await broker.append(
        OutMessage(topic="sales.sales", key=b"poison-1", value=b"\xff not json", headers=[])
    )
    await broker.notify()

    async def pending() -> dict[str, Any] | None:
        body = (await client.get("/ops/api/dlq", headers=OPS)).json()
        return next(
            (
                d
                for d in body["dead_letters"]
                if d["key"] == "poison-1" and d["status"] == "pending"
            ),
            None,
        )

    letter = await wait_for(pending, "the poison record in sales.sales.dlq")
    assert letter["dlq_topic"] == "sales.sales.dlq"
    assert letter["reason"] == "undecodable"
    assert letter["error"]
    action = {
        "dlq_topic": letter["dlq_topic"],
        "partition": letter["partition"],
        "offset": letter["offset"],
        "note": "test replay",
    }
    denied = await client.post("/ops/api/dlq/replay", json=action, headers=bearer([VENDEDOR]))
    assert denied.status_code == 403
    r = await client.post("/ops/api/dlq/replay", json=action, headers=OPS)
    assert r.status_code == 200, r.text
    assert r.json()["audit"]["sub"] == "op-1"
    again = await client.post("/ops/api/dlq/replay", json=action, headers=OPS)
    assert again.status_code == 409
    audit = (await client.get("/ops/api/audit", headers=OPS)).json()["entries"]
    assert audit[0]["action"] == "replayed"
    assert audit[0]["offset"] == letter["offset"]
    assert audit[0]["note"] == "test replay"
    summary = (await client.get("/ops/api/summary", headers=OPS)).json()
    statuses = {
        (d["dlq_topic"], d["partition"], d["offset"]): d["status"] for d in summary["dead_letters"]
    }
    assert statuses[(letter["dlq_topic"], letter["partition"], letter["offset"])] == "replayed"
    missing = await client.post("/ops/api/dlq/discard", json={**action, "offset": 999}, headers=OPS)
    assert missing.status_code == 404
    for field, beyond in (("partition", 2**31), ("offset", 2**63)):  # int32 / int64 on Kafka
        r = await client.post("/ops/api/dlq/discard", json={**action, field: beyond}, headers=OPS)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_dashboard_and_dev_login(env: Any) -> None:
    client, _, _ = env
    page = await client.get("/ops")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/ops/static/ops.js" in page.text
    js = await client.get("/ops/static/ops.js")
    assert js.status_code == 200
    assert (await client.get("/ops/static/secret.py")).status_code == 404
    assert (await client.get("/ops/dev-login")).json() == {"available": True}
    token = (await client.post("/ops/dev-login")).json()["access_token"]
    r = await client.get("/ops/api/config", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert set(r.json()["user"]["roles"]) == {"admin", "ops"}


async def test_dev_login_is_off_outside_dev(tmp_path: Any) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path, env="test"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:  # no lifespan needed: the route answers from settings only
        r = await client.post("/ops/dev-login")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


async def test_board_reads_stock_shortage_v1_and_v2_with_their_origen(env: Any) -> None:
    """v1 (no longer produced, still on the topic) is shown as v2 with origen venta; v2 as
    published (a manual adjustment: no sale, its ledger row)."""
    client, broker, _ = env
    v1 = StockShortage(
        id_material=90101, nombre="Acrílico", stock_actual=-3, faltante=3, id_venta=7
    )
    v2 = StockShortageV2(
        id_material=90102,
        nombre="MDF",
        stock_actual=-2,
        faltante=2,
        origen="ajuste",
        id_movimiento=41,
    )
    for n, event in enumerate((v1, v2)):
        record = encode(to_cloudevent(event, id=f"shortage-{n}"))
        await broker.append(
            OutMessage("sales.stock", record.key, record.value, list(record.headers))
        )
    await broker.notify()

    async def shown() -> dict[str, Any] | None:
        body = (await client.get("/ops/api/events", headers=OPS)).json()
        found = {e["id"]: e for e in body["events"] if e["id"] in {"shortage-0", "shortage-1"}}
        return found if len(found) == 2 else None

    found = await wait_for(shown, "both StockShortage records in the board's events")
    assert found["shortage-0"]["type"] == "nexo.sales.StockShortage.v1"
    assert found["shortage-0"]["shortage"] == {
        "id_material": 90101,
        "nombre": "Acrílico",
        "stock_actual": -3,
        "faltante": 3,
        "origen": "venta",
        "id_venta": 7,
        "id_movimiento": None,
        "source_event_id": None,
    }
    assert found["shortage-1"]["type"] == "nexo.sales.StockShortage.v2"
    assert found["shortage-1"]["shortage"] == {
        "id_material": 90102,
        "nombre": "MDF",
        "stock_actual": -2,
        "faltante": 2,
        "origen": "ajuste",
        "id_venta": None,
        "id_movimiento": 41,
        "source_event_id": None,
    }
    others = (await client.get("/ops/api/events", headers=OPS)).json()["events"]
    assert all(e["shortage"] is None for e in others if "StockShortage" not in e["type"])


def test_shortage_view_ignores_other_events_and_bad_payloads() -> None:
    good = {"id_material": 1, "nombre": "A", "stock_actual": -1, "faltante": 1, "id_venta": 2}
    assert shortage_view("nexo.sales.StockShortage.v1", good) is not None
    assert shortage_view("nexo.sales.StockLow.v1", good) is None
    assert shortage_view(None, good) is None
    assert shortage_view("nexo.sales.StockShortage.v2", {**good, "origen": "robo"}) is None
    assert shortage_view("nexo.sales.StockShortage.v2", "not an object") is None
