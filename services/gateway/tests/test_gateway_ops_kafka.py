"""Ops API against a REAL Kafka broker (proxy mode, ``GATEWAY_TRANSPORT=kafka``).

No service runs: the ops layer itself creates the contract topics, their DLQs and the audit
topic, reads end offsets and group lag, consumes every topic into the recent-events feed, and
lists / replays dead letters that carry the library's ``x-dlq-*`` headers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from contracts.codec import encode
from contracts.events.sales import SaleConfirmed, SaleLine
from contracts.registry import to_cloudevent
from contracts.topics import OPS_GROUP, all_topics
from gateway.main import create_app
from gateway.ops_feed import EventFeed
from gateway.settings import GatewaySettings
from nexo_messaging import dlq as dlq_ops
from nexo_messaging.kafka import KafkaTransport
from nexo_messaging.transport import Record, TopicSpec

from .gateway_testkit import bearer, free_port, serve, wait_for

OPS = bearer(["ops"], sub="op-kafka")
DEADLINE_S = 60.0
# far beyond any id a test database hands out: other Kafka tests that consume sales.sales from
# the earliest offset must not see this event touch their materials
FOREIGN_ID = 1_900_000_000 + uuid.uuid4().int % 90_000_000
Env = tuple[httpx.AsyncClient, FastAPI, AIOKafkaProducer]


@pytest.fixture
async def env(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Env]:
    down = [free_port() for _ in range(3)]  # nothing listens there: ops needs no service
    settings = GatewaySettings(
        mode="proxy",
        env="test",
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=tmp_path / "var",
        ops_audit_file=tmp_path / "audit.jsonl",
        ops_buffer_size=10_000,
        evidence_url=f"http://127.0.0.1:{down[0]}",
        sales_url=f"http://127.0.0.1:{down[1]}",
        orders_url=f"http://127.0.0.1:{down[2]}",
        proxy_retries=0,
    )
    app = create_app(settings)
    port = free_port()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with (
            serve(app, port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        ):
            yield client, app, producer
    finally:
        await producer.stop()


async def _topics(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await client.get("/ops/api/topics", headers=OPS)
    assert r.status_code == 200, r.text
    return {t["topic"]: t for t in r.json()["topics"]}


async def _topics_ready(client: httpx.AsyncClient) -> dict[str, dict[str, Any]] | None:
    topics = await _topics(client)
    wanted = {t.name: t.partitions for t in all_topics(include_dlq=True)}
    ok = all(len(topics.get(name, {}).get("partitions", [])) == n for name, n in wanted.items())
    return topics if ok else None


async def _end(client: httpx.AsyncClient, topic: str) -> int:
    return int((await _topics(client))[topic]["end_offset_total"])


def _sale_event(ce_id: str) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    event = SaleConfirmed(
        id_venta=FOREIGN_ID,
        folio=f"VTA-K{FOREIGN_ID}",
        lineas=[
            SaleLine(
                id_material=FOREIGN_ID,
                cantidad=1,
                id_producto=FOREIGN_ID,
                precio_unitario="10.00",
                subtotal="10.00",
            )
        ],
        total="10.00",
        confirmed_at=dt.datetime.now(dt.UTC),
        confirmed_by="ops-kafka-test",
    )
    record = encode(to_cloudevent(event, id=ce_id))
    return record.key, record.value, record.headers


async def test_ops_api_on_real_kafka(env: Env, unique_name: Callable[[str], str]) -> None:
    client, app, producer = env
    assert app.state.ops.transport.kind == "kafka"

    # health: the broker is the real Kafka, services are down (proxy mode, nothing running)
    health = (await client.get("/ops/api/health", headers=OPS)).json()
    assert health["kafka"]["kind"] == "kafka"
    assert health["kafka"]["status"] == "ok"
    assert {s["status"] for s in health["services"].values()} == {"down"}

    # (1) the ops layer created every contract topic (+ DLQs) with its 3 partitions
    topics = await wait_for(
        lambda: _topics_ready(client), "the contract topics with 3 partitions", DEADLINE_S
    )
    sales = topics["sales.sales"]
    assert [p["partition"] for p in sales["partitions"]] == [0, 1, 2]
    assert set(sales["groups"]) >= {"sales.stock", OPS_GROUP}

    # no sales.stock member runs here: its lag still covers every partition (from the broker;
    # a brand-new broker answers "coordinator not available" until its offsets topic exists)
    async def stock_lag() -> dict[str, Any] | None:
        group: dict[str, Any] = (await _topics(client))["sales.sales"]["groups"]["sales.stock"]
        return group if group["partitions"] else None

    stock = await wait_for(stock_lag, "the sales.stock lag from the broker", DEADLINE_S)
    assert set(stock["partitions"]) == {"0", "1", "2"}
    r = await client.get("/ops/api/topics", headers=OPS)
    assert r.json()["lag_error"] is None
    assert r.json()["lag_age_s"] is not None
    assert dlq_ops.AUDIT_TOPIC in await app.state.ops.transport.list_topics()

    async def feed_polling() -> bool:
        return app.state.ops.feed.last_poll is not None

    await wait_for(feed_polling, "the ops feed to poll Kafka", DEADLINE_S)

    before = sales["end_offset_total"]
    ce_id = unique_name("ce")
    key, value, headers = _sale_event(ce_id)
    await producer.send_and_wait("sales.sales", value, key=key, headers=headers)

    async def grew() -> bool:
        return await _end(client, "sales.sales") > before

    await wait_for(grew, "the end offset of sales.sales to grow", DEADLINE_S)

    # (3) the recent-events feed (group gateway.ops) shows the valid event, and its rate
    async def in_recent() -> dict[str, Any] | None:
        body = (await client.get("/ops/api/events?limit=1000", headers=OPS)).json()
        hit = next((e for e in body["events"] if e["id"] == ce_id), None)
        return hit if hit and "SaleConfirmed.v1" in "".join(body["rates"]) else None

    event = await wait_for(in_recent, "the sale in the recent events", DEADLINE_S)
    assert event["topic"] == "sales.sales"
    assert event["type"].endswith("SaleConfirmed.v1")
    assert event["dlq"] is False
    assert event["payload"]["folio"] == f"VTA-K{FOREIGN_ID}"

    async def ops_group_caught_up() -> bool:  # what this gateway's feed read: its lag reaches 0
        group = (await _topics(client))["sales.sales"]["groups"][OPS_GROUP]
        return group["lag"] == 0

    await wait_for(ops_group_caught_up, "the gateway.ops lag on sales.sales to be 0", DEADLINE_S)

    # (2) an undecodable record on sales.sales, dead-lettered with the library's headers
    poison_key = unique_name("poison")
    meta = await producer.send_and_wait("sales.sales", b"\xff not json", key=poison_key.encode())
    poison = Record(
        topic="sales.sales",
        partition=meta.partition,
        offset=meta.offset,
        key=poison_key.encode(),
        value=b"\xff not json",
        headers=[],
        timestamp_ms=meta.timestamp,
    )
    group = unique_name("sales.stock.test")
    dead = dlq_ops.dead_letter_message(
        poison, reason="undecodable", error="DecodeError: not a CloudEvent", consumer_group=group
    )
    assert dead.topic == "sales.sales.dlq"
    await producer.send_and_wait(dead.topic, dead.value, key=dead.key, headers=list(dead.headers))

    async def pending() -> dict[str, Any] | None:
        r = await client.get("/ops/api/dlq?topic=sales.sales&limit=1000", headers=OPS)
        assert r.status_code == 200, r.text
        return next((d for d in r.json()["dead_letters"] if d["key"] == poison_key), None)

    letter = await wait_for(pending, "the dead letter in GET /ops/api/dlq", DEADLINE_S)
    assert letter["status"] == "pending"
    assert letter["dlq_topic"] == "sales.sales.dlq"
    assert letter["reason"] == "undecodable"
    assert letter["error"].startswith("DecodeError")
    assert letter["original_topic"] == "sales.sales"
    assert (letter["original_partition"], letter["original_offset"]) == (
        meta.partition,
        meta.offset,
    )
    assert letter["consumer_group"] == group

    async def undecodable_in_feed() -> bool:
        body = (await client.get("/ops/api/events?limit=1000", headers=OPS)).json()
        return any(e["key"] == poison_key and e["dlq"] for e in body["events"])

    await wait_for(undecodable_in_feed, "the dead letter in the events feed", DEADLINE_S)

    before_replay = await _end(client, "sales.sales")
    action = {
        "dlq_topic": letter["dlq_topic"],
        "partition": letter["partition"],
        "offset": letter["offset"],
        "note": "kafka replay",
    }
    r = await client.post("/ops/api/dlq/replay", json=action, headers=OPS)
    assert r.status_code == 200, r.text
    assert r.json()["audit"]["sub"] == "op-kafka"
    assert r.json()["dead_letter"]["original_topic"] == "sales.sales"

    async def replayed() -> bool:
        return await _end(client, "sales.sales") > before_replay

    await wait_for(replayed, "the replay to grow the end offset of sales.sales", DEADLINE_S)

    async def replayed_status() -> bool:
        letter_now = await pending()
        return letter_now is not None and letter_now["status"] == "replayed"

    await wait_for(replayed_status, "the dead letter to read as replayed", DEADLINE_S)
    again = await client.post("/ops/api/dlq/replay", json=action, headers=OPS)
    assert again.status_code == 409, again.text

    audit = (await client.get("/ops/api/audit", headers=OPS)).json()["entries"]
    assert audit[0]["action"] == "replayed"
    assert audit[0]["sub"] == "op-kafka"
    assert (audit[0]["dlq_topic"], audit[0]["partition"], audit[0]["offset"]) == (
        letter["dlq_topic"],
        letter["partition"],
        letter["offset"],
    )
    assert audit[0]["note"] == "kafka replay"
    assert audit[0]["original_topic"] == "sales.sales"

    async def replay_in_feed() -> bool:
        body = (await client.get("/ops/api/events?limit=1000", headers=OPS)).json()
        hits = [e for e in body["events"] if e["key"] == poison_key and not e["dlq"]]
        return len(hits) >= 2  # the original poison record and its replay

    await wait_for(replay_in_feed, "the replayed record in the events feed", DEADLINE_S)


async def test_every_gateway_replica_sees_every_event_and_a_reconnect_repeats_none(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """Two gateway replicas on one Kafka: each ops feed reads every partition (no group shares
    them out), a feed whose consumer failed reconnects where it left off (no event twice), and
    a replica started later shows what came before it (the tail of each partition)."""
    transport = KafkaTransport(kafka_bootstrap)
    topic = unique_name("ops.replicas")
    await transport.ensure_topics([TopicSpec(topic, 3)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    feeds = [EventFeed(transport, [topic]) for _ in range(2)]
    seen: list[tuple[int, int]] = []

    def read(feed: EventFeed) -> list[tuple[int, int]]:
        return sorted((e["partition"], e["offset"]) for e in feed.events)

    async def all_read(n: int) -> bool:
        return all(len(f.events) >= n for f in feeds)

    async def send(count: int) -> None:
        for i in range(count):
            key, value, headers = _sale_event(unique_name("ce"))
            meta = await producer.send_and_wait(
                topic, value, key=key, headers=headers, partition=i % 3
            )
            seen.append((meta.partition, meta.offset))

    try:
        for feed in feeds:
            feed.topics_ensured = True
            await feed.start()

        async def started() -> bool:
            return all(len(f.positions) == 3 for f in feeds)

        await wait_for(started, "both feeds to read every partition", DEADLINE_S)
        await send(6)
        await wait_for(lambda: all_read(6), "6 events in both feeds", DEADLINE_S)
        assert read(feeds[0]) == read(feeds[1]) == sorted(seen)

        await feeds[0]._close_consumer()  # its next poll fails: the feed reconnects
        await send(3)
        await wait_for(lambda: all_read(9), "9 events in both feeds", DEADLINE_S)
        assert read(feeds[0]) == read(feeds[1]) == sorted(seen)
        ends = await transport.end_offsets([topic])
        for feed in feeds:
            assert feed.lag(topic, ends) == {"lag": 0, "partitions": {0: 0, 1: 0, 2: 0}}
            assert feed.totals["nexo.sales.SaleConfirmed.v1"] == 9

        late = EventFeed(transport, [topic])
        late.topics_ensured = True
        feeds.append(late)
        await late.start()
        await wait_for(lambda: all_read(9), "the late feed to show the earlier events", DEADLINE_S)
        assert read(late) == sorted(seen)
    finally:
        for feed in feeds:
            await feed.stop()
        await producer.stop()
