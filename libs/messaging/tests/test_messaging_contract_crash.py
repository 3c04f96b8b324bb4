"""Contract scenario "process killed between publish and consume", for the durable transports
(the in-memory broker dies with its process by design): a subprocess writes outbox rows and
relays them, and is SIGKILLed mid-flight; every row it marked published is in the log/broker,
and a new process's relay + consumer bring every event to exactly one effect (inbox)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from nexo_messaging.runtime import build_transport

from .messaging_harness import Env, effects, outbox, wait_until

PUBLISHER = Path(__file__).with_name("killed_publisher.py")


@pytest.fixture(params=["local", "kafka"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """(kind, database url, log path or bootstrap servers)."""
    if request.param == "local":
        return "local", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "ev.db")
    url = request.getfixturevalue("pg_database")
    return "kafka", url, request.getfixturevalue("kafka_broker").bootstrap_servers


async def test_process_killed_between_publish_and_consume(
    durable: tuple[str, str, str], unique_name: Callable[[str], str]
) -> None:
    kind, url, target = durable
    topic = unique_name("crash")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PUBLISHER), kind, url, target, topic, stdout=asyncio.subprocess.PIPE
    )
    engine = create_async_engine(url)
    try:
        assert proc.stdout is not None
        line = b"start"
        while line and line.strip() != b"ready":  # log lines come first
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"ready"

        async def published(n: int) -> bool:
            async with engine.connect() as conn:
                q = (
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.published_at.isnot(None))
                )
                return int((await conn.execute(q)).scalar_one()) >= n

        await wait_until(lambda: published(300), within=60, what="300 rows relayed")
        os.kill(proc.pid, signal.SIGKILL)  # mid-flight: writing and relaying
        assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL

        async with engine.connect() as conn:
            rows = list(await conn.execute(select(outbox.c.id, outbox.c.published_at)))
        marked = {r.id for r in rows if r.published_at is not None}
        if kind == "local":
            transport = build_transport("local", local_path=target)
        else:
            transport = build_transport("kafka", bootstrap_servers=target)
        in_log = [r.header("ce_id") for r in await transport.read_records(topic, limit=10**6)]
        # every row the relay marked published survived the kill in the log
        assert marked <= {i.decode() for i in in_log if i is not None}
        assert len(marked) >= 300

        env = Env(kind, engine, transport, topic, unique_name("grp"))
        rt = env.runtime([env.spec()])
        await rt.start()  # the relay re-publishes what was not marked; the consumer catches up
        try:

            async def all_effects() -> bool:
                return await env.count(effects) >= len(rows) and await env.backlog() == 0

            await wait_until(all_effects, within=60, what="every outbox row's effect")
            ends = await transport.end_offsets([topic])

            async def caught_up() -> bool:
                return await transport.committed(env.group, [topic]) == ends

            await wait_until(caught_up, within=30, what="offsets committed to the end")
            effect_ids = [r.event_id for r in await env.effect_rows()]
            assert len(effect_ids) == len(rows) == len(set(effect_ids))  # exactly once in effect
            assert set(effect_ids) == {r.id for r in rows}
        finally:
            await rt.stop()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await engine.dispose()
