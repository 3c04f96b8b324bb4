"""A plain external client (Debian's kcat) reads a relayed event: ce_* headers + a JSON body
that validates against the committed JSON Schema."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from contracts.events.sales import StockLow
from nexo_messaging import context
from nexo_messaging.outbox import enqueue
from nexo_messaging.relay import RelaySettings
from nexo_messaging.runtime import MessagingRuntime, build_transport
from nexo_messaging.transport import TopicSpec

from .messaging_harness import metadata, outbox

SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


async def test_kcat_reads_cloudevent_headers_and_schema_valid_body(
    kafka_broker: Any, pg_database: str, unique_name: Callable[[str], str]
) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed (apt-get install -y kcat)")
    topic = unique_name("msgtest-kcat")
    engine = create_async_engine(pg_database)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    transport = build_transport("kafka", bootstrap_servers=kafka_broker.bootstrap_servers)
    rt = MessagingRuntime(
        "sales",
        transport,
        engine,
        outbox,
        None,
        [],
        relay_settings=RelaySettings(poll_interval=0.2),
        extra_topics=[TopicSpec(topic, 3)],
    )
    await rt.start()
    try:
        token = context.correlation_id.set("corr-123")
        try:
            async with AsyncSession(engine) as session, session.begin():
                event_id = await enqueue(
                    session,
                    outbox,
                    StockLow(id_material=42, nombre="Acrílico 3mm", actual=2, minimo=5),
                    topic=topic,
                )
        finally:
            context.correlation_id.reset(token)
        rt.wake_relay()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        records: list[dict[str, Any]] = []
        while not records:
            assert loop.time() < deadline, "kcat saw nothing"
            proc = await asyncio.create_subprocess_exec(
                kcat, "-b", kafka_broker.bootstrap_servers, "-C", "-t", topic,
                "-o", "beginning", "-e", "-J", "-q",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            records = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
            if not records:
                await asyncio.sleep(0.2)
    finally:
        await rt.stop()
        await engine.dispose()
    rec = records[0]
    raw_headers = rec["headers"]
    headers = dict(zip(raw_headers[::2], raw_headers[1::2], strict=True))
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == event_id
    assert headers["ce_type"] == "nexo.sales.StockLow.v1"
    assert headers["ce_source"] == "/services/sales"
    assert headers["ce_subject"] == "42"
    assert headers["ce_correlationid"] == "corr-123"
    assert headers["content-type"] == "application/json"
    assert "ce_time" in headers
    assert rec["key"] == "42"
    body = json.loads(rec["payload"])
    schema = json.loads((SCHEMAS / "nexo.sales.StockLow.v1.json").read_text())
    jsonschema.validate(body, schema)
    assert body["nombre"] == "Acrílico 3mm"
