"""Relay unit behaviour on memory+SQLite: per-aggregate order on failure, attempts/last_error,
backoff, retention cleanup."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from contracts.events.sales import StockLow
from nexo_messaging.errors import TransportUnavailable
from nexo_messaging.memory import MemoryBroker, MemoryProducer, MemoryTransport
from nexo_messaging.outbox import enqueue
from nexo_messaging.relay import OutboxRelay, RelaySettings
from nexo_messaging.relay_store import claimed_columns, cleanup_published, outbox_stats
from nexo_messaging.transport import OutMessage, Producer

from .messaging_harness import metadata, outbox, wait_until


class _FlakyProducer(MemoryProducer):
    """Fails the first message for key ``b"1"`` once."""

    failures = 1

    async def send_many(self, messages: Sequence[OutMessage]) -> list[BaseException | None]:
        out: list[BaseException | None] = []
        for m in messages:
            if m.key == b"1" and _FlakyProducer.failures > 0:
                _FlakyProducer.failures -= 1
                out.append(TransportUnavailable("boom"))
                continue
            out.extend(await super().send_many([m]))
        return out


class _FlakyTransport(MemoryTransport):
    def producer(self) -> Producer:
        return _FlakyProducer(self.broker)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.sqlite'}")
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


async def _write(engine: AsyncEngine, items: list[tuple[int, int]]) -> None:
    async with AsyncSession(engine) as session, session.begin():
        for material, n in items:
            await enqueue(
                session, outbox, StockLow(id_material=material, nombre="x", actual=n, minimo=0)
            )


async def test_failed_row_holds_back_its_aggregate_only(engine: AsyncEngine) -> None:
    _FlakyProducer.failures = 1
    broker = MemoryBroker()
    relay = OutboxRelay(
        "sales", engine, outbox, _FlakyTransport(broker), RelaySettings(backoff_base=0.2)
    )
    await _write(engine, [(1, 0), (2, 0), (1, 1), (2, 1), (1, 2), (2, 2)])
    assert await relay.run_once() == 3  # aggregate 2 only; 1's later rows held back
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(outbox).order_by(outbox.c.seq)))
    first = rows[0]
    assert first.attempts == 1
    assert "boom" in first.last_error
    assert [r.published_at is None for r in rows] == [True, False, True, False, True, False]
    assert await relay.run_once() == 0  # still in backoff: nothing of aggregate 1 goes out

    async def drained() -> bool:
        await relay.run_once()
        return (await outbox_stats(engine, outbox))["backlog"] == 0

    await wait_until(drained, within=10, what="retry after backoff")
    ns = [
        json.loads(r.value)["actual"]
        for part in broker.topics["sales.stock"]
        for r in part
        if r.key == b"1" and r.value is not None
    ]
    assert ns == [0, 1, 2]  # per-aggregate order kept on the wire
    await relay.stop()


async def test_cleanup_removes_old_published_rows(engine: AsyncEngine) -> None:
    relay = OutboxRelay("sales", engine, outbox, MemoryTransport(MemoryBroker()))
    await _write(engine, [(1, 0), (1, 1)])
    assert await relay.run_once() == 2
    async with engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.seq == 1).values(published_at=_days_ago(10))
        )
    assert await cleanup_published(engine, outbox, timedelta(days=7)) == 1
    stats = await outbox_stats(engine, outbox)
    assert stats == {"backlog": 0, "oldest_age_s": 0.0}
    await relay.stop()


def _days_ago(days: int) -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC) - timedelta(days=days)


@pytest.mark.parametrize(
    "extra",
    [{}, {"correlationid": "c-1", "causationid": "e-0", "traceparent": "00-ab-cd-01"}],
)
async def test_relay_encoding_equals_the_contract_codec(
    engine: AsyncEngine, extra: dict[str, str]
) -> None:
    from contracts.codec import encode
    from contracts.envelope import CloudEvent
    from nexo_messaging.encoding import row_to_message, utc

    event = StockLow(id_material=5, nombre='Ñandú "x"', actual=1, minimo=2)
    async with AsyncSession(engine) as session, session.begin():
        await enqueue(session, outbox, event, headers=extra)
    async with engine.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    message = row_to_message(row, "/services/sales")
    expected = encode(
        CloudEvent.from_domain(event, id=row.id, time=utc(row.created_at), headers=extra)
    )
    assert message.key == expected.key
    assert message.value == expected.value
    assert message.headers == expected.headers
    # the relay's own path: JSON columns read as their stored text, payload emitted verbatim
    relay = OutboxRelay("sales", engine, outbox, MemoryTransport(MemoryBroker()))
    async with engine.connect() as conn:
        claimed = (await conn.execute(select(*claimed_columns(outbox)))).one()
    fast = relay._encoder.encode_claimed(claimed)
    assert (fast.key, fast.value, fast.headers) == (expected.key, expected.value, expected.headers)
    assert relay._encoder.encode(claimed) == fast
