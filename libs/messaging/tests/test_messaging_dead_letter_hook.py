"""`ConsumerSpec.on_dead_letter`: an event that fails for good (`PermanentError`, or the retries
exhausted) is handed to the hook with its error, in a transaction of its own that commits even
though the handler's rolled back, just before it goes to the DLQ (memory broker + SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from contracts.events.sales import StockLow
from nexo_messaging import dlq
from nexo_messaging.consumer import EventMeta
from nexo_messaging.memory import MemoryBroker
from nexo_messaging.runtime import build_transport

from .messaging_harness import Env, effects, metadata, wait_until


async def test_the_dead_letter_hook_records_each_final_failure_in_its_own_transaction(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    env = Env(
        "memory",
        engine,
        build_transport("memory", memory_broker=MemoryBroker()),
        "msgtest.hook",
        "grp.hook",
    )
    seen: list[tuple[str, str]] = []

    async def hook(session: AsyncSession, event: Any, meta: EventMeta, exc: BaseException) -> None:
        assert isinstance(event, StockLow)
        seen.append((event.nombre, type(exc).__name__))
        await session.execute(
            insert(effects).values(
                event_id=meta.event_id, material=event.id_material, n=-event.actual
            )
        )

    try:
        rt = env.runtime([env.spec(max_attempts=2, on_dead_letter=hook)])
        await rt.start()
        env.fail["flaky"] = 10
        await env.write([(7, 1)], nombre="poison")
        await env.write([(7, 2)], nombre="flaky")
        await env.write([(7, 3)])

        async def settled() -> bool:
            # the good event is handled after the two failures, possibly after they reach the DLQ
            letters = await dlq.list_dead_letters(env.transport, env.topic)
            return len(letters) >= 2 and len(await env.effect_rows()) >= 3

        await wait_until(settled, what="2 dead letters and the good event's effect", within=30)
        assert sorted(seen) == [("flaky", "RuntimeError"), ("poison", "PermanentError")]
        # the hook's rows committed (n < 0), the handler's effects only for the good event
        assert sorted(r.n for r in await env.effect_rows()) == [-2, -1, 3]
        letters = await dlq.list_dead_letters(env.transport, env.topic)
        assert sorted(str(x.reason) for x in letters) == ["permanent_error", "retries_exhausted"]
    finally:
        for r in env.runtimes:
            await r.stop()
        await engine.dispose()
