"""A process that writes outbox rows and relays them until it is killed (the contract scenario
"process killed between publish and consume", ``test_messaging_contract_crash.py``).

Usage: ``python killed_publisher.py local|kafka <database url> <log path|bootstrap> <topic>``;
prints ``ready`` once its relay runs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from messaging_harness import Env, metadata
from sqlalchemy.ext.asyncio import create_async_engine

from nexo_messaging.runtime import build_transport


async def main(kind: str, url: str, target: str, topic: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    if kind == "local":
        transport = build_transport("local", local_path=target)
    else:
        transport = build_transport("kafka", bootstrap_servers=target)
    env = Env(kind, engine, transport, topic, "unused")
    await env.runtime([]).start()
    print("ready", flush=True)
    n = 0
    while True:  # until SIGKILL: every write is picked up by the relay at once
        await env.write([(i % 9, n + i) for i in range(10)])
        n += 10
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
